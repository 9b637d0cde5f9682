"""Plots and tables of runs and experiments: learning curves, confusion matrices, regression
scatters and residuals, comparisons.

Everything here reads files that the jobs wrote (metrics CSVs, `.done` records, `summary.csv`)
and draws with matplotlib's headless Agg backend: no torch, no display. matplotlib itself is
imported only inside the drawing functions, so reading metrics stays cheap.
"""

from __future__ import annotations

import csv
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dltemplate.errors import UserError
from dltemplate.layout import RunLayout
from dltemplate.records import read_json, write_text_atomic
from dltemplate.results import metric_policy
from dltemplate.workflow.targets import rerun_command

FIGURE_DPI = 100


# ---------------------------------------------------------------------------------------------
# Reading


def metrics_files(run_dir: str | Path, job: str = "fit") -> list[Path]:
    """The metrics CSVs of a run's `job`: `metrics/<job>/metrics.csv`, which merges every
    attempt of a resumed fit, or else the attempts' own CSVs (`attempt-<n>/metrics.csv`), in
    order."""
    folder = Path(RunLayout.at(run_dir).metrics(job))
    merged = folder / "metrics.csv"
    if merged.is_file():
        return [merged]

    def attempt(path: Path) -> tuple[int, str]:
        number = path.parent.name.removeprefix("attempt-")
        return (int(number) if number.isdigit() else 0, str(path))

    return sorted(folder.glob("attempt-*/metrics.csv"), key=attempt)


def _number(text: str | None) -> float | None:
    if text is None or text.strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def read_epoch_metrics(run_dir: str | Path, job: str = "fit") -> list[dict[str, float]]:
    """One row per epoch: `{"epoch": 0.0, "step": 19.0, "train/loss": ..., "val/acc": ...}`.

    Lightning's CSV logger writes the train and validation values of an epoch on separate rows;
    they are merged by epoch, and a later row (or a later attempt) wins for the same key. Rows
    without an epoch are skipped.
    """
    by_epoch: dict[int, dict[str, float]] = {}
    for path in metrics_files(run_dir, job):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                epoch = _number(row.get("epoch"))
                if epoch is None:
                    continue
                merged = by_epoch.setdefault(int(epoch), {"epoch": float(int(epoch))})
                for key, text in row.items():
                    value = _number(text)
                    if key and key != "epoch" and value is not None:
                        merged[key] = value
    return [by_epoch[e] for e in sorted(by_epoch)]


def read_confusion(path: str | Path) -> tuple[list[str], list[list[int]]]:
    """A confusion-count CSV (rows: true class, columns: predicted class) -> labels, counts."""
    with Path(path).open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [], []
    labels = rows[0][1:]
    counts = [[int(v) for v in row[1:]] for row in rows[1:]]
    return labels, counts


def read_label_counts(path: str | Path) -> tuple[list[str], list[list[int]]]:
    """A multi-label count CSV (`label, tp, fp, fn, tn`) -> labels, counts per label."""
    with Path(path).open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [row[0] for row in rows], [[int(v) for v in row[1:5]] for row in rows]


def read_regression(path: str | Path) -> tuple[list[list[float]], list[list[float]]]:
    """A test-regression CSV (`pred_<k>` and `target_<k>` columns, a row per sample) ->
    (predicted, true), each one list of values per output k."""
    with Path(path).open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = [[float(v) for v in row] for row in reader]
    width = len(header) // 2
    predicted = [[row[k] for row in rows] for k in range(width)]
    true = [[row[width + k] for row in rows] for k in range(width)]
    return predicted, true


