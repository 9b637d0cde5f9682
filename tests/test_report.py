"""The workflow for real: plots in `all`, the Snakemake HTML report, and `main.py show`."""

from __future__ import annotations

import base64
import csv
import json
import re

import pytest

from tests.conftest import RUN_PLOTS, Project

TWO_RUNS = """\
description: A tiny project for tests
experiments:
  exp:
    description: Two quick MLPs
    runs:
      small:
        description: a two-epoch MLP
        config: configs/digits_mlp.py
        jobs: [fit, test]
        overrides: {trainer.max_epochs: 2, task_wrapper.model.hidden_dim: 16}
      wide:
        description: a wider two-epoch MLP
        config: configs/digits_mlp.py
        jobs: [fit, test]
        overrides: {trainer.max_epochs: 2, task_wrapper.model.hidden_dim: 64}
"""


def report_data(page: str, script_id: str, name: str) -> dict:
    """The JSON that the report keeps in `<script id="<script_id>"> var <name> = {...};`."""
    start = re.search(rf'<script id="{script_id}">\s*var {name} = ', page)
    assert start, f"no {name} in the report"
    data, _ = json.JSONDecoder().raw_decode(page, start.end())
    return data


def test_a_runs_plots_come_with_its_record(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", TWO_RUNS)
    result = project.snakemake("-n", "--cores", "1")
    assert "rule plot_comparison:" in result.stdout
    # A run's plots are outputs of its record job, in `all`: not of fit and test, so that the
    # sweep's own target (the experiment's summary.csv) carries three outputs fewer per run.
    exp = "results/tiny/exp"
    for run in ("small", "wide"):
        plots = ", ".join(f"{exp}/{run}/plots/{name}" for name in RUN_PLOTS)
        assert f"output: {exp}/{run}/run.json, {plots}" in result.stdout
    sweep = project.snakemake("-n", "--cores", "1", f"{exp}/summary.csv").stdout
    assert "rule summary:" in sweep and "rule fit:" in sweep
    assert "plots/" not in sweep and "rule run_record:" not in sweep


@pytest.mark.slow
def test_report_holds_every_plot_and_table(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", TWO_RUNS)
    project.snakemake("--cores", "2")
    exp = "results/tiny/exp"
    for run in ("small", "wide"):
        for name in ("learning_curves.png", "confusion_matrix.png"):
            assert project.path(f"{exp}/{run}/plots/{name}").read_bytes()[:4] == b"\x89PNG"
        # The test job's confusion counts agree with torchmetrics' accuracy of the same test.
        test = json.loads(project.path(f"{exp}/{run}/test.done").read_text())
        with project.path(test["confusion_matrix"]).open() as f:
            counts = [[int(v) for v in row[1:]] for row in list(csv.reader(f))[1:]]
        total = sum(map(sum, counts))
        assert total > 100
        assert sum(counts[i][i] for i in range(10)) / total == pytest.approx(
            test["metrics"]["test/acc"], abs=1e-6
        )
    assert project.path(f"{exp}/plots/comparison.png").read_bytes()[:4] == b"\x89PNG"

    project.snakemake("--report", "report.html")
    page = project.path("report.html").read_text()
    categories = report_data(page, "categories", "categories")
    assert set(categories) == {"tiny/exp"}
    assert set(categories["tiny/exp"]) == {
        "learning curves",
        "metrics per epoch",
        "confusion matrices",
        "regression",
        "all runs",
    }
    results = report_data(page, "results", "results")
    expected = [f"{exp}/{run}/plots/{name}" for run in ("small", "wide") for name in RUN_PLOTS] + [
        f"{exp}/plots/comparison.png",
        f"{exp}/plots/summary.html",
    ]
    assert sorted(results) == sorted(expected)
    for path, result in results.items():
        # Embedded, not linked: the page works offline and on its own.
        mime = "image/png" if path.endswith(".png") else "text/html"
        header, payload = result["data_uri"].split(",", 1)
        assert header.startswith(f"data:{mime};") and header.endswith(";base64"), header
        assert base64.b64decode(payload) == project.path(path).read_bytes()
        assert result["caption"].strip(), f"{path} has no caption"
    curves = results[f"{exp}/wide/plots/learning_curves.png"]
    assert curves["labels"] == {"run": "wide"}
    assert "Learning curves of run <strong>wide</strong>" in curves["caption"]
    summary = base64.b64decode(results[f"{exp}/plots/summary.html"]["data_uri"].split(",", 1)[1])
    assert b"<th>test/acc</th>" in summary and b"<td>small</td>" in summary
    runtimes = {r["rule"] for r in report_data(page, "runtimes", "runtimes_spec")["data"]["values"]}
    assert {"fit", "test", "plot_comparison"} <= runtimes
    assert "Deep-learning runs trained, tested and predicted" in page  # report/workflow.rst

    shown = project.main("show", "tiny/exp/wide").stdout
    for text in ("a wider two-epoch MLP", "hidden_dim: 64", "test/acc", "test_confusion.csv"):
        assert text in shown
    missing = project.main("show", "tiny/exp/nope", check=False)
    assert missing.returncode == 1
    assert "No run tiny/exp/nope: not in the registry" in missing.stderr
