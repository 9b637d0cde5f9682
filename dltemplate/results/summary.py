"""Experiment and project summaries: which setting is best, and by how much.

Everything is read from the runs' own records (`fit.done`, `test.done`) and the registry; no job
ever rewrites a file that another job writes. Per experiment:

- one row per run: its overrides, test metrics, epochs and fit time (`summary.csv`);
- one row per sweep point (runs whose config and overrides differ only in `seed`): the mean and
  standard deviation over seeds of each metric, the rank and the gap to the best point by the
  experiment's metric (`summary_points.csv`);
- `summary.md` with both tables and the best point, and `summary.png`: the metric against each
  parameter that varies, with error bars over seeds.

A project's summary has one row per experiment with its best point. `summary_data` gives
`main.py ls` the same numbers. Which way a metric is better comes from the metric policy
(dltemplate.results.metric_policy). Torch-free; matplotlib is imported only to draw.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltemplate.errors import UserError
from dltemplate.layout import RunLayout
from dltemplate.records import read_json, write_text_atomic
from dltemplate.registry.sweeps import FOLD
from dltemplate.results import metric_policy


def run_row(run_dir: Path) -> dict[str, Any]:
    """A run's test metrics, fit epochs and time, where they exist (no registry needed)."""
    row: dict[str, Any] = {"run": run_dir.name}
    layout = RunLayout.at(run_dir)
    fit = read_json(layout.done("fit"), default=None) or {}
    test = read_json(layout.done("test"), default=None) or {}
    row.update(test.get("metrics", {}))
    if fit:
        row["epochs"] = fit.get("epochs")
        row["fit_seconds"] = fit.get("fit_seconds")
    return row


# ---- what the summaries are made of: plain data, so Snakemake can pass it as params ----


def experiment_spec(registry, proj: str, exp: str) -> dict[str, Any]:
    """An experiment's runs as plain data (the summary rule's params: a change reruns it)."""
    experiment = registry.experiment(proj, exp)
    return {
        "proj": proj,
        "exp": exp,
        "description": experiment.description,
        "metric": experiment.metric,
        "metric_mode": experiment.metric_mode,
        "runs": [
            {
                "name": run.name,
                "folder": run.folder,
                "config": run.config,
                "jobs": list(run.jobs),
                "overrides": dict(run.overrides),
                **({"ckpt": run.ckpt} if run.ckpt else {}),  # when set: old params kept
            }
            for run in experiment.runs.values()
        ],
        **({"search": list(experiment.search.space)} if experiment.search else {}),
    }


def declared_modes(registry, proj: str, exp: str) -> dict[str, str]:
    """{metric: mode} for an experiment that declares both (the plot rule's params)."""
    experiment = registry.experiment(proj, exp)
    if experiment.metric and experiment.metric_mode:
        return {experiment.metric: experiment.metric_mode}
    return {}


def project_spec(registry, proj: str) -> dict[str, Any]:
    project = registry.project(proj)
    return {
        "proj": proj,
        "description": project.description,
        "experiments": [
            experiment_spec(registry, proj, e.name)
            for e in project.experiments.values()
            if e.runs or e.search
        ],
    }


@dataclass
class ExperimentSummary:
    """The tables of one experiment; rows are dicts keyed by column name."""

    proj: str
    exp: str
    description: str
    runs: list[dict[str, Any]]
    points: list[dict[str, Any]]
    params: list[str]  # what varies between points: "config" and/or override paths
    metrics: list[str]  # test metric names found in the records
    metric: str | None  # the metric that ranks the points
    mode: str  # "min" or "max"
    metric_source: str  # "the registry" or "default"
    search: list[str] | None = None  # a search's space paths (None: not a search)
    best: dict[str, Any] | None = None  # the best point's row
    label_params: list[str] = field(default_factory=list)  # what tells the ranked points apart
    run_columns: list[str] = field(default_factory=list)
    point_columns: list[str] = field(default_factory=list)


