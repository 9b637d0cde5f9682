"""Search quality: TPE with median pruning against a grid of 81 points, on the digits MLP.

The search space of the example search (configs/projects/digits.yaml: the MLP's learning rate
and weight decay, log-uniform, its hidden width, 32 to 256 in steps of 32, and its dropout,
0 to 0.5) is also enumerated as a grid of 3 values a parameter, 3 x 3 x 3 x 3 = 81 runs: the
centres of the three equal thirds of each range (in log space for the log-uniform ones, to 2
significant digits; the width on its step of 32). A scratch copy of the workflow holds that
grid as an ordinary `sweep:` experiment and three searches of the same space, sampler seeds
0, 1 and 2, each of 27 trials (a third of the grid's runs), 2 asked at a time, TPE, median
pruning on `val/loss` after every epoch. Every run, grid or trial, is configs/digits_mlp.py
with `trainer.max_epochs: 10`, the fit and test jobs, and the workflow's global seed.
`snakemake -j2 <experiment>/summary.csv` runs each experiment, the grid first.

Counted from each experiment's records: its runs, the epochs its fits trained (`epochs` in
each fit.done: a pruned trial's fit stops early), and its best `test/acc` (a search's among
its completed trials, as its own summary ranks them: a pruned trial's test is never
ranked). A search meets the three goals when its best test accuracy is within 0.5 percentage
points of the grid's best with at most a third of the grid's runs and a quarter of its
training epochs; as on the rest of this page, a goal is met when each of the 3 search seeds
meets it (stricter than their median meeting it).

The search block is the example's but for `trials` and the sampler `seed`, its pruner
included (`startup_trials: 4, warmup_epochs: 2`: no trial is pruned before 4 trials have
completed, nor before its third epoch); `--startup-trials` and `--warmup-epochs` try others.
Which trials have completed when a trial reports depends on the order in which the two parallel
fits finish, so a search's figures may differ from one run of the benchmark to the next.
"""

from __future__ import annotations

import copy
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    BIN,
    REPO,
    Result,
    Timed,
    check,
    command_line,
    copy_workflow,
    goal,
    parser,
    scratch_dir,
    stats,
    timed,
)

PROJECT = "bench"
GRID = "grid"
METRIC = "test/acc"
# Within this many percentage points of the grid's best, with at most these shares of its
# runs and training epochs.
GAP_PP = 0.5
RUNS_SHARE = 1 / 3
EPOCHS_SHARE = 1 / 4


def example_search() -> dict[str, Any]:
    """The example project's search block (configs/projects/digits.yaml)."""
    example = yaml.safe_load((REPO / "configs/projects/digits.yaml").read_text())
    return example["experiments"]["search"]["search"]


def _significant(x: float, digits: int = 2) -> float:
    return float(f"{x:.{digits}g}")


def grid_axis(dist: dict[str, Any], n: int) -> list[Any]:
    """`n` values of one search-space parameter: the centres of `n` equal parts of its range
    (of log10 of it for a log range), floats to 2 significant digits, ints on their step."""
    low, high, log = dist["low"], dist["high"], dist.get("log", False)
    fractions = [(i + 0.5) / n for i in range(n)]
    if dist["type"] == "int":
        step = dist.get("step", 1)
        return [low + step * round(f * (high - low) / step) for f in fractions]
    if log:
        a, b = math.log10(low), math.log10(high)
        return [_significant(10 ** (a + f * (b - a))) for f in fractions]
    return [_significant(low + f * (high - low)) for f in fractions]


def search_name(seed: int) -> str:
    return f"search_s{seed}"


def registry(
    trials: int,
    epochs: int,
    seeds: Sequence[int],
    grid_points: int,
    parallel: int,
    startup_trials: int,
    warmup_epochs: int,
) -> str:
    """The project file: the grid (`grid_points` values a parameter) and one search per seed."""
    example = example_search()
    space = example["space"]
    overrides = {"trainer.max_epochs": epochs}
    grid = {path: grid_axis(dist, grid_points) for path, dist in space.items()}
    experiments: dict[str, Any] = {
        GRID: {
            "description": "The search space as a grid, each parameter at its thirds' centres",
            "metric": METRIC,
            "sweep": {
                "config": example["config"],
                "name": "lr{task_wrapper.lr}-wd{task_wrapper.classifier.weight_decay}"
                "-h{task_wrapper.model.hidden_dim}-d{task_wrapper.model.dropout}",
                "jobs": ["fit", "test"],
                "overrides": overrides,
                "grid": grid,
            },
        }
    }
    for seed in seeds:
        search = {
            **copy.deepcopy(example),
            "trials": trials,
            "parallel": min(parallel, trials),
            "seed": seed,
            "metric": METRIC,
            "pruner": {
                "type": "median",
                "startup_trials": startup_trials,
                "warmup_epochs": warmup_epochs,
            },
            "overrides": dict(overrides),
        }
        experiments[search_name(seed)] = {
            "description": f"The example search, sampler seed {seed}",
            "search": search,
        }
    return yaml.safe_dump(
        {"description": "Benchmark: search against grid", "experiments": experiments},
        sort_keys=False,
    )


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def run_record(folder: Path) -> dict[str, Any]:
    """What one run's records say: epochs trained, pruned after which epoch, its test/acc."""
    fit = read(folder / "fit.done")
    test = read(folder / "test.done")
    return {
        "epochs": fit["epochs"],
        "pruned": (fit.get("pruned") or {}).get("epoch"),
        "acc": test["metrics"][METRIC],
    }


