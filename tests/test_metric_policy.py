"""One metric policy: summary.md, the comparison chart's highlighted run and `ls` agree.

Broken on purpose: a summary that used its own list of loss-like names (as before, when
`test/error_rate` and `test/top1_err` were ranked one way by summary.md and the other way by
comparison.png) fails `test_summary_chart_and_ls_pick_the_same_run`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dltemplate.cli import main as cli
from dltemplate.registry.model import load_registry
from dltemplate.results import metric_policy
from dltemplate.results.plots import best_runs, read_summary
from dltemplate.results.summary import experiment_spec, write_experiment_summary

LOWER = ["loss", "nll", "perplexity", "error_rate", "top1_err", "mae", "mse", "rmse", "wer", "cer"]
HIGHER = ["acc", "f1", "auroc", "r2", "bleu", "precision", "MulticlassAccuracy"]
VALUES = {"a": 0.2, "b": 0.5, "c": 0.9}  # run -> the metric's value


@pytest.mark.parametrize("name", LOWER)
def test_errors_losses_and_distances_are_minimised(name: str) -> None:
    assert metric_policy.direction(f"test/{name}") == "min"


@pytest.mark.parametrize("name", HIGHER)
def test_scores_are_maximised(name: str) -> None:
    assert metric_policy.direction(f"test/{name}") == "max"


def test_a_declared_mode_wins() -> None:
    assert metric_policy.direction("test/acc", "min") == "min"
    assert metric_policy.direction("test/loss", "max") == "max"
    with pytest.raises(ValueError, match="not one of"):
        metric_policy.direction("test/acc", "biggest")


def test_default_metric_is_the_first_test_metric_besides_the_loss() -> None:
    assert metric_policy.default_metric(["test/loss", "test/f1", "test/acc"]) == "test/acc"
    assert metric_policy.default_metric(["test/loss", "val/acc"]) == "test/loss"
    assert metric_policy.default_metric([]) is None


def experiment(tmp_path: Path, metric: str, mode: str | None) -> Path:
    """A project with three tested runs whose only test metric is `metric`."""
    declared = f"\n    metric: {metric}\n    metric_mode: {mode}" if mode else ""
    runs = "".join(
        f"      {r}: {{description: R, config: configs/digits_mlp.py, jobs: [fit, test], "
        f"overrides: {{task_wrapper.lr: {i + 1}}}}}\n"
        for i, r in enumerate(VALUES)
    )
    (tmp_path / "projects").mkdir()
    (tmp_path / "projects/p.yaml").write_text(
        f"description: P\nexperiments:\n  e:\n    description: E{declared}\n    runs:\n{runs}"
    )
    for run, value in VALUES.items():
        folder = tmp_path / "results/p/e" / run
        folder.mkdir(parents=True)
        (folder / "fit.done").write_text(json.dumps({"epochs": 1, "fit_seconds": 1.0}))
        (folder / "test.done").write_text(json.dumps({"metrics": {metric: value}}))
    return tmp_path / "projects"


@pytest.mark.parametrize(
    ("name", "mode"),
    [*((n, None) for n in LOWER + HIGHER), ("acc", "min"), ("top1_err", "max")],
)
def test_summary_chart_and_ls_pick_the_same_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, name: str, mode: str | None
) -> None:
    metric = f"test/{name}"
    monkeypatch.chdir(tmp_path)
    registry_folder = experiment(tmp_path, metric, mode)
    expected = "a" if metric_policy.direction(metric, mode) == "min" else "c"

    out = {k: tmp_path / f"summary{k}" for k in (".csv", "_points.csv", ".md", ".png")}
    spec = experiment_spec(load_registry(registry_folder), "p", "e")
    write_experiment_summary(
        experiment=spec,
        out_csv=out[".csv"],
        out_points=out["_points.csv"],
        out_md=out[".md"],
        out_png=out[".png"],
    )
    best_line = next(line for line in out[".md"].read_text().splitlines() if "Best" in line)
    assert f"run ({expected})" in best_line, best_line

    _, rows = read_summary(out[".csv"])
    modes = {metric: mode} if mode else {}
    assert best_runs(rows, metric, modes.get(metric)) == [expected]

    assert cli(["ls", "-p", "p", "-e", "e", "--json", "--registry", str(registry_folder)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["summary"]["best"] == best_line.strip("*")
    assert {r["main_metric"]["name"] for r in listing["runs"]} == {metric}
