"""Job steps for tests/test_warm_jobs.py: what a job may do to the process it runs in.

A test's job script runs `run_step(Job(...), <step>)` as scripts/*.py do, so the step runs in
a warm server's child (or cold). `Job` stands for Snakemake's object with what `run_step` reads.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

CALLS = []  # a module global that a job changes: the next job must not see the change


class Job:
    def __init__(self, log: str, out: str, **params: Any) -> None:
        self.log = [log]
        self.config: dict[str, Any] = {}
        self.params = {"out": out, **params}


def _out(job: Job) -> Path:
    return Path(job.params["out"])


def reports_state(job: Job) -> None:
    import numpy

    CALLS.append(1)
    state = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "cwd": os.getcwd(),
        "marker": os.environ.get("DLT_TEST_MARKER"),
        "umask": os.umask(0o022),
        "calls": len(CALLS),
        "random": random.random(),
        "numpy": float(numpy.random.random()),
        "lightning_loaded": "lightning" in sys.modules,
    }
    _out(job).write_text(json.dumps(state))
    print("to stdout")
    print("to stderr", file=sys.stderr)


def exits(job: Job) -> None:
    os._exit(int(job.params["code"]))


def segfaults(job: Job) -> None:
    ctypes.string_at(0)


def leaves_a_thread(job: Job) -> None:
    threading.Thread(target=time.sleep, args=(3600,), name="left behind").start()
    _out(job).write_text("done")


def sleeps(job: Job) -> None:
    """Writes its pid, then sleeps (SIGTERM and SIGINT end it as they end any process)."""
    _out(job).write_text(str(os.getpid()))
    time.sleep(600)


def runs_a_while(job: Job) -> None:
    """Longer than the server waits for a job's request: the job must not be stopped then."""
    time.sleep(12)
    _out(job).write_text("done")


def kills_itself(job: Job) -> None:
    os.kill(os.getpid(), 9)
