"""The seeded order of training samples that exact resume depends on.

Each epoch's order depends only on (seed, epoch), and the loader's position is saved in every
checkpoint, so a fit resumed part way through an epoch sees the batches the interrupted one had
not reached. Data wrappers (wrappers/data_wrappers.py) build their train loaders from these;
the fit job's checkpoints (dltemplate.jobs.checkpointing) seed each epoch with `epoch_seed`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed for one epoch of a run: unrelated streams for different (seed, epoch)."""
    digest = hashlib.sha256(f"{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


class EpochShuffleSampler(DistributedSampler):
    """A random order of `length` indices that depends only on (seed, epoch).

    Lightning calls `set_epoch` before every epoch, so a fit resumed from a checkpoint draws the
    same order as one that never stopped; `resume_at` skips the samples of an epoch that a
    checkpoint taken part way through it had already seen.

    With DDP (`replicas` > 1), rank `rank` takes every `replicas`-th index of the order, padded
    like torch's DistributedSampler so that all ranks run the same number of batches; skips
    then count this rank's samples. It is a DistributedSampler only so that Lightning uses it
    as it is instead of wrapping it in one (which would hide `set_epoch` and `resume_at`).
    """

    def __init__(self, length: int, seed: int, rank: int = 0, replicas: int = 1) -> None:
        # No DistributedSampler.__init__: it would ask torch.distributed for the ranks.
        self.length = length
        self.seed = seed
        self.rank = rank
        self.replicas = replicas
        self.epoch = 0
        self._skip: tuple[int, int] | None = None  # (epoch, samples to skip)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, samples: int) -> None:
        self._skip = (epoch, samples)

    def __len__(self) -> int:
        # The whole epoch (of this rank), also when resumed: Lightning counts the rest.
        return math.ceil(self.length / self.replicas)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())

    def order(self) -> torch.Tensor:
        """This epoch's indices for this rank, as a tensor, past the samples to skip (once)."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.length, generator=generator)
        if self.replicas > 1:
            order = torch.cat([order, order[: len(self) * self.replicas - self.length]])
            order = order[self.rank :: self.replicas]
        skip = self._skip[1] if self._skip and self._skip[0] == self.epoch else 0
        self._skip = None
        return order[skip:]


class _CountingIterator:
    """Counts the batches a DataLoader iterator hands out (workers fetch ahead of that)."""

    def __init__(self, iterator: Iterator, loader: ResumableDataLoader) -> None:
        self._iterator = iterator
        self._loader = loader

    def __iter__(self) -> _CountingIterator:
        return self

    def __next__(self) -> Any:
        batch = next(self._iterator)
        self._loader._batches += 1
        return batch

    def __len__(self) -> int:
        return len(self._iterator)


class ResumableDataLoader(DataLoader):
    """A DataLoader over an EpochShuffleSampler whose position is saved in checkpoints.

    Lightning stores `state_dict()` (epoch, batches handed out) in every checkpoint and calls
    `load_state_dict` when a fit resumes part way through an epoch, so the resumed epoch goes
    on with the batches the interrupted one had not reached. Worker processes are seeded per
    epoch from the loader's generator, so their random numbers do not depend on when the fit
    started either.
    """

    sampler: EpochShuffleSampler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batches = 0  # batches of the current epoch handed out, skipped ones included

    def __iter__(self) -> Iterator:
        sampler = self.sampler
        if not isinstance(sampler, EpochShuffleSampler):
            # Lightning rebuilt the loader with its own sampler (`overfit_batches` takes the
            # first batches in order): nothing to seed or skip.
            self._batches = 0
            return _CountingIterator(super().__iter__(), self)
        self._start_epoch(sampler)
        return _CountingIterator(super().__iter__(), self)

    def _start_epoch(self, sampler: EpochShuffleSampler) -> None:
        """Count the batches that a resumed epoch skips, and seed the workers' generator."""
        skip = sampler._skip
        self._batches = (
            skip[1] // (self.batch_size or 1) if skip and skip[0] == sampler.epoch else 0
        )
        if self.generator is not None:
            self.generator.manual_seed(epoch_seed(sampler.seed, sampler.epoch))

    def state_dict(self) -> dict[str, int]:
        return {"epoch": getattr(self.sampler, "epoch", 0), "batches": self._batches}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.sampler.set_epoch(state["epoch"])
        self.sampler.resume_at(state["epoch"], state["batches"] * (self.batch_size or 1))


def next_epoch(trainer: Any) -> int:
    """The epoch the trainer is about to run: Lightning's own count, which a resumed fit
    restores (`current_epoch` lags by one when a checkpoint was taken at an epoch's end)."""
    loop = getattr(trainer, "fit_loop", None)
    progress = getattr(loop, "epoch_progress", None)
    if progress is not None:
        return int(progress.current.processed)
    return int(getattr(trainer, "current_epoch", 0) or 0)
