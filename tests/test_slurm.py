"""Runs through profiles/slurm on a real SLURM cluster (`.ci/slurm_up.sh` starts a one-node
one): per-run resources reach sbatch, one submission per run, aggregation stays local, a
cancelled fit resumes in its retry, and DDP runs inside a one-task SLURM job.

Without SLURM these tests skip, saying why; with CI=true they fail instead, since CI starts
the cluster. Settings for the test only (fast polling, squeue without accounting, 1 core per
job) are passed on the command line, which wins over the profile.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import BIN, Project
from tests.test_ddp import check_two_ranks, run_fit

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TEST_SETTINGS = [
    "--workflow-profile",
    "profiles/slurm",
    "--slurm-status-command",
    "squeue",  # the test cluster keeps no accounting for sacct
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "1",
    "--latency-wait",
    "5",
    # Caps each job at 1 CPU, so a group runs test and predict one after the other in 1 CPU
    # and the 2-CPU test node runs two groups at once.
    "--cores",
    "1",
]


def slurm_problem() -> str | None:
    """Why SLURM cannot run jobs here, or None when it can."""
    missing = [
        t for t in ("sbatch", "srun", "squeue", "scancel", "scontrol") if not shutil.which(t)
    ]
    if missing:
        return (
            f"SLURM is not installed (no {', '.join(missing)} on PATH); run .ci/slurm_up.sh as root"
        )
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
        nodes = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"SLURM does not answer ({exc}); start it with .ci/slurm_up.sh"
    if " is UP" not in ping.stdout:
        return f"no SLURM controller is up (scontrol ping: {ping.stdout.strip() or ping.stderr.strip()}); start it with .ci/slurm_up.sh"
    states = nodes.stdout.split()
    if not any(s.rstrip("*") in ("idle", "mixed", "allocated", "completing") for s in states):
        return (
            f"no SLURM node takes jobs (sinfo: {' '.join(states) or 'none'}); see .ci/slurm_up.sh"
        )
    return None


@pytest.fixture(scope="module")
def slurm() -> None:
    problem = slurm_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{problem} (CI=true, where .ci/run starts SLURM: these tests must run)")
    pytest.skip(problem)


def scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def log_job_ids(project: Project, run: str, job: str) -> list[str]:
    """The SLURM job ids that a job's log names (one line per attempt, by the GPU slots)."""
    log = project.path(f"results/tiny/exp/{run}/logs/{job}.log").read_text()
    return re.findall(r"GPU slots \(SLURM job (\d+)\)", log)


RUNS = """\
description: runs on SLURM
experiments:
  exp:
    description: two tiny runs, each one SLURM job
    resources: {mem_mb: 600, runtime: 10}
    runs:
      a:
        description: the experiment's resources
        config: configs/digits_mlp.py
        overrides: {trainer.max_epochs: 1, task_wrapper.model.hidden_dim: 16}
      b:
        description: a longer, larger fit
        config: configs/digits_mlp.py
        overrides: {trainer.max_epochs: 1, task_wrapper.model.hidden_dim: 8}
        resources: {fit: {runtime: 12, mem_mb: 700}}
"""


