"""The live state of every job of a run, derived from the run's files and Snakemake's metadata.

There is no state file of our own that could drift. A job is
- `done` when its `.done` file exists (written as the job's last act) and Snakemake would
  not rerun it; `stale` when Snakemake would (`snakemake --summary` says `update pending`:
  its params, input, code or an upstream job changed);
- `running` when its own record (`records/<job>.json`) says so and its process is alive (on
  this host: its pid, started when the record says, so a reused pid does not count) or
  Snakemake holds a lock on its output (another host, e.g. a cluster node);
- `failed` when its record says so, or says `running` but the process is gone (killed);
- `not run` otherwise.

Torch-free; `snakemake --summary` runs as a subprocess (about a second for a few runs).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dltemplate.config.root import JOB_TYPES
from dltemplate.errors import UserError
from dltemplate.layout import REGISTRY
from dltemplate.records import DONE_FIELDS, JOB_RECORD_FIELDS, read_json, read_record
from dltemplate.registry.model import Run
from dltemplate.results import metric_policy
from dltemplate.results.environment import process_start_time
from dltemplate.results.run_records import job_record_path

# Seconds two readings of one process's start time may differ by (they are rounded to 0.01 s;
# the kernel counts in clock ticks from boot). Another process on a reused pid starts later.
START_TOLERANCE = 0.05


@dataclass
class JobStatus:
    status: str
    reason: str = ""
    started: str | None = None
    ended: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


class StaleCheckError(Exception):
    """`snakemake --summary` could not tell which outputs are outdated."""


def locked_outputs(workdir: str | Path = ".") -> set[str]:
    """Outputs that a running Snakemake process has locked (`.snakemake/locks/*.output.lock`)."""
    found: set[str] = set()
    for lock in Path(workdir, ".snakemake", "locks").glob("*.output.lock"):
        try:
            found.update(line.strip() for line in lock.read_text().splitlines() if line.strip())
        except OSError:
            continue
    return found


def process_alive(record: Mapping[str, Any], done_file: str, locked: set[str]) -> bool:
    """Whether the process that wrote a `running` record still works on the job: on this host,
    a live process of its pid that started when the record says (`pid_started`; a pid that
    another process took since fails that test). Records without the start time (older ones)
    are judged by the pid alone."""
    pid = record.get("pid")
    if record.get("host") == socket.gethostname() and isinstance(pid, int):
        started = record.get("pid_started")
        if isinstance(started, int | float):
            now_started = process_start_time(pid)
            return now_started is not None and abs(now_started - started) < START_TOLERANCE
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # alive, owned by someone else
        return True
    return done_file in locked  # another host: trust Snakemake's lock


def snakemake_plan(
    done_files: list[str], registry: str | Path = REGISTRY
) -> dict[str, tuple[str, str]]:
    """`{output: (status, plan)}` from `snakemake --summary` for `done_files` (run from the
    project root). `plan` is `update pending` when Snakemake would rerun the job."""
    if not done_files:
        return {}
    if not Path("Snakefile").is_file():
        raise StaleCheckError("no Snakefile here (run main.py from the project root)")
    command = [sys.executable, "-m", "snakemake", "--summary", "--cores", "1"]
    if str(registry) != REGISTRY:
        command += ["--config", f"registry={registry}"]
    try:
        result = subprocess.run(
            [*command, *done_files], capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StaleCheckError(f"snakemake --summary did not run: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise StaleCheckError(f"snakemake --summary failed: {last}")
    plan = {}
    lines = result.stdout.splitlines()
    for line in lines[next((i for i, s in enumerate(lines) if s.startswith("output_file")), 0) :]:
        fields = line.split("\t")
        if len(fields) == 6 and fields[0] != "output_file":
            plan[fields[0]] = (fields[4], fields[5])
    return plan


def readable_job_record(path: str | Path) -> dict[str, Any]:
    """A job's record, or {} when it is missing or damaged: a state is still shown (from the
    .done file and Snakemake's plan), and `rm --purge` can still remove a damaged run."""
    try:
        return read_record(path, JOB_RECORD_FIELDS) or {}
    except UserError:
        return {}


def job_status(
    run: Run,
    job: str,
    plan: Mapping[str, tuple[str, str]] | None,
    locked: set[str],
    earlier: Mapping[str, JobStatus],
) -> JobStatus:
    """The state of one job; `earlier` holds the states of the run's jobs before it."""
    done_file = run.layout.done(job)
    record = readable_job_record(job_record_path(run.folder, job))
    times = {"started": record.get("started"), "ended": record.get("ended")}
    if Path(done_file).is_file():
        status, pending = (plan or {}).get(done_file, ("ok", "no update"))
        if pending != "update pending":
            if job == "fit" and (read_json(done_file, default=None) or {}).get("pruned"):
                return JobStatus("pruned", "stopped early by its search's pruner", **times)
            return JobStatus("done", **times)
        if status != "ok":
            reason = status
        elif any(s.status == "stale" for s in earlier.values()):
            reason = "an upstream job is stale"
        else:
            reason = f"its code or an input changed (`snakemake -n {done_file}` says which)"
        return JobStatus("stale", reason, **times)
    state = record.get("status")
    if state == "running":
        if process_alive(record, done_file, locked):
            return JobStatus("running", **times)
        return JobStatus("failed", "interrupted: its process is gone", **times)
    if state == "failed":
        return JobStatus("failed", record.get("error", ""), **times)
    if state == "done":
        return JobStatus("not run", f"its output {done_file} was removed")
    return JobStatus("not run")


def run_statuses(
    runs: Iterable[Run], *, check_stale: bool = True, registry: str | Path = REGISTRY
) -> tuple[dict[str, dict[str, JobStatus]], str | None]:
    """The state of each declared job of `runs`, by run key, and a note when staleness could
    not be checked (then existing outputs count as done)."""
    runs = list(runs)
    plan, note = None, None
    if check_stale:
        done = (r.layout.done(j) for r in runs for j in r.jobs)
        existing = [path for path in done if Path(path).is_file()]
        try:
            plan = snakemake_plan(existing, registry)
        except StaleCheckError as exc:
            note = f"stale runs not detected: {exc}"
    locked = locked_outputs()
    states: dict[str, dict[str, JobStatus]] = {}
    for run in runs:
        jobs: dict[str, JobStatus] = {}
        for job in JOB_TYPES:
            if job in run.jobs:
                jobs[job] = job_status(run, job, plan, locked, jobs)
        states[run.key] = jobs
    return states, note


def run_test_metrics(run: Run) -> dict[str, float]:
    return (read_record(run.layout.done("test"), DONE_FIELDS) or {}).get("metrics") or {}


def main_metric(metrics: Mapping[str, float], declared: str | None = None) -> str | None:
    """The metric `ls` shows: the experiment's `metric` when the run has it, else the default
    of the metric policy (as the summaries rank)."""
    if declared and declared in metrics:
        return declared
    return metric_policy.default_metric(metrics)
