"""What a job ran with: the facts its record and its trackers get, and the files under `env/`.

A job's record (`records/<job>.json`, dltemplate.results.run_records) holds, from here: the
host, the pid and the process's start time (a reused pid is not the job's process), the git
commit, whether the tree was dirty and then the `git diff HEAD` of the tracked files
(`env/diff.patch`, at most DIFF_CAP bytes, the record says when it was cut), the installed
distributions (`env/packages.txt`, one `name==version` a line, shared by the run's jobs while
the list is the same), the versions of Python, the engine (dltemplate), torch, Lightning,
Snakemake, CUDA and cuDNN, the GPUs and their driver when the job has GPUs, the CPU model and
core count, and the Snakemake command line that started the job. The run's trackers get the
same facts (`tracker_facts`).

Cheap (a few ms; docs/results.md has the figure): the packages come from
the names of the `*.dist-info` folders on `sys.path` (importlib.metadata reads only those that
do not name their version), `git` runs only inside a git tree, `nvidia-smi` only when the job
has GPUs, and nothing goes to the network. Torch-free: torch's facts are read only when the
job has imported it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import shlex
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate import __version__
from dltemplate.layout import RunLayout
from dltemplate.records import write_text_atomic

PACKAGES = ("torch", "lightning", "snakemake")  # versions named in every record
DIFF_CAP = 1 << 20  # bytes of env/diff.patch; a larger diff is cut there, and the record says so
# Set in a job that runs in a warm server's fork (dltemplate.warm.child): its script's pid.
JOB_SCRIPT_PID_ENV = "DLT_JOB_SCRIPT_PID"
GIT_TIMEOUT = 30  # seconds; git on a network file system can be slow


# -- the process -------------------------------------------------------------------------------
def process_start_time(pid: int | None = None) -> float | None:
    """When process `pid` (default: this one) started, in seconds since the epoch, as psutil
    reads it from the kernel; None when there is no such process. With the pid it names one
    process: a pid reused by another process has another start time."""
    import psutil

    try:
        return round(psutil.Process(pid).create_time(), 2)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def snakemake_command() -> str | None:
    """The command line of the Snakemake process that started this job (the nearest ancestor
    that runs snakemake; of the job's script when the job runs in a warm server's fork), or
    None outside Snakemake."""
    import psutil

    script = os.environ.get(JOB_SCRIPT_PID_ENV)
    try:
        process = psutil.Process(int(script)) if script else psutil.Process()
        for parent in process.parents()[:6]:
            argv = parent.cmdline()
            if any(Path(a).name == "snakemake" for a in argv[:3]):
                return shlex.join(argv)
    except (psutil.Error, OSError):
        return None
    return None


@functools.cache
def cpu() -> dict[str, Any]:
    """The CPU model and the number of cores this machine has (logical) and this process may
    use (its affinity, which SLURM and taskset narrow)."""
    model = None
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "model": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
    }


# -- the code: git -----------------------------------------------------------------------------
def in_git_tree(cwd: str | Path = ".") -> bool:
    """Whether `cwd` lies in a git work tree (a `.git` folder or file in it or above it)."""
    folder = Path(cwd).resolve()
    return any((p / ".git").exists() for p in (folder, *folder.parents))


def _git(cwd: str | Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def git_state(cwd: str | Path = ".") -> dict[str, Any]:
    """The commit of the project's git tree and whether it has uncommitted changes (tracked or
    untracked files); both None outside a git tree. One `git status` tells both."""
    status = _git(cwd, "status", "--porcelain=v2", "--branch") if in_git_tree(cwd) else None
    lines = (status or "").splitlines()
    commit = next((ln.split()[2] for ln in lines if ln.startswith("# branch.oid ")), None)
    if commit is None or commit == "(initial)":  # not a tree, or no commit yet
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": any(not ln.startswith("#") for ln in lines)}


def git_diff(cwd: str | Path = ".") -> str:
    """`git diff HEAD`: every uncommitted change of tracked files, staged or not."""
    return _git(cwd, "diff", "HEAD", "--no-color", "--no-ext-diff") or ""


# -- the packages ------------------------------------------------------------------------------
def _normal(name: str) -> str:
    """A distribution's name as PEP 503 compares them: lowercase, runs of -_. as one -."""
    out, last = [], ""
    for char in name.lower():
        char = "-" if char in "-_." else char
        if not (char == "-" and last == "-"):
            out.append(char)
        last = char
    return "".join(out)


def installed_packages() -> dict[str, str]:
    """`{name: version}` of every distribution importable here (the first one found on
    `sys.path` of each name, as import finds it), sorted by name."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = os.scandir(entry or ".")
        except OSError:
            continue
        with listing:
            for item in listing:
                stem, dot, kind = item.name.rpartition(".")
                if not dot or kind not in ("dist-info", "egg-info"):
                    continue
                name, _, version = stem.partition("-")
                if not version:  # an egg-info folder names no version: read its metadata
                    meta = importlib.metadata.PathDistribution(Path(item.path))
                    name, version = meta.metadata["Name"] or name, meta.version
                found.setdefault(_normal(name), version)
    return dict(sorted(found.items()))


def packages_text(packages: Mapping[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in packages.items())


def read_packages(text: str) -> dict[str, str]:
    """A packages file back as `{name: version}`."""
    pairs = (line.partition("==") for line in text.splitlines() if "==" in line)
    return {name: version for name, _, version in pairs}


def versions(packages: Mapping[str, str]) -> dict[str, str | None]:
    """Python's, the engine's (the one imported, which an installed copy's metadata may not
    name) and PACKAGES' versions."""
    found: dict[str, str | None] = {"python": platform.python_version(), "dltemplate": __version__}
    found.update({name: packages.get(name) for name in PACKAGES})
    return found


