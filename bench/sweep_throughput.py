"""Sweep throughput: 4 small runs through real Snakemake, one job at a time against two.

A scratch copy of the workflow holds one experiment of 4 runs of configs/digits_mlp.py (2
epochs, 32 hidden units, each its own seed), each with fit, test and predict, and the target is
the experiment's summary.csv (13 jobs). Each repetition deletes results/ and runs
`snakemake --cores 1` and `snakemake --cores 2` (what `-j1` and `-j2` mean for local runs), in
alternating order. The workflow gives each fit one thread (configs/workflow.yaml), so at
`--cores 2` two fits run side by side; the third row gives every fit 2 threads
(`--set-threads fit=2`, what a few big runs would ask), so that they run one at a time.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    BIN,
    Result,
    check,
    command_line,
    copy_workflow,
    fmt,
    goal,
    parser,
    scratch_dir,
    stats,
    timed,
)
from bench.orchestration import registry

TARGET = "results/bench/sweep/summary.csv"


def small_registry(runs: int, epochs: int, jobs: str) -> str:
    text = registry(runs, jobs=f"[{jobs}]", epochs=epochs)
    return text.replace(
        f"{{trainer.max_epochs: {epochs},",
        f"{{trainer.max_epochs: {epochs}, task_wrapper.model.hidden_dim: 32,",
    )


def goals(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """--cores 2 against --cores 1, the workflow as it comes, paired per repetition."""
    times = raw["times"]
    one, two = times["snakemake --cores 1 (-j1)"], times["snakemake --cores 2 (-j2)"]
    s = stats([t / o for t, o in zip(two, one, strict=True)])
    return [goal("snakemake --cores 2 <= 0.6 of --cores 1", f"{s['median']:.2f}", s, 0.6, True)]


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--jobs", default="fit, test, predict", help="each run's jobs")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.runs, opts.epochs, opts.reps, opts.jobs = 1, 1, 1, "fit"
    result = Result(
        name="sweep_throughput",
        title="Sweep throughput: --cores 1 against --cores 2",
        command=command_line("bench.sweep_throughput", argv),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    root = copy_workflow(
        scratch_dir("sweep_throughput"),
        {"bench": small_registry(opts.runs, opts.epochs, opts.jobs)},
    )
    snakemake = str(BIN / "snakemake")
    variants = {
        "snakemake --cores 1 (-j1)": ["--cores", "1"],
        "snakemake --cores 2 (-j2)": ["--cores", "2"],
        "snakemake --cores 2 --set-threads fit=2": ["--cores", "2", "--set-threads", "fit=2"],
    }
    if opts.quick:
        del variants["snakemake --cores 2 --set-threads fit=2"]
    times: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(opts.reps):
        names = list(variants) if rep % 2 == 0 else list(variants)[::-1]
        for name in names:
            shutil.rmtree(root / "results", ignore_errors=True)
            t = check(timed([snakemake, TARGET, *variants[name]], cwd=root), name)
            times[name].append(t.seconds)
            print(f"rep {rep} {name}: {t.seconds:.1f} s", flush=True)
    one = times["snakemake --cores 1 (-j1)"]
    rows = []
    for name in variants:
        ratio = stats([t / o for t, o in zip(times[name], one, strict=True)])
        rows.append([name, fmt(stats(times[name])), fmt(ratio, "", 3)])
    jobs = len(opts.jobs.split(",")) * opts.runs + 1
    result.table(
        f"{opts.runs} runs x ({opts.jobs}) + summary = {jobs} jobs, {opts.epochs} epochs "
        f"each; median (min-max) over {opts.reps} repetitions",
        ["command", "wall time", "relative to --cores 1"],
        rows,
    )
    result.raw = {"options": {k: v for k, v in vars(opts).items() if k != "out"}, "times": times}
    result.goals += goals(result.raw)
    return result.write(opts.out)


if __name__ == "__main__":
    main()
