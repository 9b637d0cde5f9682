"""Orchestration: what Snakemake and the job machinery cost, apart from training.

Registries of N runs (one experiment of N runs of configs/digits_mlp.py, each with its own
`seed` override, every run declaring fit, test and predict) go into a scratch copy of the
workflow under bench/.scratch/. Two targets: the sweep's own, the experiment's summary.csv
(N x fit, test, predict, and the summary: the goals), and the default target `all`, which
adds each run's record job (run.json and the run's plots), the project's record and summary,
and the comparison chart. The job count is what the dry run reports. For each N and target:

  - dry run: `snakemake -n --cores 2 [target]` with nothing built yet (parse, load and
    validate the registry, build the DAG, print every job)
  - no-op rerun: `snakemake --cores 2 [target]` when everything is present and up to date. The state
    is made without training: `snakemake --touch` on the empty tree records every job's
    metadata (params, code) as finished jobs do, then every output the dry run listed is
    written with one mtime; a dry run must then say "Nothing to be done" (a changed override
    would still be caught, since the metadata is there)

Peak memory is the largest resident set of the command's processes (wait4).

Per-job overhead: fresh processes run from the repo root, each repetition paired:
`python -c "import lightning"` against what the fit script runs (`job_log`, `job_record`, the
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
from typing import Any

from bench.common import (
    BIN,
    REPO,
    Result,
    check,
    command_line,
    copy_workflow,
    fmt,
    goal,
    parser,
    scratch_dir,
    slurm_wait_note,
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


def make_done(root: Path, files: list[str], targets: Sequence[str] = ()) -> None:
    """Record every job's metadata (as finished jobs do), then write every output with one
    mtime (an input as new as its output is up to date), without running any job; for
    `targets` (default: the default target)."""
    touch = [SNAKEMAKE, "--touch", "--cores", "2", "--scheduler", "greedy", *targets, "--quiet"]
    check(timed(touch, cwd=root), "--touch")
    now = time.time()  # after the workflow's files: a script newer than an output reruns it
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
        os.utime(path, (now, now))
    dry = check(timed([SNAKEMAKE, "-n", "--cores", "2", *targets], cwd=root), "dry after --touch")
    if "Nothing to be done" not in dry.output:
        raise RuntimeError(f"the no-op state in {root} is not up to date:\n{dry.output[-2000:]}")


SWEEP_TARGET = "results/bench/sweep/summary.csv"
TARGETS = {"the sweep's summary.csv": [SWEEP_TARGET], "all (the default target)": []}


def workflow_sizes(result: Result, sizes: Sequence[int], reps: int) -> dict:
    raw: dict[str, dict] = {}
    rows = []
    for n in sizes:
        root = copy_workflow(scratch_dir(f"orchestration_{n}"), {"bench": registry(n)})
        runs: dict[str, dict[str, list]] = {name: {"dry": [], "noop": []} for name in TARGETS}
        for rep in range(reps):  # the targets alternate, so that drift hits both alike
            for name in TARGETS if rep % 2 == 0 else list(TARGETS)[::-1]:
                cmd = [SNAKEMAKE, "-n", "--cores", "2", *TARGETS[name]]
                runs[name]["dry"].append(check(timed(cmd, cwd=root), f"dry run {n} {name}"))
        make_done(root, outputs(runs["all (the default target)"]["dry"][0].output))
        for rep in range(reps):
            for name in TARGETS if rep % 2 == 0 else list(TARGETS)[::-1]:
                cmd = [SNAKEMAKE, "--cores", "2", *TARGETS[name]]
                t = check(timed(cmd, cwd=root), f"no-op {n} {name}")
                if "Nothing to be done" not in t.output:
                    raise RuntimeError(f"the no-op rerun of {n} runs did work:\n{t.output[-2000:]}")
                runs[name]["noop"].append(t)
        raw[str(n)] = {}
        for name, got in runs.items():
            dry, noop = got["dry"], got["noop"]
            d, o = stats([t.seconds for t in dry]), stats([t.seconds for t in noop])
            dc, oc = stats([t.cpu_seconds for t in dry]), stats([t.cpu_seconds for t in noop])
            dm, om = stats([t.max_rss_mb for t in dry]), stats([t.max_rss_mb for t in noop])
            count = f"{jobs(dry[0].output):,}"
            memory = fmt(dm, "MB"), fmt(om, "MB")
            rows.append(
                [f"{n:,}", name, count, fmt(d), fmt(dc), memory[0], fmt(o), fmt(oc), memory[1]]
            )
            raw[str(n)][name] = {
                "dry": [[t.seconds, t.cpu_seconds] for t in dry],
                "noop": [[t.seconds, t.cpu_seconds] for t in noop],
            }
            print(f"{n} runs, {name}: dry {d['median']:.2f} s, no-op {o['median']:.2f} s")
    result.table(
        f"Workflow of N runs, two targets; median (min-max) over {reps} repetitions",
        [
            "runs",
            "target",
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


# What the fit job's script does, with the run's parameters written in.
FIT_CODE = """\
from dltemplate.jobs.logs import job_log
from dltemplate.results.run_records import job_record
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
    return {name: [[t.seconds, t.cpu_seconds] for t in times[name]] for name in names}


def goals(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The goals, from the per-repetition [wall, CPU] seconds in `raw`: a dry run and a no-op
    rerun of the 1,000-run sweep's own target (when measured), and the zero-epoch fit job beyond
    `import lightning` (paired per repetition)."""
    found = []
    sweep = raw["sizes"].get("1000", {}).get("the sweep's summary.csv")
    for what, key, limit in (("dry run", "dry", 10), ("no-op rerun", "noop", 5)):
        if sweep:
            s, c = (stats([t[i] for t in sweep[key]]) for i in (0, 1))
            text = f"{s['median']:.2f} s wall ({c['median']:.2f} s CPU)"
            found.append(
                goal(
                    f"{what} of a 1,000-run sweep (its summary.csv) < {limit} s",
                    text,
                    s,
                    limit,
                    True,
                )
            )
    base = raw["per_job"]['python -c "import lightning"']
    job = next(times for name, times in raw["per_job"].items() if "cnn28" in name)
    s, c = (stats([t[i] - b[i] for t, b in zip(job, base, strict=True)]) for i in (0, 1))
    text = f"{s['median']:.2f} s wall ({c['median']:.2f} s CPU)"
    found.append(goal("zero-epoch fit < 1 s beyond `import lightning`", text, s, 1, below=True))
    return found


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
    note = slurm_wait_note()
    if note:
        print(note, flush=True)
        result.notes.append(note)
    result.raw["sizes"] = workflow_sizes(result, opts.sizes, opts.reps)
    result.raw["per_job"] = per_job(result, opts.reps, opts.quick)
    result.goals += goals(result.raw)
    return result.write(opts.out)


if __name__ == "__main__":
    main()
