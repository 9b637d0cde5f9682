"""Training-step overhead: the template against plain PyTorch and plain Lightning.

The same SmallCNN on synthetic 28x28 images in memory, the same batches, optimizer (AdamW),
loss, torch threads (1 by default: on a shared machine two OpenMP threads wait on each other and
step times swing) and `torch.use_deterministic_algorithms(True)` (the example trainer's
`deterministic=True`), trained three ways in one process, interleaved (the order flips every
repetition, so drift cancels):

  (a) a hand-written loop: forward, backward, step; validation by hand
  (b) a minimal LightningModule and a plain `lightning.Trainer` (no logger, checkpoints, progress)
  (c) the fit job itself: `dltemplate.jobs.fit.fit_run` inside `job_log` and `job_record`, as
      the fit script runs it, on bench/configs/cnn28.py (the example's classifier getter:
      metrics, LR schedule; BasicDataWrapper; the example's trainer getter: CSV log, best and
      last checkpoints, plain progress lines, run records); the epoch clock reaches its
      Trainer through the trainer getter's `callbacks` (`trainer.epoch_clock=True`)

All three fetch their batches alike: each epoch's shuffled order is cut into index tensors
and each tensor indexed once per batch (`index_select`); for validation, a DataLoader hands a
batch's indices to the dataset, which indexes each tensor once. (c) gets that from the data
wrapper (`TensorBatchLoader`, `TensorBatches`); (a) and (b) from the same fetches written in
plain PyTorch (bench/batches.py). So the ratios compare training loops, not data paths;
bench/data_path.py measures the data paths.

Epoch time is the steady state: from the start of the 2nd epoch to the end of the last,
divided by the epochs, each with its validation, logging and checkpoint writes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import REPO, Result, command_line, fmt, goal, parser, scratch_dir, stats

if TYPE_CHECKING:
    from bench.clock import Stamp

CONFIG = REPO / "bench" / "configs" / "cnn28.py"
VARIANTS = ("a", "b", "c")
LABELS = {
    "a": "(a) hand-written PyTorch loop",
    "b": "(b) minimal LightningModule + plain Trainer",
    "c": "(c) template: the fit job (fit_run on BasicTaskWrapper, BasicDataWrapper)",
}


def run_plain(opts: Any) -> dict[str, float]:
    """(a): the loop a person writes without any framework, over the same batches as (b)."""
    import torch
    from torch import nn

    from bench.batches import ShuffledBatches, batch_loader
    from bench.clock import stamp
    from bench.common import synthetic_images
    from models.small_cnn import SmallCNN

    started = time.perf_counter()
    torch.manual_seed(opts.seed)
    train = ShuffledBatches(synthetic_images(opts.n_train, seed=0), opts.batch_size)
    val = batch_loader(synthetic_images(opts.n_val, seed=1), opts.batch_size, shuffle=False)
    model = SmallCNN(in_channels=1, num_classes=10, channels=opts.channels).to(opts.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    autocast = _autocast(opts)
    starts = []
    for _epoch in range(opts.epochs):
        starts.append(stamp(opts.device))
        model.train()
        for xb, yb in train:
            xb, yb = xb.to(opts.device), yb.to(opts.device)
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        model.eval()
        total, correct = torch.zeros((), device=opts.device), torch.zeros((), device=opts.device)
        with torch.no_grad():
            for xb, yb in val:
                xb, yb = xb.to(opts.device), yb.to(opts.device)
                with autocast():
                    out = model(xb)
                total += loss_fn(out, yb) * len(yb)
                correct += (out.argmax(1) == yb).sum()
        float(total), float(correct)  # the epoch's val loss and accuracy, as a person prints them
    return _times(starts, stamp(opts.device), started)


def _autocast(opts: Any):
    import contextlib

    import torch

    if opts.precision == "bf16-mixed":
        return lambda: torch.autocast(opts.device, dtype=torch.bfloat16)
    return contextlib.nullcontext


def _times(starts: Sequence[Stamp], end: Stamp, started: float) -> dict[str, Any]:
    """Steady epoch time (wall and CPU) from the 2nd epoch's start to the end of training, and
    each steady epoch's CPU time."""
    epochs = len(starts) - 1
    bounds = [*starts[1:], end]
    return {
        "epoch": (end[0] - starts[1][0]) / epochs,
        "epoch_cpu": (end[1] - starts[1][1]) / epochs,
        "epochs_cpu": [b[1] - a[1] for a, b in itertools.pairwise(bounds)],
        "first_epoch": starts[1][0] - starts[0][0],
        "fit": end[0] - started,
    }


