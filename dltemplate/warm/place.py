"""Where a warm server lives, and whether a job may use one. Torch-free: job scripts import it.

One server per user, host, project folder and Python setup (interpreter and environment,
environment variables, CPUs, control group and limits, the preloaded libraries): its socket,
state file and log lie in a folder only the user can enter (dltemplate.warm.private), named by
a hash of those. Jobs under a cluster executor run cold unless the workflow config says
`warm_jobs: everywhere`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import socket
import stat
import sys
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
# A server is for jobs whose environment is its own: every variable counts (the interpreter,
# the libraries and their imports read some when they start: threads, BLAS kernels, backends,
# temporary and config folders, locale, hash seed, ranks ...), but for these, which only a
# terminal, a login session or the template itself sets, and which no import reads.
SESSION_ONLY_NAMES = frozenset(
    (
        *("_", "OLDPWD", "PWD", "SHLVL", "TERM", "COLUMNS", "LINES", "COLORTERM", "LS_COLORS"),
        *("TMUX", "TMUX_PANE", "STY", "WINDOW", "WINDOWID", "DISPLAY", "XAUTHORITY"),
        *("SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "SSH_AUTH_SOCK", "GPG_TTY", "MAIL"),
        *("DBUS_SESSION_BUS_ADDRESS", "HISTFILE", "HISTSIZE", "HISTCONTROL", "PS1", "PS2"),
        *("PROMPT_COMMAND", "EDITOR", "VISUAL", "PAGER", "LESS", "LESSOPEN", "LESSCLOSE"),
        "CUDA_VISIBLE_DEVICES",  # set by the job itself (dltemplate.jobs.gpu_slots), at run time
        "PYTEST_CURRENT_TEST",  # pytest's, for each test (the template's suite runs jobs warm)
    )
)
SESSION_ONLY_PREFIXES = (
    *("DLT_", "XDG_SESSION_", "XDG_SEAT", "XDG_VTNR", "VSCODE_", "TERM_", "KONSOLE_"),
    "SLURM_",  # per job step; SLURM_JOB_ID, the allocation, counts (below)
)
ALLOCATION = "SLURM_JOB_ID"
# Snakemake sets these to a job's thread count (so jobs of 1 and of 8 threads get two servers:
# OpenBLAS and OpenMP size their pools when they load).
JOB_THREAD_VARIABLES = (
    *("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS"),
    *("VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"),
)
# Snakemake sets these to its `tmpdir` resource (by default the system's temporary folder).
JOB_TEMP_VARIABLES = ("TMPDIR", "TEMP", "TMP", "TEMPDIR")
_LIMITS = ("RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CPU", "RLIMIT_NOFILE")


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
    """DLT_WARM_DIR, else the user's runtime folder (XDG_RUNTIME_DIR, when it is the user's),
    else a folder in the user's cache folder (never a shared folder: another user could make
    it first, and the user could not remove theirs)."""
    if environ.get(DIR_ENV):
        return Path(environ[DIR_ENV])
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime) and _is_mine(runtime):
        return Path(runtime) / "dltemplate-warm"
    home = environ.get("HOME") or os.path.expanduser("~")
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return Path(cache) / "dltemplate-warm"


def _is_mine(folder: str) -> bool:
    try:
        info = os.stat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def server_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables of `environ` that make a server (all but SESSION_ONLY_*)."""
    return {
        name: value
        for name, value in sorted(environ.items())
        if name == ALLOCATION
        or not (name in SESSION_ONLY_NAMES or name.startswith(SESSION_ONLY_PREFIXES))
    }


def process_context() -> list[str]:
    """What a job's process inherits besides its environment and a child of the server would
    inherit from the server instead: the host, the Python environment, the CPUs it may use,
    its control group, niceness and resource limits."""
    context = [
        f"host={socket.gethostname()}",
        f"executable={os.path.realpath(sys.executable)}",  # python and python3 are one
        f"prefix={sys.prefix}",  # two virtual environments of one Python are two
        f"cpus={sorted(os.sched_getaffinity(0))}",
        f"nice={os.nice(0)}",
    ]
    with contextlib.suppress(OSError):
        context.append(f"cgroup={Path('/proc/self/cgroup').read_text()}")
    for name in _LIMITS:
        context.append(f"{name}={resource.getrlimit(getattr(resource, name))}")
    return context


def snakemake_job_environment(environ: Mapping[str, str], threads: int = 1) -> dict[str, str]:
    """`environ` as Snakemake hands it to a local job of `threads` threads (for a server that
    such jobs must find, started by hand: the bench's, the tests')."""
    temp = environ.get("TMPDIR") or environ.get("TEMP") or environ.get("TMP") or "/tmp"
    return {
        **environ,
        **dict.fromkeys(JOB_THREAD_VARIABLES, str(threads)),
        **dict.fromkeys(JOB_TEMP_VARIABLES, temp),
    }


def preloaded(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The import-safe libraries: IMPORT_SAFE and the workflow config's `warm_preload`."""
    return tuple(dict.fromkeys((*IMPORT_SAFE, *config.get(PRELOAD_SETTING, ()))))


def place_for(
    project: str | Path,
    environ: Mapping[str, str] = os.environ,
    config: Mapping[str, Any] | None = None,
) -> Place:
    """The server of project folder `project` for this process (process_context), its
    environment (server_environment) and workflow config (its `warm_preload`)."""
    setup = [str(Path(project).resolve()), *process_context()]
    setup += [f"{name}={value}" for name, value in server_environment(environ).items()]
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
