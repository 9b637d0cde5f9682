"""Layer 4: sweeps through real Snakemake runs: parallel, summarised, extended, interrupted."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import statistics
import subprocess

import pytest

from tests.conftest import BIN, Project

# A tiny MLP, one short epoch: the workflow is under test here, not the model.
TINY = (
    "{trainer.max_epochs: 1, trainer.limit_train_batches: 4, trainer.limit_val_batches: 2, "
    "task_wrapper.model.hidden_dim: 16}"
)
SWEEP = f"""\
description: A tiny project for tests
experiments:
  exp:
    description: lr against seeds
    sweep:
      config: configs/digits_mlp.py
      jobs: [fit, test]
      name: "lr{{task_wrapper.lr}}-s{{seed}}"
      overrides: {TINY}
      grid:
        task_wrapper.lr: [0.001, 0.01]
      seeds: [0, 1]
"""
FINE_TUNE = """\
description: A tiny project for tests
experiments:
  exp:
    description: a sweep fine-tuned from a pretrained run
    runs:
      pre: {description: pretraining, config: configs/digits_mlp.py, jobs: [fit]}
    sweep:
      config: configs/digits_mlp.py
      init_from: tiny/exp/pre
      grid: {task_wrapper.lr: [0.001, 0.01]}
"""


def job_counts(output: str) -> dict[str, int]:
    """Snakemake's "Job stats" table: rule -> number of jobs it ran."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def read_csv(path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_init_from_makes_the_parents_fit_a_dependency(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", FINE_TUNE)
    result = project.snakemake("-n", "-j1", "results/tiny/exp/summary.csv")
    output = result.stdout + result.stderr
    assert job_counts(output)["fit"] == 3
    child = output.split("output: results/tiny/exp/lr0.01/fit.done", 1)[0].rsplit("rule fit:", 1)[1]
    assert "input: results/tiny/exp/pre/fit.done" in child


