"""`main.py add-run`: declare a run in the registry, after checking that its config builds."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from dltemplate.cli.common import set_overrides
from dltemplate.cli.options import add_run_options, check_run_builds, config_path
from dltemplate.cli.user_paths import UserPath
from dltemplate.layout import DEFAULT_JOBS

TEST_ONLY_JOBS = tuple(job for job in DEFAULT_JOBS if job != "fit")


def declare_run(args: argparse.Namespace, jobs: Sequence[str]) -> None:
    """Check the name, the config and every override, then write the run to the registry.

    The cheap checks (name, project, experiment, clash) run before the config is built, and
    again under the registry lock when the entry is written.
    """
    from dltemplate.registry import edit as registry_edit

    overrides = set_overrides(args)
    config = config_path(args.config)
    ckpt = checkpoint_of(args.ckpt) if getattr(args, "ckpt", None) else None
    entry = registry_edit.run_entry(args.desc, config, jobs, overrides, ckpt)
    where = (args.registry, args.proj, args.exp, args.name)
    registry_edit.add_run(*where, entry, check_only=True)
    if not args.no_check:
        check_run_builds(config, jobs, overrides)
    registry_edit.add_run(*where, entry)


def checkpoint_of(given: str) -> str:
    """`--ckpt`: a checkpoint file (under the results root or data/), or a run `proj/exp/run`
    whose fit kept its best checkpoint."""
    from dltemplate.layout import RunLayout
    from dltemplate.registry.run_paths import check_ckpt_path

    parts = given.split("/")
    if len(parts) == 3 and not given.endswith(".ckpt") and not Path(given).exists():
        best = RunLayout.of(*parts).best_checkpoint
        return check_ckpt_path(best, f"--ckpt {given}", "fit that run first")
    return check_ckpt_path(given, f"--ckpt {given}", "give an existing checkpoint file")


def cmd_add_run(args: argparse.Namespace) -> int:
    jobs = args.jobs or (TEST_ONLY_JOBS if args.ckpt else DEFAULT_JOBS)
    declare_run(args, jobs)
    print(f"Added run {args.proj}/{args.exp}/{args.name}")
    print(f"Run it: main.py exec -p {args.proj} -e {args.exp} -n {args.name}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("add-run", help="declare a run (config, jobs, overrides)")
    add_run_options(parser)
    parser.add_argument(
        "--ckpt",
        metavar="PATH|RUN",
        action=UserPath,
        help="test (and predict) an existing checkpoint instead of fitting: a .ckpt file under "
        "results/ or data/, or a run proj/exp/run whose best checkpoint to use "
        "(jobs default to test,predict)",
    )
    parser.set_defaults(func=cmd_add_run)
