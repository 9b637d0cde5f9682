"""Warm job starts: what a job costs to start, cold and warm, and the digits sweep through them.

1. Per-job fixed cost. A scratch workflow holds one run of configs/digits_mlp.py that fits zero
   epochs (`trainer.max_epochs: 0`). Snakemake writes the fit job's script once
   (`--skip-script-cleanup`); each repetition deletes the run's folder and runs that script as
   Snakemake runs it (`python .snakemake/scripts/tmp*.fit.py`), cold (DLT_WARM=0) and warm
   (the project's warm server up), in alternating order. "The fit itself" is the same
   zero-epoch fit called again and again in one process that imported everything already
   (the job function of dltemplate.jobs.fit; the first call is left out): what is left of a
   job's wall time beyond it is what starting the job costs.
2. The example's `lr_sweep` (configs/projects/digits.yaml: 12 runs, fit 5 epochs, then test;
   25 jobs with the summary) through `snakemake -j2` and `-j1`, warm (the server up before
   the command starts), warm from nothing (no server: the sweep's first job starts it, and the
   first jobs wait until it listens) and cold, against `python -m bench.plain_sweep`: the same
   12 runs in one plain Python process with a plain LightningModule, imports paid once, timed
   in the same repetition. `--quick` checks the code, not the figures: 2 runs of 1 epoch.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

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
    stats,
    timed,
)
from bench.orchestration import registry

PYTHON = str(BIN / "python")
SNAKEMAKE = str(BIN / "snakemake")
RUN = "results/bench/sweep/r00000"
SWEEP = "results/digits/lr_sweep/summary.csv"
PLAIN = "plain Lightning, one process (bench.plain_sweep)"
GOAL_VARIANTS = (PLAIN, "snakemake -j2, warm")
IN_PROCESS = """\
import json, sys, time
from dltemplate.jobs.fit import fit_run
times = []
for n in range(int(sys.argv[1]) + 1):
    started = time.perf_counter()
    fit_run(run_dir=f"{sys.argv[2]}/fit-{n}", config_file="configs/digits_mlp.py",
            overrides={"trainer.max_epochs": 0}, seed=0, threads=1,
            done_file=f"{sys.argv[2]}/fit-{n}/fit.done", source="bench")
    times.append(time.perf_counter() - started)
print(json.dumps(times[1:]))
"""


def warm_env(state: Path, on: bool = True) -> dict[str, str]:
    """The environment of the bench's jobs: those of one thread, as Snakemake sets it (the
    server started here must be the one they find)."""
    from dltemplate.warm.place import snakemake_job_environment

    return {
        **snakemake_job_environment(os.environ, threads=1),
        "DLT_WARM": "1" if on else "0",
        "DLT_WARM_DIR": str(state),
        "DLT_WARM_IDLE": "1800",
    }


def start_server(workflow: Path, state: Path) -> int:
    """Start the workflow's warm server as a first job would, and wait until it takes jobs."""
    from dltemplate.warm import client, place

    stop_server(workflow, state)
    env = {**os.environ, **warm_env(state)}
    where = place.place_for(workflow, env)
    client.start_server(workflow, where, env)
    return int(client.wait_until_serving(where, timeout=300)["pid"])


def stop_server(workflow: Path, state: Path) -> None:
    """Stop the workflow's warm server, if one runs, and wait until it has."""
    from dltemplate.warm import place
    from dltemplate.warm.client import ask

    where = place.place_for(workflow, {**os.environ, **warm_env(state)})
    status = ask(where, "stop")
    deadline = time.monotonic() + 120
    while status is not None and ask(where, "status") is not None:
        if time.monotonic() > deadline:
            os.kill(int(status["pid"]), signal.SIGKILL)
        time.sleep(0.1)


def per_job(result: Result, reps: int, scratch: Path, quick: bool) -> dict[str, list[float]]:
    workflow = copy_workflow(scratch / "per_job", {"bench": registry(1, jobs="[fit]", epochs=0)})
    state = scratch / "warm-state"
    start_server(workflow, state)
    check(
        timed(
            [SNAKEMAKE, "--cores", "1", "--skip-script-cleanup", f"{RUN}/fit.done"],
            cwd=workflow,
            env=warm_env(state, on=True),  # in the server: a fork, not a second cold start
        ),
        "writing the fit job's script",
    )
    (script,) = sorted((workflow / ".snakemake" / "scripts").glob("*fit.py"))
    variants = {"cold job": False, "warm job": True}
    times: dict[str, list[float]] = {name: [] for name in variants}
    first = 0 if quick else 1  # a first repetition warms the file cache, unrecorded
    for rep in range(reps + first):
        for name in list(variants) if rep % 2 == 0 else list(variants)[::-1]:
            shutil.rmtree(workflow / RUN, ignore_errors=True)
            t = check(
                timed([PYTHON, str(script)], cwd=workflow, env=warm_env(state, variants[name])),
                name,
            )
            log = (workflow / RUN / "logs" / "fit.log").read_text()
            assert log.startswith("Warm start") == variants[name], log[:200]
            if rep >= first:
                times[name].append(t.seconds)
    stop_server(workflow, state)
    in_process = check(
        timed([PYTHON, "-c", IN_PROCESS, str(reps), str(scratch / "in_process")], cwd=REPO),
        "the fit in one process",
    )
    fit = json.loads(in_process.output.strip().splitlines()[-1])
    fit_median = stats(fit)["median"]
    rows = [["the fit itself (in a process that imported everything)", fmt(stats(fit)), "-"]]
    for name in variants:
        fixed = stats([t - fit_median for t in times[name]])
        rows.append(
            [
                f"{name}: `python .snakemake/scripts/tmp*.fit.py`",
                fmt(stats(times[name])),
                fmt(fixed),
            ]
        )
    result.table(
        f"A zero-epoch fit job of configs/digits_mlp.py; median (min-max) over {reps} repetitions",
        ["what", "wall time", "fixed cost (wall minus the fit's median)"],
        rows,
    )
    return {**times, "fit": fit}