def grid_outcome(exp: Path) -> dict[str, Any]:
    runs = {f.name: run_record(f) for f in sorted(exp.iterdir()) if (f / "fit.done").is_file()}
    best = max(runs, key=lambda name: runs[name]["acc"])
    return {
        "runs": len(runs),
        "epochs": sum(r["epochs"] for r in runs.values()),
        "pruned": 0,
        "best": runs[best]["acc"],
        "best_run": best,
        "per_run": runs,
    }


def search_outcome(exp: Path) -> dict[str, Any]:
    """A search's trials, from its told-<k>.json files (state, value, params) and its runs'
    records (epochs); the best is the best completed trial's value."""
    trials = []
    for k in range(len(list((exp / "search").glob("told-*.json")))):
        told = read(exp / "search" / f"told-{k}.json")
        asked = {t["number"]: t for t in read(exp / "search" / f"round-{k}.json")["trials"]}
        for trial in told["trials"]:
            runs = [run["name"] for run in asked[trial["number"]]["runs"]]
            records = [run_record(exp / name) for name in runs]
            trials.append(
                {
                    "number": trial["number"],
                    "state": trial["state"],
                    "value": trial["value"],
                    "params": trial["params"],
                    "runs": runs,
                    "epochs": sum(r["epochs"] for r in records),
                    "pruned_after": [r["pruned"] for r in records],
                    "test_acc": [r["acc"] for r in records],
                }
            )
    complete = [t for t in trials if t["state"] == "complete"]
    best = max(complete, key=lambda t: t["value"])
    return {
        "runs": sum(len(t["runs"]) for t in trials),
        "epochs": sum(t["epochs"] for t in trials),
        "pruned": sum(t["state"] == "pruned" for t in trials),
        "best": best["value"],
        "best_trial": best["number"],
        "best_params": best["params"],
        "trials": trials,
    }


def _pp(x: float) -> str:
    return f"{100 * x:.2f} %"


def _params(params: dict[str, Any]) -> str:
    short = {
        "task_wrapper.lr": "lr",
        "task_wrapper.classifier.weight_decay": "wd",
        "task_wrapper.model.hidden_dim": "hidden",
        "task_wrapper.model.dropout": "dropout",
    }
    ordered = [k for k in short if k in params] + [k for k in params if k not in short]
    return ", ".join(
        f"{short.get(k, k)} {params[k]:.2g}"
        if isinstance(params[k], float)
        else f"{short.get(k, k)} {params[k]}"
        for k in ordered
    )


def shares(raw: dict[str, Any]) -> dict[str, list[float]]:
    """Per search seed: the gap to the grid's best (percentage points), and the shares of the
    grid's runs and epochs."""
    grid = raw["grid"]
    searches = raw["searches"].values()
    return {
        "gap_pp": [100 * (grid["best"] - s["best"]) for s in searches],
        "runs": [s["runs"] / grid["runs"] for s in searches],
        "epochs": [s["epochs"] / grid["epochs"] for s in searches],
    }


