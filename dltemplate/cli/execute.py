"""`main.py exec`: declare a run when it is new (or check that it matches), then run Snakemake
for its jobs. Snakemake decides what actually runs: nothing when the outputs are current."""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from dltemplate.cli.add_run import declare_run
from dltemplate.cli.common import set_overrides
from dltemplate.cli.options import REGISTRY_DIR, add_run_options, config_path
from dltemplate.cli.user_paths import UserPath
from dltemplate.errors import UserError
from dltemplate.jobs.resume import CONTINUE_SETTING
from dltemplate.layout import DEFAULT_JOBS
from dltemplate.registry.model import Run

# Options after `--` that choose how many jobs or cores Snakemake uses.
_PARALLEL_FLAGS = ("-j", "--jobs", "-c", "--cores")


def check_matches(run: Run, args: argparse.Namespace) -> None:
    """Refuse -c, -d or --set that differ from the declared run: a run's name names one config."""
    hint = f"give a new run name, or leave out -c, -d and --set to run {run.key} as declared"
    if args.config is not None and config_path(args.config) != run.config:
        raise UserError(
            f"Run {run.key} is declared with config {run.config} ({run.source}), "
            f"not {args.config}; {hint}"
        )
    if args.desc is not None and args.desc.strip() != run.description:
        raise UserError(
            f"Run {run.key} is declared with description {run.description!r} ({run.source}), "
            f"not {args.desc!r}; {hint}"
        )
    if args.config is not None or args.sets:
        overrides = set_overrides(args)
        if overrides != dict(run.overrides):
            raise UserError(
                f"Run {run.key} is declared with overrides {dict(run.overrides)} "
                f"({run.source}), not {overrides}; {hint}"
            )
    missing = [j for j in args.jobs or () if j not in run.jobs]
    if missing:
        raise UserError(
            f"Run {run.key} does not declare job(s) {', '.join(missing)} (it has "
            f"{', '.join(run.jobs)}); add them to its `jobs:` in {run.source}"
        )


def snakemake_command(
    targets: Sequence[str],
    *,
    jobs: str | None = None,
    profile: str | None = None,
    registry: str = REGISTRY_DIR,
    passthrough: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
) -> list[str]:
    """The Snakemake command for `targets`; `settings`: workflow config entries (--config)."""
    command = [sys.executable, "-m", "snakemake"]
    if jobs is not None:
        command += ["--jobs", jobs]
    elif profile is None and not any(a.split("=")[0] in _PARALLEL_FLAGS for a in passthrough):
        command += ["--cores", "all"]
    if profile is not None:
        # A workflow profile replaces profiles/default; a plain --profile would sit under it,
        # and default's retries and keep-going would win over the cluster profile's.
        command += ["--workflow-profile", profile]
    settings = {**({"registry": registry} if registry != REGISTRY_DIR else {}), **(settings or {})}
    # last: --config takes every value after it, targets included
    config = (
        ["--config", *(f"{key}={value}" for key, value in settings.items())] if settings else []
    )
    return [*command, *targets, *passthrough, *config]


def restart_fit(run: Run, passthrough: Sequence[str] = ()) -> list[str]:
    """`--restart`: ask the run's next fit to start over (dltemplate.jobs.resume: its old fit is
    moved aside, never deleted) and return the Snakemake flags that make that fit run now."""
    from dltemplate.jobs.resume import request_restart

    if "fit" not in run.jobs:
        raise UserError(f"Run {run.key} has no fit job, so there is no fit to restart")
    if any(a in ("-n", "--dry-run", "--dryrun") for a in passthrough):
        print(f"A dry run: {run.layout.restart_flag} not written", file=sys.stderr)
    else:
        flag = request_restart(run.folder)
        print(f"Asked for a fresh fit of {run.key} ({flag})", file=sys.stderr)
    return ["--forcerun=fit"]


def require_snakefile(command: str) -> None:
    """Commands that run Snakemake run from the project root, where the Snakefile is."""
    if not Path("Snakefile").is_file():
        raise UserError(
            f"main.py {command} runs Snakemake here, and this folder has no Snakefile; "
            "run it from the project root"
        )


def run_snakemake(command: Sequence[str]) -> int:
    """Show the command, run it, and return its exit status as a shell would report it: 128 + N
    when a signal N ended it. A Ctrl-C reaches Snakemake too (one process group), which stops
    its jobs and exits; this process waits for that instead of dying with a traceback."""
    print("$ " + shlex.join(command), file=sys.stderr, flush=True)
    previous = signal.signal(signal.SIGINT, lambda signum, frame: None)  # not SIG_IGN: inherited
    try:
        code = subprocess.call(command)
    finally:
        signal.signal(signal.SIGINT, previous)
    return 128 - code if code < 0 else code


def cmd_exec(args: argparse.Namespace) -> int:
    from dltemplate.registry.model import load_registry
    from dltemplate.results.run_records import run_record_file

    require_snakefile("exec")
    registry = load_registry(args.registry)
    project = registry.projects.get(args.proj)
    experiment = project.experiments.get(args.exp) if project else None
    run = experiment.runs.get(args.name) if experiment else None
    if run is not None:
        check_matches(run, args)
        print(f"Run {run.key} is declared ({run.source}); running it", file=sys.stderr)
    else:
        if args.desc is None or args.config is None:
            raise UserError(
                f"Run {args.proj}/{args.exp}/{args.name} is new: give its description (-d) "
                "and config (-c) to declare it"
            )
        declare_run(args, args.jobs or DEFAULT_JOBS)
        run = load_registry(args.registry).run(args.proj, args.exp, args.name)
        print(f"Declared run {run.key} in {run.source}", file=sys.stderr)
    jobs = args.jobs or run.jobs
    targets = [run.layout.done(job) for job in jobs]
    if set(jobs) >= set(run.jobs):
        targets.append(run_record_file(run))
    if args.restart and args.more_epochs:
        raise UserError("--restart starts the fit over and --continue goes on from it: give one")
    restart = restart_fit(run, args.passthrough) if args.restart else []
    command = snakemake_command(
        targets,
        jobs=args.cores,
        profile=args.profile,
        registry=args.registry,
        passthrough=[*restart, *args.passthrough],
        settings={CONTINUE_SETTING: "true"} if args.more_epochs else None,
    )
    return run_snakemake(command)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "exec",
        help="declare a run if new, then run its jobs with Snakemake",
        description="Declare the run when it is new (or check that it matches the registry), "
        "then run Snakemake for its jobs. Arguments after `--` go to Snakemake unchanged, "
        "e.g. `-- -n` for a dry run or `-- --keep-going`.",
    )
    add_run_options(parser, declaring=False)
    parser.add_argument(
        "-j",
        dest="cores",
        metavar="N",
        help="Snakemake's --jobs: jobs at once (default: all cores, or the profile's setting)",
    )
    parser.add_argument(
        "--profile",
        action=UserPath,
        help="a workflow profile in place of profiles/default, e.g. profiles/slurm "
        "(Snakemake's --workflow-profile)",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="fit the run from scratch: its checkpoints, metrics and fit logs are moved aside "
        "to checkpoints.old-<n>/ in its folder (nothing is deleted)",
    )
    parser.add_argument(
        "--continue",
        dest="more_epochs",
        action="store_true",
        help="a finished fit whose trainer.max_epochs you raised goes on from its last "
        "checkpoint instead of starting over (docs/reruns-and-resume.md)",
    )
    parser.set_defaults(func=cmd_exec, accepts_passthrough=True)
