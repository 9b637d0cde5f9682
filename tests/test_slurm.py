"""Runs through profiles/slurm on a real SLURM cluster (`.ci/slurm_up.sh` starts a one-node
one): per-run resources reach sbatch, one submission per run that asks for the largest of its
jobs (not their sum), aggregation stays local, a job that can never start is named in one line,
a cancelled fit resumes in its retry, DDP runs inside a one-task SLURM job, and a fit whose
resources ask for `nodes` trains on ranks that srun starts.

Without SLURM these tests skip, saying why; with CI=true they fail instead, since CI starts
the cluster. Settings for the test only (squeue without accounting, a short latency wait) are
passed on the command line, which wins over the profile.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
import torch

from tests.conftest import BIN, Project
from tests.test_ddp import assert_equal_figures, check_two_ranks, metrics_of, run_fit

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TEST_SETTINGS = [
    "--workflow-profile",
    "profiles/slurm",
    "--slurm-status-command",
    "squeue",  # the test cluster keeps no accounting for sacct
    "--latency-wait",
    "5",
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


def start_snakemake(project: Project, out: IO[str], *targets: str) -> subprocess.Popen:
    """Snakemake through profiles/slurm in the background, its output going to `out`."""
    return subprocess.Popen(
        [str(BIN / "snakemake"), *TEST_SETTINGS, *targets],
        cwd=project.root,
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def log_job_ids(project: Project, run: str, job: str) -> list[str]:
    """The SLURM job ids that a job's log names (one line per attempt, by the GPU slots)."""
    log = project.path(f"results/tiny/exp/{run}/logs/{job}.log").read_text()
    return re.findall(r"GPU slots \(SLURM job (\d+)\)", log)


def runs(big_mb: int) -> str:
    """Two tiny runs; b's jobs ask for `big_mb` each."""
    return f"""\
description: runs on SLURM
experiments:
  exp:
    description: two tiny runs, each one SLURM job
    resources: {{mem_mb: 600, runtime: 10}}
    runs:
      a:
        description: the experiment's resources
        config: configs/digits_mlp.py
        overrides: {{trainer.max_epochs: 1, task_wrapper.model.hidden_dim: 16}}
      b:
        description: a longer fit, and more memory for each job
        config: configs/digits_mlp.py
        overrides: {{trainer.max_epochs: 1, task_wrapper.model.hidden_dim: 8}}
        resources: {{mem_mb: {big_mb}, fit: {{runtime: 12}}}}
"""


def largest_node() -> tuple[int, int]:
    """(CPUs, memory in MB) of the test cluster's largest node."""
    out = subprocess.run(["sinfo", "-h", "-o", "%c %m"], capture_output=True, text=True).stdout
    return max(tuple(int(n) for n in line.split()) for line in out.splitlines())


def ran_together(a: dict[str, str], b: dict[str, str]) -> bool:
    return a["StartTime"] < b["EndTime"] and b["StartTime"] < a["EndTime"]


@pytest.mark.timeout(1200)  # queued jobs: the cluster's wait comes on top
def test_each_run_is_one_slurm_job_with_its_resources(
    slurm: None, project: Project, tmp_path: Path
) -> None:
    # b's test and predict fit the node one after the other, not side by side: a group that
    # summed them would be turned away by sbatch ("Memory specification can not be satisfied")
    cpus, memory = largest_node()
    big = memory * 6 // 10
    project.write("configs/projects/tiny.yaml", runs(big))
    warm = {"DLT_WARM": "1", "DLT_WARM_DIR": str(tmp_path / "warm")}  # on, but not here
    result = project.snakemake(*TEST_SETTINGS, env=warm)
    # Under a cluster executor every job starts cold, on the cluster and on the submit host
    assert not (tmp_path / "warm").exists()
    assert "GPU slots" in project.path("results/tiny/exp/a/logs/fit.log").read_text()[:200]
    out = result.stdout + result.stderr
    # The plugin's failing account guess (`sacct: invalid option -- '1'`) is not shown.
    assert "account" not in out.lower() and "sacct" not in out, out
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
    # The group's jobs take turns, so it asks for the fit's runtime plus test's and predict's
    # (10 min each, from the experiment; run b's fit: 12) and the largest CPUs and memory of
    # its jobs (summed, a's test and predict would ask for 2 CPUs).
    a, b = (scontrol_job(ids[r]["fit"][0]) for r in "ab")
    assert (a["TimeLimit"], a["MinMemoryNode"], a["NumCPUs"]) == ("00:30:00", "600M", "1")
    assert (b["TimeLimit"], b["MinMemoryNode"], b["NumCPUs"]) == ("00:32:00", f"{big}M", "1")
    # The turns are counted within each SLURM job, not across them: both runs ran at once.
    assert cpus >= 2 and ran_together(a, b), [(j["StartTime"], j["EndTime"]) for j in (a, b)]
    # Summary and records ran here, not on the cluster: the plugin logged only the two groups.
    logs = sorted(p.name for p in project.path("logs/slurm").iterdir())
    assert logs == ["group_run_fit_predict_test"], logs
    summary = project.path("results/tiny/exp/summary.csv").read_text()
    assert summary.count("\n") == 3  # header and two runs
    project_record = json.loads(project.path("results/tiny/project.json").read_text())
    assert set(project_record["experiments"]["exp"]["runs"]) == {"a", "b"}


