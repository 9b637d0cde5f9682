"""`main.py diff RUN_A RUN_B`: what differs between two finished runs, side by side."""

from __future__ import annotations

import argparse
import json
from typing import Any

from dltemplate.cli.show import parse_run_key
from dltemplate.layout import RunLayout

TITLES = {
    "overrides": "overrides (as the fit ran, from the archived config)",
    "hparams": "hparams.yaml",
    "seed": "seed",
    "environment": "environment (each job's record)",
    "packages": "installed packages (the fit's env/packages)",
    "metrics": "test metrics",
}


def load_run(text: str):
    """The finished run `proj/exp/run` as a RunFolder (one clear line when it is missing or
    unfinished)."""
    from dltemplate.results.run_diff import RunFolder

    proj, exp, run = parse_run_key(text)
    return RunFolder(f"{proj}/{exp}/{run}", RunLayout.of(proj, exp, run))


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]-[/]"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def print_differences(a_key: str, b_key: str, found: dict[str, Any]) -> None:
    """The differences of run_diff.compare, one table per section, the config as a diff."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Table

    console = Console()
    if not found:
        console.print(f"{a_key} and {b_key}: no difference")
        return
    for section, title in TITLES.items():
        if section not in found:
            continue
        table = Table(title=title, title_justify="left")
        for column in ("what", a_key, b_key):
            table.add_column(column, overflow="fold")
        if section == "environment":
            for job, facts in found[section].items():
                for fact, (left, right) in facts.items():
                    table.add_row(f"{job}: {fact}", _cell(left), _cell(right))
        else:
            for path, (left, right) in found[section].items():
                table.add_row(path, _cell(left), _cell(right))
        console.print(table)
    if "config" in found:
        console.print("[bold]config source[/] (archived configs, a unified diff)")
        console.print(Syntax("\n".join(found["config"]), "diff", word_wrap=True))


def cmd_diff(args: argparse.Namespace) -> int:
    from dltemplate.results.run_diff import compare

    a, b = load_run(args.run_a), load_run(args.run_b)
    found = compare(a, b)
    if args.json:
        print(json.dumps({"a": a.key, "b": b.key, "differences": found}, indent=2, default=str))
    else:
        print_differences(a.key, b.key, found)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "diff",
        help="what differs between two finished runs: overrides, hparams, config, "
        "environment, packages, seed, test metrics",
    )
    parser.add_argument("run_a", metavar="RUN_A", help="a run as <proj>/<exp>/<run>")
    parser.add_argument("run_b", metavar="RUN_B", help="the run to compare it with")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(func=cmd_diff)
