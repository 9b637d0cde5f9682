"""`main.py rm`: remove a project, an experiment or a run from the registry (results are kept
unless `--purge`)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from dltemplate.cli.options import add_registry_option
from dltemplate.errors import UserError
from dltemplate.layout import ProjectLayout


def confirm(question: str) -> bool:
    print(f"{question} [y/N] ", end="", flush=True, file=sys.stderr)
    answer = sys.stdin.readline()
    if not answer:
        raise UserError("No answer (stdin is closed); pass -y to remove without asking")
    return answer.strip().lower() in ("y", "yes")


def cmd_rm(args: argparse.Namespace) -> int:
    from dltemplate.registry import edit as registry_edit
    from dltemplate.registry.model import load_registry
    from dltemplate.results.run_status import run_statuses

    if args.name is not None and args.exp is None:
        raise UserError("Removing a run needs its experiment: rm -p PROJ -e EXP -n RUN")
    registry = load_registry(args.registry)
    project = registry.projects.get(args.proj)
    if project is None:
        raise UserError(
            f"No project {args.proj!r} in the registry {args.registry}; "
            f"known: {', '.join(registry.projects) or 'none'}"
        )
    runs = [run for run in registry.runs() if run.proj == args.proj]
    what, folder = (
        f"project {args.proj} (its file {project.source})",
        ProjectLayout.of(args.proj).folder,
    )
    if args.exp is not None:
        runs = [run for run in runs if run.exp == args.exp]
        what, folder = f"experiment {args.proj}/{args.exp}", f"{folder}/{args.exp}"
        if args.exp not in project.experiments:
            raise UserError(f"No experiment {args.proj}/{args.exp} in {project.source}")
    if args.name is not None:
        runs = [run for run in runs if run.name == args.name]
        what, folder = f"run {args.proj}/{args.exp}/{args.name}", f"{folder}/{args.name}"
        if not runs:
            raise UserError(f"No run {args.proj}/{args.exp}/{args.name} in {project.source}")
    # Whatever the removal would refuse (a run of a sweep, say), refuse before asking.
    registry_edit.remove(args.registry, args.proj, args.exp, args.name, write=False)
    has_results = Path(folder).exists()
    if args.purge and has_results:
        states, _ = run_statuses(runs, check_stale=False, registry=args.registry)
        running = [
            f"{key}:{job}"
            for key, jobs in states.items()
            for job, s in jobs.items()
            if s.status == "running"
        ]
        if running:
            raise UserError(f"Jobs still running: {', '.join(running)}; stop them before --purge")
    count = f" and its {len(runs)} run(s)" if args.name is None else ""
    if args.purge and has_results:
        effect = f"and DELETE its results {folder}/"
    elif has_results:
        effect = f"(its results in {folder}/ are kept; --purge deletes them)"
    else:
        effect = "(it has no results)"
    question = f"Remove {what}{count} from the registry {effect}?"
    if not args.yes and not confirm(question):
        print("Nothing removed.", file=sys.stderr)
        return 1
    registry_edit.remove(args.registry, args.proj, args.exp, args.name)
    if args.purge and has_results:
        shutil.rmtree(folder)
    print(f"Removed {what}{count}" + (f"; deleted {folder}/" if args.purge and has_results else ""))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("rm", help="remove a project, experiment or run from the registry")
    parser.add_argument("-p", "--proj", required=True, help="the project")
    parser.add_argument("-e", "--exp", help="an experiment of the project")
    parser.add_argument("-n", "--name", help="a run of the experiment")
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--purge", action="store_true", help="also delete the results folder (checkpoints too)"
    )
    add_registry_option(parser)
    parser.set_defaults(func=cmd_rm)
