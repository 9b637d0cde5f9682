"""Data path: the data wrapper's train loader against indexing the tensors by hand.

One epoch over synthetic 28x28 images held in a TensorDataset, at the example's batch size
(64) and at 256, in the main process (num_workers=0, as the digits example). Rows, all
shuffled unless named otherwise:

  - by hand: `x.index_select(0, order[i:i+bs])` for a shuffled `order`, the faster of the two
    hand-written fetches; the reference of the relative columns and of the goal
  - by hand: `x[order[i:i+bs]]`, the same values by advanced indexing
  - by hand, contiguous views `x[i:i+bs]` (no copy; no shuffle; an upper bound)
  - the data wrapper, train_dataset=TensorDataset (its batched path, `TensorBatches`)
  - the data wrapper, dataset=TensorDataset split by fractions (a Subset: the same path)
  - a DataLoader that fetches whole batches, written in plain PyTorch (bench/batches.py: the
    fetch of variants (a) and (b) in bench/step_overhead.py)
  - a plain DataLoader(TensorDataset, shuffle=True): per-sample `__getitem__` + default_collate,
    which the data wrapper did before its batched path

The second table is the data wrapper's own gain: milliseconds of CPU per batch on the
per-sample path and on the batched one, paired per repetition.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.common import Result, command_line, fmt, goal, parser, stats

REFERENCE = "by hand: x.index_select(0, order[i:i+bs]), shuffled"
WRAPPER = "data wrapper, train_dataset=TensorDataset"
BATCHED = "DataLoader fetching whole batches (bench/batches.py), shuffle=True"
PER_SAMPLE = "DataLoader(TensorDataset, shuffle=True): per sample + collate"


def _epoch(batches: Callable[[], Iterable[Any]]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one pass, and the batch count."""
    wall, cpu = time.perf_counter(), time.process_time()
    count = 0
    for _ in batches():
        count += 1
    return time.perf_counter() - wall, time.process_time() - cpu, count


def sources(n: int, batch_size: int) -> dict[str, Callable[[], Iterable[Any]]]:
    import torch
    from torch.utils.data import DataLoader

    from bench.batches import batch_loader
    from bench.common import synthetic_images
    from wrappers import BasicDataWrapper

    data = synthetic_images(n, seed=0)
    x, y = data.tensors

    def by_hand_select():
        order = torch.randperm(n)
        for i in range(0, n, batch_size):
            index = order[i : i + batch_size]
            yield x.index_select(0, index), y.index_select(0, index)

    def by_hand():
        order = torch.randperm(n)
        for i in range(0, n, batch_size):
            index = order[i : i + batch_size]
            yield x[index], y[index]

    def views():
        for i in range(0, n, batch_size):
            yield x[i : i + batch_size], y[i : i + batch_size]

    given = BasicDataWrapper(train_dataset=data, val_dataset=data, batch_size=batch_size)
    given.setup("fit")
    # All of it in train (the other splits are given, so one fraction): a Subset of everything.
    split = BasicDataWrapper(
        dataset=data,
        val_dataset=data,
        test_dataset=data,
        split_fractions=(1.0,),
        batch_size=batch_size,
    )
    split.setup("fit")
    return {
        REFERENCE: by_hand_select,
        "by hand: x[order[i:i+bs]], shuffled": by_hand,
        "by hand: contiguous views x[i:i+bs], not shuffled": views,
        WRAPPER: given.train_dataloader,
        "data wrapper, dataset=TensorDataset split by fractions": split.train_dataloader,
        BATCHED: lambda: batch_loader(data, batch_size, shuffle=True),
        PER_SAMPLE: lambda: DataLoader(data, batch_size=batch_size, shuffle=True),
    }


