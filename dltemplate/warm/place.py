"""Where a warm server lives, and whether a job may use one. Torch-free: job scripts import it.

One server per user, project folder and Python setup (interpreter, PYTHONPATH, hash seed,
preloaded libraries): its socket, state file and log lie in a private folder of the user,
named by a hash of those. Jobs under a cluster executor run cold unless the workflow config
says `warm_jobs: everywhere`.
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
IDLE_SECONDS = 600
MAX_SOCKET_PATH = 96  # bytes: a Unix socket's path has at most 107, and `.<pid>` is added once
# Variables read when the server imports its libraries: a job with other values gets its own.
IMPORT_TIME_ENV = ("PYTHONPATH", "PYTHONHASHSEED", "LD_PRELOAD", "LD_LIBRARY_PATH")


@dataclass(frozen=True)
class Place:
    """The files of one server: its socket, its state (JSON: pid, start, project), its log,
    and the lock that one starter holds while the server starts."""

    folder: Path
    key: str

    @property
    def socket(self) -> Path:
        """In the folder; in the temporary folder when that path is too long for a Unix socket
        (108 bytes, with room for the pid of the name the server binds first)."""
        path = self.folder / f"{self.key}.sock"
        if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
            return path
        short = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"dltemplate-warm-{os.getuid()}-{short}.sock"

    @property
    def state(self) -> Path:
        return self.folder / f"{self.key}.json"

    @property
    def log(self) -> Path:
        return self.folder / f"{self.key}.log"

    @property
    def start_lock(self) -> Path:
        return self.folder / f"{self.key}.start.lock"


def state_folder(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(
        environ.get(DIR_ENV)
        or os.path.join(tempfile.gettempdir(), f"dltemplate-warm-{os.getuid()}")
    )


def place_for(project: str | Path, environ: Mapping[str, str] = os.environ) -> Place:
    """The server of project folder `project` for this interpreter and environment."""
    setup = [str(Path(project).resolve()), os.path.realpath(sys.executable)]
    setup += [f"{name}={environ.get(name, '')}" for name in IMPORT_TIME_ENV]
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
