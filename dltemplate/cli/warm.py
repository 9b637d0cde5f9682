"""`main.py warm [--stop]`: this project's warm job server (dltemplate.warm), or that none runs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dltemplate.cli.common import workflow_settings
from dltemplate.warm import place
from dltemplate.warm.client import ask, servers_of


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "warm",
        help="show the warm job server (jobs start in its forks), or stop it",
        description="Jobs on this machine start in a fork of a warm server that imported "
        "torch and Lightning once (docs/warm-jobs.md). This shows it, with its running jobs.",
    )
    parser.add_argument("--stop", action="store_true", help="stop it once its jobs end")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cold = place.why_cold(workflow_settings())
    print(f"Warm job starts: {'off: ' + cold if cold else 'on'}")
    statuses = [ask(where, "stop" if args.stop else "status") for where in servers_of(Path.cwd())]
    statuses = [status for status in statuses if status is not None]
    if not statuses:
        print("No warm job server runs for this project; the next job starts one.")
        return 0
    for status in statuses:  # one per environment its jobs came with (thread counts ...)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status["started"]))
        print(
            f"Server {status['pid']} since {since}: {status['served']} jobs served; it stops "
            f"after {status['idle_seconds']:g} s without a job"
            f"{' (stopping now)' if args.stop else ''}"
        )
        print(f"Its log: {status['log']}")
        for pid, job in sorted(status["running"].items()):
            print(f"  process {pid}: {job['step'].rpartition(':')[2]} for {job['log']}")
    return 0
