"""The declared run that `main.py debug` and `main.py lr-find` work on: the JobSpec its jobs
get from the workflow (dltemplate.workflow.targets.job_spec), with the `--set` overrides over
its own, and the threads of its fit."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dltemplate.cli.common import SET_SOURCE, add_set_option, set_overrides, workflow_settings
from dltemplate.cli.options import add_registry_option
from dltemplate.registry.model import Run
from dltemplate.workflow.job_spec import JobSpec


@dataclass(frozen=True)
class DeclaredRun:
    run: Run
    spec: JobSpec  # the seed in it is the workflow's; a `seed` override wins at build time
    threads: int


def add_declared_run_parser(
    sub: argparse._SubParsersAction,
    name: str,
    doc: str,
    summary: str,
    func: Callable,
    one_run: bool = True,
) -> argparse.ArgumentParser:
    """The command `name` (its description: `doc` after the first paragraph) with `-p -e -n`,
    `--set` and `--registry`; the caller adds its own options. Without `one_run`, -e and -n
    may be left out (the caller checks what it needs)."""
    parser = sub.add_parser(name, help=summary, description=doc.split("\n\n", 1)[1])
    parser.add_argument("-p", "--proj", required=True, help="the project (id or name)")
    parser.add_argument("-e", "--exp", required=one_run, help="the experiment (id or name)")
    parser.add_argument("-n", "--name", required=one_run, help="the declared run")
    add_set_option(parser)
    add_registry_option(parser)
    parser.set_defaults(func=func)
    return parser


def registered_run(args: argparse.Namespace) -> tuple[Run, JobSpec, dict[str, Any]]:
    """The run that `-p -e -n` name, the spec its jobs get, and the workflow settings; an
    unknown project, experiment or run is a one-line error that says which."""
    from dltemplate.registry.model import load_registry
    from dltemplate.workflow.targets import job_spec

    registry = load_registry(args.registry)
    registry.project(args.proj)
    registry.experiment(args.proj, args.exp)
    run = registry.run(args.proj, args.exp, args.name)
    settings = workflow_settings()
    return run, job_spec(run, int(settings.get("seed", 0))), settings


def declared_run(args: argparse.Namespace) -> DeclaredRun:
    """The run that `-p -e -n` name, with the `--set` overrides over its own; an unknown
    project, experiment or run is a one-line error that says which."""
    if args.debug:  # main.py --debug: tracebacks of the job's errors too (dltemplate.jobs.logs)
        os.environ["DLT_DEBUG"] = "1"
    run, spec, settings = registered_run(args)
    return _with_sets(args, run, spec, settings)


def declared_runs(args: argparse.Namespace) -> list[DeclaredRun]:
    """Every run of project `-p` (of its experiment `-e` when given), each as `declared_run`
    gives it."""
    from dltemplate.registry.model import load_registry
    from dltemplate.workflow.targets import job_spec

    if args.debug:
        os.environ["DLT_DEBUG"] = "1"
    registry = load_registry(args.registry)
    project = registry.project(args.proj)
    names = [args.exp] if args.exp else list(project.experiments)
    settings = workflow_settings()
    seed = int(settings.get("seed", 0))
    return [
        _with_sets(args, run, job_spec(run, seed), settings)
        for exp in names
        for run in registry.experiment(args.proj, exp).runs.values()
    ]


def _with_sets(
    args: argparse.Namespace, run: Run, spec: JobSpec, settings: dict[str, Any]
) -> DeclaredRun:
    sets = set_overrides(args)
    if sets:
        source = f"{SET_SOURCE} or {run.source}"
        spec = dataclasses.replace(spec, overrides={**spec.overrides, **sets}, source=source)
    threads = (settings.get("threads") or {}).get("fit") or 1
    return DeclaredRun(run=run, spec=spec, threads=int(threads))


def add_run_command(target: DeclaredRun, path: str, value: Any, what: str) -> str:
    """The `main.py add-run` line that declares a new run: the same config and overrides, with
    `path` set to `value`."""
    run = target.run
    overrides = {**target.spec.overrides, path: value}
    sets = [
        shlex.quote(f"{key}={item if isinstance(item, str) else json.dumps(item)}")
        for key, item in overrides.items()
    ]
    name = f"{run.name}-{what}"[:64]
    words = [
        *("main.py", "add-run", "-p", run.proj, "-e", run.exp, "-n", name),
        *("-d", shlex.quote(f"{run.name} with {path} from {what}"), "-c", run.config),
    ]
    return " ".join(words + [f"--set {item}" for item in sets])