def read_summary(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """`summary.csv` -> (columns, rows). Columns are read as they come: any sweep columns too."""
    with Path(path).open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def test_metric_columns(columns: Iterable[str]) -> list[str]:
    """The `test/*` columns, losses first."""
    metrics = [c for c in columns if c.startswith("test/")]
    return sorted(metrics, key=lambda c: (not c.endswith("loss"), c))


test_metric_columns.__test__ = False  # not a pytest test, despite its name


# ---------------------------------------------------------------------------------------------
# Drawing


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: str | Path) -> None:
    """Save to a temporary file beside `out`, then rename: a failed plot leaves no PNG."""
    plt = _pyplot()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=FIGURE_DPI, bbox_inches="tight")
        tmp.replace(out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def _message_png(out: str | Path, title: str, message: str) -> Path:
    """A PNG that says, in place of a plot, why there is nothing to draw."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11, color="0.3")
    _save(fig, out)
    return Path(out)


def curve_panels(columns: Iterable[str]) -> list[tuple[str, list[str]]]:
    """Group metric columns into panels: all losses together, then one panel per other metric
    name with its train/val variants (`val/acc` and `train/acc` share the panel `acc`)."""
    panels: dict[str, list[str]] = {}
    for column in columns:
        if column in ("epoch", "step") or "/" not in column:
            continue
        stage, name = column.split("/", 1)
        if stage not in ("train", "val"):
            continue
        key = "loss" if name.endswith("loss") else name
        panels.setdefault(key, []).append(column)
    ordered = sorted(panels, key=lambda k: (k != "loss", k))
    return [(k, sorted(panels[k], key=lambda c: (not c.startswith("train"), c))) for k in ordered]


def best_epoch(
    rows: Sequence[Mapping[str, float]], monitor: str | None, mode: str = "min"
) -> int | None:
    values = [(r["epoch"], r[monitor]) for r in rows if monitor and monitor in r]
    if not values:
        return None
    pick = min if mode == "min" else max
    return int(pick(values, key=lambda ev: ev[1])[0])


def _spans_decades(rows: Sequence[Mapping[str, float]], columns: Sequence[str]) -> bool:
    values = [r[c] for r in rows for c in columns if c in r]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 100


def plot_learning_curves(
    rows: Sequence[Mapping[str, float]],
    out: str | Path,
    *,
    title: str = "",
    monitor: str | None = None,
    monitor_mode: str = "min",
) -> Path:
    """Draw train/val curves per epoch, one panel per metric, into the PNG `out`.

    The best epoch by `monitor` (the checkpoint that test and predict use) is marked.
    """
    columns = sorted({k for r in rows for k in r})
    panels = curve_panels(columns)
    if not rows or not panels:
        return _message_png(out, title, "No per-epoch train/val metrics were logged for this run.")
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    n = len(panels)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False)
    best = best_epoch(rows, monitor, monitor_mode)
    for ax, (name, series) in zip(axes.flat, panels, strict=False):
        for column in series:
            points = [(r["epoch"] + 1, r[column]) for r in rows if column in r]
            xs, ys = zip(*points, strict=True)
            style = "-" if column.startswith("train") else "-o"
            ax.plot(xs, ys, style, label=column, markersize=3)
        if name == "loss" and _spans_decades(rows, series):
            ax.set_yscale("log")  # a loss falling by orders of magnitude is flat on a linear axis
        if best is not None:
            ax.axvline(best + 1, color="0.5", linestyle="--", linewidth=1, label="best epoch")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out)
    return Path(out)


def plot_confusion_matrix(
    labels: Sequence[str], counts: Sequence[Sequence[int]], out: str | Path, *, title: str = ""
) -> Path:
    """Draw a confusion matrix (rows: true class, columns: predicted) with counts in the cells;
    colours are row-normalised so each true class reads as its recall."""
    if not counts:
        return _message_png(
            out, title, "No confusion matrix: the test outputs were not class scores."
        )
    plt = _pyplot()
    n = len(labels)
    size = min(3 + 0.45 * n, 14)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    totals = [max(1, sum(row)) for row in counts]
    normalised = [[v / t for v in row] for row, t in zip(counts, totals, strict=True)]
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if n <= 30:  # beyond that the numbers do not fit in the cells
        for i, row in enumerate(counts):
            for j, value in enumerate(row):
                if value:
                    colour = "white" if normalised[i][j] > 0.5 else "black"
                    ax.text(j, i, str(value), ha="center", va="center", fontsize=8, color=colour)
    ticks = list(range(n))
    ax.set_xticks(ticks, labels, fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    total = sum(sum(row) for row in counts)
    correct = sum(counts[i][i] for i in range(min(n, len(counts))))
    accuracy = f"accuracy {correct / total:.4f} ({correct}/{total})" if total else ""
    ax.set_title(f"{title}\n{accuracy}" if title else accuracy)
    fig.tight_layout()
    _save(fig, out)
    return Path(out)


def plot_label_scores(
    labels: Sequence[str], counts: Sequence[Sequence[int]], out: str | Path, *, title: str = ""
) -> Path:
    """A multi-label classifier's precision, recall and F1 per label (bars), from its counts
    (tp, fp, fn, tn) per label; each label's support (tp + fn) beside it."""
    if not counts:
        return _message_png(out, title, "No per-label scores: not a multi-label classifier.")
    plt = _pyplot()

    def ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    scores = {"precision": [], "recall": [], "F1": []}
    for tp, fp, fn, _ in counts:
        scores["precision"].append(ratio(tp, tp + fp))
        scores["recall"].append(ratio(tp, tp + fn))
        scores["F1"].append(ratio(2 * tp, 2 * tp + fp + fn))
    n = len(labels)
    fig, ax = plt.subplots(figsize=(7, max(2.6, 0.7 * n + 1.4)))
    positions = list(range(n))
    for i, (name, values) in enumerate(scores.items()):
        ax.barh([p + (i - 1) * 0.27 for p in positions], values, height=0.27, label=name)
    for p, (tp, _, fn, _) in zip(positions, counts, strict=True):
        ax.text(1.01, p, f"support {tp + fn}", va="center", fontsize=8)
    ax.set_yticks(positions, [f"label {label}" for label in labels], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.2)
    ax.set_xlabel("score (a label is predicted when sigmoid(output) >= 0.5)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"{title}\nper-label scores" if title else "per-label scores")
    fig.tight_layout()
    _save(fig, out)
    return Path(out)


REGRESSION_OUTPUTS_SHOWN = 8  # outputs beyond these are left out of the plot (the CSV has all)


def plot_regression(
    predicted: Sequence[Sequence[float]],
    true: Sequence[Sequence[float]],
    out: str | Path,
    *,
    title: str = "",
) -> Path:
    """Per output (one row each): predicted against true with the identity line, and the
    histogram of the residuals (predicted - true) with their mean and RMSE."""
    if not predicted or not predicted[0]:
        message = "Not a regression run: the test outputs and targets were not values of one shape."
        return _message_png(out, title, message)
    plt = _pyplot()
    shown = min(len(predicted), REGRESSION_OUTPUTS_SHOWN)
    fig, axes = plt.subplots(shown, 2, figsize=(9, 3.8 * shown), squeeze=False)
    for k in range(shown):
        p, t = predicted[k], true[k]
        name = f"output {k}" if len(predicted) > 1 else "test set"
        residuals = [a - b for a, b in zip(p, t, strict=True)]
        n = len(residuals)
        mean = sum(residuals) / n
        rmse = math.sqrt(sum(r * r for r in residuals) / n)
        scatter, histogram = axes[k]
        scatter.scatter(t, p, s=12, alpha=0.6, edgecolors="none")
        low, high = min(min(p), min(t)), max(max(p), max(t))
        scatter.plot(
            [low, high], [low, high], color="0.3", linestyle="--", linewidth=1, label="y = x"
        )
        scatter.set_xlabel("true")
        scatter.set_ylabel("predicted")
        scatter.set_title(f"{name}: predicted against true ({n} samples)", fontsize=10)
        scatter.set_aspect("equal", adjustable="datalim")
        scatter.grid(alpha=0.3)
        scatter.legend(fontsize=8)
        histogram.hist(residuals, bins=min(40, max(5, n // 5)), color="tab:blue", alpha=0.8)
        histogram.axvline(0, color="0.3", linestyle="--", linewidth=1)
        histogram.set_xlabel("residual (predicted - true)")
        histogram.set_ylabel("samples")
        histogram.set_title(f"{name}: residuals, mean {mean:.3g}, RMSE {rmse:.3g}", fontsize=10)
        histogram.grid(alpha=0.3)
    if len(predicted) > shown:
        fig.text(0.5, 0, f"{len(predicted) - shown} more outputs in the CSV", ha="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out)
    return Path(out)


def best_runs(rows: Sequence[Mapping[str, str]], metric: str, mode: str | None = None) -> list[str]:
    """The runs whose `metric` is best (the darker bars of the comparison chart)."""
    values = {r.get("run", "?"): _number(r.get(metric)) for r in rows}
    best = metric_policy.best([v for v in values.values() if v is not None], metric, mode)
    return [run for run, v in values.items() if v is not None and v == best]


def plot_comparison(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, str]],
    out: str | Path,
    *,
    title: str = "",
    modes: Mapping[str, str] | None = None,
) -> Path:
    """One horizontal bar panel per test metric, a bar per run; the best run's bar is darker.
    `modes`: declared directions by metric (the registry's `metric_mode`); the metric policy
    decides the others."""
    modes = modes or {}
    metrics = test_metric_columns(columns)
    runs = [r.get("run", "?") for r in rows]
    if not rows or not metrics:
        return _message_png(
            out, title, "No test metrics yet: no run of this experiment was tested."
        )
    plt = _pyplot()
    n = len(metrics)
    height = max(2.4, 0.35 * len(runs) + 1.2)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, height), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        values = [_number(r.get(metric)) for r in rows]
        best = set(best_runs(rows, metric, modes.get(metric)))
        colours = ["tab:blue" if run in best else "lightsteelblue" for run in runs]
        positions = list(range(len(runs)))
        ax.barh(positions, [v if v is not None else 0 for v in values], color=colours)
        for y, v in zip(positions, values, strict=True):
            ax.text(
                v if v is not None else 0,
                y,
                f" {v:.4g}" if v is not None else " n/a",
                va="center",
                fontsize=8,
            )
        ax.set_yticks(positions, runs, fontsize=8)
        ax.invert_yaxis()  # first run on top, as in the summary table
        lower = metric_policy.lower_is_better(metric, modes.get(metric))
        arrow = "lower is better" if lower else "higher is better"
        ax.set_title(f"{metric} ({arrow})", fontsize=10)
        ax.margins(x=0.25)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out)
    return Path(out)


# ---------------------------------------------------------------------------------------------
# Tables (self-contained HTML: the Snakemake report shows HTML results inline)

_TABLE_STYLE = (
    "body{font-family:sans-serif;font-size:13px;margin:8px}"
    "table{border-collapse:collapse}"
    "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}"
    "td.best{font-weight:bold;background:#e6f0ff}"
)


def _format(value: Any) -> str:
    number = _number(value) if isinstance(value, str) else value
    if isinstance(number, float):
        if number.is_integer() and abs(number) < 1e9:
            return str(int(number))
        return f"{number:.4g}"
    return "" if value is None else str(value)


def html_table(
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str = "",
    best_of: Iterable[str] = (),
    modes: Mapping[str, str] | None = None,
) -> str:
    """A standalone HTML page holding one table; in the `best_of` columns the best value is
    highlighted (lowest for losses and errors, highest otherwise)."""
    best: dict[str, float] = {}
    for column in best_of:
        values = [v for r in rows if (v := _number(str(r.get(column, "")))) is not None]
        if values:
            best[column] = metric_policy.best(values, column, (modes or {}).get(column))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            number = _number(str(value)) if value is not None else None
            marked = column in best and number is not None and number == best[column]
            css = ' class="best"' if marked else ""
            cells.append(f"<td{css}>{html.escape(_format(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    heading = f"<h3>{html.escape(title)}</h3>" if title else ""
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_TABLE_STYLE}</style></head><body>{heading}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>\n"
    )


# ---------------------------------------------------------------------------------------------
# What the Snakemake steps call


def _run_title(run_dir: Path) -> str:
    parts = run_dir.parts[-3:]
    return "/".join(parts)


def _monitor(run_dir: Path) -> tuple[str | None, str]:
    """The metric and mode that picked the best checkpoint, as the fit recorded them."""
    fit = read_json(RunLayout.at(run_dir).done("fit"), default={})
    monitor = fit.get("monitor") if isinstance(fit, dict) else None
    if not isinstance(monitor, dict) or not monitor.get("metric"):
        return None, "min"
    return monitor["metric"], monitor.get("mode") or "min"


def write_run_curves(
    *, run_dir: str | Path, curves_png: str | Path, epochs_html: str | Path
) -> list[dict[str, float]]:
    """A run's learning curves (PNG) and its per-epoch metrics table (HTML)."""
    run_dir = Path(run_dir)
    rows = read_epoch_metrics(run_dir, "fit")
    monitor, mode = _monitor(run_dir)
    title = _run_title(run_dir)
    plot_learning_curves(rows, curves_png, title=title, monitor=monitor, monitor_mode=mode)
    columns = ["epoch", "step", *sorted({k for r in rows for k in r} - {"epoch", "step"})]
    shown = [{**r, "epoch": r["epoch"] + 1} for r in rows]  # epochs count from 1, as in logs
    best_of = [c for c in columns if c.startswith("val/")]
    table = html_table(columns, shown, title=f"{title}: metrics per epoch", best_of=best_of)
    write_text_atomic(epochs_html, table)
    return rows


def _write_test_plot(test_done: str | Path, out_png: str | Path, key: str, what: str, read, draw):
    """Draw the test's plot whose data `test.done` names under `key` (`read` reads them, `draw`
    draws them); without that key, `draw` gets no data and says what the run is not."""
    title = f"{_run_title(Path(test_done).parent)}: test set"
    path = read_json(test_done).get(key)
    if path and not Path(path).is_file():
        raise UserError(
            f"{test_done} names the {what} {path}, which do not exist; "
            f"rerun the test: {rerun_command(test_done, 'test')}"
        )
    return draw(*(read(path) if path else ([], [])), out_png, title=title)


def write_run_confusion(*, test_done: str | Path, out_png: str | Path) -> Path:
    """The confusion matrix that the test job counted (named in `test.done`), as a PNG; for a
    multi-label classifier, its precision, recall and F1 per label."""
    if read_json(test_done).get("multilabel"):
        return _write_test_plot(
            test_done,
            out_png,
            "multilabel",
            "per-label counts",
            read_label_counts,
            plot_label_scores,
        )
    return _write_test_plot(
        test_done,
        out_png,
        "confusion_matrix",
        "confusion counts",
        read_confusion,
        plot_confusion_matrix,
    )


def write_run_regression(*, test_done: str | Path, out_png: str | Path) -> Path:
    """The regression plot of the test's predicted and true values (named in `test.done`)."""
    return _write_test_plot(
        test_done, out_png, "regression", "regression values", read_regression, plot_regression
    )


def write_run_plots(
    *,
    run_dir: str | Path,
    jobs: Iterable[str],
    curves_png: str | Path,
    epochs_html: str | Path,
    confusion_png: str | Path,
    regression_png: str | Path,
) -> None:
    """A run's plots, drawn once its jobs are done: the learning curves and per-epoch table of
    its fit; of its test, a classifier's confusion matrix or a regression's predicted-against-
    true scatter and residual histogram (the other of the two says what the run is not).
    Where the run declares no such job, the image (and page) says so."""
    run_dir, jobs = Path(run_dir), set(jobs)
    title = _run_title(run_dir)
    if "fit" in jobs:
        write_run_curves(run_dir=run_dir, curves_png=curves_png, epochs_html=epochs_html)
    else:
        message = "No fit job: this run tests or predicts with a checkpoint it was given."
        _message_png(curves_png, title, message)
        write_text_atomic(epochs_html, html_table([], [], title=f"{title}: {message}"))
    if "test" in jobs:
        test_done = RunLayout.at(run_dir).done("test")
        write_run_confusion(test_done=test_done, out_png=confusion_png)
        write_run_regression(test_done=test_done, out_png=regression_png)
    else:
        for png in (confusion_png, regression_png):
            _message_png(png, title, "No test job: this run declares none.")


def write_experiment_comparison(
    *,
    summary_csv: str | Path,
    comparison_png: str | Path,
    summary_html: str | Path,
    modes: Mapping[str, str] | None = None,
) -> None:
    """An experiment's comparison chart of the runs' test metrics, and its summary as HTML.
    `modes`: the directions the registry declares, by metric."""
    summary_csv = Path(summary_csv)
    columns, rows = read_summary(summary_csv)
    title = "/".join(summary_csv.parent.parts[-2:])
    chart_title = f"{title}: test metrics per run"
    plot_comparison(columns, rows, comparison_png, title=chart_title, modes=modes)
    best_of = test_metric_columns(columns)
    table = html_table(columns, rows, title=f"{title}: summary", best_of=best_of, modes=modes)
    write_text_atomic(summary_html, table)
