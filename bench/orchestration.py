"""Orchestration: what Snakemake and the job machinery cost, apart from training.

Registries of N runs (one experiment of N runs of configs/digits_mlp.py, each with its own
`seed` override, every run declaring fit, test and predict) go into a scratch copy of the
workflow under bench/.scratch/. The job count is what the dry run reports (the run and
project records and the summary included). For each N:

  - dry run: `snakemake -n --cores 2` with nothing built yet (parse, load and validate the
    registry, build the DAG, print every job)
  - no-op rerun: `snakemake --cores 2` when everything is present and up to date. The state
    is made without training: `snakemake --touch` on the empty tree records every job's
    metadata (params, code) as finished jobs do, then every output the dry run listed is
    written with one mtime; a dry run must then say "Nothing to be done" (a changed override
    would still be caught, since the metadata is there)

Peak memory is the largest resident set of the command's processes (wait4).

Per-job overhead: fresh processes run from the repo root, each repetition paired:
`python -c "import lightning"` against what scripts/fit.py runs (`job_log`, `job_record`, the
fit job function) fitting zero epochs (`trainer.max_epochs=0`): imports, config build, hparams
and archived config, run record, Trainer, fit start and end, the fit.done record. Also the
example config, and a whole `snakemake --cores 1 -f <run>/fit.done` of zero epochs
(Snakemake's start, DAG, and the job's own process).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    BIN,
    REPO,
    Result,
    check,
    command_line,
    copy_workflow,
    fmt,
    parser,
    scratch_dir,
    stats,
    timed,
)

SIZES = (10, 100, 1000, 3000)
SNAKEMAKE = str(BIN / "snakemake")
PYTHON = str(BIN / "python")


def registry(n: int, jobs: str = "", epochs: int = 2) -> str:
    """A project file with one experiment of `n` runs (name `r00000`...)."""
    lines = [
        "description: Benchmark registry",
        "experiments:",
        "  sweep:",
        f"    description: {n} runs that differ in their seed",
        "    runs:",
    ]
    for i in range(n):
        lines += [
            f"      r{i:05d}:",
            f"        description: run {i}",
            "        config: configs/digits_mlp.py",
            *([f"        jobs: {jobs}"] if jobs else []),
            f"        overrides: {{trainer.max_epochs: {epochs}, seed: {i}}}",
        ]
    return "\n".join(lines) + "\n"


def outputs(dry_run: str) -> list[str]:
    """Every output file of the jobs that a dry run lists."""
    lines = re.findall(r"^\s+output: (.+)$", dry_run, re.MULTILINE)
    return [path for line in lines for path in line.split(", ")]


def jobs(dry_run: str) -> int:
    return int(re.findall(r"^total\s+(\d+)", dry_run, re.MULTILINE)[-1])


def make_done(root: Path, files: list[str]) -> None:
    """Record every job's metadata (as finished jobs do), then write every output with one
    mtime (an input as new as its output is up to date), without running any job."""
    check(timed([SNAKEMAKE, "--touch", "--cores", "2", "--quiet"], cwd=root), "--touch")
    now = time.time()  # after the workflow's files: a script newer than an output reruns it
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
        os.utime(path, (now, now))
    dry = check(timed([SNAKEMAKE, "-n", "--cores", "2"], cwd=root), "dry run after --touch")
    if "Nothing to be done" not in dry.output:
        raise RuntimeError(f"the no-op state in {root} is not up to date:\n{dry.output[-2000:]}")


def workflow_sizes(result: Result, sizes: Sequence[int], reps: int) -> dict:
    raw: dict[str, dict] = {}
    rows = []
    for n in sizes:
        root = copy_workflow(scratch_dir(f"orchestration_{n}"), {"bench": registry(n)})
        dry, noop = [], []
        for _ in range(reps):
            dry.append(check(timed([SNAKEMAKE, "-n", "--cores", "2"], cwd=root), f"dry run {n}"))
        make_done(root, outputs(dry[0].output))
        for _ in range(reps):
            noop.append(check(timed([SNAKEMAKE, "--cores", "2"], cwd=root), f"no-op {n}"))
        if "Nothing to be done" not in noop[-1].output:
            raise RuntimeError(f"the no-op rerun of {n} runs did work:\n{noop[-1].output[-2000:]}")
        d, o = stats([t.seconds for t in dry]), stats([t.seconds for t in noop])
        dc, oc = stats([t.cpu_seconds for t in dry]), stats([t.cpu_seconds for t in noop])
        dm, om = stats([t.max_rss_mb for t in dry]), stats([t.max_rss_mb for t in noop])
        count = jobs(dry[0].output)
        rows.append(
            [f"{n:,}", f"{count:,}", fmt(d), fmt(dc), fmt(dm, "MB"), fmt(o), fmt(oc), fmt(om, "MB")]
        )
        raw[str(n)] = {
            "dry": [[t.seconds, t.cpu_seconds] for t in dry],
            "noop": [[t.seconds, t.cpu_seconds] for t in noop],
        }
        print(f"{n} runs: dry {d['median']:.2f} s, no-op {o['median']:.2f} s", flush=True)
        if n == 1000:
            for what, s, c, limit in (("dry run", d, dc, 10), ("no-op rerun", o, oc, 5)):
                text = f"{s['median']:.2f} s wall ({c['median']:.2f} s CPU)"
                result.goal(f"{what} of 1,000 runs < {limit} s", s["median"] < limit, text)
    result.table(
        f"Workflow of N runs (fit, test, predict and the run record each, and the experiment's "
        f"summary and project record); median (min-max) over {reps} repetitions",
        [
            "runs",
            "jobs",
            "dry run, wall",
            "dry run, CPU",
            "dry run, peak memory",
            "no-op rerun, wall",
            "no-op rerun, CPU",
            "no-op, peak memory",
        ],
        rows,
    )
    return raw


# What scripts/fit.py does, with the run's parameters written in.
FIT_CODE = """\
from dltemplate.jobs.logs import job_log
from dltemplate.run_records import job_record
with job_log("{run}/logs/fit.log"), job_record("{run}", "fit"):
    from dltemplate.jobs.fit import fit_run
    fit_run(run_dir="{run}", config_file="{config}", overrides={{"trainer.max_epochs": 0}},
            seed=0, threads=1, done_file="{run}/fit.done", source="bench")
