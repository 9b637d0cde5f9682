"""What the Snakemake head does once, before its first job (the workflow's `onstart`).

- Every file the jobs that run will write can be written: a read-only or immutable run folder
  is one line before any job starts (dltemplate.workflow.writable), not Snakemake's traceback.
- A forced rerun (`-R fit`, `--forceall`, `-f .../fit.done`) of a fit that had finished asks
  that fit to start over (its `RESTART` file, dltemplate.jobs.resume). A fit job that finds
  its run's fit finished, without that request, keeps the result instead of training again:
  that is a fit whose job outlived a killed Snakemake and finished while the next one waited.
- Under a cluster executor, the jobs that run here (summaries, records) start cold, as the
  cluster's do (dltemplate.warm): no warm server holding torch on a login node.
- Under the slurm executor: a job stuck in SLURM's queue for a reason that never clears is
  named in one line (dltemplate.workflow.slurm_pending), and the plugin's account guess, which
  fails on every cluster in snakemake-executor-plugin-slurm 2.8 (its `sacct ... | tail -1` is
  run without a shell), says nothing: `slurm_account` in the profile gives the account.

Runs in the head only: not in dry runs, and not in the Snakemake that runs a job (`--no-hooks`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from dltemplate.layout import RunLayout
from dltemplate.warm.place import mark_cluster_jobs
from dltemplate.workflow import slurm_pending
from dltemplate.workflow.writable import check_writable

# The plugin's lines about guessing an account, when none is given (slurm_account).
ACCOUNT_GUESS = (
    "No SLURM account given, trying to guess.",
    "No account was given, not able to get a SLURM account via sacct",
    "Unable to guess SLURM account. Trying to proceed without.",
)


def on_start(workflow: Any, logger: logging.Logger) -> None:
    dag = workflow.dag
    check_writable(f for job in dag.needrun_jobs() for f in (*job.output, *job.log))
    if not workflow.touch:
        for run_dir in restart_forced_fits(dag.needrun_jobs(), dag.reason):
            logger.info(f"A forced rerun of the finished fit of {run_dir}: it starts over")
    mark_cluster_jobs(not workflow.local_exec)  # known now, not while the workflow parses
    plugin = workflow.executor_plugin
    if plugin is not None and plugin.name == "slurm":
        logger.addFilter(_quiet_account_guess)
        slurm_pending.watch(os.getcwd(), logger.error)


def restart_forced_fits(jobs: Iterable[Any], reason: Any) -> list[str]:
    """Ask each finished fit among `jobs` whose `reason(job)` is forced to start over; return
    their run folders."""
    # Here, in the head after the parse: the parse itself imports nothing of dltemplate.jobs.
    from dltemplate.jobs.resume import read_state, request_restart

    asked = []
    for job in jobs:
        if job.rule.name != "fit" or not reason(job).forced:
            continue
        run_dir = RunLayout.of(job.wildcards.proj, job.wildcards.exp, job.wildcards.run).folder
        if (read_state(run_dir) or {}).get("finished"):
            request_restart(run_dir)
            asked.append(run_dir)
    return asked


def _quiet_account_guess(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(ACCOUNT_GUESS)
