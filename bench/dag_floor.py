"""Snakemake's floor: the dry run and no-op rerun against a toy Snakefile of the same jobs.

For N runs, a scratch copy of the workflow holds one experiment of N runs of
configs/digits_mlp.py (each its own `seed`, jobs fit and test), and the target is the
experiment's summary.csv: N fits, N tests and the summary (2N + 1 jobs). The toy Snakefile
(bench/toy/Snakefile) declares the same jobs with the same output and log files, threads, a
constant `mem_mb` and a `script:` each, and nothing else: no registry, no input or params
functions, no per-run resources. The difference is what the workflow adds to Snakemake's own
cost. Both run side by side in each repetition, in alternating order:

  - dry run: `snakemake -n --cores 2 <target>` with nothing built;
  - no-op rerun: `snakemake --cores 2 <target>` when every output is there and up to date
    (bench.orchestration.make_done: `--touch`, then every output written with one mtime).

The ratio is the workflow's time over the toy's in the same repetition (median and range).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
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
from bench.orchestration import SNAKEMAKE, make_done, outputs, registry

SIZES = (1000, 10000)
TARGET = "results/bench/sweep/summary.csv"
TOY = REPO / "bench" / "toy"
GOAL = 1.05  # at 1,000 runs, dry run and no-op rerun
ALARM = 1.3  # the quick test's bound (tests/test_bench.py)


def workflows(n: int) -> dict[str, Path]:
    """The workflow and the toy, each in a fresh scratch folder, for `n` runs."""
    ours = copy_workflow(scratch_dir(f"floor_{n}"), {"bench": registry(n, jobs="[fit, test]")})
    toy = scratch_dir(f"floor_toy_{n}")
    shutil.copytree(TOY, toy, dirs_exist_ok=True)
    (toy / "config.yaml").write_text(f"runs: {n}\n")
    return {"workflow": ours, "toy": toy}


def side_by_side(
    roots: dict[str, Path], reps: int, dry: bool, warm: bool = True
) -> dict[str, list]:
    """Each repetition runs both, in alternating order: {name: [[wall, CPU], ...]}. A first
    repetition, not recorded, warms the file cache for both (`warm` and several `reps`)."""
    times: dict[str, list] = {name: [] for name in roots}
    unrecorded = 1 if warm and reps > 1 else 0
    for rep in range(-unrecorded, reps):
        for name in roots if rep % 2 == 0 else list(roots)[::-1]:
            cmd = [SNAKEMAKE, *(["-n"] if dry else []), "--cores", "2", TARGET]
            t = check(timed(cmd, cwd=roots[name]), f"{name} {'dry run' if dry else 'no-op'}")
            if not dry and "Nothing to be done" not in t.output:
                raise RuntimeError(f"the no-op rerun of {name} did work:\n{t.output[-2000:]}")
            if rep >= 0:
                times[name].append([t.seconds, t.cpu_seconds])
    return times


def ratios(times: dict[str, list]) -> list[float]:
    return [w[0] / t[0] for w, t in zip(times["workflow"], times["toy"], strict=True)]


def measure(n: int, reps: int, noop: bool = True, warm: bool = True) -> dict[str, Any]:
    roots = workflows(n)
    found = {"dry": side_by_side(roots, reps, dry=True, warm=warm)}
    if noop:
        for root in roots.values():
            dry = check(timed([SNAKEMAKE, "-n", "--cores", "2", TARGET], cwd=root), "dry")
            make_done(root, outputs(dry.output), [TARGET])
        found["noop"] = side_by_side(roots, reps, dry=False)
    return found


def dry_ratio(n: int, reps: int) -> float:
    """The smallest ratio of the workflow's dry run to the toy's over `reps` repetitions (the
    quick test's figure: a busy machine slows either side, never both alike)."""
    return min(ratios(measure(n, reps, noop=False, warm=False)["dry"]))


def report(result: Result, raw: dict[str, Any], reps: int) -> None:
    rows = []
    for n, found in raw.items():
        for kind, times in found.items():
            what = "dry run" if kind == "dry" else "no-op rerun"
            ours, toy = (stats([t[0] for t in times[k]]) for k in ("workflow", "toy"))
            r = stats(ratios(times))
            rows.append(
                [f"{int(n):,}", f"{2 * int(n) + 1:,}", what, fmt(ours), fmt(toy), fmt(r, "x")]
            )
            print(f"{n} runs, {what}: {ours['median']:.2f} s against {toy['median']:.2f} s")
    result.table(
        f"The workflow against the toy Snakefile, same jobs; median (min-max) over {reps} "
        "repetitions, the ratio paired per repetition",
        ["runs", "jobs", "command", "workflow, wall", "toy, wall", "ratio"],
        rows,
    )


def goals(raw: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for kind, what in (("dry", "dry run"), ("noop", "no-op rerun")):
        times = raw.get("1000", {}).get(kind)
        if times:
            s = stats(ratios(times))
            text = f"{s['median']:.3f}x the toy"
            found.append(
                goal(f"{what} of 1,000 runs <= {GOAL}x a toy Snakefile", text, s, GOAL, True)
            )
    return found


def keep_other_sizes(result: Result, path: Path, sizes: Sequence[int]) -> None:
    """The figures of the sizes not measured now, from the earlier result file, said so."""
    earlier = json.loads(path.read_text())
    kept = {n: found for n, found in earlier["raw"].items() if int(n) not in sizes}
    result.raw.update(kept)
    if kept:
        result.notes.append(
            f"The figures of {', '.join(f'{int(n):,}' for n in kept)} runs come from the run "
            f"of {earlier['date']} (load {earlier['load']['before']} before, "
            f"{earlier['load']['after']} after), command `{earlier['command']}`."
        )


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0], reps=5)
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="runs")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the other sizes' figures of the result file in --out (10,000 runs take long)",
    )
    opts = p.parse_args(argv)
    if opts.quick:
        opts.sizes, opts.reps = [10], 1
    result = Result(
        name="dag_floor",
        title="Orchestration against Snakemake's floor: a toy Snakefile of the same jobs",
        command=command_line("bench.dag_floor", argv),
        about=__doc__.split("\n\n", 1)[1].strip(),
        packages=("snakemake",),
        quick=opts.quick,
    )
    note = slurm_wait_note()
    if note:
        result.notes.append(note)
    if opts.keep:
        keep_other_sizes(result, opts.out / "dag_floor.json", opts.sizes)
    for n in opts.sizes:
        result.raw[str(n)] = measure(n, opts.reps)
    result.raw = dict(sorted(result.raw.items(), key=lambda kv: int(kv[0])))
    report(result, result.raw, opts.reps)
    result.goals += goals(result.raw)
    return result.write(opts.out)


if __name__ == "__main__":
    main()
