"""Several runs per GPU: a digits sweep with 4 runs sharing each GPU against one run per GPU.

A scratch copy of the workflow holds one experiment of 8 runs of configs/digits_cnn.py (each its
own seed, fit and test, 3 epochs), and the target is its summary.csv. The same sweep runs twice
per repetition, in alternating order, with `snakemake --cores C --resources gpu=G
gpu_share=60G` (profiles/local's settings; C: this machine's cores, at most 16; G: its GPUs):
once with every run's `resources: {gpus: 1}` (one run per GPU at a time), once with
`{gpus: 0.25}` (four at a time, dltemplate.jobs.gpu_slots). The figure is the sweep's wall
time and its ratio; on a small model one run leaves most of a GPU idle.

`--device cpu` is a check of the script on a machine without CUDA: a pretend GPU
(CUDA_VISIBLE_DEVICES=0) and the runs on the CPU (tests/test_bench.py, bench/gpu_check.sh).
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from bench.common import (
    BIN,
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

TARGET = "results/bench/sweep/summary.csv"
SHARES = {"1 run per GPU (gpus: 1)": 1, "4 runs per GPU (gpus: 0.25)": 0.25}


def sweep_registry(runs: int, epochs: int, gpus: float, accelerator: str) -> str:
    lines = [
        "description: Several runs per GPU",
        "experiments:",
        "  sweep:",
        f"    description: {runs} digits CNNs, {gpus} GPU each",
        f"    resources: {{gpus: {gpus}, cpus: 1}}",
        "    runs:",
    ]
    for i in range(runs):
        lines += [
            f"      r{i:05d}:",
            f"        description: run {i}",
            "        config: configs/digits_cnn.py",
            "        jobs: [fit, test]",
            f"        overrides: {{trainer.max_epochs: {epochs}, trainer.accelerator: "
            f"{accelerator}, seed: {i}}}",
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> Path | None:
    p = parser(__doc__.splitlines()[0], reps=3)
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    import torch

    gpus = torch.cuda.device_count() if opts.device == "cuda" else 1
    if not gpus:
        print("gpu_share: skipped, no CUDA device (the last GPU result stays)")
        return None
    if opts.quick:
        opts.runs, opts.epochs, opts.reps = 1, 1, 1
    cores = min(16, os.cpu_count() or 1)
    env = {} if opts.device == "cuda" else {"CUDA_VISIBLE_DEVICES": "0"}  # a pretend GPU
    accelerator = "gpu" if opts.device == "cuda" else "cpu"
    result = Result(
        name="gpu_share" if opts.device == "cuda" else "gpu_share_cpu_check",
        title="Several runs per GPU: 4 runs per GPU against 1",
        command=command_line("bench.gpu_share", argv),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    roots = {
        name: copy_workflow(
            scratch_dir(f"gpu_share_{share}"),
            {"bench": sweep_registry(opts.runs, opts.epochs, share, accelerator)},
        )
        for name, share in SHARES.items()
    }
    limits = ["--resources", f"gpu={gpus}", f"gpu_share={60 * gpus}"]
    times: dict[str, list[float]] = {name: [] for name in SHARES}
    for rep in range(opts.reps):
        for name in SHARES if rep % 2 == 0 else list(SHARES)[::-1]:
            shutil.rmtree(roots[name] / "results", ignore_errors=True)
            cmd = [str(BIN / "snakemake"), TARGET, "--cores", str(cores), *limits]
            t = check(timed(cmd, cwd=roots[name], env=env), name)
            times[name].append(t.seconds)
            print(f"rep {rep} {name}: {t.seconds:.1f} s", flush=True)
    one = times[next(iter(SHARES))]
    rows = []
    for name in SHARES:
        ratio = stats([t / o for t, o in zip(times[name], one, strict=True)])
        rows.append([name, fmt(stats(times[name])), fmt(ratio, "")])
    result.table(
        f"{opts.runs} runs x (fit, test) + summary, {opts.epochs} epochs, --cores {cores}, "
        f"{gpus} GPU(s); median (min-max) over {opts.reps} repetitions",
        ["sweep", "wall time", "relative to 1 run per GPU"],
        rows,
    )
    result.raw = {"times": times, "gpus": gpus, "cores": cores}
    return result.write(opts.out)


if __name__ == "__main__":
    main()