def goals(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The three goals, each judged on the search seeds (met when every seed meets it)."""
    found = shares(raw)
    n = len(raw["searches"])
    gap, runs, epochs = (stats(found[k]) for k in ("gap_pp", "runs", "epochs"))
    return [
        goal(
            f"search's best test/acc within {GAP_PP} pp of the grid's best ({n} search seeds)",
            f"grid's best minus search's best: {gap['median']:.2f} pp (median)",
            gap,
            GAP_PP,
            True,
        ),
        goal(
            f"search's runs <= 1/3 of the grid's ({n} search seeds)",
            f"{runs['median']:.3f} of them (median)",
            runs,
            RUNS_SHARE,
            True,
        ),
        goal(
            f"search's training epochs <= 1/4 of the grid's ({n} search seeds)",
            f"{epochs['median']:.3f} of them (median)",
            epochs,
            EPOCHS_SHARE,
            True,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0], reps=1)
    p.add_argument("--trials", type=int, default=27, help="trials per search (default 27)")
    p.add_argument("--epochs", type=int, default=10, help="max epochs of every run (default 10)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="search seeds")
    p.add_argument("--grid-points", type=int, default=3, help="grid values a parameter")
    p.add_argument("--parallel", type=int, default=2, help="trials asked at once")
    pruner = example_search()["pruner"]
    p.add_argument(
        "--startup-trials",
        type=int,
        default=pruner["startup_trials"],
        help=f"the median pruner's (default {pruner['startup_trials']}, the example's)",
    )
    p.add_argument(
        "--warmup-epochs",
        type=int,
        default=pruner["warmup_epochs"],
        help=f"the median pruner's (default {pruner['warmup_epochs']}, the example's)",
    )
    opts = p.parse_args(argv)
    if opts.quick:
        opts.trials, opts.epochs, opts.seeds, opts.grid_points = 2, 1, [0], 1
    result = Result(
        name="search_quality",
        title="Search quality: TPE with median pruning against an 81-point grid",
        command=command_line("bench.search_quality", argv),
        packages=("torch", "lightning", "optuna", "snakemake"),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    text = registry(
        opts.trials,
        opts.epochs,
        opts.seeds,
        opts.grid_points,
        opts.parallel,
        opts.startup_trials,
        opts.warmup_epochs,
    )
    root = copy_workflow(scratch_dir("search_quality"), {PROJECT: text})
    experiments = [GRID, *(search_name(s) for s in opts.seeds)]
    times: dict[str, Timed] = {}
    for exp in experiments:
        target = f"results/{PROJECT}/{exp}/summary.csv"
        print(f"snakemake -j2 {target}", flush=True)
        times[exp] = check(timed([str(BIN / "snakemake"), "-j2", target], cwd=root), target)
    results = root / "results" / PROJECT
    raw: dict[str, Any] = {
        "options": {k: str(v) for k, v in vars(opts).items()},
        "registry": yaml.safe_load(text),
        "grid": grid_outcome(results / GRID),
        "searches": {str(s): search_outcome(results / search_name(s)) for s in opts.seeds},
        "times": {exp: {"wall": t.seconds, "cpu": t.cpu_seconds} for exp, t in times.items()},
    }
    grid = raw["grid"]
    rows = [
        [
            f"grid ({opts.grid_points}^4 points)",
            grid["runs"],
            grid["epochs"],
            "-",
            _pp(grid["best"]),
            grid["best_run"],
            f"{times[GRID].seconds:.0f} s",
            f"{times[GRID].cpu_seconds:.0f} s",
        ]
    ]
    for seed in opts.seeds:
        s = raw["searches"][str(seed)]
        exp = search_name(seed)
        rows.append(
            [
                f"search, seed {seed}",
                s["runs"],
                s["epochs"],
                s["pruned"],
                _pp(s["best"]),
                f"trial {s['best_trial']}: {_params(s['best_params'])}",
                f"{times[exp].seconds:.0f} s",
                f"{times[exp].cpu_seconds:.0f} s",
            ]
        )
    result.table(
        f"Each experiment (max {opts.epochs} epochs a run; snakemake -j2, one experiment at a "
        "time)",
        [
            "experiment",
            "runs",
            "epochs trained",
            "pruned trials",
            "best test/acc",
            "best run",
            "wall time",
            "CPU time",
        ],
        rows,
    )
    found = shares(raw)
    ratio_rows = [
        [
            f"search, seed {seed}",
            f"{gap:.2f}",
            f"{runs:.3f}",
            f"{epochs:.3f}",
        ]
        for seed, gap, runs, epochs in zip(
            opts.seeds, found["gap_pp"], found["runs"], found["epochs"], strict=True
        )
    ]
    ratio_rows.append(
        [
            f"median over {len(opts.seeds)} seeds",
            f"{statistics.median(found['gap_pp']):.2f}",
            f"{statistics.median(found['runs']):.3f}",
            f"{statistics.median(found['epochs']):.3f}",
        ]
    )
    result.table(
        "Each search against the grid",
        [
            "search",
            "grid's best minus search's best (pp)",
            "runs / grid's runs",
            "epochs / grid's epochs",
        ],
        ratio_rows,
    )
    result.goals = goals(raw)
    result.raw = raw
    return result.write(opts.out)


if __name__ == "__main__":
    main()