# What tells the runs of one point apart: a point's metrics are the mean over its seeds and its
# folds (k-fold cross-validation, dltemplate.registry.sweeps).
PER_RUN = ("seed", FOLD)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _run_rows(spec: Mapping[str, Any]) -> tuple[list[dict], list[str], list[str]]:
    rows, paths, metrics = [], [], set()
    for run in spec["runs"]:
        folder = Path(run["folder"])
        layout = RunLayout.at(folder)
        fit = read_json(layout.done("fit"), default=None)
        test = read_json(layout.done("test"), default=None)
        done = [j for j in run["jobs"] if Path(layout.done(j)).is_file()]
        overrides = run["overrides"]
        row = {
            "run": run["name"],
            "status": _status(run, done, fit),
            "config": run["config"],
            "seed": overrides.get("seed", (fit or {}).get("seed")),
        }
        for path, value in overrides.items():
            if path not in PER_RUN:
                row[path] = value
                if path not in paths:
                    paths.append(path)
        test_metrics = {**(test or {}).get("metrics", {}), **_ranking_val_metric(spec, fit)}
        metrics.update(test_metrics)
        row.update(test_metrics)
        row["epochs"] = (fit or {}).get("epochs")
        row["fit_seconds"] = (fit or {}).get("fit_seconds")
        rows.append(row)
    for run, row in zip(spec["runs"], rows, strict=True):  # defaults, as the run used them
        missing = [p for p in paths if p not in row]
        if missing:
            hparams = _hparams(RunLayout.at(run["folder"]))
            row.update({p: v for p in missing if (v := _used_value(hparams, p)) is not _UNSET})
    return rows, paths, sorted(metrics)


_UNSET = object()


def _record_of(metric: str) -> str:
    """The record a run's value of `metric` comes from."""
    return "fit.done" if metric.startswith("val/") else "test.done"


def _ranking_val_metric(spec: Mapping[str, Any], fit: Mapping[str, Any] | None) -> dict:
    """{metric: value} when the experiment ranks by a `val/` metric (a search may), from the
    run's fit.done, which holds the fit's last val/ metrics; else {}."""
    metric = spec.get("metric")
    fit_metrics = (fit or {}).get("metrics", {})
    if metric and _record_of(metric) == "fit.done" and metric in fit_metrics:
        return {metric: fit_metrics[metric]}
    return {}


def _status(run: Mapping[str, Any], done: list[str], fit: Mapping[str, Any] | None) -> str:
    """done, partial or not run; `pruned` for a search trial that its study stopped early."""
    if (fit or {}).get("pruned"):
        return "pruned"
    return "done" if len(done) == len(run["jobs"]) else "partial" if done else "not run"


