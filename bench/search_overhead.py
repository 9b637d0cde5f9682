"""Search overhead: what a search's rounds cost apart from training, up to 1,000 trials.

A scratch copy of the workflow holds one search experiment (the digits MLP's search space of
configs/projects/digits.yaml: TPE over four parameters, 2 trials a round). The rounds are run
in one process with the round and tell jobs' own functions (dltemplate.jobs.search: ask
Optuna for the round's trials, tell it their results), each trial's records written as a
finished test job would write them (a random test/acc), without training: what a round costs
the search itself. The table gives the ask and the tell of the rounds near each trial count;
then, with every round asked and told, the registry's load (what Snakemake's parse adds for
the asked trials) and a dry run of the experiment's summary.csv (parse, registry, the DAG of
every round and trial; `--rerun-triggers mtime`, since the records were written without
Snakemake's metadata). A round's job adds its own process start and imports on top.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path

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

TARGET = "results/bench/search/summary.csv"


def search_registry(trials: int) -> str:
    """The example project's search, with `trials` trials."""
    example = yaml.safe_load((REPO / "configs/projects/digits.yaml").read_text())
    search = example["experiments"]["search"]
    search["search"]["trials"] = trials
    return yaml.safe_dump({"description": "Benchmark search", "experiments": {"search": search}})


def run_rounds(root: Path, marks: Sequence[int]) -> tuple[dict[int, dict[str, list[float]]], float]:
    """Ask and tell every round in `root`: {trials so far: {ask: [s], tell: [s]}} for the 5
    rounds that end at or before each mark, and the registry's load time at the end."""
    from dltemplate.jobs.search import ask_round, tell_round
    from dltemplate.layout import use_results_root
    from dltemplate.records import write_json_atomic
    from dltemplate.registry.model import load_registry

    here = os.getcwd()
    os.chdir(root)
    try:
        use_results_root("results")
        experiment = load_registry("configs/projects").experiment("bench", "search")
        spec, layout = experiment.search, experiment.layout
        rng = random.Random(0)
        times: dict[int, dict[str, list[float]]] = {m: {"ask": [], "tell": []} for m in marks}
        for k in range(spec.rounds):
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # the job's lines, for its log
                asked = ask_round(layout, spec, k)
            t1 = time.perf_counter()
            for trial in asked["trials"]:
                for run in trial["runs"]:
                    folder = layout.run(run["name"])
                    write_json_atomic(folder.done("fit"), {"metrics": {}})
                    write_json_atomic(folder.done("test"), {"metrics": {"test/acc": rng.random()}})
            t2 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                tell_round(layout, spec, k)
            t3 = time.perf_counter()
            done = (k + 1) * spec.parallel
            for mark in marks:
                if mark - 5 * spec.parallel < done <= mark:
                    times[mark]["ask"].append(t1 - t0)
                    times[mark]["tell"].append(t3 - t2)
        t0 = time.perf_counter()
        load_registry("configs/projects")
        load_seconds = time.perf_counter() - t0
    finally:
        os.chdir(here)
    return times, load_seconds


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0], reps=1)
    p.add_argument("--trials", type=int, default=1000)
    opts = p.parse_args(argv)
    if opts.quick:
        opts.trials = 20
    result = Result(
        name="search_overhead",
        title="Search overhead: ask, tell and the DAG at up to 1,000 trials",
        command=command_line("bench.search_overhead", argv),
        packages=("optuna", "snakemake"),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    root = copy_workflow(scratch_dir("search_overhead"), {"bench": search_registry(opts.trials)})
    marks = sorted({m for m in (10, 100, 500, 1000, opts.trials) if m <= opts.trials})
    times, load_seconds = run_rounds(root, marks)
    rows = []
    for mark in marks:
        ask, tell = stats(times[mark]["ask"]), stats(times[mark]["tell"])
        both = stats([a + t for a, t in zip(times[mark]["ask"], times[mark]["tell"], strict=True)])
        rows.append([mark, fmt(ask), fmt(tell), fmt(both)])
    result.table(
        "seconds per round of 2 trials, over the 5 rounds that end at or before each count; "
        "median (min-max)",
        ["trials told", "ask", "tell", "ask + tell"],
        rows,
    )
    dry = check(
        timed(
            [str(BIN / "snakemake"), "-n", "--cores", "2", TARGET, "--rerun-triggers", "mtime"],
            cwd=root,
        ),
        "dry run",
    )
    result.table(
        f"with all {opts.trials} trials asked and told",
        ["what", "wall time"],
        [
            ["registry load (Snakemake's parse adds it)", f"{load_seconds:.3f} s"],
            [f"snakemake -n {TARGET}", f"{dry.seconds:.2f} s"],
        ],
    )
    last = [a + t for a, t in zip(times[marks[-1]]["ask"], times[marks[-1]]["tell"], strict=True)]
    s = stats(last)
    result.goals.append(
        goal(f"ask + tell per round at {marks[-1]} trials <= 1 s", fmt(s), s, 1.0, True)
    )
    result.raw = {"options": {k: str(v) for k, v in vars(opts).items()}, "times": times}
    return result.write(opts.out)


if __name__ == "__main__":
    main()
