"""`dltemplate new DIR`: a project folder of the user's own (dltemplate.scaffold)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dltemplate.scaffold import EXAMPLES, NO_EXAMPLE


def cmd_new(args: argparse.Namespace) -> int:
    from dltemplate.scaffold import write_project

    folder = Path(args.folder)
    written = write_project(folder, args.example or ["digits"])
    print(f"Wrote a project of {len(written)} files in {folder}. Next:")
    print(f"  cd {folder} && make setup && make demo    (the README there says more)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "new",
        help="write a new project folder (Snakefile, configs/, models/ ...) of your own",
        description="Write a project that is yours alone: its Snakefile pulls the engine's "
        "rules from the installed dltemplate package.",
    )
    parser.add_argument("folder", metavar="DIR", help="the new project's folder (absent or empty)")
    parser.add_argument(
        "--example",
        action="append",
        choices=[*EXAMPLES, NO_EXAMPLE],
        help="an example to start from (repeat for several; default digits; none for no example)",
    )
    parser.set_defaults(func=cmd_new, outside_project=True)
