"""`main.py reproduce proj/exp/run [--as NEW]`: run a finished run again from its folder alone,
and say whether its test metrics come out the same.

The new run is declared in the registry beside the old one (as `add-run` does), with a copy
of the old run's archived config as its config (`<new>/env/reproduces/`): that carries the old
run's code, overrides and seed, and being a copy, the old run is never refitted for it. Then
Snakemake runs it (as `exec` does), and the two runs' test metrics are compared: exactly when
both ran on CPU, within GPU_TOLERANCE (relative) when either used a GPU, where kernels need not
be deterministic. When they differ, what differs in the environment is named
(dltemplate.results.run_diff).
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from dltemplate.cli.diff import load_run
from dltemplate.cli.options import add_registry_option
from dltemplate.errors import UserError
from dltemplate.layout import ARCHIVE_NAMES, JOB_TYPES, RunLayout

GPU_TOLERANCE = 1e-3  # relative; GPU kernels (cuDNN, atomics) may round differently run to run
SUFFIX = "-repro"


def new_name(registry: Any, proj: str, exp: str, run: str, wanted: str | None) -> str:
    """`--as`, else `<run>-repro`, `<run>-repro2`, ... : the first name not yet declared."""
    if wanted:
        return wanted
    taken = {name.lower() for name in registry.experiment(proj, exp).runs}
    name, n = f"{run}{SUFFIX}", 1
    while name.lower() in taken:
        n += 1
        name = f"{run}{SUFFIX}{n}"
    return name


def copy_archive(source: RunLayout, target: RunLayout) -> str:
    """Copy the source run's archived config (any format) under the new run's env/."""
    for fmt, name in ARCHIVE_NAMES.items():
        archive = Path(source.folder, name)
        if not archive.exists():
            continue
        dest = Path(target.reproduced_archive(fmt))
        dest.parent.mkdir(parents=True, exist_ok=True)
        if archive.is_dir():
            shutil.copytree(archive, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(archive, dest)
        return dest.as_posix()
    raise UserError(
        f"Run folder {source.folder} has no archived config ({', '.join(ARCHIVE_NAMES.values())})"
        "; only a run with a fit can be reproduced"
    )


def metrics_match(
    old: dict[str, float], new: dict[str, float], gpu: bool
) -> dict[str, list[float | None]]:
    """The test metrics that differ: exactly on CPU, beyond GPU_TOLERANCE on GPU."""

    def same(a: float | None, b: float | None) -> bool:
        if a is None or b is None or not gpu:
            return a == b
        return math.isclose(a, b, rel_tol=GPU_TOLERANCE, abs_tol=1e-12)

    keys = list(dict.fromkeys([*old, *new]))
    return {k: [old.get(k), new.get(k)] for k in keys if not same(old.get(k), new.get(k))}


def _used_gpu(run: Any) -> bool:
    return any(record.get("gpus") for record in run.records.values())


def cmd_reproduce(args: argparse.Namespace) -> int:
    from dltemplate.cli.diff import print_differences
    from dltemplate.cli.execute import require_snakefile, run_snakemake, snakemake_command
    from dltemplate.registry import edit as registry_edit
    from dltemplate.registry.model import load_registry
    from dltemplate.results.run_diff import compare, environment_diff

    require_snakefile("reproduce")
    source = load_run(args.run)
    if not source.metrics:
        raise UserError(
            f"Run {source.key} has no test metrics ({source.layout.done('test')}) to compare a "
            "reproduction with; declare and run its test job first"
        )
    proj, exp, run = source.layout.names
    registry = load_registry(args.registry)
    name = new_name(registry, proj, exp, run, getattr(args, "as_name", None))
    target = RunLayout.of(proj, exp, name)
    jobs = [job for job in JOB_TYPES if job in source.records]
    description = f"reproduces {source.key} from its archived config"
    where = (args.registry, proj, exp, name)
    # Check the name first; the config path is the copy's, made once the name is known good.
    config = Path(target.reproduced_archive("py")).as_posix()
    registry_edit.add_run(
        *where, registry_edit.run_entry(description, config, jobs), check_only=True
    )
    config = copy_archive(source.layout, target)
    registry_edit.add_run(*where, registry_edit.run_entry(description, config, jobs))
    key = f"{proj}/{exp}/{name}"
    print(f"Declared run {key} ({description})", file=sys.stderr)

    targets = [target.done(job) for job in jobs] + [target.run_json]
    command = snakemake_command(
        targets, jobs=args.cores, registry=args.registry, passthrough=args.passthrough
    )
    code = run_snakemake(command)
    if code != 0:
        raise UserError(
            f"The reproduction {key} did not finish (Snakemake exit {code}); its logs are in "
            f"{target.logs}; rerun it: main.py exec -p {proj} -e {exp} -n {name}"
        )
    new = load_run(key)
    gpu = _used_gpu(source) or _used_gpu(new)
    how = f"within {GPU_TOLERANCE:g} (relative; a GPU was used)" if gpu else "exactly (CPU)"
    differ = metrics_match(source.metrics, new.metrics, gpu)
    if not differ:
        print(f"Reproduced {source.key} as {key}: the test metrics match {how}")
        return 0
    print(f"Reproduced {source.key} as {key}: the test metrics DIFFER (compared {how})")
    found = {"metrics": differ}
    env = environment_diff(source, new)
    packages = compare(source, new).get("packages")
    if env:
        found["environment"] = env
    if packages:
        found["packages"] = packages
    if not env and not packages:
        print(
            "Their environments do not differ in what the records hold (commit, versions, "
            "packages, CPU, GPUs, host): look for nondeterminism in the config"
        )
    print_differences(source.key, key, found)
    return 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "reproduce",
        help="run a finished run again from its archived config, and compare the test metrics",
        description="Declare a new run from the run folder's archived config (its code, "
        "overrides and seed), run it with Snakemake, and say whether the test metrics match "
        "(exactly on CPU, within a tolerance on GPU) and, if not, what differs in the "
        "environment. Exit 0 when they match, 1 otherwise. Arguments after `--` go to Snakemake.",
    )
    parser.add_argument("run", metavar="RUN", help="the run as <proj>/<exp>/<run>")
    parser.add_argument(
        "--as",
        dest="as_name",
        metavar="NEW_RUN",
        help=f"the new run's name, in the same experiment (default: <run>{SUFFIX})",
    )
    parser.add_argument("-j", dest="cores", metavar="N", help="Snakemake's --jobs")
    add_registry_option(parser)
    parser.set_defaults(func=cmd_reproduce, accepts_passthrough=True)
