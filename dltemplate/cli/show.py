"""`main.py show <proj>/<exp>/<run>`: one run's record, hyperparameters, metrics and files."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from dltemplate.cli.user_paths import UserPath
from dltemplate.errors import UserError
from dltemplate.layout import JOB_TYPES, RunLayout, results_root
from dltemplate.layout import REGISTRY as REGISTRY_DIR
from dltemplate.records import DONE_FIELDS, JOB_RECORD_FIELDS, read_record, read_yaml_record
from dltemplate.registry.names import check_name

STATE_STYLE = {"done": "green", "running": "cyan", "stale": "yellow", "failed": "red"}


def parse_run_key(text: str) -> tuple[str, str, str]:
    """`proj/exp/run` (or `results/proj/exp/run/`) -> `(proj, exp, run)`."""
    parts = [p for p in text.strip().split("/") if p]
    root = [p for p in results_root().split("/") if p]
    if parts[: len(root)] == root:
        parts = parts[len(root) :]
    if len(parts) != 3:
        raise UserError(
            f"Expected a run as <proj>/<exp>/<run> (e.g. digits/baseline/cnn), got {text!r}"
        )
    for kind, name in zip(("project", "experiment", "run"), parts, strict=True):
        check_name(kind, name)
    return parts[0], parts[1], parts[2]


def _declared(registry: Any, proj: str, exp: str, name: str) -> bool:
    project = registry.projects.get(proj)
    experiment = project.experiments.get(exp) if project else None
    return experiment is not None and name in experiment.runs


def _done_record(path: Path) -> dict[str, Any] | None:
    return read_record(path, DONE_FIELDS)


def _job_record(path: Path) -> dict[str, Any]:
    return read_record(path, JOB_RECORD_FIELDS) or {}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _job_facts(job: str, record: dict[str, Any], layout: RunLayout) -> str:
    def name(path: Any) -> str:
        return Path(str(path)).name if path else "-"

    if job == "fit":
        kept = [name(record.get("best_checkpoint")), *(p.name for p in layout.epoch_checkpoints())]
        return (
            f"{record.get('epochs')} epochs, {record.get('global_step')} steps, "
            f"kept {', '.join(kept)}"
        )
    if job in ("validate", "test"):
        return f"from {name(record.get('checkpoint'))}"
    return f"{record.get('rows')} rows in {name(record.get('predictions'))}"


def _hparams_tree(tree: Any, data: Any) -> None:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict):
                _hparams_tree(tree.add(f"[bold]{key}[/]"), value)
            else:
                tree.add(
                    f"{key}: [cyan]{value!r}[/]" if isinstance(value, str) else f"{key}: {value}"
                )
    else:
        tree.add(str(data))


def cmd_show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.tree import Tree

    from dltemplate.registry.model import load_registry
    from dltemplate.results.run_records import job_record_path
    from dltemplate.results.run_status import run_statuses

    proj, exp, name = parse_run_key(args.run)
    layout = RunLayout.of(proj, exp, name)
    folder = layout.path
    # A registry that does not load is an error of its own, never "not declared".
    registry = load_registry(args.registry) if Path(args.registry).is_dir() else None
    run = None
    if registry is not None and _declared(registry, proj, exp, name):
        run = registry.run(proj, exp, name)
    if run is None and not folder.is_dir():
        raise UserError(
            f"No run {proj}/{exp}/{name}: not in the registry {args.registry} and no folder "
            f"{folder}; list the runs with: main.py ls -p {proj} -e {exp}"
        )
    console = Console()

    # The run as declared, and its jobs' records.
    table = Table(title=f"run {proj}/{exp}/{name}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    if run is not None:
        ids = registry.project(proj).id, registry.experiment(proj, exp).id
        table.add_row(
            "ids", f"project {ids[0]}, experiment {ids[1]} (main.py -p {ids[0]} -e {ids[1]})"
        )
        table.add_row("description", run.description)
        table.add_row("config", run.config)
        table.add_row("jobs", ", ".join(run.jobs))
        overrides = ", ".join(f"{k}={v!r}" for k, v in run.overrides.items())
        table.add_row("overrides", overrides or "-")
        table.add_row("declared in", run.source)
    else:
        table.add_row("registry", f"not declared in {args.registry} (its folder remains)")
    table.add_row("folder", str(folder))
    console.print(table)

    # Each job: its state, its record (when, where, which commit) and what its .done says.
    states = {}
    if run is not None:
        states = run_statuses([run], check_stale=False)[0].get(run.key, {})
    jobs = Table(title="jobs", title_justify="left")
    for column in ("job", "state", "started", "seconds", "where", "result"):
        jobs.add_column(column)
    records: dict[str, dict[str, Any]] = {}
    for job in JOB_TYPES:
        record = _done_record(Path(layout.done(job)))
        if record is not None:
            records[job] = record
        log = _job_record(job_record_path(folder, job))
        if job in states:
            state = states[job].status
            reason = states[job].reason
        elif record is not None:
            state, reason = "done", ""
        else:
            state = "not declared" if run is not None else (log.get("status") or "not run")
            reason = ""
        git = log.get("git") or {}
        commit = (git.get("commit") or "")[:8] + ("+changes" if git.get("dirty") else "")
        where = "@".join(p for p in (str(log.get("host") or ""), commit) if p)
        result = _job_facts(job, record, layout) if record is not None else reason
        jobs.add_row(
            job,
            f"[{STATE_STYLE.get(state, 'white')}]{state}[/]",
            str(log.get("started") or ""),
            str(log.get("seconds") or ""),
            where,
            result,
        )
    console.print(jobs)

    trackers = Table(title="tracker runs", title_justify="left")
    for column in ("job", "tracker", "run", "where"):
        trackers.add_column(column)
    for tracker_file in sorted((folder / "trackers").glob("*.json")):
        for tracker, info in (read_record(tracker_file) or {}).items():
            if isinstance(info, dict):
                ident = info.get("run_id") or info.get("id") or ""
                where = info.get("tracking_uri") or info.get("mode") or ""
                trackers.add_row(tracker_file.stem, tracker, str(ident), str(where))
    if trackers.row_count:
        console.print(trackers)

    # Metrics: the fit's last values, the validation's and the test's, side by side.
    sources = {
        "fit (last epoch)": records.get("fit", {}).get("metrics") or {},
        "validate (best ckpt)": records.get("validate", {}).get("metrics") or {},
        "test (best ckpt)": records.get("test", {}).get("metrics") or {},
    }
    if any(sources.values()):
        metrics = Table(title="metrics", title_justify="left")
        for column in ("metric", "value", "from"):
            metrics.add_column(column, justify="right" if column == "value" else "left")
        for source, values in sources.items():
            for key, value in values.items():
                metrics.add_row(key, "-" if value is None else f"{value:.4f}", source)
        console.print(metrics)

    # Hyperparameters, as the fit recorded them.
    hparams_file = Path(layout.hparams)
    hparams = read_yaml_record(hparams_file)
    if hparams is not None:
        tree = Tree(f"[bold]hparams[/] ({hparams_file})")
        _hparams_tree(tree, hparams)
        console.print(tree)

    # Files, one level deep (folders with their total size).
    if folder.is_dir():
        files = Table(title="files", title_justify="left")
        for column in ("path", "size", "modified"):
            files.add_column(column, justify="right" if column == "size" else "left")
        for path in sorted(folder.iterdir(), key=lambda p: (p.is_file(), p.name)):
            if path.name.startswith("."):
                continue
            count = (
                f" ({sum(1 for p in path.rglob('*') if p.is_file())} files)"
                if path.is_dir()
                else ""
            )
            modified = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
            label = f"{path.name}/{count}" if path.is_dir() else path.name
            files.add_row(label, _human(_size(path)), modified)
        console.print(files)
    else:
        console.print(f"[yellow]No folder {folder} yet: the run has not started.[/]")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("show", help="show a run's record, hyperparameters, metrics and files")
    parser.add_argument("run", help="the run as <proj>/<exp>/<run>, e.g. digits/baseline/cnn")
    parser.add_argument(
        "--registry", default=REGISTRY_DIR, action=UserPath, help="the registry folder"
    )
    parser.set_defaults(func=cmd_show)
