"""Name, in one line, a SLURM job of this workflow that waits for a reason that never clears.

SLURM queues a job that asks for more than a node of its partition has (more CPUs, a longer
time limit than the partition allows, ...) and leaves it PENDING for ever, with a reason such as
`PartitionConfig`; the slurm plugin prints nothing about it. The Snakemake head runs `watch()`
(from `onstart`, see dltemplate.workflow.on_start): every few seconds it asks `squeue` for this
project's pending jobs, and for each one stuck for such a reason it reports, once, the run (read
from the job's batch script, which names Snakemake's target jobs), what the job asks for, and
the largest node of its partition. The job is left alone: an administrator may still lift it.

Torch-free: the Snakemake head imports it.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Reasons that no amount of waiting clears: the job asks for more than the partition or a
# per-job limit allows, or names what does not exist. `squeue` prints the reason first and may
# add details after a comma ("ReqNodeNotAvail, UnavailableNodes:n1").
_WHY = {
    "PartitionConfig": "it asks for more than a node of its partition has",
    "PartitionNodeLimit": "it asks for more nodes than its partition allows",
    "PartitionTimeLimit": "its time limit is longer than its partition allows",
    "ReqNodeNotAvail": "the nodes it needs are down, drained or reserved",
    "BadConstraints": "no node has the features it asks for",
    "InvalidAccount": "its account is not valid",
    "InvalidQOS": "its QOS is not valid",
}
_PER_JOB_LIMIT = re.compile(r"(QOS|Assoc)Max\w*PerJob\w*")
_FIELDS = "%i|%Z|%P|%C|%m|%l|%b|%r"  # id, work dir, partition, CPUs, memory, time, GRES, reason
_TARGET = re.compile(r"proj=([^,'\"\s]+),exp=([^,'\"\s]+),run=([^,'\"\s]+)")


@dataclass(frozen=True)
class PendingJob:
    job_id: str
    workdir: str
    partition: str
    cpus: str
    memory: str
    time_limit: str
    gres: str
    reason: str


def why_stuck(reason: str) -> str | None:
    """What `reason` (squeue's %r) means when it never clears by itself, else None."""
    name = reason.split(",")[0].strip()
    if name in _WHY:
        return _WHY[name]
    if _PER_JOB_LIMIT.fullmatch(name):
        return "it asks for more than a per-job limit of its QOS or account allows"
    return None


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def pending_jobs(workdir: str | Path) -> list[PendingJob]:
    """This user's pending SLURM jobs that run in `workdir` (Snakemake's working folder)."""
    here = os.path.realpath(workdir)
    jobs = []
    for line in _run(["squeue", "--me", "-h", "-t", "PD", "-o", _FIELDS]).splitlines():
        fields = line.split("|", 7)
        if len(fields) == 8 and os.path.realpath(fields[1]) == here:
            jobs.append(PendingJob(*(f.strip() for f in fields)))
    return jobs


def run_of(job_id: str) -> str | None:
    """`proj/exp/run` of a job that Snakemake submitted: its batch script names the target
    jobs (`--target-jobs 'fit:proj=...,exp=...,run=...'`)."""
    found = _TARGET.search(_run(["scontrol", "write", "batch_script", job_id, "-"]))
    return "/".join(found.groups()) if found else None


def largest_node(partition: str) -> tuple[int, int] | None:
    """(CPUs, memory in MB) of the largest node of `partition`, or None if sinfo cannot say."""
    sizes = []
    for line in _run(["sinfo", "-h", "-p", partition, "-o", "%c|%m"]).splitlines():
        cpus, _, memory = line.partition("|")
        if cpus.strip().isdigit() and memory.strip().rstrip("+").isdigit():
            sizes.append((int(cpus), int(memory.strip().rstrip("+"))))
    return (max(c for c, _ in sizes), max(m for _, m in sizes)) if sizes else None


def describe(job: PendingJob, run: str | None, node: tuple[int, int] | None) -> str:
    """The one line that reports a stuck job."""
    gpus = "" if job.gres in ("", "N/A", "(null)") else f", {job.gres}"
    asks = f"{job.cpus} CPUs, {job.memory} memory, time {job.time_limit}{gpus}"
    has = f", whose largest node has {node[0]} CPUs and {node[1]}M memory" if node else ""
    who = f"run {run}" if run else "a job of this workflow"
    return (
        f"SLURM job {job.job_id} ({who}) cannot start: {job.reason}, {why_stuck(job.reason)} "
        f"({asks}, in partition {job.partition}{has}). Stop Snakemake (Ctrl-C cancels its "
        "jobs), lower the run's `resources:` in the registry, and run again"
    )


def check(workdir: str | Path, reported: set[str], report: Callable[[str], None]) -> None:
    """Report each stuck pending job of `workdir` not in `reported` (and add it there)."""
    for job in pending_jobs(workdir):
        if job.job_id in reported or why_stuck(job.reason) is None:
            continue
        reported.add(job.job_id)
        report(describe(job, run_of(job.job_id), largest_node(job.partition)))


def watch(
    workdir: str | Path, report: Callable[[str], None], every: float = 10.0
) -> threading.Event:
    """Check every `every` seconds in a daemon thread, until the returned event is set."""
    stop = threading.Event()
    reported: set[str] = set()

    def loop() -> None:
        while not stop.wait(every):
            check(workdir, reported, report)

    threading.Thread(target=loop, name="slurm-pending-watch", daemon=True).start()
    return stop
