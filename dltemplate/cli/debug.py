"""`main.py debug`: run a declared run's config in a quick debug mode, beside its results.

fast: Lightning's fast_dev_run, a batch of each of the run's jobs. overfit: train on a few
batches until the loss falls (or not), to see that the model, loss and optimizer can learn.
profile: a short fit under Lightning's simple or advanced profiler. Everything goes to
results/<proj>/<exp>/<run>/debug/<mode>/; the run's checkpoints, .done files, hparams.yaml,
logs and records are never touched.
"""

from __future__ import annotations

import argparse

from dltemplate.cli.declared_run import add_declared_run_parser, declared_run, declared_runs
from dltemplate.errors import UserError
from dltemplate.jobs.debug import MODES, PROFILERS


def positive(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def cmd_debug(args: argparse.Namespace) -> int:
    if args.all:
        return debug_all(args)
    if not args.exp or not args.name or not args.mode:
        raise UserError("debug needs -e, -n and --mode for one run (or --all for every run)")
    target = declared_run(args)
    from dltemplate.jobs.debug import debug_run

    summary = debug_run(
        target.spec,
        target.threads,
        mode=args.mode,
        jobs=target.run.jobs,
        batches=args.batches,
        epochs=args.epochs,
        profiler=args.profiler,
    )
    print(summary["message"])
    return 0


def debug_all(args: argparse.Namespace) -> int:
    """fast_dev_run of every declared run of the project (or experiment): a line each, and the
    exit status 1 when one failed (its log names why)."""
    if args.name or (args.mode or "fast") != "fast":
        raise UserError("--all runs the fast mode of every run: leave out -n and --mode")
    from dltemplate.jobs.debug import debug_run

    targets = declared_runs(args)
    failed = []
    for target in targets:
        try:
            debug_run(
                target.spec, target.threads, mode="fast", jobs=target.run.jobs, batches=args.batches
            )
        except (UserError, SystemExit) as exc:  # SystemExit: the job's one line is printed
            if isinstance(exc, UserError):
                print(f"Error: {exc}", flush=True)
            failed.append(target.run.key)
    print(f"fast_dev_run: {len(targets) - len(failed)} of {len(targets)} runs passed", end="")
    print(f"; failed: {', '.join(failed)}" if failed else "", flush=True)
    return 1 if failed else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    summary = "run a declared run's config in a debug mode: fast, overfit or profile"
    parser = add_declared_run_parser(sub, "debug", __doc__, summary, cmd_debug, one_run=False)
    parser.add_argument(
        "--mode",
        choices=MODES,
        help="fast (fast_dev_run), overfit (overfit_batches) or profile",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="fast_dev_run of every declared run of the project (-p), or of its experiment "
        "(-e): a line each, exit status 1 when one fails",
    )
    parser.add_argument(
        "--batches",
        type=positive,
        help="batches per job (fast, default 1) or to overfit (overfit, default 2)",
    )
    parser.add_argument(
        "--epochs",
        type=positive,
        help="the most epochs of overfit (default 300; it stops once the loss has fallen) or "
        "the epochs to profile (default 1)",
    )
    parser.add_argument(
        "--profiler",
        choices=PROFILERS,
        default="simple",
        help="profile: Lightning's simple profiler (time per hook) or advanced (cProfile)",
    )
