"""Data path: the data wrapper's train loader against indexing the tensors by hand.

One epoch over synthetic 28x28 images held in a TensorDataset, with the example's batch size
(64), in the main process (num_workers=0, as the digits example). Rows, all shuffled unless
named otherwise:

  - by hand: `x[order[i:i+64]]` for a shuffled `order` (what loop (a) of step_overhead does);
    the reference of the goal
  - by hand with `x.index_select(0, ...)`, the same values by a faster kernel
  - by hand, contiguous views `x[i:i+64]` (no copy; no shuffle; an upper bound)
  - the data wrapper, train_dataset=TensorDataset (its batched fast path)
  - the data wrapper, dataset=TensorDataset split by fractions (a Subset: the same path)
  - a plain DataLoader(TensorDataset, shuffle=True): per-sample `__getitem__` + default_collate,
    which the data wrapper did before its fast path
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.common import Result, command_line, fmt, parser, stats


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

    from bench.common import synthetic_images
    from wrappers import BasicDataWrapper

    data = synthetic_images(n, seed=0)
    x, y = data.tensors

    def by_hand():
        order = torch.randperm(n)
        for i in range(0, n, batch_size):
            index = order[i : i + batch_size]
            yield x[index], y[index]

    def by_hand_select():
        order = torch.randperm(n)
        for i in range(0, n, batch_size):
            index = order[i : i + batch_size]
            yield x.index_select(0, index), y.index_select(0, index)

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
        "by hand: x[order[i:i+bs]], shuffled": by_hand,
        "by hand: x.index_select(0, order[i:i+bs]), shuffled": by_hand_select,
        "by hand: contiguous views x[i:i+bs], not shuffled": views,
        "data wrapper, train_dataset=TensorDataset": given.train_dataloader,
        "data wrapper, dataset=TensorDataset split by fractions": split.train_dataloader,
        "DataLoader(TensorDataset, shuffle=True): per sample + collate": lambda: DataLoader(
            data, batch_size=batch_size, shuffle=True
        ),
    }


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60000, help="samples (default 60000, MNIST's train)")
    p.add_argument("--batch-size", type=int, default=64, help="the example's (default 64)")
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
    loaders = sources(opts.n, opts.batch_size)
    # Batches per second of wall time and of this process's CPU time (one thread; the CPU rate
    # holds on a busy machine, where the goal uses it).
    rates: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in loaders}
    warm = 1 if opts.reps > 1 else 0  # a first repetition warms up, unrecorded
    for rep in range(opts.reps + warm):
        names = list(loaders) if rep % 2 == 0 else list(loaders)[::-1]
        for name in names:
            wall, cpu, count = _epoch(loaders[name])
            if rep >= warm:
                rates[name]["wall"].append(count / wall)
                rates[name]["cpu"].append(count / max(cpu, 1e-9))
    reference = next(iter(loaders))
    wrapper = "data wrapper, train_dataset=TensorDataset"

    def relative(name: str, key: str) -> dict[str, float]:
        pairs = zip(rates[name][key], rates[reference][key], strict=True)
        return stats([r / h for r, h in pairs])

    result.table(
        f"One epoch of {opts.n} samples (1x28x28 float32), batch size {opts.batch_size}, "
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
                fmt(relative(name, "wall"), "", 3),
                fmt(stats(rates[name]["cpu"]), "/s"),
                fmt(relative(name, "cpu"), "", 3),
            ]
            for name in loaders
        ],
    )
    value, wall = relative(wrapper, "cpu")["median"], relative(wrapper, "wall")["median"]
    result.goal(
        "data wrapper >= 0.8 of by hand", value >= 0.8, f"{value:.2f} CPU ({wall:.2f} wall)"
    )
    result.raw = {"options": {k: v for k, v in vars(opts).items() if k != "out"}, "rates": rates}
    return result.write(opts.out)


if __name__ == "__main__":
    main()
