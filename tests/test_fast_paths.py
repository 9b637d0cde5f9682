"""The wrappers' fast paths (found by bench/) give exactly what the plain paths gave.

- Batched loading of TensorDatasets: the same batches, in the same order, as per-sample
  `__getitem__` plus default_collate under the same seed.
- Epoch-end logging of losses and metrics: the sample-weighted epoch means and the metrics
  over the whole epoch, as per-step `self.log(on_epoch=True)` gave.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset, default_collate, random_split
from torchmetrics.classification import MulticlassAccuracy

from dltemplate.wrappers.data_wrappers import TensorBatches
from wrappers import BasicDataWrapper, BasicTaskWrapper


def data(n: int = 50) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 4, 4, generator=generator)
    return TensorDataset(x, torch.randint(0, 3, (n,), generator=generator), torch.arange(n))


def batches(loader, seed: int = 7) -> list[list[torch.Tensor]]:
    torch.manual_seed(seed)  # the RandomSampler draws its order from the global generator
    return list(loader)


def assert_same(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert type(a) is type(b) is list
        for ta, tb in zip(a, b, strict=True):
            assert ta.dtype == tb.dtype
            assert torch.equal(ta, tb)


@pytest.mark.parametrize("split", ["train", "val"])
def test_tensor_dataset_batches_match_per_sample_loading(split: str) -> None:
    dataset = data()
    wrapper = BasicDataWrapper(train_dataset=dataset, val_dataset=dataset, batch_size=8)
    wrapper.setup("fit")
    loader = getattr(wrapper, f"{split}_dataloader")()
    assert isinstance(loader.dataset, TensorBatches)
    # The per-sample path: a collate_fn of the user's keeps it, with the same seeded sampler.
    reference = BasicDataWrapper(
        train_dataset=dataset, val_dataset=dataset, batch_size=8, collate_fn=default_collate
    )
    reference.setup("fit")
    plain = getattr(reference, f"{split}_dataloader")()
    assert not isinstance(plain.dataset, TensorBatches)
    assert_same(batches(loader), batches(plain))  # 6 batches of 8, then one of 2


def test_a_split_of_a_tensor_dataset_matches_too() -> None:
    dataset = data(60)
    wrapper = BasicDataWrapper(dataset=dataset, split_fractions=(0.5, 0.3, 0.2), split_seed=3)
    wrapper.setup("fit")
    parts = random_split(dataset, [0.5, 0.3, 0.2], generator=torch.Generator().manual_seed(3))
    for split, part in zip(("train", "val", "test"), parts, strict=True):
        loader = getattr(wrapper, f"{split}_dataloader")()
        assert isinstance(loader.dataset, TensorBatches)
        if split == "train":  # the seeded epoch sampler: compare with the per-sample path
            reference = BasicDataWrapper(
                dataset=dataset,
                split_fractions=(0.5, 0.3, 0.2),
                split_seed=3,
                collate_fn=default_collate,
            )
            reference.setup("fit")
            plain = reference.train_dataloader()
        else:
            plain = DataLoader(part, batch_size=32)
        assert_same(batches(loader), batches(plain))
        assert loader.dataset[1][2] == part[1][2]  # one sample still indexes


def test_worker_processes_get_whole_batches() -> None:
    dataset = data(20)
    wrapper = BasicDataWrapper(train_dataset=dataset, val_dataset=dataset, num_workers=1)
    wrapper.set_threads(2)
    wrapper.setup("fit")
    assert_same(list(wrapper.val_dataloader()), list(DataLoader(dataset, batch_size=32)))


def test_what_may_change_samples_keeps_the_per_sample_path() -> None:
    class Flipped(TensorDataset):
        def __getitem__(self, index):
            x, y = super().__getitem__(index)
            return -x, y

    x, y = torch.rand(10, 2), torch.zeros(10)
    wrapper = BasicDataWrapper(train_dataset=Flipped(x, y), val_dataset=TensorDataset(x, y))
    wrapper.setup("fit")
    assert not isinstance(wrapper.train_dataloader().dataset, TensorBatches)
    assert torch.equal(
        next(iter(wrapper.train_dataloader()))[0].sort(0).values, (-x).sort(0).values
    )
    own = BasicDataWrapper(val_dataset=TensorDataset(x, y), collate_fn=lambda b: len(b))
    own.setup("fit")
    assert next(iter(own.val_dataloader())) == 10  # the user's collate sees samples


def test_epoch_means_and_metrics_are_over_all_samples() -> None:
    """A frozen model (lr 0), 10 samples in batches of 4, 4 and 2: the logged losses are the
    sample-weighted means over the 10, and accuracy is over the 10 (not a mean of batches)."""
    torch.manual_seed(0)
    x, y = torch.randn(10, 3), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    model = torch.nn.Linear(3, 3)
    loss_fn = torch.nn.CrossEntropyLoss()
    wrapper = BasicTaskWrapper(
        model=model,
        loss_function=loss_fn,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.0),
        val_metrics={"acc": MulticlassAccuracy(num_classes=3, average="micro")},
        test_metrics={"acc": MulticlassAccuracy(num_classes=3, average="micro")},
    )
    data = BasicDataWrapper(
        train_dataset=TensorDataset(x, y),
        val_dataset=TensorDataset(x, y),
        test_dataset=TensorDataset(x, y),
        batch_size=4,
    )
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(wrapper, datamodule=data)
    with torch.no_grad():
        out = model(x)
    loss = loss_fn(out, y).item()
    acc = (out.argmax(1) == y).float().mean().item()
    metrics = {k: v.item() for k, v in trainer.callback_metrics.items()}
    assert metrics == pytest.approx({"train/loss": loss, "val/loss": loss, "val/acc": acc})
    (tested,) = trainer.test(wrapper, datamodule=data, verbose=False)
    assert tested == pytest.approx({"test/loss": loss, "test/acc": acc})
