"""Plots and tables from the files the jobs write (layer 1: the package on tmp_path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dltemplate.errors import UserError
from dltemplate.results import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Lightning's CSVLogger: train and val values of an epoch on separate rows.
ATTEMPT_1 = """\
epoch,step,train/loss,val/acc,val/loss
0,19,,0.50,1.50
0,19,1.80,,
1,39,,0.70,1.00
1,39,1.20,,
"""
# A resumed attempt: epoch 1 again (it was cut off after validation), then epoch 2.
ATTEMPT_2 = """\
epoch,step,train/loss,val/acc,val/loss
1,39,,0.72,0.95
1,39,1.10,,
2,59,,0.90,0.40
2,59,0.60,,
"""


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def write_attempts(run_dir: Path, *attempts: str) -> None:
    """Each attempt's CSV log of a resumed fit, as metrics/fit/attempt-<n>/metrics.csv."""
    for i, text in enumerate(attempts):
        path = run_dir / "metrics" / "fit" / f"attempt-{i + 1}" / "metrics.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_epoch_rows_merge_train_and_val_and_later_attempts_win(tmp_path: Path) -> None:
    write_attempts(tmp_path, ATTEMPT_1, ATTEMPT_2)
    rows = plots.read_epoch_metrics(tmp_path)
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert rows[0] == {"epoch": 0, "step": 19, "train/loss": 1.8, "val/acc": 0.5, "val/loss": 1.5}
    assert rows[1]["val/acc"] == 0.72 and rows[1]["train/loss"] == 1.10  # the resumed attempt
    assert rows[2]["val/loss"] == 0.40


def test_the_merged_csv_is_read_alone(tmp_path: Path) -> None:
    write_attempts(tmp_path, ATTEMPT_1)
    merged = tmp_path / "metrics" / "fit" / "metrics.csv"
    merged.write_text(ATTEMPT_2)
    assert plots.metrics_files(tmp_path) == [merged]
    assert [r["epoch"] for r in plots.read_epoch_metrics(tmp_path)] == [1, 2]


def test_curve_panels_group_losses_and_metrics() -> None:
    columns = ["epoch", "step", "train/loss", "val/loss", "val/acc", "train/acc", "val/f1", "lr"]
    assert plots.curve_panels(columns) == [
        ("loss", ["train/loss", "val/loss"]),
        ("acc", ["train/acc", "val/acc"]),
        ("f1", ["val/f1"]),
    ]


def test_best_epoch_follows_the_monitor() -> None:
    rows = [
        {"epoch": 0, "val/loss": 2.0, "val/acc": 0.3},
        {"epoch": 1, "val/loss": 2.5, "val/acc": 0.4},
    ]
    assert plots.best_epoch(rows, "val/loss", "min") == 0
    assert plots.best_epoch(rows, "val/acc", "max") == 1
    assert plots.best_epoch(rows, "val/f1", "max") is None


def test_run_curves_png_and_epoch_table(tmp_path: Path) -> None:
    run = tmp_path / "results" / "p" / "e" / "r"
    write_attempts(run, ATTEMPT_1, ATTEMPT_2)
    (run / "hparams.yaml").write_text("trainer:\n  monitor: val/acc\n  monitor_mode: max\n")
    rows = plots.write_run_curves(
        run_dir=run, curves_png=run / "plots/curves.png", epochs_html=run / "plots/epochs.html"
    )
    assert len(rows) == 3
    width, height = png_size(run / "plots/curves.png")
    assert width > 2 * height  # two panels side by side: loss, acc
    page = (run / "plots/epochs.html").read_text()
    assert "p/e/r: metrics per epoch" in page
    assert page.count("<tr>") == 4  # header + 3 epochs
    assert '<td class="best">0.9</td>' in page  # the best val/acc, highlighted
    assert not list((run / "plots").glob(".*tmp*"))  # no temporary files left behind


def test_curves_without_metrics_say_so(tmp_path: Path) -> None:
    out = plots.plot_learning_curves([], tmp_path / "c.png", title="t")
    assert png_size(out)[0] > 0


def make_tested_run(key: str, name: str, text: str) -> Path:
    """A run folder (under the working folder) whose test.done names `name` under `key`."""
    run = Path("results/p/e/r")
    run.mkdir(parents=True, exist_ok=True)
    (run / name).write_text(text)
    (run / "test.done").write_text(json.dumps({"metrics": {}, key: str(run / name)}))
    return run


def test_confusion_matrix_from_the_test_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    counts = "true\\predicted,0,1,2\n0,5,1,0\n1,0,4,0\n2,2,0,3\n"
    run = make_tested_run("confusion_matrix", "test_confusion.csv", counts)
    labels, counts = plots.read_confusion(run / "test_confusion.csv")
    assert labels == ["0", "1", "2"] and counts[2] == [2, 0, 3]
    out = plots.write_run_confusion(test_done=run / "test.done", out_png=run / "plots/cm.png")
    width, height = png_size(out)
    assert 0.8 < width / height < 1.6  # square matrix plus a colour bar

    (run / "test_confusion.csv").unlink()
    with pytest.raises(UserError, match="rerun the test"):
        plots.write_run_confusion(test_done=run / "test.done", out_png=run / "plots/cm.png")


