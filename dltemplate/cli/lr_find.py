"""`main.py lr-find`: Lightning's learning-rate finder on a declared run's config.

Trains a few batches while the learning rate grows, saves the loss against the rate as
results/<proj>/<exp>/<run>/debug/lr_find.png (and the numbers with the suggestion in
lr_find.json), and prints the --set that applies the suggestion to a new run. The run's own
results are never touched.
"""

from __future__ import annotations

import argparse

from dltemplate.cli.debug import positive
from dltemplate.cli.declared_run import add_declared_run_parser, add_run_command, declared_run


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a learning rate above 0, got {text!r}")
    return value


def cmd_lr_find(args: argparse.Namespace) -> int:
    target = declared_run(args)
    layout = target.run.layout
    if args.min_lr >= args.max_lr:
        from dltemplate.errors import UserError

        raise UserError(f"--min-lr {args.min_lr:g} must be below --max-lr {args.max_lr:g}")
    from dltemplate.jobs.lr_find import lr_find_run

    found = lr_find_run(
        target.spec, target.threads, min_lr=args.min_lr, max_lr=args.max_lr, steps=args.steps
    )
    files = f"plot {layout.lr_find_plot}, numbers {layout.lr_find_json}"
    suggestion = found["suggestion"]
    if suggestion is None:
        print(
            f"lr-find: no suggestion: {len(found['losses'])} steps are too few to tell where the "
            f"loss falls fastest; raise --steps or the data's batches ({files})"
        )
        return 0
    if found["parameter"] is None:
        print(
            f"lr-find: suggested learning rate {suggestion:.3g}, but no getter parameter of "
            f"{target.run.config} is named lr or learning_rate, so no --set applies it ({files})"
        )
        return 0
    print(
        f"lr-find: suggested learning rate {suggestion:.3g} "
        f"({found['parameter']} is {found['current']} now); {files}"
    )
    print(f"  --set {found['set']}")
    path, _, value = found["set"].partition("=")
    print(f"  a new run with it: {add_run_command(target, path, float(value), 'lr-find')}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    summary = "run Lightning's learning-rate finder on a declared run's config"
    parser = add_declared_run_parser(sub, "lr-find", __doc__, summary, cmd_lr_find)
    parser.add_argument(
        "--min-lr", type=positive_float, default=1e-8, help="the first rate (default 1e-8)"
    )
    parser.add_argument(
        "--max-lr", type=positive_float, default=1.0, help="the last rate (default 1)"
    )
    parser.add_argument(
        "--steps", type=positive, default=100, help="batches to train, one rate each (default 100)"
    )
