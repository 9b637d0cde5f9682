"""Layer 1: experiment and project summaries from run records written here (no training)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from dltemplate.errors import UserError
from dltemplate.registry.model import load_registry
from dltemplate.results.summary import (
    experiment_spec,
    summarize_experiment,
    write_experiment_summary,
    write_project_summary,
)

REGISTRY = """\
description: P
experiments:
  e:
    description: lr against seeds
    runs:
      baseline: {description: B, config: configs/digits_mlp.py, jobs: [fit, test]}
    sweep:
      config: configs/digits_mlp.py
      jobs: [fit, test]
      overrides: {trainer.max_epochs: 2}
      grid: {task_wrapper.lr: [0.001, 0.01, 0.1]}
      seeds: [0, 1]
"""
# (acc, loss) per run; lr0.1-s1 never ran, baseline only fitted.
RECORDS = {
    "lr0.001-s0": (0.80, 0.60),
    "lr0.001-s1": (0.84, 0.50),
    "lr0.01-s0": (0.90, 0.30),
    "lr0.01-s1": (0.86, 0.40),
    "lr0.1-s0": (0.70, 0.90),
}


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # run folders are results/... relative to the project root
    (tmp_path / "projects").mkdir()
    (tmp_path / "projects/p.yaml").write_text(REGISTRY)
    for name, (acc, loss) in RECORDS.items():
        write_records(tmp_path / f"results/p/e/{name}", acc, loss)
    fit = {"epochs": 2, "fit_seconds": 1.0, "seed": 42}
    (tmp_path / "results/p/e/baseline").mkdir(parents=True)
    (tmp_path / "results/p/e/baseline/fit.done").write_text(json.dumps(fit))
    return load_registry(tmp_path / "projects")


def write_records(folder: Path, acc: float, loss: float) -> None:
    folder.mkdir(parents=True)
    fit = {"epochs": 2, "fit_seconds": 3.5, "seed": int(folder.name[-1])}
    (folder / "fit.done").write_text(json.dumps(fit))
    metrics = {"test/acc": acc, "test/loss": loss}
    (folder / "test.done").write_text(json.dumps({"metrics": metrics}))


def read_csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_points_average_over_seeds_and_rank_by_the_first_test_metric(registry) -> None:
    summary = summarize_experiment(experiment_spec(registry, "p", "e"))
    assert summary.metric == "test/acc" and summary.mode == "max"
    assert summary.params == ["trainer.max_epochs", "task_wrapper.lr"]  # baseline sets neither
    by_runs = {p["runs"]: p for p in summary.points}
    mid = by_runs["lr0.01-s0 lr0.01-s1"]
    assert mid["test/acc mean"] == pytest.approx(0.88)
    assert mid["test/acc std"] == pytest.approx(statistics.stdev([0.90, 0.86]))
    assert mid["rank"] == 1 and summary.best is mid and mid["test/acc delta"] == 0
    low = by_runs["lr0.001-s0 lr0.001-s1"]
    assert low["rank"] == 2 and low["test/acc delta"] == pytest.approx(0.82 - 0.88)
    high = by_runs["lr0.1-s0 lr0.1-s1"]  # one seed finished: a mean, no std
    assert (high["done"], high["n"], high["test/acc std"], high["rank"]) == (1, 2, None, 3)
    assert by_runs["baseline"]["rank"] is None  # fitted, never tested
    statuses = {r["run"]: r["status"] for r in summary.runs}
    assert statuses["lr0.1-s1"] == "not run" and statuses["baseline"] == "partial"
    assert statuses["lr0.01-s0"] == "done"


def test_registry_metric_and_mode_choose_the_best(registry, tmp_path: Path) -> None:
    spec = experiment_spec(registry, "p", "e")
    spec["metric"] = "test/loss"
    summary = summarize_experiment(spec)
    assert summary.mode == "min" and summary.best["runs"] == "lr0.01-s0 lr0.01-s1"
    spec["metric_mode"] = "max"  # the registry may say otherwise
    assert summarize_experiment(spec).best["runs"] == "lr0.1-s0 lr0.1-s1"


def test_written_summary_matches_the_records(registry, tmp_path: Path) -> None:
    out = {
        k: tmp_path / f"out/summary{s}"
        for k, s in [("csv", ".csv"), ("points", "_points.csv"), ("md", ".md"), ("png", ".png")]
    }
    write_experiment_summary(
        experiment=experiment_spec(registry, "p", "e"),
        out_csv=out["csv"],
        out_points=out["points"],
        out_md=out["md"],
        out_png=out["png"],
    )
    rows = {r["run"]: r for r in read_csv(out["csv"])}
    assert list(rows) == ["baseline", *RECORDS, "lr0.1-s1"]
    for name, (acc, loss) in RECORDS.items():
        assert float(rows[name]["test/acc"]) == acc and float(rows[name]["test/loss"]) == loss
        assert rows[name]["seed"] == name[-1] and rows[name]["task_wrapper.lr"] == name[2:-3]
    assert rows["baseline"]["seed"] == "42" and rows["baseline"]["test/acc"] == ""
    points = read_csv(out["points"])
    assert [p["rank"] for p in points] == ["", "2", "1", "3"]
    assert float(points[2]["test/acc mean"]) == pytest.approx(0.88)
    md = out["md"].read_text()
    assert "Best by test/acc (max): task_wrapper.lr=0.01: 0.88 ± 0.028 over 2 runs" in md
    assert "next: task_wrapper.lr=0.001: 0.82 ± 0.028 (-0.06)" in md
    assert "| lr0.1-s1 | not run |" in md and "![test/acc by parameter](summary.png)" in md
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_metric_no_run_has_is_an_error_naming_the_known_ones(registry, tmp_path: Path) -> None:
    spec = experiment_spec(registry, "p", "e")
    spec["metric"] = "test/accuracy"
    with pytest.raises(
        UserError,
        match=r"metric 'test/accuracy' is in no run's test.done \(they hold: test/acc, test/loss\)",
    ):
        write_experiment_summary(
            experiment=spec,
            out_csv=tmp_path / "s.csv",
            out_points=tmp_path / "p.csv",
            out_md=tmp_path / "s.md",
            out_png=tmp_path / "s.png",
        )
    assert not (tmp_path / "s.csv").exists()


def test_project_summary_has_each_experiments_best(registry, tmp_path: Path) -> None:
    from dltemplate.results.summary import project_spec

    rows = write_project_summary(
        project=project_spec(registry, "p"), out_csv=tmp_path / "p.csv", out_md=tmp_path / "p.md"
    )
    assert rows[0]["experiment"] == "e" and rows[0]["best"] == "task_wrapper.lr=0.01"
    assert rows[0]["best_mean"] == pytest.approx(0.88) and rows[0]["done"] == 5
    assert "[e](e/summary.md)" in (tmp_path / "p.md").read_text()
    assert read_csv(tmp_path / "p.csv")[0]["best_runs"] == "lr0.01-s0 lr0.01-s1"


def test_summary_rows_follow_the_registry(registry) -> None:
    rows = summarize_experiment(experiment_spec(registry, "p", "e")).runs
    assert [r["run"] for r in rows] == ["baseline", *RECORDS, "lr0.1-s1"]
    assert rows[1]["test/acc"] == 0.80 and rows[1]["epochs"] == 2


def test_the_workflow_side_of_sweeps_and_summaries_imports_no_torch_nor_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import dltemplate.results.summary, dltemplate.registry.sweeps, dltemplate.workflow.targets\n"
        "heavy = {'torch', 'lightning', 'matplotlib'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_compared_path_left_at_its_default_shows_the_value_the_run_used(
    registry, tmp_path: Path
) -> None:
    """Broken on purpose (rows from overrides only, as before): baseline's cells are empty."""
    (tmp_path / "results/p/e/baseline/hparams.yaml").write_text(
        "seed: 42\ntask_wrapper:\n  lr: 0.005\ntrainer:\n  max_epochs: 20\n"
    )
    summary = summarize_experiment(experiment_spec(registry, "p", "e"))
    baseline = next(r for r in summary.runs if r["run"] == "baseline")
    assert baseline["task_wrapper.lr"] == 0.005 and baseline["trainer.max_epochs"] == 20
    point = next(p for p in summary.points if p["runs"] == "baseline")
    assert point["task_wrapper.lr"] == 0.005
