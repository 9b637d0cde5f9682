"""Layer 4: the workflow for real: lint, dry runs, and a full fit -> test -> predict run."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dltemplate.layout import JOB_TYPES
from dltemplate.workflow import ENGINE
from tests.conftest import BIN, REPO, Project


def test_parsing_the_workflow_never_imports_torch(project: Project) -> None:
    code = (
        "import sys, runpy\n"
        "from snakemake.api import SnakemakeApi\n"
        "from dltemplate.workflow import targets\nfrom dltemplate.registry import model as registry\n"
        "registry.load_registry('configs/projects')\n"
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'heavy import'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=project.root, check=True)


@pytest.mark.examples
def test_dry_run_of_the_example_lists_fit_test_predict() -> None:
    result = subprocess.run(
        [
            str(BIN / "snakemake"),
            "-n",
            "--cores",
            "2",
            "--forceall",
            "results/digits/baseline/summary.csv",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    for rule in ("fit", "test", "predict", "summary"):
        assert f"rule {rule}:" in result.stdout


def test_lint_is_clean(project: Project) -> None:
    """The workflow's files, as the repository holds them, in a scratch project."""
    result = subprocess.run(
        [str(BIN / "snakemake"), "--lint", "--cores", "1"],
        cwd=project.root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_bad_registry_stops_the_dry_run_with_one_line(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", "description: P\nexperiments: {e: {runs: {}}}\n")
    result = project.snakemake("-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert "tiny.yaml: at experiments.e: 'description' is a required property" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_full_run_fit_test_predict(project: Project) -> None:
    run = "results/tiny/exp/mlp"
    project.snakemake("--cores", "2", f"{run}/predict.done", f"{run}/test.done")
    fit = json.loads(project.path(f"{run}/fit.done").read_text())
    assert fit["epochs"] == 2 and project.path(fit["best_checkpoint"]).is_file()
    assert project.path(f"{run}/checkpoints/last.ckpt").is_file()
    metrics = json.loads(project.path(f"{run}/test.done").read_text())["metrics"]
    assert {"test/acc", "test/loss", "test/f1"} <= set(metrics)
    assert 0.5 < metrics["test/acc"] <= 1.0  # two epochs of an MLP on digits: far above chance
    hparams = yaml.safe_load(project.path(f"{run}/hparams.yaml").read_text())
    assert hparams["trainer"]["max_epochs"] == 2
    assert hparams["task_wrapper"]["model"]["hidden_dim"] == 32
    assert project.path(f"{run}/archived_config.py").is_file()
    assert project.path(f"{run}/metrics/fit/metrics.csv").is_file()
    assert "epoch 2/2" in project.path(f"{run}/logs/fit.log").read_text()
    with project.path(f"{run}/predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == json.loads(project.path(f"{run}/predict.done").read_text())["rows"] > 0
    assert rows[0]["index"] == "0" and 0 <= int(rows[0]["predicted_class"]) < 10
    assert list(rows[0])[:3] == ["index", "predicted_class", "target"]  # the label beside it
    hits = sum(row["predicted_class"] == row["target"] for row in rows) / len(rows)
    assert hits == pytest.approx(metrics["test/acc"], abs=1e-6)  # predict split = test split
    assert abs(sum(float(rows[0][f"prob_{i}"]) for i in range(10)) - 1) < 1e-4
    with project.path(f"{run}/metrics/predict/metrics.csv").open() as f:  # the default logger
        assert next(csv.DictReader(f))["predict/samples"] == str(len(rows))

    again = project.snakemake("--cores", "2", f"{run}/predict.done", f"{run}/test.done")
    assert "Nothing to be done" in again.stdout + again.stderr

    project.snakemake("--cores", "2", "results/tiny/exp/summary.csv")
    with project.path("results/tiny/exp/summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert summary[0]["run"] == "mlp"
    assert float(summary[0]["test/acc"]) == pytest.approx(metrics["test/acc"])


@pytest.mark.slow
def test_failed_fit_leaves_no_done_file_and_one_line(project: Project) -> None:
    project.write(
        "configs/projects/tiny.yaml",
        """\
        description: P
        experiments:
          exp:
            description: E
            runs:
              bad:
                description: an override of a path that does not exist
                config: configs/digits_mlp.py
                overrides: {task_wrapper.model.hiden_dim: 3}
        """,
    )
    result = project.snakemake("--cores", "1", "results/tiny/exp/bad/fit.done", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Unknown override path 'task_wrapper.model.hiden_dim'" in output
    assert "closest: task_wrapper.model.hidden_dim" in output
    assert not project.path("results/tiny/exp/bad/fit.done").exists()


def test_only_training_jobs_go_to_a_cluster() -> None:
    """Aggregation rules (summaries, records, plots) run on the submit host: `localrule: True`."""
    import re

    for smk in sorted((Path(ENGINE).parent / "rules").glob("*.smk")):
        for name, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)+)", smk.read_text(), re.M):
            if name not in JOB_TYPES:
                assert "localrule: True" in body, f"rule {name} in {smk.name} is not local"
