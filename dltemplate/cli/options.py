"""What several commands share: the registry option, run declarations, `--set` parsing."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dltemplate.cli.common import add_set_option
from dltemplate.cli.user_paths import UserPath
from dltemplate.config.root import JOB_TYPES
from dltemplate.errors import UserError
from dltemplate.layout import REGISTRY as REGISTRY_DIR
from dltemplate.registry import ids

# Floats as YAML 1.2 reads them; PyYAML (YAML 1.1) reads `1e-3` as text.


def add_registry_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        default=REGISTRY_DIR,
        action=UserPath,
        metavar="DIR",
        help=f"the registry folder (default: {REGISTRY_DIR})",
    )


def add_run_options(parser: argparse.ArgumentParser, *, declaring: bool = True) -> None:
    """`-p -e -n -d -c -r --set`; with `declaring=False` (exec), -d and -c may be left out
    for a run that the registry already declares."""
    parser.add_argument("-p", "--proj", required=True, help="the project")
    parser.add_argument("-e", "--exp", required=True, help="the experiment of the project")
    parser.add_argument("-n", "--name", required=True, help="the run's name")
    extra = "" if declaring else " (needed when the run is new)"
    parser.add_argument(
        "-d", "--desc", required=declaring, help=f"what the run is for, in a few words{extra}"
    )
    parser.add_argument(
        "-c",
        "--config",
        required=declaring,
        action=UserPath,
        help=f"the run's root config file{extra}",
    )
    parser.add_argument(
        "-r",
        "--jobs",
        type=parse_jobs,
        default=None,
        metavar="JOBS",
        help="comma-separated job types: fit,validate,test,predict (default: fit,test,predict)",
    )
    add_set_option(parser)
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="do not build the config to check the overrides first (a few seconds each, "
        "for scripts that declare many runs); a bad override then fails the run's first job",
    )
    add_registry_option(parser)


def resolve_ids(args: argparse.Namespace) -> None:
    """`-p`/`-e` given as ids become the names they stand for (dltemplate.registry.ids); the
    registry is read only when one of them is a number."""
    proj, exp = getattr(args, "proj", None), getattr(args, "exp", None)
    if not any(isinstance(t, str) and ids.is_id(t) for t in (proj, exp)):
        return
    from dltemplate.registry.model import load_registry

    registry = load_registry(args.registry)
    args.proj = registry.resolve_project(proj)
    if isinstance(exp, str) and args.proj in registry.projects:
        args.exp = registry.resolve_experiment(args.proj, exp)


def parse_jobs(text: str) -> tuple[str, ...]:
    jobs = [j.strip() for j in text.split(",") if j.strip()]
    unknown = [j for j in jobs if j not in JOB_TYPES]
    if unknown or not jobs:
        raise argparse.ArgumentTypeError(
            f"unknown job type(s) {', '.join(unknown) or '(none given)'}; "
            f"use a comma-separated subset of {','.join(JOB_TYPES)}"
        )
    return tuple(j for j in JOB_TYPES if j in jobs)


def config_path(config: str) -> str:
    """The config file as the registry stores it: relative to the project root when inside."""
    from dltemplate.records import portable_path
    from dltemplate.registry.run_paths import check_config_path

    if not Path(config).is_file():
        raise UserError(
            f"Config file {config} does not exist (paths are relative to the project root, "
            "e.g. configs/digits_mlp.py)"
        )
    # the registry loader's confinement, before the config is imported (its code would run)
    return check_config_path(portable_path(config), f"Config {config}")


def check_run_builds(config: str, jobs: Sequence[str], overrides: Mapping[str, Any]) -> None:
    """Build the run's config for each of its jobs, so that an unknown override path or a
    wrong type fails now, before anything is written (imports torch and Lightning)."""
    from dltemplate.config.build import build_run

    for job in jobs:
        build_run(config, job=job, overrides=overrides, source="the command line")