# -- torch and the GPUs, once the job has them --------------------------------------------------
def _visible_gpus() -> bool:
    """Whether this job was given GPUs (dltemplate.jobs.gpu_slots sets CUDA_VISIBLE_DEVICES, to
    "" for a job without any) or has started CUDA."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return True
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return bool(visible and visible.strip() not in ("", "-1"))


def nvidia_smi(*fields: str) -> list[list[str]] | None:
    """`nvidia-smi --query-gpu=<fields>`: one row of values per GPU, or None when there is no
    NVIDIA driver to ask."""
    query = ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"]
    try:
        result = subprocess.run(query, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    rows = [[f.strip() for f in line.split(",")] for line in result.stdout.splitlines()]
    return [row for row in rows if len(row) == len(fields)]


def gpus() -> list[dict[str, str]] | None:
    """The name and driver of each GPU this job may use, or None when it has none."""
    if not _visible_gpus():
        return None
    rows = nvidia_smi("index", "uuid", "name", "driver_version") or []
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    if any(visible):
        rows = [r for r in rows if r[0] in visible or r[1] in visible] or rows
    return [{"name": name, "driver": driver} for _, _, name, driver in rows] or None


def torch_facts() -> dict[str, Any]:
    """CUDA's and cuDNN's versions torch was built with, once the job has imported torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"cuda": torch.version.cuda, "cudnn": cudnn}


# -- the job's environment, in its record and its run folder ------------------------------------
def _keep(layout: RunLayout, job: str, shared: str, own: str, text: str) -> str:
    """Write `text` to the run's `shared` file when that is new or holds the same text (jobs
    with the same environment share one file) or the job is the fit (the run's own); else to the
    job's `own` file. Returns the name used, relative to the run folder."""
    path = Path(shared)
    current = path.read_text() if path.is_file() else None
    if current != text:
        path = path if job == "fit" or current is None else Path(own)
        write_text_atomic(path, text)
    return path.relative_to(layout.path).as_posix()


def _diff_record(layout: RunLayout, job: str) -> dict[str, Any]:
    diff = git_diff()
    if not diff:
        return {"diff": None, "diff_note": "no changes to tracked files (untracked files only)"}
    data = diff.encode()
    record: dict[str, Any] = {"diff_bytes": len(data)}
    if len(data) > DIFF_CAP:
        diff = data[:DIFF_CAP].decode(errors="ignore")
        record["diff_note"] = f"cut to its first {DIFF_CAP} of {len(data)} bytes"
    record["diff"] = _keep(layout, job, layout.diff_patch(), layout.diff_patch(job), diff)
    return record


_CAPTURED: dict[tuple[str, str], dict[str, Any]] = {}  # this process's jobs, for the trackers


def job_environment(run_dir: str | Path, job: str) -> dict[str, Any]:
    """The facts of a job's record at its start, writing the run's `env/` files."""
    layout = RunLayout.at(run_dir)
    git = git_state()
    if git["dirty"]:
        git.update(_diff_record(layout, job))
    elif job == "fit":
        Path(layout.diff_patch()).unlink(missing_ok=True)  # a clean fit leaves no old diff
    packages = installed_packages()
    text = packages_text(packages)
    facts = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "pid_started": process_start_time(),
        "git": git,
        "versions": versions(packages),
        "packages": {
            "file": _keep(layout, job, layout.packages(), layout.packages(job), text),
            "count": len(packages),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
        },
        "cpu": cpu(),
        "gpus": None,
        "snakemake": snakemake_command(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    _CAPTURED[(layout.folder, job)] = facts
    return dict(facts)


def complete(record: dict[str, Any]) -> None:
    """Add what is known once the job has run: torch's CUDA and cuDNN versions, the GPUs."""
    record.setdefault("versions", {}).update(torch_facts())
    record["gpus"] = gpus()


def tracker_facts(run_dir: str | Path, job: str) -> dict[str, str]:
    """The job's environment as flat `env/<name>` text values, for the trackers' params, tags
    and config (the packages by their count and hash; the list is in the run folder)."""
    captured = _CAPTURED.get((RunLayout.at(run_dir).folder, job))
    record = dict(captured) if captured else job_environment(run_dir, job)  # the job's record's
    complete(record)
    git, packages = record["git"], record["packages"]
    facts: dict[str, Any] = {
        "host": record["host"],
        "git_commit": git["commit"],
        "git_dirty": git["dirty"],
        "git_diff": git.get("diff"),
        **{f"{name}_version": value for name, value in record["versions"].items()},
        "packages": f"{packages['count']} in {packages['file']} (sha256 {packages['sha256']})",
        "cpu": f"{record['cpu']['model']} ({record['cpu']['cores']} cores)",
        "gpus": ", ".join(f"{g['name']} (driver {g['driver']})" for g in record["gpus"] or []),
        "snakemake": record["snakemake"],
    }
    return {f"env/{k}": str(v)[:500] for k, v in facts.items() if v not in (None, "")}
