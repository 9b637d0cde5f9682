"""What the benchmark scripts share: options, machine facts, statistics, result files, data.

Each script measures one thing and writes `<out>/<name>.json` (a title, the command, the
machine, the date, tables of median/min/max and the goals); bench/report.py turns those into
BENCHMARKS.md. Nothing here imports torch at module level, so orchestration benchmarks stay
light.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SCRATCH = REPO / "bench" / ".scratch"
BIN = Path(sys.executable).parent
# What a scratch copy of the workflow needs besides configs/ (as tests/conftest.py copies).
# The project's files (the engine's rules come from the installed package); pyproject.toml marks
# the copy as a project, so that main.py in it never finds this repository above it.
WORKFLOW_FILES = (
    *("Snakefile", "rules", "scripts", "profiles", "envs", "main.py", "pyproject.toml"),
    *("wrappers", "models", "dataset_classes"),
)


def parser(description: str, reps: int = 5) -> argparse.ArgumentParser:
    """The options every script takes."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes and 1 repetition: checks that it runs"
    )
    p.add_argument("--reps", type=int, default=reps, help=f"repetitions (default {reps})")
    p.add_argument("--out", type=Path, default=RESULTS, help="folder for <name>.json")
    return p


def command_line(module: str, argv: Sequence[str] | None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join([".venv/bin/python", "-m", module, *args])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions(*names: str) -> dict[str, str]:
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def load() -> float:
    """The 1-minute load average (other work on the machine skews timings)."""
    return round(os.getloadavg()[0], 2)


def uptime() -> list[float]:
    """The 1-, 5- and 15-minute load averages, as `uptime` prints them."""
    return [round(x, 2) for x in os.getloadavg()]


def machine(*packages: str) -> dict[str, Any]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions(*packages),
    }


def stats(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def verdict(s: dict[str, float], limit: float, below: bool = True) -> str:
    """ "met" when every repetition meets the goal, "not met" when none does, "not shown" when
    the repetitions fall on both sides of the limit: a median alone does not show a goal met."""
    good = (s["max"] <= limit) if below else (s["min"] >= limit)
    bad = (s["min"] > limit) if below else (s["max"] < limit)
    return "met" if good else "not met" if bad else "not shown"


def goal(what: str, measured: str, s: dict[str, float], limit: float, below: bool) -> dict:
    """A goal such as `c/b <= 1.02`: the measured value as text (with the repetitions' range)
    and its verdict from the range `s`; `below`: the goal is to stay under `limit`."""
    judged = verdict(s, limit, below)
    return {
        "goal": what,
        "measured": f"{measured}; range {s['min']:.3g} to {s['max']:.3g}",
        "verdict": judged,
        "met": judged == "met",
    }


def fmt(s: dict[str, float], unit: str = "s", digits: int = 3) -> str:
    """`1.23 s (1.20-1.31)`: the median, then min-max."""
    f = f"{{:.{digits}g}}"
    value = f"{f.format(s['median'])} {unit}".strip()
    return f"{value} ({f.format(s['min'])}-{f.format(s['max'])})"


@dataclass
class Result:
    """One benchmark's result file: what was run, where, when, and what came out."""

    name: str
    title: str
    command: str
    packages: tuple[str, ...] = ("torch", "lightning", "torchmetrics", "snakemake")
    about: str = ""
    tables: list[dict[str, Any]] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    quick: bool = False

    def __post_init__(self) -> None:
        self.started = dt.datetime.now().astimezone()
        self.load_before = load()
        self.uptime_before = uptime()

    def table(self, caption: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.tables.append({"caption": caption, "columns": columns, "rows": rows})

    def write(self, out: Path, extra_machine: dict[str, Any] | None = None) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        data = {
            "name": self.name,
            "title": self.title,
            "command": self.command,
            "about": self.about,
            "date": self.started.strftime("%Y-%m-%d %H:%M %Z"),
            "machine": {**machine(*self.packages), **(extra_machine or {})},
            "load": {"before": self.load_before, "after": load()},
            "uptime": {"before": self.uptime_before, "after": uptime()},
            "quick": self.quick,
            "tables": self.tables,
            "goals": self.goals,
            "notes": self.notes,
            "raw": self.raw,
        }
        path = out / f"{self.name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        tmp.replace(path)
        print(f"wrote {path}")
        for g in self.goals:
            print(f"  goal {g['goal']}: {g['measured']} -> {g['verdict']}")
        return path


def scratch_root() -> Path:
    """bench/.scratch/ (git-ignored, on the project's disk), or $DLT_BENCH_SCRATCH (tests)."""
    return Path(os.environ.get("DLT_BENCH_SCRATCH") or SCRATCH)


def scratch_dir(name: str) -> Path:
    """An empty folder `name` under the scratch root."""
    path = scratch_root() / name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def copy_workflow(root: Path, registry: dict[str, str]) -> Path:
    """A scratch copy of the workflow (as tests/conftest.py's make_project does) whose registry
    holds only `registry` (project name -> YAML text)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    shutil.copytree(
        REPO / "configs", root / "configs", ignore=shutil.ignore_patterns("projects", "__pycache__")
    )
    projects = root / "configs" / "projects"
    projects.mkdir()
    for proj, text in registry.items():
        (projects / f"{proj}.yaml").write_text(text)
    return root


# --- the synthetic data of the training benchmarks (torch imported on call) -------------------


def synthetic_images(n: int, seed: int = 0, size: int = 28, num_classes: int = 10):
    """`n` random (1, size, size) float32 images with int64 labels in memory, as a TensorDataset.

    The same `(n, seed)` gives the same tensors in every variant of a benchmark.
    """
    import torch
    from torch.utils.data import TensorDataset

    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, size, size, generator=generator)  # (N, 1, H, W)
    y = torch.randint(0, num_classes, (n,), generator=generator)  # (N,)
    return TensorDataset(x, y)


@dataclass
class Timed:
    """One command's wall time, CPU time (user + system, its processes together), peak memory
    (its largest process) and output."""

    seconds: float
    cpu_seconds: float
    max_rss_mb: float
    returncode: int
    output: str


def timed(cmd: Sequence[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> Timed:
    """Run `cmd`, timing it; the peak resident memory comes from wait4 (the child and the
    descendants it waited for). Output goes to a temporary file, so no pipe can fill up."""
    import subprocess
    import tempfile
    import time

    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
    cpu = usage.ru_utime + usage.ru_stime
    return Timed(seconds, cpu, usage.ru_maxrss / 1024, proc.returncode, output)


def check(result: Timed, what: str) -> Timed:
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.output[-3000:]}")
    return result


def slurm_wait_note() -> str | None:
    """Why every Snakemake start may wait here, or None. The SLURM executor plugin, installed
    for the cluster profile, runs `scontrol show config` when Snakemake imports it (timeout
    10 s): instant where a controller answers or where SLURM is absent, a wait where SLURM's
    client is installed and its controller is down. Such figures measure that wait."""
    import shutil
    import subprocess

    if shutil.which("scontrol") is None:
        return None
    try:
        subprocess.run(["scontrol", "ping"], capture_output=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return (
            "SLURM's client is installed but no controller answered `scontrol ping`: each "
            "Snakemake start waited up to 10 s for the SLURM plugin's `scontrol show config`. "
            "Start the controller (`.ci/slurm_up.sh`) or measure where SLURM is absent."
        )
    return None