def _hparams(layout: RunLayout) -> dict[str, Any]:
    """The values a run's fit recorded (hparams.yaml), or {} before its fit."""
    import yaml

    try:
        data = yaml.safe_load(Path(layout.hparams).read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _used_value(hparams: Mapping[str, Any], path: str) -> Any:
    """The value at dotted `path` of a run's hparams (`task_wrapper.model.width`), or _UNSET."""
    node: Any = hparams
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _UNSET
        node = node[part]
    return node


def _stats(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def summarize_experiment(spec: Mapping[str, Any]) -> ExperimentSummary:
    """Read the records of an experiment's runs and rank its points (see the module doc)."""
    rows, paths, metrics = _run_rows(spec)
    groups: dict[tuple[str, str | None, str], list[dict]] = {}
    for run, row in zip(spec["runs"], rows, strict=True):
        rest = {k: v for k, v in run["overrides"].items() if k not in PER_RUN}
        # runs of other checkpoints are other points, whatever their config and overrides
        groups.setdefault((run["config"], run.get("ckpt"), _key(rest)), []).append(row)
    distinct = {c: {_key(r.get(c)) for r in rows} for c in ("config", *paths)}
    params = [c for c in ("config", *paths) if len(distinct[c]) > 1]
    metric = spec.get("metric") or metric_policy.default_metric(metrics)
    mode = metric_policy.direction(metric, spec.get("metric_mode")) if metric else "max"
    points = []
    for members in groups.values():
        point = {p: members[0].get(p) for p in params}
        point["runs"] = " ".join(r["run"] for r in members)
        point["n"] = len(members)
        values = {m: [r[m] for r in members if r.get(m) is not None] for m in metrics}
        point["done"] = max((len(v) for v in values.values()), default=0)
        point["pruned"] = any(r["status"] == "pruned" for r in members)
        for m in metrics:
            point[f"{m} mean"], point[f"{m} std"] = _stats(values[m])
        point["fit_seconds mean"], _ = _stats(
            [r["fit_seconds"] for r in members if r.get("fit_seconds") is not None]
        )
        points.append(point)
    summary = ExperimentSummary(
        proj=spec["proj"],
        exp=spec["exp"],
        description=spec.get("description", ""),
        runs=rows,
        points=points,
        params=params,
        metrics=metrics,
        metric=metric,
        mode=mode,
        metric_source="the registry" if spec.get("metric") else "default",
        search=spec.get("search"),
    )
    _rank(summary)
    summary.run_columns = [
        "run",
        "status",
        "config",
        "seed",
        *paths,
        *metrics,
        "epochs",
        "fit_seconds",
    ]
    summary.point_columns = [
        "rank",
        *params,
        "runs",
        "n",
        "done",
        *(f"{m} {s}" for m in metrics for s in ("mean", "std")),
        *([f"{metric} delta"] if metric else []),
        "fit_seconds mean",
        *(["pruned"] if any(p["pruned"] for p in points) else []),
    ]
    return summary


def _rank(summary: ExperimentSummary) -> None:
    """Order-preserving: each point gets its rank and its gap to the best by the metric."""
    column = f"{summary.metric} mean"
    if summary.metric is None:
        for point in summary.points:
            point["rank"] = None
        return
    # A pruned point (a search trial stopped early) is marked, never ranked: its metrics come
    # from a fit cut short.
    ranked = [p for p in summary.points if p.get(column) is not None and not p.get("pruned")]
    ranked.sort(key=lambda p: p[column], reverse=summary.mode == "max")
    for point in summary.points:
        point["rank"] = None
        point[f"{summary.metric} delta"] = None
    for rank, point in enumerate(ranked, 1):
        point["rank"] = rank
        point[f"{summary.metric} delta"] = point[column] - ranked[0][column]
    summary.best = ranked[0] if ranked else None
    summary.label_params = [
        q for q in summary.params if len({_key(p.get(q)) for p in ranked}) > 1
    ] or summary.params


def point_label(summary: ExperimentSummary, point: Mapping[str, Any]) -> str:
    """`task_wrapper.lr=0.01, data_wrapper.batch_size=32`: what sets the point apart."""
    params = summary.label_params or summary.params
    if not params:
        return "all runs" if point["n"] > 1 else point["runs"]
    return ", ".join(f"{p}={_text(point.get(p))}" for p in params)


def best_line(summary: ExperimentSummary) -> str:
    """ "Best: ... test/acc 0.9537 ± 0.0041 over 3 seeds (...); next: ... (-0.0120)"."""
    if summary.best is None:
        return f"No finished run has {summary.metric or 'a test metric'} yet."
    best, metric = summary.best, summary.metric
    text = (
        f"Best by {metric} ({summary.mode}): {point_label(summary, best)}: "
        f"{_pm(best[f'{metric} mean'], best[f'{metric} std'])} over {best['done']} "
        f"run{'s' if best['done'] != 1 else ''} ({best['runs']})"
    )
    runner = next((p for p in summary.points if p["rank"] == 2), None)
    if runner is not None:
        text += (
            f"; next: {point_label(summary, runner)}: "
            f"{_pm(runner[f'{metric} mean'], runner[f'{metric} std'])} "
            f"({runner[f'{metric} delta']:+.4g})"
        )
    return text


# ---- writing ----


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def search_lines(summary: ExperimentSummary) -> list[str]:
    """A search's best trial: its parameters in full, and the `--set` options that declare a
    run of it (`main.py add-run ... --set ...`); nothing for other experiments."""
    if summary.search is None or summary.best is None:
        return []
    best = summary.best
    first = best["runs"].split()[0]
    config = next(r["config"] for r in summary.runs if r["run"] == first)
    sets = " ".join(f"--set {path}={best.get(path)!r}" for path in summary.search)
    return [
        f"Best parameters (trial run{'s' if best['n'] > 1 else ''} {best['runs']}):",
        "",
        *(f"- `{path}`: {best.get(path)!r}" for path in summary.search),
        "",
        "A run of them: `main.py add-run -p "
        + f"{summary.proj} -e <exp> -n best -c {config} {sets}`",
        "",
    ]


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return ""
    return f"{mean:.4g} ± {std:.2g}" if std is not None else f"{mean:.4g}"


def _csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        cells = []
        for c in columns:
            value = row.get(c)
            if isinstance(value, list | dict):
                value = json.dumps(value)
            cells.append("" if value is None else value)
        writer.writerow(cells)
    return buffer.getvalue()


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join(" --- " for _ in headers) + "|")
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def experiment_markdown(summary: ExperimentSummary, plot_name: str = "summary.png") -> str:
    metric = summary.metric
    done = sum(r["status"] in ("done", "pruned") for r in summary.runs)
    pruned = sum(r["status"] == "pruned" for r in summary.runs)
    lines = [
        f"# {summary.proj}/{summary.exp}: {summary.description}",
        "",
        f"{len(summary.runs)} runs ({done} done"
        + (f", {pruned} of them pruned by the search" if pruned else "")
        + f") at {len(summary.points)} points. "
        + (
            f"Points are ranked by {metric} ({summary.mode}; set by {summary.metric_source})."
            if metric
            else "No test metrics yet."
        ),
        "",
        f"**{best_line(summary)}**",
        "",
        *search_lines(summary),
        "## Points (mean ± std over seeds)",
        "",
    ]
    point_headers = ["rank", *summary.params, *summary.metrics]
    if metric:
        point_headers.append(f"Δ {metric}")
    point_headers += ["runs"]
    point_rows = []
    for p in sorted(summary.points, key=lambda p: (p["rank"] is None, p["rank"] or 0)):
        rank = "pruned" if p.get("pruned") else _text(p["rank"])
        row = [rank, *(_text(p.get(c)) for c in summary.params)]
        row += [_pm(p[f"{m} mean"], p[f"{m} std"]) for m in summary.metrics]
        if metric:
            delta = p[f"{metric} delta"]
            row.append("" if delta is None else "best" if p["rank"] == 1 else f"{delta:+.4g}")
        row.append(p["runs"])
        point_rows.append(row)
    lines += [_md_table(point_headers, point_rows), "", f"![{metric} by parameter]({plot_name})"]
    lines += ["", "## Runs", ""]
    run_headers = ["run", "status", *summary.params, "seed", *summary.metrics, "epochs", "fit s"]
    run_rows = [
        [
            r["run"],
            r["status"],
            *(_text(r.get(c)) for c in summary.params),
            _text(r.get("seed")),
            *(_text(r.get(m)) for m in summary.metrics),
            _text(r.get("epochs")),
            _text(r.get("fit_seconds")),
        ]
        for r in summary.runs
    ]
    lines += [_md_table(run_headers, run_rows), ""]
    return "\n".join(lines)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def plot_experiment(summary: ExperimentSummary, out_png: str | Path) -> None:
    """The metric (mean ± std over seeds) against each varying parameter, one panel each.

    Points that share the other parameters' values are joined by a line (a legend names them
    while there are at most 8 such lines). Numeric parameters spanning 10x or more get a log
    axis; other parameters are categories in order of appearance.
    """
    from matplotlib.figure import Figure

    metric = summary.metric
    done = [p for p in summary.points if metric and p.get(f"{metric} mean") is not None]
    # Only what varies among the plotted points (an unfinished run's blank is no variation).
    panels = [q for q in summary.label_params if len({_key(p.get(q)) for p in done}) > 1]
    panels = panels or ["point"]
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(5 * columns, 3.8 * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    for ax, param in zip(axes, panels, strict=False):
        ax.set_ylabel(f"{metric}" if metric else "")
        ax.set_xlabel(param)
        ax.grid(alpha=0.3)
        if not done:
            ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
            continue
        values = [p.get(param) if param != "point" else point_label(summary, p) for p in done]
        numeric = _numeric(values)
        categories = list(dict.fromkeys(_text(v) for v in values))
        others = [q for q in panels if q not in (param, "point")]
        series: dict[str, list[dict]] = {}
        for p in done:
            label = ", ".join(f"{q}={_text(p.get(q))}" for q in others)
            series.setdefault(label, []).append(p)
        joined = len(series) <= 8
        for label, members in series.items():
            if numeric:
                members = sorted(members, key=lambda p: p.get(param))
                xs = [p.get(param) for p in members]
            else:
                xs = [
                    categories.index(
                        _text(p.get(param) if param != "point" else point_label(summary, p))
                    )
                    for p in members
                ]
            ys = [p[f"{metric} mean"] for p in members]
            errors = [p[f"{metric} std"] or 0.0 for p in members]
            ax.errorbar(
                xs,
                ys,
                yerr=errors,
                marker="o",
                capsize=3,
                linestyle="-" if joined else "none",
                label=label if joined and label else None,
            )
        if numeric:
            positive = [v for v in values if v > 0]
            if len(positive) == len(values) and max(values) / min(values) >= 10:
                ax.set_xscale("log")
            ticks = sorted(set(values))
            if len(ticks) <= 8:  # the swept values themselves, as the names write them
                ax.minorticks_off()
                ax.set_xticks(ticks, [_text(v) for v in ticks])
        else:
            ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right")
        if joined and others and len(series) > 1:
            ax.legend(fontsize="small")
        if summary.best is not None:
            best = summary.best[f"{metric} mean"]
            ax.axhline(best, color="grey", linewidth=0.8, linestyle=":")
    title = f"{summary.proj}/{summary.exp}: {metric or 'no metric'} (mean ± std over seeds)"
    figure.suptitle(title)
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    tmp = Path(out_png).with_name(f".{Path(out_png).name}.tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(out_png)


def write_experiment_summary(
    *,
    experiment: Mapping[str, Any],
    out_csv: str | Path,
    out_points: str | Path,
    out_md: str | Path,
    out_png: str | Path,
) -> ExperimentSummary:
    """Write the four summary files of an experiment (see the module doc).

    Raises a UserError when the registry names a metric that no run's test.done (or fit.done,
    for a val/ metric) holds.
    """
    summary = summarize_experiment(experiment)
    explicit = summary.metric_source == "the registry"
    if explicit and summary.metric not in summary.metrics:
        known = ", ".join(summary.metrics) or "none"
        raise UserError(
            f"Experiment {summary.proj}/{summary.exp}: metric {summary.metric!r} is in no "
            f"run's {_record_of(summary.metric)} (they hold: {known}); fix `metric:` in the "
            "registry"
        )
    plot_experiment(summary, out_png)
    write_text_atomic(out_points, _csv_text(summary.point_columns, summary.points))
    write_text_atomic(out_md, experiment_markdown(summary, Path(out_png).name))
    write_text_atomic(out_csv, _csv_text(summary.run_columns, summary.runs))
    return summary


PROJECT_COLUMNS = [
    "experiment",
    "description",
    "runs",
    "done",
    "points",
    "metric",
    "mode",
    "best",
    "best_runs",
    "best_mean",
    "best_std",
]


def project_rows(project: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for spec in project["experiments"]:
        summary = summarize_experiment(spec)
        best = summary.best or {}
        rows.append(
            {
                "experiment": summary.exp,
                "description": summary.description,
                "runs": len(summary.runs),
                "done": sum(r["status"] == "done" for r in summary.runs),
                "points": len(summary.points),
                "metric": summary.metric,
                "mode": summary.mode if summary.metric else None,
                "best": point_label(summary, best) if best else None,
                "best_runs": best.get("runs"),
                "best_mean": best.get(f"{summary.metric} mean"),
                "best_std": best.get(f"{summary.metric} std"),
            }
        )
    return rows


def write_project_summary(
    *, project: Mapping[str, Any], out_csv: str | Path, out_md: str | Path
) -> list[dict[str, Any]]:
    """One row per experiment of the project: its size and its best point by its metric."""
    rows = project_rows(project)
    headers = ["experiment", "runs", "done", "metric", "best point", "mean ± std", "runs of it"]
    table = [
        [
            f"[{r['experiment']}]({r['experiment']}/summary.md)",
            str(r["runs"]),
            str(r["done"]),
            f"{r['metric'] or ''} ({r['mode']})" if r["metric"] else "",
            r["best"] or "",
            _pm(r["best_mean"], r["best_std"]),
            r["best_runs"] or "",
        ]
        for r in rows
    ]
    text = f"# {project['proj']}: {project['description']}\n\n{_md_table(headers, table)}\n"
    write_text_atomic(out_md, text)
    write_text_atomic(out_csv, _csv_text(PROJECT_COLUMNS, rows))
    return rows


def summary_data(registry, proj: str, exp: str) -> dict[str, Any]:
    """For `main.py ls -p P -e E` (and its --json): the points' means and stds over seeds,
    their ranks and the best point, as summary_points.csv and summary.md have them."""
    summary = summarize_experiment(experiment_spec(registry, proj, exp))
    return {
        "metric": summary.metric,
        "mode": summary.mode if summary.metric else None,
        "params": summary.label_params,
        "metrics": summary.metrics,
        "points": [{c: p.get(c) for c in summary.point_columns} for p in summary.points],
        "best": best_line(summary) if summary.metric else None,
    }


def print_summary(console, data: Mapping[str, Any]) -> None:
    """Print `summary_data`: the points table when some point has several runs (seeds), and
    the best-point line."""
    from rich.table import Table

    points = [p for p in data["points"] if p["rank"]]  # unfinished ones show in the runs table
    if any(p["n"] > 1 for p in data["points"]) and points:
        table = Table(title="points (mean ± std over seeds)")
        for column in ("rank", *data["params"], *data["metrics"], "done/n"):
            table.add_column(column)
        for p in sorted(points, key=lambda p: p["rank"]):
            table.add_row(
                _text(p["rank"]),
                *(_text(p.get(c)) for c in data["params"]),
                *(_pm(p[f"{m} mean"], p[f"{m} std"]) for m in data["metrics"]),
                f"{p['done']}/{p['n']}",
            )
        console.print(table)
    if data["best"]:
        console.print(data["best"], markup=False, highlight=False)
