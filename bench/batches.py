"""The data fetch of variants (a) and (b) of bench/step_overhead.py, written in plain PyTorch.

The template's data wrapper serves a TensorDataset a batch at a time (`TensorBatches` in
dltemplate/wrappers/data_wrappers.py). Its train loader, in the job's process, cuts each
epoch's shuffled order into index tensors and indexes each tensor once per batch with
`index_select` (`TensorBatchLoader`); its other loaders are DataLoaders that hand a batch's
indices to `__getitems__`. Here are the same two fetches as a person writes them, so that the
three variants differ in their training loop and not in how their batches are made.
bench/data_path.py measures the DataLoader one beside the wrapper's.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


class WholeBatches(Dataset):
    """In-memory tensors fetched one batch at a time: one `index_select` per tensor."""

    def __init__(self, data: TensorDataset) -> None:
        self.tensors = data.tensors

    def __len__(self) -> int:
        return len(self.tensors[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return [t.index_select(0, index) for t in self.tensors]  # (B, ...) each


def _whole(batch: list[torch.Tensor]) -> list[torch.Tensor]:
    return batch  # `__getitems__` made the batch; nothing to collate


class ShuffledBatches:
    """Train batches without a DataLoader: each epoch a new random order of the samples, cut
    into index tensors, one `index_select` per tensor and batch."""

    def __init__(self, data: TensorDataset, batch_size: int, seed: int = 0) -> None:
        self.tensors = data.tensors
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return math.ceil(len(self.tensors[0]) / self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.tensors[0]), generator=self.generator)
        for index in order.split(self.batch_size):
            yield [t.index_select(0, index) for t in self.tensors]


def batch_loader(data: TensorDataset, batch_size: int, shuffle: bool) -> DataLoader:
    """A DataLoader over `data` in the main process that fetches whole batches."""
    return DataLoader(WholeBatches(data), batch_size=batch_size, shuffle=shuffle, collate_fn=_whole)