def sweep(result: Result, reps: int, scratch: Path, quick: bool) -> dict[str, list[float]]:
    example = yaml.safe_load((REPO / "configs/projects/digits.yaml").read_text())
    project = {
        "description": "lr_sweep",
        "experiments": {"lr_sweep": example["experiments"]["lr_sweep"]},
    }
    epochs = 1 if quick else 5  # --quick checks the code: 1 epoch a run
    sweep_spec = project["experiments"]["lr_sweep"]["sweep"]
    sweep_spec["overrides"]["trainer.max_epochs"] = epochs
    if quick:  # and 2 runs, plain_sweep's first two: the first lr and batch size, 2 seeds
        sweep_spec["grid"] = {name: values[:1] for name, values in sweep_spec["grid"].items()}
    runs = math.prod(map(len, sweep_spec["grid"].values())) * sweep_spec["seeds"]
    workflow = copy_workflow(scratch / "sweep", {"digits": yaml.safe_dump(project)})
    state = scratch / "sweep-state"
    variants: dict[str, tuple[list[str], str]] = {
        PLAIN: (
            [PYTHON, "-m", "bench.plain_sweep", str(scratch / "plain"), str(epochs), str(runs)],
            "plain",
        ),
        "snakemake -j2, warm": ([SNAKEMAKE, "-j2", SWEEP], "warm"),
        "snakemake -j2, warm from nothing": ([SNAKEMAKE, "-j2", SWEEP], "fresh"),
        "snakemake -j2, cold": ([SNAKEMAKE, "-j2", SWEEP], "cold"),
        "snakemake -j1, warm": ([SNAKEMAKE, "-j1", SWEEP], "warm"),
        "snakemake -j1, cold": ([SNAKEMAKE, "-j1", SWEEP], "cold"),
    }
    if quick:  # the goal's two commands
        variants = {k: v for k, v in variants.items() if k in GOAL_VARIANTS}
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for rep in range(reps):
        for name in list(variants) if rep % 2 == 0 else list(variants)[::-1]:
            command, mode = variants[name]
            shutil.rmtree(workflow / "results", ignore_errors=True)
            shutil.rmtree(scratch / "plain", ignore_errors=True)
            if mode == "warm":
                start_server(workflow, state)
            else:
                stop_server(workflow, state)
            cwd = REPO if mode == "plain" else workflow
            t = check(timed(command, cwd=cwd, env=warm_env(state, mode != "cold")), name)
            times[name].append(t.seconds)
            cpu[name].append(t.cpu_seconds)
            print(f"rep {rep} {name}: {t.seconds:.1f} s", flush=True)
    stop_server(workflow, state)
    plain = times[PLAIN]
    rows = []
    for name in variants:
        ratio = stats([t / p for t, p in zip(times[name], plain, strict=True)])
        rows.append([name, fmt(stats(times[name])), fmt(ratio, "", 3)])
    result.table(
        f"The digits lr_sweep ({runs} runs, fit {epochs} epochs + test; {2 * runs + 1} jobs); "
        "median (min-max) "
        f"over {reps} repetitions, the ratio paired per repetition",
        ["command", "wall time", "relative to the plain one-process loop"],
        rows,
    )
    return {"times": times, "cpu": cpu}


def goals(raw: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    per_job = raw["per_job"]
    fit = stats(per_job["fit"])["median"]
    warm = stats([t - fit for t in per_job["warm job"]])
    out.append(goal("a warm job's fixed cost <= 0.5 s", f"{warm['median']:.2f} s", warm, 0.5, True))
    times = raw["sweep"]["times"]
    plain = times[PLAIN]
    ratio = stats([t / p for t, p in zip(times["snakemake -j2, warm"], plain, strict=True)])
    out.append(
        goal(
            "lr_sweep -j2 warm <= 1.5x the plain one-process loop",
            f"{ratio['median']:.2f}x",
            ratio,
            1.5,
            True,
        )
    )
    return out


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0], reps=3)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.reps = 1
    result = Result(
        name="warm_jobs",
        title="Warm job starts: the per-job cost and the digits sweep",
        command=command_line("bench.warm_jobs", argv),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    scratch = scratch_dir("warm_jobs")
    result.raw = {
        "options": {k: v for k, v in vars(opts).items() if k != "out"},
        "per_job": per_job(result, max(opts.reps, 3) if not opts.quick else 1, scratch, opts.quick),
        "sweep": sweep(result, opts.reps, scratch, opts.quick),
    }
    result.goals += goals(result.raw)
    return result.write(opts.out)


if __name__ == "__main__":
    main()