@pytest.mark.timeout(600)
def test_a_job_that_can_never_start_is_named_in_one_line(slurm: None, project: Project) -> None:
    cpus = largest_node()[0] + 1
    project.write(
        "configs/projects/tiny.yaml",
        f"""\
        description: a run too large for the cluster
        experiments:
          exp:
            description: E
            runs:
              huge:
                description: one CPU more than the largest node has
                config: configs/digits_mlp.py
                jobs: [fit]
                overrides: {{trainer.max_epochs: 1}}
                resources: {{cpus: {cpus}, mem_mb: 600, runtime: 10}}
        """,
    )
    log = project.path("snakemake.out")
    pattern = r"SLURM job (\d+) \(run tiny/exp/huge\) cannot start: PartitionConfig, "
    try:
        with open(log, "w") as out:
            proc = start_snakemake(project, out)
            try:
                deadline = time.monotonic() + 120
                while not re.search(pattern, log.read_text()):
                    assert proc.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, f"no line within 120 s: {log.read_text()}"
                    time.sleep(0.5)
                time.sleep(25)  # two more checks of the watch: the job is named once
            finally:
                proc.send_signal(signal.SIGINT)  # Ctrl-C: Snakemake cancels its SLURM jobs
                proc.wait(timeout=300)  # minutes on a loaded 2-core machine (the suite's)
        output = log.read_text()
        (line,) = [li for li in output.splitlines() if re.search(pattern, li)]
        assert f"{cpus} CPUs, 600M memory, time 10:00, in partition " in line, line
        assert f"whose largest node has {cpus - 1} CPUs" in line, line
        assert scontrol_job(re.search(pattern, line).group(1))["JobState"] == "CANCELLED"
    finally:  # a job that can never start would wait in the queue for ever, failed test or not
        for job in re.findall(pattern, log.read_text() if log.exists() else ""):
            subprocess.run(["scancel", job], check=False)


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
        proc = start_snakemake(project, out)
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


SPANNING = """\
description: a fit on ranks that srun starts
experiments:
  exp:
    description: E
    runs:
      span:
        description: two ranks of one CPU each, started by srun (one node of the test cluster)
        config: configs/digits_mlp.py
        jobs: [fit, validate, test]
        overrides: {%(overrides)s}
        resources: {nodes: 1, tasks_per_node: 2, cpus: 1, mem_mb: 1500, runtime: 10}
"""
FORKED = """\
      fork:
        description: the same two ranks, forked by a local job
        config: configs/digits_mlp.py
        jobs: [fit]
        overrides: {%(overrides)s, trainer.devices: 2}
"""
# 1,257 train and 269 val samples: odd counts that 2 ranks share without a padded repeat.
SPAN_OVERRIDES = (
    "trainer.max_epochs: 16, trainer.accelerator: cpu, data_wrapper.test_fraction: 0.151, "
    "task_wrapper.model.hidden_dim: 16"
)


def best_validation(project: Project, run: str) -> dict[str, float]:
    """The val/ figures of the epoch that picked best.ckpt (lowest val/loss) in metrics.csv."""
    with project.path(f"results/tiny/exp/{run}/metrics/fit/metrics.csv").open() as f:
        rows = [row for row in csv.DictReader(f) if row.get("val/loss")]
    best = min(rows, key=lambda row: float(row["val/loss"]))
    return {k: float(v) for k, v in best.items() if k.startswith("val/") and v}


@pytest.mark.timeout(900)
def test_a_fit_across_ranks_that_srun_starts_resumes_exactly_after_scancel(
    slurm: None, project: Project
) -> None:
    """`resources: {nodes: 1, tasks_per_node: 2}`: one SLURM job of 2 tasks whose fit trains
    as 2 ranks started by srun. Cancelled part way, its retry resumes and ends with the
    weights of an uninterrupted 2-rank fit (forked by a local job); the val/ figures that
    picked its best checkpoint equal a one-process validation of that checkpoint."""
    project.write("configs/projects/tiny.yaml", SPANNING % {"overrides": SPAN_OVERRIDES})
    span = project.path("results/tiny/exp/span")
    targets = [f"results/tiny/exp/span/{job}.done" for job in ("validate", "test")]
    with open(project.path("snakemake.out"), "w") as out:
        proc = start_snakemake(project, out, *targets)
        cancel_when(project, proc, (span / "checkpoints/last.ckpt").is_file, "no checkpoint")
    done = json.loads((span / "fit.done").read_text())
    assert done["epochs"] == 16 and done["attempts"] == 2, done
    assert done["resumed_from_step"] > 0, done  # the retry went on from the checkpoint
    log = (span / "logs/fit.log").read_text()
    assert "DDP: 2 ranks on 1 node(s) started by srun in SLURM job" in log, log
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log, log
    assert_equal_figures(
        best_validation(project, "span"), metrics_of(project, "span", "validate"), "val"
    )
    assert set(metrics_of(project, "span", "test")) >= {"test/acc", "test/loss"}

    project.write(
        "configs/projects/tiny.yaml",
        SPANNING % {"overrides": SPAN_OVERRIDES} + FORKED % {"overrides": SPAN_OVERRIDES},
    )
    project.snakemake("-j2", "results/tiny/exp/fork/fit.done")
    weights = [
        torch.load(
            project.path(f"results/tiny/exp/{run}/checkpoints/last.ckpt"), weights_only=False
        )["state_dict"]
        for run in ("span", "fork")
    ]
    assert weights[0].keys() == weights[1].keys()
    for name, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][name]), name


def test_a_fit_across_nodes_outside_slurm_is_refused_in_one_line(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", SPANNING % {"overrides": "trainer.max_epochs: 1"})
    result = project.snakemake("-j1", "results/tiny/exp/span/fit.done", check=False)
    assert result.returncode != 0
    assert (
        "Error: results/tiny/exp/span: its resources ask for 1 node(s) x 2 rank(s), which srun "
        "starts inside a SLURM job; submit it with --workflow-profile profiles/slurm"
    ) in result.stdout + result.stderr
    assert not project.path("results/tiny/exp/span/checkpoints").exists()
