"""The validate job: Lightning's validation loop on a run's best checkpoint (or its `ckpt:`)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from dltemplate.cli.options import parse_jobs
from dltemplate.layout import DEFAULT_JOBS, RunLayout
from dltemplate.registry.model import load_registry
from dltemplate.workflow.targets import fitted_input, run_targets
from tests.conftest import Project, make_project

REGISTRY = """\
description: P
experiments:
  exp:
    description: E
    runs:
      mlp:
        description: fit, validate the best checkpoint, test it
        config: configs/digits_mlp.py
        jobs: [test, validate, fit]
        overrides: {trainer.max_epochs: 3, task_wrapper.model.hidden_dim: 16}
        resources: {validate: {runtime: 5}}
      given:
        description: validate a checkpoint it was given
        config: configs/digits_mlp.py
        ckpt: data/w.ckpt
        jobs: [validate]
      usual:
        description: the default jobs
        config: configs/digits_mlp.py
"""


def test_validate_is_a_job_a_run_asks_for(tmp_path: Path) -> None:
    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "p.yaml").write_text(REGISTRY)
    registry = load_registry(folder)
    mlp, given, usual = (registry.run("p", "exp", n) for n in ("mlp", "given", "usual"))
    assert mlp.jobs == ("fit", "validate", "test")  # pipeline order
    assert RunLayout.of("p", "exp", "mlp").done("validate") in run_targets(mlp)
    assert mlp.resources["validate"]["runtime"] == 5
    assert given.jobs == ("validate",) and fitted_input(given) == "data/w.ckpt"
    assert usual.jobs == DEFAULT_JOBS and "validate" not in usual.jobs
    assert parse_jobs("test,validate") == ("validate", "test")


@pytest.mark.slow
def test_validate_runs_the_validation_loop_on_the_best_checkpoint(tmp_path: Path) -> None:
    only_mlp = REGISTRY.split("      given:")[0]
    project: Project = make_project(tmp_path / "proj", only_mlp)
    run = RunLayout.of("tiny", "exp", "mlp")
    project.snakemake("--cores", "2", run.run_json)

    validated = json.loads(project.path(run.done("validate")).read_text())
    assert validated["checkpoint"].endswith(run.best_checkpoint)
    metrics = validated["metrics"]
    assert {"val/loss", "val/acc"} <= set(metrics) and all(k.startswith("val/") for k in metrics)
    # The same weights and data as the fit's best epoch: the same validation loss.
    with project.path(run.fit_metrics_csv).open() as lines:
        val_losses = [float(r["val/loss"]) for r in csv.DictReader(lines) if r.get("val/loss")]
    assert len(val_losses) == 3
    assert metrics["val/loss"] == pytest.approx(min(val_losses), rel=1e-5)

    record = json.loads(project.path(run.record("validate")).read_text())
    assert record["status"] == "done"
    assert project.path(run.log("validate")).is_file()
    run_json = json.loads(project.path(run.run_json).read_text())
    assert set(run_json["records"]) == {"fit", "validate", "test"}
    assert run_json["metrics"]["val/loss"] == metrics["val/loss"]
    assert "test/loss" in run_json["metrics"]

    shown = project.main("show", "tiny/exp/mlp").stdout
    assert "validate (best ckpt)" in shown and "from best.ckpt" in shown
    listed = project.main("ls", "-p", "tiny", "-e", "exp", "--json").stdout
    jobs = {r["name"]: r["jobs"] for r in json.loads(listed)["runs"]}
    assert jobs["mlp"]["validate"]["status"] == "done"