@pytest.mark.slow
def test_sweep_of_four_runs_in_parallel_summarises_their_records(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", SWEEP)
    target = "results/tiny/summary.csv"  # the project's summary needs the experiment's
    result = project.snakemake("-j2", target)
    counts = job_counts(result.stdout + result.stderr)
    assert counts == {"fit": 4, "test": 4, "summary": 1, "project_summary": 1}
    exp = project.path("results/tiny/exp")
    names = ["lr0.001-s0", "lr0.001-s1", "lr0.01-s0", "lr0.01-s1"]

    # Every number in the summary is the run's own record.
    records = {n: json.loads((exp / n / "test.done").read_text())["metrics"] for n in names}
    rows = {r["run"]: r for r in read_csv(exp / "summary.csv")}
    assert list(rows) == names
    for name in names:
        for metric, value in records[name].items():
            assert float(rows[name][metric]) == value
        assert rows[name]["status"] == "done" and rows[name]["epochs"] == "1"
        assert rows[name]["seed"] == name[-1] and rows[name]["task_wrapper.lr"] == name[2:-3]
    points = {p["runs"]: p for p in read_csv(exp / "summary_points.csv")}
    means = {}
    for lr in ("0.001", "0.01"):
        accs = [records[f"lr{lr}-s{s}"]["test/acc"] for s in (0, 1)]
        point = points[f"lr{lr}-s0 lr{lr}-s1"]
        means[lr] = float(point["test/acc mean"])
        assert means[lr] == pytest.approx(statistics.fmean(accs))
        assert float(point["test/acc std"]) == pytest.approx(statistics.stdev(accs))
    best = max(means, key=means.get)
    assert points[f"lr{best}-s0 lr{best}-s1"]["rank"] == "1"
    assert f"Best by test/acc (max): task_wrapper.lr={best}:" in (exp / "summary.md").read_text()
    assert (exp / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert read_csv(project.path(target))[0]["best"] == f"task_wrapper.lr={best}"

    # `ls` shows the same numbers.
    listing = json.loads(project.main("ls", "-p", "tiny", "-e", "exp", "--json", "--fast").stdout)
    shown = {r["name"]: r["main_metric"] for r in listing["runs"]}
    assert shown["lr0.01-s1"] == {"name": "test/acc", "value": records["lr0.01-s1"]["test/acc"]}
    summary = listing["summary"]
    assert summary["best"].startswith(f"Best by test/acc (max): task_wrapper.lr={best}:")
    assert {p["runs"]: p["test/acc mean"] for p in summary["points"]} == {
        f"lr{lr}-s0 lr{lr}-s1": pytest.approx(means[lr]) for lr in means
    }


INTERRUPTED = f"""\
description: A tiny project for tests
experiments:
  exp:
    description: lr, and a broken run
    sweep:
      config: configs/digits_mlp.py
      jobs: [fit]
      overrides: {TINY}
      grid:
        task_wrapper.lr: [0.001, 0.002]
      list:
        - {{task_wrapper.lr: 0.004, task_wrapper.model.hiden_dim: 8}}
"""


def start_and_interrupt_after_first_finished_job(project: Project, *args: str) -> str:
    """Run Snakemake and press Ctrl-C (SIGINT to its process group) once it has recorded one
    finished job; return its output."""
    process = subprocess.Popen(
        [str(BIN / "snakemake"), *args],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: list[str] = []
    for line in process.stdout:  # Snakemake prints as it goes; a hang ends at pytest's timeout
        lines.append(line)
        if line.startswith("Finished jobid") and "(Rule: fit)" in line:
            os.killpg(process.pid, signal.SIGINT)
            break
    lines.append(process.communicate(timeout=120)[0])
    return "".join(lines)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # a sweep run three times
def test_interrupted_sweep_resumes_keeps_going_past_a_failure_and_trains_added_points(
    project: Project,
) -> None:
    project.write("configs/projects/tiny.yaml", INTERRUPTED)
    exp = project.path("results/tiny/exp")
    target = "results/tiny/exp/summary.csv"
    output = start_and_interrupt_after_first_finished_job(project, "-j1", "--keep-going", target)
    finished = {p.parent.name: p.stat().st_mtime_ns for p in exp.glob("*/fit.done")}
    # one good run, or on a loaded machine both: the second can end before the Ctrl-C lands
    assert 1 <= len(finished) <= 2 and "lr0.004-hiden_dim8" not in finished, output

    # The same command again: the finished runs are skipped, the broken one fails alone.
    result = project.snakemake("-j2", "--keep-going", target, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Unknown override path 'task_wrapper.model.hiden_dim'" in output
    # Kept: every fit that Snakemake had recorded as finished. A second fit whose fit.done was
    # written as the Ctrl-C landed may be marked incomplete, and then runs again (resuming).
    kept = {n: m for n, m in finished.items() if (exp / n / "fit.done").stat().st_mtime_ns == m}
    assert len(kept) >= 1, (finished, output)
    assert job_counts(output)["fit"] == 3 - len(kept)  # the unfinished ones, the broken one
    assert (exp / "lr0.001/fit.done").is_file() and (exp / "lr0.002/fit.done").is_file()
    assert not (exp / "lr0.004-hiden_dim8/fit.done").exists()
    assert not (exp / "summary.csv").exists()  # a summary of every run, or none
    listing = json.loads(project.main("ls", "-p", "tiny", "-e", "exp", "--json", "--fast").stdout)
    states = {r["name"]: r["jobs"]["fit"]["status"] for r in listing["runs"]}
    assert states == {"lr0.001": "done", "lr0.002": "done", "lr0.004-hiden_dim8": "failed"}

    # Fix the sweep (drop the broken point, add a grid value): only the new point trains.
    before = {n: (exp / n / "fit.done").stat().st_mtime_ns for n in ("lr0.001", "lr0.002")}
    fixed = INTERRUPTED.split("      list:")[0].replace("[0.001, 0.002]", "[0.001, 0.002, 0.003]")
    project.write("configs/projects/tiny.yaml", fixed)
    result = project.snakemake("-j2", target)
    assert job_counts(result.stdout + result.stderr) == {"fit": 1, "summary": 1}
    assert {n: (exp / n / "fit.done").stat().st_mtime_ns for n in before} == before
    assert [r["run"] for r in read_csv(exp / "summary.csv")] == ["lr0.001", "lr0.002", "lr0.003"]