def test_regression_plot_from_the_test_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rows = "\n".join(f"{i * 0.1 + 0.05},{i * 0.2},{i * 0.1},{i * 0.2 - 0.1}" for i in range(30))
    header = "pred_0,pred_1,target_0,target_1"
    run = make_tested_run("regression", "test_regression.csv", f"{header}\n{rows}\n")
    predicted, true = plots.read_regression(run / "test_regression.csv")
    assert len(predicted) == len(true) == 2 and len(predicted[0]) == 30
    assert predicted[1][2] == pytest.approx(0.4) and true[1][2] == pytest.approx(0.3)
    out = plots.write_run_regression(test_done=run / "test.done", out_png=run / "plots/r.png")
    width, height = png_size(out)
    assert width / height < 1.5  # two outputs: two rows of (scatter, histogram)

    (run / "test.done").write_text(json.dumps({"metrics": {}}))  # a classifier's record
    out = plots.write_run_regression(test_done=run / "test.done", out_png=run / "plots/r.png")
    width, height = png_size(out)
    assert width > 2 * height  # the "not a regression run" notice
    (run / "test.done").write_text(json.dumps({"metrics": {}, "regression": str(run / "gone.csv")}))
    with pytest.raises(UserError, match="rerun the test"):
        plots.write_run_regression(test_done=run / "test.done", out_png=run / "plots/r.png")


def test_multilabel_scores_in_place_of_the_confusion_matrix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    counts = "label,tp,fp,fn,tn\n0,8,2,1,9\n1,0,0,5,15\n"
    run = make_tested_run("multilabel", "test_multilabel.csv", counts)
    assert plots.read_label_counts(run / "test_multilabel.csv") == (
        ["0", "1"],
        [[8, 2, 1, 9], [0, 0, 5, 15]],
    )
    out = plots.write_run_confusion(test_done=run / "test.done", out_png=run / "plots/cm.png")
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_run_plots_say_which_job_the_run_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that tests a given checkpoint has no fit; one that only fits has no test."""
    monkeypatch.chdir(tmp_path)
    run = Path("results/p/e/r")
    outs = {
        "curves_png": run / "plots/learning_curves.png",
        "epochs_html": run / "plots/epochs.html",
        "confusion_png": run / "plots/confusion_matrix.png",
        "regression_png": run / "plots/regression.png",
    }
    run.mkdir(parents=True)
    (run / "test.done").write_text('{"metrics": {"test/mse": 0.5}}')  # no class scores
    plots.write_run_plots(run_dir=run, jobs=["test"], **outs)
    assert "No fit job" in outs["epochs_html"].read_text()
    pngs = ("curves_png", "confusion_png", "regression_png")
    assert all(outs[name].read_bytes().startswith(PNG_MAGIC) for name in pngs)
    (run / "test.done").unlink()
    with pytest.raises(UserError, match=r"test\.done does not exist"):  # a declared job ran first
        plots.write_run_plots(run_dir=run, jobs=["test"], **outs)

    write_attempts(run, ATTEMPT_1)
    for path in outs.values():
        path.unlink()
    plots.write_run_plots(run_dir=run, jobs=["fit"], **outs)
    assert outs["epochs_html"].read_text().count("<tr>") == 3  # header + 2 epochs
    for name in ("confusion_png", "regression_png"):
        width, height = png_size(outs[name])
        assert width > 2 * height  # the wide "no test job" notice, not a plot


def test_comparison_reads_any_summary_columns(tmp_path: Path) -> None:
    summary = tmp_path / "results" / "p" / "e" / "summary.csv"
    summary.parent.mkdir(parents=True)
    # Columns beyond run and test/*, e.g. a sweep's hyperparameters, are carried along.
    summary.write_text(
        "run,task_wrapper.lr,test/acc,test/loss,epochs,fit_seconds\n"
        "a,0.001,0.91,0.30,2,3.1\n"
        "b,0.01,0.95,0.20,2,2.9\n"
        "c,0.1,,,,\n"
    )
    plots.write_experiment_comparison(
        summary_csv=summary,
        comparison_png=tmp_path / "comparison.png",
        summary_html=tmp_path / "summary.html",
    )
    width, height = png_size(tmp_path / "comparison.png")
    assert width > height  # two metric panels side by side
    page = (tmp_path / "summary.html").read_text()
    assert "<th>task_wrapper.lr</th>" in page
    assert '<td class="best">0.95</td>' in page and '<td class="best">0.2</td>' in page
    assert plots.test_metric_columns(["run", "test/acc", "epochs", "test/loss"]) == [
        "test/loss",
        "test/acc",
    ]


def test_show_rejects_a_malformed_run_key() -> None:
    from dltemplate.cli.show import parse_run_key

    assert parse_run_key("results/digits/baseline/cnn/") == ("digits", "baseline", "cnn")
    with pytest.raises(UserError, match="Expected a run as <proj>/<exp>/<run>"):
        parse_run_key("digits/cnn")
    with pytest.raises(UserError, match="Invalid run name"):
        parse_run_key("digits/baseline/..")