"""


def per_job(result: Result, reps: int, quick: bool = False) -> dict:
    scratch = scratch_dir("per_job")
    wf = copy_workflow(scratch / "workflow", {"bench": registry(1, jobs="[fit]", epochs=0)})
    target = "results/bench/sweep/r00000/fit.done"
    commands = {
        'python -c "import torch"': ([PYTHON, "-c", "import torch"], REPO),
        'python -c "import lightning"': ([PYTHON, "-c", "import lightning"], REPO),
        "fit job function, 0 epochs, bench/configs/cnn28.py (synthetic data)": (
            [PYTHON, "-c", FIT_CODE.format(run=scratch / "cnn28", config="bench/configs/cnn28.py")],
            REPO,
        ),
        "fit job function, 0 epochs, configs/digits_mlp.py (loads scikit-learn's digits)": (
            [PYTHON, "-c", FIT_CODE.format(run=scratch / "mlp", config="configs/digits_mlp.py")],
            REPO,
        ),
        f"snakemake --cores 1 -f {target} (0 epochs, digits_mlp)": (
            [SNAKEMAKE, "--cores", "1", "-f", target],
            wf,
        ),
    }
    if quick:  # one of each kind: a bare import, the job function, a Snakemake job
        for name in [n for n in commands if "torch" in n or "digits_mlp.py" in n]:
            del commands[name]
    times: dict[str, list] = {name: [] for name in commands}
    warm = 1 if reps > 1 else 0  # a first repetition warms the file cache, unrecorded
    for rep in range(reps + warm):
        names = list(commands) if rep % 2 == 0 else list(commands)[::-1]
        for name in names:
            cmd, cwd = commands[name]
            t = check(timed(cmd, cwd=cwd), name)
            if rep >= warm:
                times[name].append(t)
    names = list(commands)
    base = times['python -c "import lightning"']
    rows = []
    for name in names:
        s = stats([t.seconds for t in times[name]])
        extra = stats([t.seconds - b.seconds for t, b in zip(times[name], base, strict=True)])
        cpu = stats([t.cpu_seconds for t in times[name]])
        extra_cpu = stats(
            [t.cpu_seconds - b.cpu_seconds for t, b in zip(times[name], base, strict=True)]
        )
        mem = stats([t.max_rss_mb for t in times[name]])
        rows.append([name, fmt(s), fmt(extra), fmt(cpu), fmt(extra_cpu), fmt(mem, "MB")])
    result.table(
        f"Per-job overhead, fresh processes; median (min-max) over {reps} repetitions, "
        "paired with `import lightning` of the same repetition",
        [
            "command",
            "wall",
            "wall beyond `import lightning`",
            "CPU",
            "CPU beyond `import lightning`",
            "peak memory",
        ],
        rows,
    )
    job = next(name for name in names if "cnn28" in name)
    fit = stats([t.seconds - b.seconds for t, b in zip(times[job], base, strict=True)])
    cpu = stats([t.cpu_seconds - b.cpu_seconds for t, b in zip(times[job], base, strict=True)])
    result.goal(
        "zero-epoch fit < 1 s beyond `import lightning`",
        fit["median"] < 1,
        f"{fit['median']:.2f} s wall ({cpu['median']:.2f} s CPU)",
    )
    return {name: [[t.seconds, t.cpu_seconds] for t in times[name]] for name in names}


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="runs per registry")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.sizes, opts.reps = [10], 1
    result = Result(
        name="orchestration",
        title="Orchestration: dry runs, no-op reruns, per-job overhead",
        command=command_line("bench.orchestration", argv),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    result.raw["sizes"] = workflow_sizes(result, opts.sizes, opts.reps)
    result.raw["per_job"] = per_job(result, opts.reps, opts.quick)
    return result.write(opts.out)


if __name__ == "__main__":
    main()