def measure(n: int, batch_size: int, reps: int) -> dict[str, dict[str, list[float]]]:
    """Batches per second of wall time and of this process's CPU time (one thread; the CPU
    rate holds on a busy machine), the sources interleaved, the order flipped every repetition."""
    loaders = sources(n, batch_size)
    rates: dict[str, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in loaders}
    warm = 1 if reps > 1 else 0  # a first repetition warms up, unrecorded
    for rep in range(reps + warm):
        names = list(loaders) if rep % 2 == 0 else list(loaders)[::-1]
        for name in names:
            wall, cpu, count = _epoch(loaders[name])
            if rep >= warm:
                rates[name]["wall"].append(count / wall)
                rates[name]["cpu"].append(count / max(cpu, 1e-9))
    return rates


def relative(rates: dict, name: str, key: str, to: str = REFERENCE) -> dict[str, float]:
    """`name`'s rate over `to`'s, paired per repetition."""
    return stats([r / h for r, h in zip(rates[name][key], rates[to][key], strict=True)])


def report(result: Result, opts: Any, batch_size: int, rates: dict) -> None:
    result.table(
        f"One epoch of {opts.n} samples (1x28x28 float32), batch size {batch_size}, "
        f"{opts.threads} thread(s), main process; median (min-max) over {opts.reps} repetitions",
        [
            "source",
            "batches per second (wall)",
            "relative (wall)",
            "batches per CPU second",
            "relative (CPU)",
        ],
        [
            [
                name,
                fmt(stats(rates[name]["wall"]), "/s"),
                fmt(relative(rates, name, "wall"), "", 3),
                fmt(stats(rates[name]["cpu"]), "/s"),
                fmt(relative(rates, name, "cpu"), "", 3),
            ]
            for name in rates
        ],
    )


def gain(result: Result, opts: Any, all_rates: dict[int, dict]) -> None:
    """The data wrapper's batched path against the per-sample path it replaced."""

    def ms(rates: dict, name: str) -> dict[str, float]:
        return stats([1000 / r for r in rates[name]["cpu"]])

    rows = []
    for batch_size, rates in all_rates.items():
        rows.append(
            [
                str(batch_size),
                fmt(ms(rates, PER_SAMPLE), "ms"),
                fmt(ms(rates, WRAPPER), "ms"),
                fmt(relative(rates, WRAPPER, "cpu", to=PER_SAMPLE), "", 3),
                fmt(ms(rates, BATCHED), "ms"),
                fmt(relative(rates, WRAPPER, "cpu", to=BATCHED), "", 3),
            ]
        )
    result.table(
        "The data wrapper's own gain: CPU milliseconds per batch; median (min-max) over "
        f"{opts.reps} repetitions, ratios paired per repetition",
        [
            "batch size",
            "per sample + collate",
            "data wrapper",
            "data wrapper, batches per CPU second over per sample",
            "whole batches in plain PyTorch (bench/batches.py)",
            "data wrapper over whole batches in plain PyTorch",
        ],
        rows,
    )


def goals(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """The data wrapper against the faster hand-written fetch, at the example's batch size."""
    batch_size = raw["options"]["batch_sizes"][0]
    rates = raw["rates"][str(batch_size)]
    s, wall = (relative(rates, WRAPPER, key) for key in ("cpu", "wall"))
    text = f"{s['median']:.2f} CPU ({wall['median']:.2f} wall)"
    what = f"data wrapper >= 0.8 of by hand with index_select (batch {batch_size})"
    return [goal(what, text, s, 0.8, below=False)]


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60000, help="samples (default 60000, MNIST's train)")
    p.add_argument(
        "--batch-sizes", type=int, nargs="+", default=[64, 256], help="the example's first"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.n, opts.reps = 2048, 1
    import torch

    torch.set_num_threads(opts.threads)
    result = Result(
        name="data_path",
        title="Data path: batches per second",
        command=command_line("bench.data_path", argv),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    all_rates = {bs: measure(opts.n, bs, opts.reps) for bs in opts.batch_sizes}
    for batch_size, rates in all_rates.items():
        report(result, opts, batch_size, rates)
    gain(result, opts, all_rates)
    options = {k: v for k, v in vars(opts).items() if k != "out"}
    result.raw = {"options": options, "rates": {str(bs): r for bs, r in all_rates.items()}}
    result.goals += goals(result.raw)
    return result.write(opts.out)


if __name__ == "__main__":
    main()
