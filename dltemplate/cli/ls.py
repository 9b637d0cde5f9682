"""`main.py ls`: projects, experiments and runs as rich tables (`--json` for scripts).

Job states come from the run folders and Snakemake's own metadata (dltemplate.results.run_status),
never from a state file of ours.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dltemplate.cli.options import add_registry_option
from dltemplate.config.root import JOB_TYPES
from dltemplate.errors import UserError
from dltemplate.layout import DEFAULT_JOBS
from dltemplate.results.summary import print_summary, summary_data

STYLES = {
    "done": "green",
    "pruned": "magenta",
    "stale": "yellow",
    "failed": "bold red",
    "running": "cyan",
}


def _when(created: str) -> str:
    return created[:16].replace("T", " ") if created else ""


def _complete(run) -> bool:
    return all(Path(run.layout.done(job)).is_file() for job in run.jobs)


def projects_data(registry) -> dict[str, Any]:
    return {
        "projects": [
            {
                "id": project.id,
                "name": project.name,
                "description": project.description,
                "created": project.created or None,
                "source": project.source,
                "experiments": [
                    {
                        "id": exp.id,
                        "name": exp.name,
                        "description": exp.description,
                        "runs": len(exp.runs),
                    }
                    for exp in project.experiments.values()
                ],
            }
            for project in registry.projects.values()
        ]
    }


def experiments_data(project) -> dict[str, Any]:
    return {
        "project": project.name,
        "id": project.id,
        "description": project.description,
        "created": project.created or None,
        "experiments": [
            {
                "id": exp.id,
                "name": exp.name,
                "description": exp.description,
                "created": exp.created or None,
                "runs": len(exp.runs),
                "complete": sum(_complete(run) for run in exp.runs.values()),
            }
            for exp in project.experiments.values()
        ],
    }


def runs_data(experiment, *, check_stale: bool, registry: str) -> dict[str, Any]:
    from dltemplate.results.run_status import main_metric, run_statuses, run_test_metrics

    states, note = run_statuses(
        experiment.runs.values(), check_stale=check_stale, registry=registry
    )
    runs = []
    for run in experiment.runs.values():
        metrics = run_test_metrics(run)
        metric = main_metric(metrics, experiment.metric)
        runs.append(
            {
                "name": run.name,
                "description": run.description,
                "created": run.created or None,
                "config": run.config,
                "overrides": dict(run.overrides),
                "jobs": {job: s.as_dict() for job, s in states[run.key].items()},
                "main_metric": {"name": metric, "value": metrics[metric]} if metric else None,
                "metrics": metrics,
            }
        )
    return {
        "project": experiment.proj,
        "experiment": experiment.name,
        "description": experiment.description,
        "created": experiment.created or None,
        "runs": runs,
        "note": note,
    }


def print_projects(console, data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="Projects")
    for column in ("id", "project", "description", "created", "experiments (runs)"):
        table.add_column(column)
    for project in data["projects"]:
        exps = ", ".join(f"{e['id']} {e['name']} ({e['runs']})" for e in project["experiments"])
        table.add_row(
            str(project["id"]),
            project["name"],
            project["description"],
            _when(project["created"]),
            exps or "-",
        )
    console.print(table)


def print_experiments(console, data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"{data['project']} (id {data['id']}): {data['description']}")
    for column in ("id", "experiment", "runs", "complete", "created", "description"):
        table.add_column(column)
    for exp in data["experiments"]:
        table.add_row(
            str(exp["id"]),
            exp["name"],
            str(exp["runs"]),
            str(exp["complete"]),
            _when(exp["created"]),
            exp["description"],
        )
    console.print(table)


def print_runs(console, data: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    title = f"{data['project']}/{data['experiment']}: {data['description']}"
    metric_names = {r["main_metric"]["name"] for r in data["runs"] if r["main_metric"]}
    metric_column = next(iter(metric_names)) if len(metric_names) == 1 else "main metric"
    # The usual jobs, and validate where a run declares it.
    jobs = [j for j in JOB_TYPES if j in DEFAULT_JOBS or any(j in r["jobs"] for r in data["runs"])]
    table = Table(title=title)
    for column in ("run", *jobs, metric_column, "created", "description"):
        table.add_column(column)
    for run in data["runs"]:
        cells = []
        for job in jobs:
            state = run["jobs"].get(job)
            status = state["status"] if state else "-"
            cells.append(Text(status, style=STYLES.get(status, "dim")))
        metric = run["main_metric"]
        value = ""
        if metric:
            value = f"{metric['value']:.4f}"
            if metric_column == "main metric":
                value = f"{metric['name']}={value}"
        table.add_row(run["name"], *cells, value, _when(run["created"]), run["description"])
    console.print(table)
    reasons = [
        f"  {run['name']}:{job}: {state['status']}: {state['reason']}"
        for run in data["runs"]
        for job, state in run["jobs"].items()
        if state.get("reason")
    ]
    if reasons:
        console.print("\n".join(reasons), markup=False, highlight=False)
    if data["note"]:
        console.print(f"Note: {data['note']}", markup=False, style="yellow")
    print_summary(console, data["summary"])  # the points over seeds and the best, as summary.md


def cmd_ls(args: argparse.Namespace) -> int:
    from rich.console import Console

    from dltemplate.registry.model import load_registry

    if args.exp and not args.proj:
        raise UserError("ls -e EXP needs its project: ls -p PROJ -e EXP")
    registry = load_registry(args.registry)
    if not args.proj:
        data, show = projects_data(registry), print_projects
    else:
        project = registry.projects.get(args.proj)
        if project is None:
            raise UserError(
                f"No project {args.proj!r} in {args.registry}; "
                f"known: {', '.join(registry.projects) or 'none'}"
            )
        if not args.exp:
            data, show = experiments_data(project), print_experiments
        else:
            experiment = registry.experiment(args.proj, args.exp)
            data = runs_data(experiment, check_stale=not args.fast, registry=args.registry)
            data["summary"] = summary_data(registry, args.proj, args.exp)
            show = print_runs
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        show(Console(), data)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ls", help="list projects, experiments and runs")
    parser.add_argument("-p", "--proj", help="a project: list its experiments")
    parser.add_argument("-e", "--exp", help="an experiment of the project: list its runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="skip asking Snakemake which done jobs are stale (about a second)",
    )
    add_registry_option(parser)
    parser.set_defaults(func=cmd_ls)
