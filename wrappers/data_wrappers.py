"""BasicDataWrapper: a LightningDataModule over any torch Datasets, with batch sizes per split."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import lightning as L
import torch
from torch.utils.data import (
    DataLoader,
    Dataset,
    DistributedSampler,
    Subset,
    TensorDataset,
    random_split,
)

from dltemplate.errors import UserError

SPLITS = ("train", "val", "test", "predict")
DatasetArg = Dataset | Callable[[], Dataset] | None


def _materialize(dataset: DatasetArg) -> Dataset | None:
    """A dataset, or a factory such as `partial(MyDataset, split="train")`, called in setup."""
    if dataset is None or isinstance(dataset, Dataset):
        return dataset
    return dataset()


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
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        order = torch.randperm(self.length, generator=generator).tolist()
        if self.replicas > 1:
            order += order[: len(self) * self.replicas - self.length]
            order = order[self.rank :: self.replicas]
        skip = self._skip[1] if self._skip and self._skip[0] == self.epoch else 0
        self._skip = None
        return iter(order[skip:])


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
        skip = sampler._skip
        self._batches = (
            skip[1] // (self.batch_size or 1) if skip and skip[0] == sampler.epoch else 0
        )
        if self.generator is not None:
            self.generator.manual_seed(epoch_seed(sampler.seed, sampler.epoch))
        return _CountingIterator(super().__iter__(), self)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._batches}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.sampler.set_epoch(state["epoch"])
        self.sampler.resume_at(state["epoch"], state["batches"] * (self.batch_size or 1))


def _next_epoch(trainer: Any) -> int:
    """The epoch the trainer is about to run: Lightning's own count, which a resumed fit
    restores (`current_epoch` lags by one when a checkpoint was taken at an epoch's end)."""
    loop = getattr(trainer, "fit_loop", None)
    progress = getattr(loop, "epoch_progress", None)
    if progress is not None:
        return int(progress.current.processed)
    return int(getattr(trainer, "current_epoch", 0) or 0)


class TensorBatches(Dataset):
    """A TensorDataset, or a Subset of one (as `random_split` makes), fetched a batch at a time.

    The DataLoader hands `__getitems__` a batch's indices from whatever sampler it has, and one
    indexing op per tensor replaces a `__getitem__` per sample plus the collate's `torch.stack`
    (2 to 5 times the batches per second, see BENCHMARKS.md). It returns the batch itself, the
    list of tensors that `default_collate` would have made, so its loader's collate passes it
    through (`pass_batch`). Indexing one sample still works.
    """

    def __init__(self, tensors: Sequence[torch.Tensor], indices: torch.Tensor | None) -> None:
        self.tensors = tuple(tensors)
        self.indices = indices  # positions in the tensors, or None for all of them

    def __len__(self) -> int:
        return len(self.indices) if self.indices is not None else len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        if self.indices is not None:
            index = int(self.indices[index])
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        if self.indices is not None:
            index = self.indices.index_select(0, index)
        return [t.index_select(0, index) for t in self.tensors]  # = t[index], twice as fast

    @staticmethod
    def of(dataset: Dataset) -> TensorBatches | None:
        """The batched view of a plain TensorDataset or nested Subsets of one, else None (a
        TensorDataset subclass may change `__getitem__`, so it keeps the per-sample path)."""
        indices = None
        while isinstance(dataset, Subset):
            outer = torch.as_tensor(dataset.indices, dtype=torch.long)
            indices = outer if indices is None else outer[indices]
            dataset = dataset.dataset
        if type(dataset) is not TensorDataset:
            return None
        return TensorBatches(dataset.tensors, indices)


def pass_batch(batch: Any) -> Any:
    """The collate of a TensorBatches loader: the batch came out of `__getitems__` whole."""
    return batch


class BasicDataWrapper(L.LightningDataModule):
    """Serves train/val/test/predict loaders from any torch Datasets.

    Give a dataset per split, or one `dataset` plus `split_fractions`: it is split into the
    splits among train, val and test that were not given (in that order, one fraction each),
    with a generator seeded by `split_seed` so every job sees the same split. The predict split
    defaults to the test split. Only the train loader shuffles, in an order drawn from
    (`shuffle_seed`, epoch) alone (default: the run's seed), and it keeps its place in the
    epoch in checkpoints, so an interrupted fit resumes with the same data order.
    `num_workers="auto"` uses the job's threads minus one (the main process takes the other).
    A TensorDataset (or a split of one) without a `collate_fn` is served a batch per
    indexing op (see TensorBatches).
    """

    def __init__(
        self,
        *,
        train_dataset: DatasetArg = None,
        val_dataset: DatasetArg = None,
        test_dataset: DatasetArg = None,
        predict_dataset: DatasetArg = None,
        dataset: DatasetArg = None,
        split_fractions: Sequence[float] = (0.8, 0.1, 0.1),  # (train, val, test) by default
        split_seed: int = 0,
        batch_size: int | Mapping[str, int] = 32,
        num_workers: int | Literal["auto"] = 0,
        pin_memory: bool = False,
        collate_fn: Callable | None = None,
        shuffle_seed: int | None = None,
    ) -> None:
        super().__init__()
        self._given = {
            "train": train_dataset,
            "val": val_dataset,
            "test": test_dataset,
            "predict": predict_dataset,
        }
        self.dataset = dataset
        self._split_into = [s for s in ("train", "val", "test") if self._given[s] is None]
        if dataset is not None and len(split_fractions) != len(self._split_into):
            raise ValueError(
                f"split_fractions {tuple(split_fractions)} has {len(split_fractions)} fractions "
                f"but dataset= is split into {len(self._split_into)} splits {self._split_into}"
            )
        if dataset is not None and not 0.999 <= sum(split_fractions) <= 1.001:
            raise ValueError(
                f"split_fractions {tuple(split_fractions)} add up to {sum(split_fractions)}, not 1"
            )
        self.split_fractions = tuple(split_fractions)
        self.split_seed = split_seed
        sizes = batch_size if isinstance(batch_size, Mapping) else dict.fromkeys(SPLITS, batch_size)
        unknown = set(sizes) - set(SPLITS)
        if unknown:
            raise ValueError(f"batch_size has unknown splits {sorted(unknown)}; use {list(SPLITS)}")
        self.batch_sizes = {split: int(sizes.get(split, sizes.get("test", 32))) for split in SPLITS}
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.collate_fn = collate_fn
        # The job seeds torch with the run's seed before the getters run, so this is the run's
        # seed unless given: train orders differ between runs of different seeds.
        self.shuffle_seed = torch.initial_seed() if shuffle_seed is None else shuffle_seed
        self.threads = 1
        self.splits: dict[str, Dataset | None] = {}

    def set_threads(self, threads: int) -> None:
        """Called by the job with the threads Snakemake gave it."""
        self.threads = max(1, threads)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        splits = {name: _materialize(ds) for name, ds in self._given.items()}
        if self.dataset is not None:
            whole = _materialize(self.dataset)
            generator = torch.Generator().manual_seed(self.split_seed)
            parts = random_split(whole, list(self.split_fractions), generator=generator)
            for name, part in zip(self._split_into, parts, strict=True):
                splits[name] = part
        splits["predict"] = splits["predict"] or splits["test"]
        self.splits = splits

    def _workers(self) -> int:
        if self.num_workers == "auto":
            return self.threads - 1
        return min(int(self.num_workers), self.threads)

    def _loader(self, split: str) -> DataLoader:
        dataset = self.splits.get(split)
        if dataset is None:
            raise UserError(
                f"The data wrapper has no {split} dataset; pass {split}_dataset= (or dataset= with "
                "split_fractions) in the data-wrapper getter"
            )
        if len(dataset) == 0:
            raise UserError(
                f"The {split} split is empty (0 samples); check split_fractions or the "
                f"{split} dataset"
            )
        workers = self._workers()
        collate_fn = self.collate_fn
        if collate_fn is None:  # in-memory tensors: whole batches, same order and values
            batches = TensorBatches.of(dataset)
            if batches is not None:
                dataset, collate_fn = batches, pass_batch
        settings = {
            "batch_size": self.batch_sizes[split],
            "num_workers": workers,
            "pin_memory": self.pin_memory,
            "collate_fn": collate_fn,
            "persistent_workers": workers > 0 and split in ("train", "val"),
            # Its own generator, so that creating a loader never draws from torch's global one
            # (which would shift the random numbers of training steps).
            "generator": torch.Generator().manual_seed(self.shuffle_seed),
        }
        if split != "train":
            return DataLoader(dataset, shuffle=False, **settings)
        ranks = {}
        if self.trainer is not None and self.trainer.world_size > 1:  # DDP: this rank's share
            ranks = {"rank": self.trainer.global_rank, "replicas": self.trainer.world_size}
        sampler = EpochShuffleSampler(len(dataset), self.shuffle_seed, **ranks)
        if self.trainer is not None:
            sampler.set_epoch(_next_epoch(self.trainer))
        return ResumableDataLoader(dataset, sampler=sampler, **settings)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")

    def describe(self) -> dict[str, Any]:
        """Sizes of the splits, for records."""
        return {name: len(ds) for name, ds in self.splits.items() if ds is not None}
