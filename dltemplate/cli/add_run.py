"""`main.py add-run`: declare a run in the registry, after checking that its config builds."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dltemplate.cli.common import set_overrides
from dltemplate.cli.options import add_run_options, check_run_builds, config_path
from dltemplate.layout import DEFAULT_JOBS


def declare_run(args: argparse.Namespace, jobs: Sequence[str]) -> None:
    """Check the name, the config and every override, then write the run to the registry.

    The cheap checks (name, project, experiment, clash) run before the config is built, and
    again under the registry lock when the entry is written.
    """
    from dltemplate.registry import edit as registry_edit

    overrides = set_overrides(args)
    config = config_path(args.config)
    entry = registry_edit.run_entry(args.desc, config, jobs, overrides)
    where = (args.registry, args.proj, args.exp, args.name)
    registry_edit.add_run(*where, entry, check_only=True)
    if not args.no_check:
        check_run_builds(config, jobs, overrides)
    registry_edit.add_run(*where, entry)


def cmd_add_run(args: argparse.Namespace) -> int:
    declare_run(args, args.jobs or DEFAULT_JOBS)
    print(f"Added run {args.proj}/{args.exp}/{args.name}")
    print(f"Run it: main.py exec -p {args.proj} -e {args.exp} -n {args.name}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("add-run", help="declare a run (config, jobs, overrides)")
    add_run_options(parser)
    parser.set_defaults(func=cmd_add_run)
