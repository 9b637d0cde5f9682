"""`main.py ls`: projects, experiments and runs as rich tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from dltemplate.errors import UserError

REGISTRY_DIR = "configs/projects"


def cmd_ls(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from dltemplate.registry import load_registry
    from dltemplate.summary import run_row

    registry = load_registry(args.registry)
    console = Console()
    if not args.proj:
        table = Table(title="Projects")
        for column in ("project", "description", "experiments", "runs"):
            table.add_column(column)
        for project in registry.projects.values():
            runs = sum(len(e.runs) for e in project.experiments.values())
            table.add_row(
                project.name, project.description, ", ".join(project.experiments), str(runs)
            )
        console.print(table)
        return 0
    project = registry.projects.get(args.proj)
    if project is None:
        raise UserError(
            f"No project {args.proj!r} in {args.registry}; known: {', '.join(registry.projects)}"
        )
    experiments = (
        [project.experiments[args.exp]] if args.exp else list(project.experiments.values())
    )
    for exp in experiments:
        table = Table(title=f"{project.name}/{exp.name}: {exp.description}")
        rows = [run_row(Path(run.folder)) for run in exp.runs.values()]
        metrics = sorted({k for r in rows for k in r if k.startswith("test/")})
        for column in (
            "run",
            *(f"{j}" for j in ("fit", "test", "predict")),
            *metrics,
            "description",
        ):
            table.add_column(column)
        for run, row in zip(exp.runs.values(), rows, strict=True):
            states = [
                ("done" if Path(run.folder, f"{j}.done").is_file() else "not run")
                if j in run.jobs
                else "-"
                for j in ("fit", "test", "predict")
            ]
            values = [f"{row[m]:.4f}" if m in row else "" for m in metrics]
            table.add_row(run.name, *states, *values, run.description)
        console.print(table)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("ls", help="list projects, experiments and runs")
    parser.add_argument("-p", "--proj", help="a project")
    parser.add_argument("-e", "--exp", help="an experiment of the project")
    parser.add_argument("--registry", default=REGISTRY_DIR, help="the registry folder")
    parser.set_defaults(func=cmd_ls)
