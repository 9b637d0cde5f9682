"""Where a warm server lives, and whether a job may use one. Torch-free: job scripts import it.

One server per user, project folder and Python setup (interpreter, the environment variables
read at import time, the preloaded libraries): its socket, state file and log lie in a folder
only the user can enter (dltemplate.warm.private), named by a hash of those. Jobs under a
cluster executor run cold unless the workflow config says `warm_jobs: everywhere`.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OFF_ENV = "DLT_WARM"  # DLT_WARM=0 runs every job cold
IDLE_ENV = "DLT_WARM_IDLE"  # seconds a server waits for a job before it stops
DIR_ENV = "DLT_WARM_DIR"  # where servers keep their sockets (default: per user, private)
REMOTE_ENV = "DLT_CLUSTER_EXECUTOR"  # set by the workflow under a cluster executor
START_LOCK_FD_ENV = "DLT_WARM_START_LOCK_FD"  # the starter's lock, held until the server listens
SETTING = "warm_jobs"  # workflow config: local (default), everywhere, off
PRELOAD_SETTING = "warm_preload"  # workflow config: more import-safe libraries to preload
IDLE_SECONDS = 600
# Libraries whose import changes nothing for code that does not use them, so that a server
# may hold them for every job (their own imports included); the workflow config's
# `warm_preload` adds to it. Anything else a job imports, it imports itself, fresh.
IMPORT_SAFE = (
    "numpy",
    "scipy",
    "pandas",
    "sklearn",
    "torch",
    "lightning",
    "torchmetrics",
    "matplotlib",
    "yaml",
    "snakemake",
    "dltemplate",
)
# Environment variables that the interpreter or the preloaded libraries read when they start
# or import (threads, BLAS kernels, backends, config folders, locale, hash seed): a job whose
# values differ runs on a server started with its own. Runtime reads need nothing: a job's
# process has the job's environment (and forgets the server's temporary folder, child.py).
IMPORT_TIME_NAMES = frozenset(
    (
        *("HOME", "LANG", "LANGUAGE", "TZ", "LD_PRELOAD", "LD_LIBRARY_PATH"),
        *("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"),
    )
)
IMPORT_TIME_PREFIXES = (
    *("PYTHON", "LC_", "OMP_", "KMP_", "MKL_", "OPENBLAS", "GOTO", "BLIS", "VECLIB", "NUMEXPR"),
    *("NPY_", "NUMPY", "SCIPY", "SKLEARN", "PANDAS", "MPL", "MATPLOTLIB"),
    *("TORCH", "PYTORCH", "CUDA", "CUBLAS", "CUDNN", "NVIDIA", "PL_", "LIGHTNING"),
)
# Snakemake sets these to a job's thread count (so jobs of 1 and of 8 threads get two servers:
# OpenBLAS and OpenMP size their pools when they load).
JOB_THREAD_VARIABLES = (
    *("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS"),
    *("VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"),
)
# Read when a job claims its GPUs, in the job's own process (dltemplate.jobs.gpu_slots).
PER_JOB_NAMES = frozenset(("CUDA_VISIBLE_DEVICES",))


@dataclass(frozen=True)
class Place:
    """The files of one server, in its private folder (dltemplate.warm.private): its socket,
    its state (JSON: pid, start, project), its log, and the lock that one starter holds while
    the server starts. Names, relative to the folder."""

    folder: Path
    key: str

    @property
    def socket(self) -> str:
        return f"{self.key}.sock"

    @property
    def state(self) -> str:
        return f"{self.key}.json"

    @property
    def log(self) -> str:
        return f"{self.key}.log"

    @property
    def start_lock(self) -> str:
        return f"{self.key}.start.lock"

    def path(self, name: str) -> Path:
        """Where file `name` of the folder lies, for messages (use the open folder to reach it)."""
        return self.folder / name

    def learned(self, pid: int) -> str:
        """Where the job of process `pid` names the libraries it imported."""
        return f"{self.key}.learned.{pid}"


def state_folder(environ: Mapping[str, str] = os.environ) -> Path:
    """DLT_WARM_DIR, else the user's runtime folder (XDG_RUNTIME_DIR, private by design), else
    a folder of the user's in the temporary folder (refused if someone else made it first)."""
    if environ.get(DIR_ENV):
        return Path(environ[DIR_ENV])
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "dltemplate-warm"
    return Path(tempfile.gettempdir()) / f"dltemplate-warm-{os.getuid()}"


def import_time_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` that the server's imports may have read."""
    return {
        name: value
        for name, value in sorted(environ.items())
        if name not in PER_JOB_NAMES
        and (name in IMPORT_TIME_NAMES or name.startswith(IMPORT_TIME_PREFIXES))
    }


def preloaded(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The import-safe libraries: IMPORT_SAFE and the workflow config's `warm_preload`."""
    return tuple(dict.fromkeys((*IMPORT_SAFE, *config.get(PRELOAD_SETTING, ()))))


def place_for(
    project: str | Path,
    environ: Mapping[str, str] = os.environ,
    config: Mapping[str, Any] | None = None,
) -> Place:
    """The server of project folder `project` for this interpreter, environment and workflow
    config (its `warm_preload`)."""
    setup = [str(Path(project).resolve()), os.path.realpath(sys.executable)]
    setup += [f"{name}={value}" for name, value in import_time_environment(environ).items()]
    setup += [f"preload={name}" for name in preloaded(config or {})]
    key = hashlib.sha256("\0".join(setup).encode()).hexdigest()[:16]
    return Place(state_folder(environ), key)


def idle_seconds(environ: Mapping[str, str] = os.environ, minimum: float = 10.0) -> float:
    """How long a server waits for a job: DLT_WARM_IDLE seconds, at least `minimum` (0 or
    less would start a server per job); the default when it is not a finite number."""
    try:
        seconds = float(environ.get(IDLE_ENV, IDLE_SECONDS))
    except ValueError:
        return IDLE_SECONDS
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, infinities
        return IDLE_SECONDS
    return max(seconds, minimum)


def why_cold(config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> str | None:
    """Why this job must run cold (None: it may use a warm server)."""
    if environ.get(OFF_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return f"{OFF_ENV}={environ[OFF_ENV]}"
    setting = config.get(SETTING, "local")
    if setting in ("off", False):
        return f"the workflow config says {SETTING}: off"
    if setting != "everywhere" and environ.get(REMOTE_ENV):
        return f"a cluster executor's job (the workflow config's {SETTING}: everywhere allows it)"
    return None


def mark_cluster_jobs(cluster: bool) -> None:
    """Called while Snakemake parses the workflow: under a cluster executor (`cluster`: the
    submitting Snakemake, whose local rules run on the login node, and the Snakemake of each
    cluster job), mark the environment that the jobs' scripts inherit."""
    if cluster:
        os.environ[REMOTE_ENV] = "1"
