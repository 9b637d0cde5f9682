"""Job steps for tests/test_warm_jobs.py: what a job may do to the process it runs in.

A test's job script runs `run_step(job(...), <step>)` as scripts/*.py do, so the step runs in
a warm server's child (or cold), with a real Snakemake job object.
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

from snakemake.iocontainers import (
    InputFiles,
    Log,
    OutputFiles,
    Params,
    ResourceList,
    Snakemake,
    Wildcards,
)

CALLS = []  # a module global that a job changes: the next job must not see the change


def job(log: str, out: str, config: dict | None = None, **params: Any) -> Snakemake:
    """Snakemake's object of a job, as a `script:` receives it: its log, workflow config and
    params."""
    return Snakemake(
        InputFiles(),
        OutputFiles(),
        Params(fromdict={"out": out, **params}),
        Wildcards(),
        1,
        ResourceList(),
        Log(toclone=[log]),
        config or {},
        "warm_test",
        None,
    )


def _out(job: Snakemake) -> Path:
    return Path(job.params["out"])


def reports_state(job: Snakemake) -> None:
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


def exits(job: Snakemake) -> None:
    os._exit(int(job.params["code"]))


def segfaults(job: Snakemake) -> None:
    ctypes.string_at(0)


def leaves_a_thread(job: Snakemake) -> None:
    threading.Thread(target=time.sleep, args=(3600,), name="left behind").start()
    _out(job).write_text("done")


def sleeps(job: Snakemake) -> None:
    """Writes its pid, then sleeps (SIGTERM and SIGINT end it as they end any process)."""
    _out(job).write_text(str(os.getpid()))
    time.sleep(600)


def runs_a_while(job: Snakemake) -> None:
    """Longer than the server waits for a job's request: the job must not be stopped then."""
    time.sleep(12)
    _out(job).write_text("done")


def kills_itself(job: Snakemake) -> None:
    os.kill(os.getpid(), 9)


def reports_what_it_sees(job: Snakemake) -> None:
    """What a job sees of the process it was given: the default dtype, whether a module is
    loaded and its VALUE once imported, the temporary folder, matplotlib's backend, threads."""
    import importlib
    import tempfile

    import matplotlib
    import torch

    module = job.params.get("module")
    state = {
        "ppid": os.getppid(),
        "dtype": str(torch.get_default_dtype()),
        "loaded": bool(module) and module in sys.modules,
        "tmp": tempfile.gettempdir(),
        "backend": str(dict.__getitem__(matplotlib.rcParams, "backend")),
        "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
    }
    if module:
        state["value"] = importlib.import_module(module).VALUE
    _out(job).write_text(json.dumps(state))


def imports(job: Snakemake) -> None:
    """Imports module `module` (whatever it does when imported), as a job's config would."""
    import importlib

    importlib.import_module(job.params["module"])
    _out(job).write_text("done")


def reports_logging(job: Snakemake) -> None:
    """How Lightning's logger passes its records on (the same warm as cold)."""
    import logging

    import lightning  # noqa: F401

    logger = logging.getLogger("lightning.pytorch")
    state = {"handlers": len(logger.handlers), "propagate": logger.propagate}
    _out(job).write_text(json.dumps(state))
