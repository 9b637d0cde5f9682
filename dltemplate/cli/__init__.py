"""The command line: `python main.py <command>` or the `dltemplate` console script.

Each command lives in its own module with `add_parser(subparsers)`, which registers the
command and sets `func`; `COMMANDS` lists them in the order `--help` shows.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from dltemplate.cli import (
    add_exp,
    add_run,
    debug,
    diff,
    execute,
    hparams,
    init,
    lr_find,
    ls,
    new,
    predict,
    reproduce,
    rm,
    show,
    user_paths,
    warm,
)
from dltemplate.cli.options import resolve_ids
from dltemplate.errors import UserError
from dltemplate.project import enter as enter_project

COMMANDS = [
    *(new, init, add_exp, add_run, execute, ls, rm, hparams, show, diff, reproduce),
    *(debug, lr_find, predict, warm),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py", description="Manage projects, experiments and runs of the template."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.set_defaults(outside_project=False)  # `new` works outside any project
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def use_output_dir() -> None:
    """Read results from, and write them to, the `output_dir` of configs/workflow.yaml."""
    from dltemplate.cli.common import workflow_settings
    from dltemplate.workflow.settings import apply_output_dir

    apply_output_dir(workflow_settings())


BROKEN_PIPE_STATUS = 141  # 128 + SIGPIPE, what a shell reports for a command its reader left


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit status. A reader that stops early (`main.py ls | head`) ends
    it quietly, as Python's docs on SIGPIPE recommend."""
    try:
        status = run_command(argv)
        sys.stdout.flush()  # here, so that a closed pipe shows up inside the try
        return status
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush finds no pipe
        return BROKEN_PIPE_STATUS


def run_command(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    passthrough: list[str] = []
    if "--" in argv:  # the rest goes to Snakemake unchanged (exec)
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    if passthrough and not getattr(args, "accepts_passthrough", False):
        parser.error(f"{args.command} takes no arguments after --")
    args.passthrough = passthrough
    try:
        if not args.outside_project:
            typed_in = Path.cwd()
            user_paths.rebase(args, typed_in, enter_project())
            use_output_dir()
        resolve_ids(args)
        return args.func(args)
    except UserError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"Error: {exc}", file=sys.stderr)
        return 1