def run_minimal_lightning(opts: Any) -> dict[str, float]:
    """(b): what a Lightning user writes by hand, with everything optional turned off."""
    import lightning as L
    import torch
    from torch import nn

    from bench.batches import ShuffledBatches, batch_loader
    from bench.clock import EpochClock
    from bench.common import synthetic_images
    from models.small_cnn import SmallCNN

    class Minimal(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = SmallCNN(in_channels=1, num_classes=10, channels=opts.channels)
            self.loss_fn = nn.CrossEntropyLoss()

        def training_step(self, batch, batch_idx):
            x, y = batch
            return self.loss_fn(self.model(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            out = self.model(x)
            return self.loss_fn(out, y), (out.argmax(1) == y).sum()

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3, weight_decay=1e-4)

    started = time.perf_counter()
    torch.manual_seed(opts.seed)
    train = ShuffledBatches(synthetic_images(opts.n_train, seed=0), opts.batch_size)
    val = batch_loader(synthetic_images(opts.n_val, seed=1), opts.batch_size, shuffle=False)
    clock = EpochClock()
    trainer = L.Trainer(
        max_epochs=opts.epochs,
        accelerator=opts.device,
        devices=1,
        precision=opts.precision,
        deterministic=opts.deterministic,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(Minimal(), train, val)
    return _times(clock.starts, clock.end, started)


def run_template(opts: Any, run_dir: Path) -> dict[str, float]:
    """(c): the fit job itself, as the fit script runs it: `fit_run` inside `job_log` and
    `job_record`. Its Trainer gets the epoch clock from the trainer getter's `callbacks`."""
    from bench import clock
    from dltemplate.jobs.fit import fit_run
    from dltemplate.jobs.logs import job_log
    from dltemplate.results.run_records import job_record

    made = len(clock.MADE)
    started = time.perf_counter()
    with job_log(run_dir / "logs" / "fit.log"), job_record(run_dir, "fit"):
        fit_run(
            run_dir=run_dir,
            config_file=str(CONFIG.relative_to(REPO)),
            overrides={
                "task_wrapper.model.channels": opts.channels,
                "data_wrapper.n_train": opts.n_train,
                "data_wrapper.n_val": opts.n_val,
                "data_wrapper.batch_size": opts.batch_size,
                "trainer.max_epochs": opts.epochs,
                "trainer.accelerator": opts.device,
                "trainer.precision": opts.precision,
                "trainer.deterministic": opts.deterministic,
                "trainer.epoch_clock": True,
            },
            seed=opts.seed,
            threads=opts.threads,
            done_file=run_dir / "fit.done",
            source="bench",
        )
    clocks = clock.MADE[made:]
    if len(clocks) != 1 or len(clocks[0].starts) != opts.epochs:
        raise RuntimeError(
            f"(c): expected one epoch clock with {opts.epochs} epochs in the fit job's Trainer, "
            f"got {[len(c.starts) for c in clocks]}; see {run_dir}/logs/fit.log"
        )
    return _times(clocks[0].starts, clocks[0].end, started)


def measure(opts: Any) -> dict[str, list[dict[str, float]]]:
    """All variants, `opts.reps` times, interleaved with the order flipped every repetition."""
    import torch

    torch.set_num_threads(opts.threads)
    # What Trainer(deterministic=...) sets, process-wide: the same for all three variants.
    torch.use_deterministic_algorithms(opts.deterministic)
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    scratch = scratch_dir(f"step_overhead_{opts.device}")
    warm = 1 if opts.reps > 1 else 0  # a first repetition warms caches and allocators, unrecorded
    for rep in range(opts.reps + warm):
        order = VARIANTS if rep % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            if variant == "a":
                t = run_plain(opts)
            elif variant == "b":
                t = run_minimal_lightning(opts)
            else:
                t = run_template(opts, scratch / f"c{rep}")
            print(
                f"rep {rep} {variant}: epoch {t['epoch']:.3f} s, fit {t['fit']:.2f} s", flush=True
            )
            if rep >= warm:
                runs[variant].append(t)
    return runs


def add_options(p) -> None:
    p.add_argument("--channels", type=int, default=4, help="SmallCNN width (default 4)")
    p.add_argument("--batch-size", type=int, default=64, help="the example's (default 64)")
    p.add_argument("--n-train", type=int, default=6400, help="training samples (100 steps)")
    p.add_argument("--n-val", type=int, default=1280, help="validation samples (20 steps)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per fit (>= 2)")
    # One thread: on a shared 2-core machine two OpenMP threads wait on each other at every
    # barrier and step times swing; pass --threads 2 on an idle machine.
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--seed", type=int, default=0)


def quick(opts: Any) -> None:
    opts.reps, opts.n_train, opts.n_val, opts.epochs, opts.channels = 1, 256, 128, 2, 4


def report(result: Result, opts: Any, runs: dict[str, list[dict[str, float]]]) -> None:
    """Tables and goals. On the CPU the goals use CPU time (this process's, one thread): it
    does not count the time other programs take the cores, so it holds on a busy machine; on
    an idle one it is the wall time. On a GPU, wall time (the CPU waits for the GPU)."""
    steps = -(-opts.n_train // opts.batch_size)
    val_steps = -(-opts.n_val // opts.batch_size)

    def of(v: str, key: str, scale: float = 1.0) -> dict[str, float]:
        return stats([r[key] * scale for r in runs[v]])

    result.table(
        f"Epoch time ({steps} training steps of {opts.batch_size} + {val_steps} validation "
        f"steps, SmallCNN channels={opts.channels}, {opts.threads} torch thread(s), "
        f"{opts.device}, {opts.precision}); median (min-max) over {opts.reps} repetitions",
        [
            "variant",
            "epoch, wall",
            "epoch, CPU",
            "epoch wall / training steps",
            f"whole fit of {opts.epochs} epochs, wall",
        ],
        [
            [
                LABELS[v],
                fmt(of(v, "epoch")),
                fmt(of(v, "epoch_cpu")),
                fmt(of(v, "epoch", 1000 / steps), "ms"),
                fmt(of(v, "fit")),
            ]
            for v in VARIANTS
        ],
    )

    def ratio(pair: str, key: str) -> dict[str, float]:
        num, den = runs[pair[0]], runs[pair[2]]
        return stats([n[key] / d[key] for n, d in zip(num, den, strict=True)])

    basis = "epoch_cpu" if opts.device == "cpu" else "epoch"
    pairs = {
        "c/b": ("template over plain Lightning", "<= 1.02"),
        "c/a": ("template over plain PyTorch", "<= 1.10"),
        "b/a": ("plain Lightning over plain PyTorch", "-"),
    }
    result.table(
        "Ratios of epoch times, paired per repetition; goals on "
        + ("CPU time" if basis == "epoch_cpu" else "wall time"),
        ["ratio", "wall", "CPU", "goal"],
        [
            [
                f"{pair} ({what})",
                fmt(ratio(pair, "epoch"), "", 4),
                fmt(ratio(pair, "epoch_cpu"), "", 4),
                goal,
            ]
            for pair, (what, goal) in pairs.items()
        ],
    )
    if all("epochs_cpu" in r for v in VARIANTS for r in runs[v]):
        # Other programs only ever slow an epoch down: the fastest epochs are the least
        # disturbed, a cross-check of the medians on a busy machine.
        best = {v: min(t for r in runs[v] for t in r["epochs_cpu"]) for v in VARIANTS}
        result.notes.append(
            "Fastest single epoch (CPU) of all repetitions, the least disturbed by other "
            "programs: "
            + ", ".join(f"({v}) {best[v]:.3f} s" for v in VARIANTS)
            + f"; c/b {best['c'] / best['b']:.3f}, c/a {best['c'] / best['a']:.3f}, "
            f"b/a {best['b'] / best['a']:.3f}."
        )
    result.raw = {"options": {k: v for k, v in vars(opts).items() if k != "out"}, "runs": runs}
    result.goals += goals(result.raw)


def goals(raw: dict[str, Any]) -> list[dict[str, Any]]:
    """c/b and c/a against their limits, from the per-repetition epoch times in `raw`. On the
    CPU on CPU time; on a GPU on wall time (the CPU waits for the GPU)."""
    opts, runs = raw["options"], raw["runs"]
    basis = "epoch_cpu" if opts["device"] == "cpu" else "epoch"
    where = f"{opts['device']}, channels={opts['channels']}, batch {opts['batch_size']}"
    found = []
    for pair, limit in (("c/b", 1.02), ("c/a", 1.10)):
        num, den = runs[pair[0]], runs[pair[2]]
        s = stats([n[basis] / d[basis] for n, d in zip(num, den, strict=True)])
        wall = stats([n["epoch"] / d["epoch"] for n, d in zip(num, den, strict=True)])
        text = f"{s['median']:.3f}"
        if basis == "epoch_cpu":
            text += f" CPU ({wall['median']:.3f} wall)"
        found.append(goal(f"{pair} <= {limit:.2f} ({where})", text, s, limit, below=True))
    return found


def main(argv: Sequence[str] | None = None) -> Path:
    p = parser(__doc__.splitlines()[0])
    add_options(p)
    opts = p.parse_args(argv)
    opts.device, opts.precision, opts.deterministic = "cpu", "32-true", True
    if opts.quick:
        quick(opts)
    result = Result(
        name="step_overhead",
        title="Training-step overhead on CPU",
        command=command_line("bench.step_overhead", argv),
        about=__doc__.split("\n\n", 1)[1].strip(),
        quick=opts.quick,
    )
    runs = measure(opts)
    report(result, opts, runs)
    return result.write(opts.out)


if __name__ == "__main__":
    main()
