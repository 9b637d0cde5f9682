"""Training-step overhead on a GPU: item 1 (bench/step_overhead.py) on CUDA with bf16-mixed.

The same three variants as bench/step_overhead.py (the same batch fetch in all three, (c) the
fit job's own function), interleaved, with `precision="bf16-mixed"` for (b) and (c) and
`torch.autocast(dtype=torch.bfloat16)` for (a), and `deterministic=False` for all three;
batches live on the CPU and are moved per step in all three (as Lightning does). Two sizes:
a small one (SmallCNN channels=8, batch 64), where a step is a few kernel launches and
the loop's Python cost shows, and a wider one (channels=64, batch 256), each with 100
training and 20 validation steps per epoch. Without a CUDA device it prints one line and
leaves the last GPU result in place.
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import Result, command_line, parser
from bench.step_overhead import add_options, measure, quick, report
from bench.step_overhead import goals as size_goals

SIZES = ((8, 64), (64, 256))  # (channels, batch size)


def goals(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Each size's goals (bench.step_overhead.goals), on wall time."""
    return [g for size in raw.values() for g in size_goals(size)]


def main(argv: Sequence[str] | None = None) -> Path | None:
    p = parser(__doc__.splitlines()[0])
    add_options(p)
    p.set_defaults(threads=2)  # CPU threads beside the GPU: data indexing, Python
    p.add_argument("--device", default="cuda", help=argparse.SUPPRESS)  # cpu: a local dry check
    opts = p.parse_args(argv)
    import torch

    if opts.device == "cuda" and not torch.cuda.is_available():
        print("gpu_step_overhead: skipped, no CUDA device (the last GPU result stays)")
        return None
    # deterministic=False in all three, the usual setting for speed on a GPU (the CPU benchmark
    # keeps the example trainer's True).
    opts.precision, opts.deterministic = "bf16-mixed", False
    sizes = SIZES
    if opts.quick:
        quick(opts)
        sizes = ((opts.channels, opts.batch_size),)
    extra = {}
    if opts.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        extra = {"gpu": props.name, "gpu_memory_gb": round(props.total_memory / 2**30, 1)}
        extra["cuda"] = torch.version.cuda
    result = Result(
        name="gpu_step_overhead" if opts.device == "cuda" else "gpu_step_overhead_cpu_check",
        title=f"Training-step overhead on a GPU ({extra.get('gpu', opts.device)}, bf16-mixed)",
        command=command_line("bench.gpu_step_overhead", argv),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    all_raw = {}
    for channels, batch_size in sizes:
        size_opts = copy.copy(opts)
        size_opts.channels, size_opts.batch_size = channels, batch_size
        if not opts.quick:  # 100 training and 20 validation steps per epoch, as on the CPU
            size_opts.n_train, size_opts.n_val = 100 * batch_size, 20 * batch_size
        runs = measure(size_opts)
        report(result, size_opts, runs)
        all_raw[f"channels={channels},batch={batch_size}"] = result.raw
    result.raw = all_raw
    return result.write(opts.out, extra_machine=extra)


if __name__ == "__main__":
    main()
