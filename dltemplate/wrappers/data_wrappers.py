"""BasicDataWrapper: a LightningDataModule over any torch Datasets, with batch sizes per split."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch.utils.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    Sampler,
    Subset,
    TensorDataset,
    random_split,
)

from dltemplate.errors import UserError
from dltemplate.jobs.sampling import EpochShuffleSampler, ResumableDataLoader, next_epoch

SPLITS = ("train", "val", "test", "predict")
DatasetArg = Dataset | Callable[[], Dataset] | None


def _materialize(dataset: DatasetArg) -> Dataset | None:
    """A dataset, or a factory such as `partial(MyDataset, split="train")`, called in setup."""
    if dataset is None or isinstance(dataset, Dataset):
        return dataset
    return dataset()


class TensorBatches(Dataset):
    """A TensorDataset, or a Subset of one (as `random_split` makes), fetched a batch at a time.

    The DataLoader hands `__getitems__` a batch's indices from whatever sampler it has, and one
    indexing op per tensor replaces a `__getitem__` per sample plus the collate's `torch.stack`
    (bench/data_path.py measures the gain; BENCHMARKS.md). It returns the batch itself, the
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
        return self.batch(torch.as_tensor(indices, dtype=torch.long))

    def batch(self, index: torch.Tensor) -> list[torch.Tensor]:
        """The samples at `index` (a long tensor), one `index_select` per tensor."""
        if self.indices is not None:
            index = self.indices.index_select(0, index)
        return [
            t.index_select(0, index) for t in self.tensors
        ]  # = t[index], faster (bench/data_path.py)

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


class TensorBatchLoader(ResumableDataLoader):
    """The train loader of a TensorBatches dataset in the job's own process: the epoch's order
    cut into index tensors, each fetched by `TensorBatches.batch`, without the DataLoader's
    per-batch list of indices and fetcher (bench/data_path.py measures the difference). The
    batches are the DataLoader's (its BatchSampler cuts the same order into the same runs),
    and so is the place in the epoch that checkpoints keep. Under Lightning's own sampler
    (`overfit_batches`), or to pin memory, it is the DataLoader."""

    dataset: TensorBatches

    def __iter__(self):
        sampler = self.sampler
        if not isinstance(sampler, EpochShuffleSampler) or self.pin_memory:
            return super().__iter__()
        self._start_epoch(sampler)
        batches = (self.dataset.batch(index) for index in sampler.order().split(self.batch_size))
        return _CountedBatches(batches, self, len(self) - self._batches)


class _CountedBatches:
    """Hands out a TensorBatchLoader's batches and counts them (its place in the epoch)."""

    def __init__(self, batches, loader: TensorBatchLoader, length: int) -> None:
        self._batches = batches
        self._loader = loader
        self._length = length

    def __iter__(self) -> _CountedBatches:
        return self

    def __next__(self) -> list[torch.Tensor]:
        batch = next(self._batches)
        self._loader._batches += 1
        return batch

    def __len__(self) -> int:
        return self._length


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

    `input_reader(path)` reads a file of new, raw samples and returns the model's inputs for
    them, preprocessed as the dataset preprocesses its own (a tensor, or a tuple of them);
    `main.py predict --input` uses it through `predict_from`, and the export job quotes its
    docstring as the model's preprocessing. Without one, new inputs are taken as they are.

    k-fold cross-validation: with `folds` K > 1, the train and val splits are pooled and cut
    into K folds in an order drawn from `split_seed`; fold `fold` (0..K-1) is the val split and
    the others the train split. The test and predict splits are untouched. A sweep's or a
    search's `folds: K` sets both for its runs (docs/registry.md).
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
        input_reader: Callable[[Path], torch.Tensor | tuple[torch.Tensor, ...]] | None = None,
        folds: int = 1,
        fold: int = 0,
    ) -> None:
        super().__init__()
        if folds < 1 or not 0 <= fold < folds:
            raise UserError(
                f"fold {fold} of {folds} folds does not exist: folds is at least 1 and fold runs "
                f"from 0 to folds - 1; set data_wrapper.fold and data_wrapper.folds"
            )
        self.folds, self.fold = folds, fold
        self.input_reader = input_reader
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
        small = {split: n for split, n in self.batch_sizes.items() if n < 1}
        if small:
            raise UserError(
                f"batch_size must be at least 1, got {small}; set data_wrapper.batch_size"
            )
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.collate_fn = collate_fn
        # The job seeds torch with the run's seed before the getters run, so this is the run's
        # seed unless given: train orders differ between runs of different seeds.
        self.shuffle_seed = torch.initial_seed() if shuffle_seed is None else shuffle_seed
        self.threads = 1
        self.splits: dict[str, Dataset | None] = {}

    def predict_from(self, path: str | Path) -> tuple[torch.Tensor, ...] | None:
        """The model's inputs for the raw samples in `path`, or None without an input_reader."""
        if self.input_reader is None:
            return None
        inputs = self.input_reader(Path(path))
        return tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)

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
        if self.folds > 1:
            splits["train"], splits["val"] = self._fold_splits(splits["train"], splits["val"])
        self.splits = splits

    def _fold_splits(self, train: Dataset | None, val: Dataset | None) -> tuple[Subset, Subset]:
        """(train, val) of fold `self.fold`: train and val pooled, cut into `self.folds`."""
        pool = ConcatDataset([d for d in (train, val) if d is not None])
        if len(pool) < self.folds:
            raise UserError(
                f"{self.folds} folds need at least {self.folds} train and val samples, got "
                f"{len(pool)}; lower data_wrapper.folds"
            )
        order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(self.split_seed))
        parts = torch.tensor_split(order, self.folds)
        held = parts[self.fold]
        rest = torch.cat([p for i, p in enumerate(parts) if i != self.fold])
        return Subset(pool, rest.tolist()), Subset(pool, held.tolist())

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
            empty = [s for s in SPLITS if (d := self.splits.get(s)) is not None and len(d) == 0]
            what = (
                f"The {empty[0]} split is"
                if len(empty) == 1
                else f"The {', '.join(empty)} splits are"
            )
            raise UserError(
                f"{what} empty (0 samples); check split_fractions or the dataset (the {split} "
                "loader asked first)"
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
            return DataLoader(dataset, sampler=self._evaluation_sampler(dataset), **settings)
        ranks = {}
        if self.trainer is not None and self.trainer.world_size > 1:  # DDP: this rank's share
            ranks = {"rank": self.trainer.global_rank, "replicas": self.trainer.world_size}
        sampler = EpochShuffleSampler(len(dataset), self.shuffle_seed, **ranks)
        if self.trainer is not None:
            sampler.set_epoch(next_epoch(self.trainer))
        in_process = isinstance(dataset, TensorBatches) and workers == 0
        loader = TensorBatchLoader if in_process else ResumableDataLoader
        return loader(dataset, sampler=sampler, **settings)

    def _evaluation_sampler(self, dataset) -> Sampler | None:
        """Under DDP, this rank's share of the samples, each sample on one rank only
        (Lightning's own sampler pads the last batch with repeats, which count twice). In a
        fit, only under the job's DDP (forked or started by srun), which gives every rank rank
        0's buffers first (dltemplate.jobs.job_ddp); a strategy of the config's own keeps
        Lightning's."""
        from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
        from lightning.pytorch.trainer.states import TrainerFn

        from dltemplate.jobs.job_ddp import JobDDPStrategy

        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return None
        fitting = trainer.state.fn == TrainerFn.FITTING
        if fitting and not isinstance(trainer.strategy, JobDDPStrategy):
            return None
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