@pytest.mark.timeout(1200)  # queued jobs: the cluster's wait comes on top
def test_each_run_is_one_slurm_job_with_its_resources(slurm: None, project: Project) -> None:
    project.write("configs/projects/tiny.yaml", RUNS)
    result = project.snakemake(*TEST_SETTINGS)
    out = result.stdout + result.stderr
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", out)
    assert len(submitted) == 2, out  # one submission per run: its fit, test and predict
    for run in ("a", "b"):
        folder = project.path(f"results/tiny/exp/{run}")
        for name in ("fit.done", "test.done", "predict.done", "predictions.csv"):
            assert (folder / name).is_file(), f"{run}/{name}"
        assert "test/acc" in json.loads((folder / "test.done").read_text())["metrics"]
    ids = {
        run: {j: log_job_ids(project, run, j) for j in ("fit", "test", "predict")} for run in "ab"
    }
    for run, by_job in ids.items():
        assert len({tuple(v) for v in by_job.values()}) == 1, ids  # one allocation per run
        (job_id,) = by_job["fit"]
        assert job_id in submitted
        # run.json holds each job's record, with the SLURM job that ran it.
        records = json.loads(project.path(f"results/tiny/exp/{run}/run.json").read_text())
        for job in ("fit", "test", "predict"):
            assert records["records"][job]["status"] == "done"
            assert records["records"][job]["slurm_job_id"] == job_id
    assert ids["a"]["fit"] != ids["b"]["fit"]
    # The group asks for the fit's runtime plus test's and predict's (10 min each, from the
    # experiment; run b's fit: 12) and the largest memory of its jobs.
    a, b = (scontrol_job(ids[r]["fit"][0]) for r in "ab")
    assert (a["TimeLimit"], a["MinMemoryNode"], a["NumCPUs"]) == ("00:30:00", "600M", "1")
    assert (b["TimeLimit"], b["MinMemoryNode"]) == ("00:32:00", "700M")
    # Summary and records ran here, not on the cluster: the plugin logged only the two groups.
    logs = sorted(p.name for p in project.path("logs/slurm").iterdir())
    assert logs == ["group_run_fit_predict_test"], logs
    summary = project.path("results/tiny/exp/summary.csv").read_text()
    assert summary.count("\n") == 3  # header and two runs
    project_record = json.loads(project.path("results/tiny/project.json").read_text())
    assert set(project_record["experiments"]["exp"]["runs"]) == {"a", "b"}


def cancel_when(
    project: Project, proc: subprocess.Popen, ready: Callable[[], bool], problem: str
) -> list[str]:
    """Once `ready()` and a job of the project runs, scancel the running jobs; wait for the
    Snakemake `proc` to succeed (its retry). Returns the cancelled job ids."""
    try:
        deadline = time.monotonic() + 300  # a bound for a broken test
        running: list[str] = []
        while not (ready() and running):
            assert proc.poll() is None, project.path("snakemake.out").read_text()
            assert time.monotonic() < deadline, problem
            time.sleep(0.2)
            running = squeue_jobs_in(project.root)
        subprocess.run(["scancel", *running], check=True)
        assert proc.wait(timeout=400) == 0, project.path("snakemake.out").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    return running


def squeue_jobs_in(folder: Path) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-t", "R", "-o", "%i %Z"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()[1:] == [str(folder)]]


@pytest.mark.timeout(1200)
def test_cancelled_fit_resumes_from_its_checkpoint_in_the_retry(
    slurm: None, project: Project
) -> None:
    project.write(
        "configs/projects/tiny.yaml",
        """\
        description: a fit to cancel
        experiments:
          exp:
            description: E
            runs:
              long:
                description: long enough to be cancelled part way
                config: configs/digits_mlp.py
                jobs: [fit]
                overrides: {trainer.max_epochs: 12, task_wrapper.model.hidden_dim: 16}
                resources: {mem_mb: 600, runtime: 10}
        """,
    )
    last = project.path("results/tiny/exp/long/checkpoints/last.ckpt")
    with open(project.path("snakemake.out"), "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "snakemake"), *TEST_SETTINGS],
            cwd=project.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        running = cancel_when(project, proc, last.is_file, "no checkpoint within 300 s")
    output = project.path("snakemake.out").read_text()
    assert "Trying to restart" in output, output
    done = json.loads(project.path("results/tiny/exp/long/fit.done").read_text())
    assert done["epochs"] == 12
    # The retry went on from the checkpoint of the cancelled job instead of starting again.
    assert done.get("attempts") == 2, done
    assert done.get("resumed_from_step", 0) > 0, done
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", output)
    assert len(submitted) == 2 and submitted[0] == running[0], output
    assert scontrol_job(running[0])["JobState"] == "CANCELLED"


@pytest.mark.timeout(600)
def test_ddp_inside_a_one_task_slurm_job(slurm: None, tmp_path: Path) -> None:
    # As the slurm plugin starts a job: one task (`srun -n1`) with the job's CPUs.
    launcher = ["srun", "-n1", "-c2", "--mem", "2000", "-t", "10"]
    numbers, output = run_fit(tmp_path / "run", 2, launcher)
    assert "DDP: 2 ranks forked by this job (fork, LightningEnvironment in SLURM job" in output
    check_two_ranks(numbers, output, tmp_path / "run")
