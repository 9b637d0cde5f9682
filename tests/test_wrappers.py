"""Layer 3: the wrappers train, validate, test and predict on a shrunk real config."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import TensorDataset

from dltemplate.config.build import build_run
from dltemplate.errors import UserError
from tests.conftest import FIXTURE
from wrappers import BasicDataWrapper, BasicTaskWrapper


def shrunk_trainer(**kwargs) -> L.Trainer:
    return L.Trainer(
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=2,
        limit_test_batches=2,
        limit_predict_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


@pytest.mark.parametrize("config", ["digits_mlp.py", "digits_cnn.py"])
def test_fit_test_predict_a_few_batches(config: str) -> None:
    built = build_run(FIXTURE / "configs" / config, overrides={"data_wrapper.batch_size": 16})
    trainer = shrunk_trainer()
    trainer.fit(built.task_wrapper, datamodule=built.data_wrapper)
    assert {"train/loss", "val/loss", "val/acc", "val/f1"} <= set(trainer.callback_metrics)
    results = trainer.test(built.task_wrapper, datamodule=built.data_wrapper, verbose=False)
    assert {"test/loss", "test/acc", "test/f1"} <= set(results[0])
    predictions = trainer.predict(built.task_wrapper, datamodule=built.data_wrapper)
    assert predictions[0].shape == (16, 10)


def test_val_and_test_metrics_are_separate_objects() -> None:
    from torchmetrics.classification import MulticlassAccuracy

    metric = MulticlassAccuracy(num_classes=3)
    wrapper = BasicTaskWrapper(
        model=torch.nn.Linear(4, 3),
        loss_function=torch.nn.functional.cross_entropy,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
        val_metrics={"acc": metric},
        test_metrics={"acc": metric},
    )
    assert wrapper.val_metrics["acc"] is not wrapper.test_metrics["acc"]


def test_any_module_trains_unchanged() -> None:
    """A plain nn.Module and TensorDatasets plug in without being rewritten."""
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    data = BasicDataWrapper(
        train_dataset=TensorDataset(x, y), val_dataset=TensorDataset(x, y), batch_size=16
    )
    wrapper = BasicTaskWrapper(
        model=torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)),
        loss_function=torch.nn.CrossEntropyLoss(),
        optimizer=lambda params: torch.optim.Adam(params, lr=0.05),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1),
    )
    trainer = shrunk_trainer()
    trainer.fit(wrapper, datamodule=data)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_split_is_seeded_and_sized() -> None:
    dataset = TensorDataset(torch.arange(100).float(), torch.zeros(100))
    first = BasicDataWrapper(dataset=dataset, split_fractions=(0.7, 0.2, 0.1), split_seed=3)
    again = BasicDataWrapper(dataset=dataset, split_fractions=(0.7, 0.2, 0.1), split_seed=3)
    first.setup()
    again.setup()
    sizes = {name: len(split) for name, split in first.splits.items()}
    assert sizes == {"train": 70, "val": 20, "test": 10, "predict": 10}
    assert list(first.splits["val"].indices) == list(again.splits["val"].indices)


def test_only_train_shuffles() -> None:
    """Train: a permutation of its split, another one each epoch; val and test: in split order.

    Broken on purpose: with EpochShuffleSampler (dltemplate/jobs/sampling.py) yielding
    `range(length)` the train batch is in split order and this test fails; with the val and
    test loaders made with `shuffle=True` it fails too."""
    dataset = TensorDataset(torch.arange(40).float(), torch.zeros(40))
    data = BasicDataWrapper(dataset=dataset, split_fractions=(0.5, 0.25, 0.25), batch_size=40)
    data.setup()

    def in_order(split: str) -> torch.Tensor:
        return torch.stack([data.splits[split][i][0] for i in range(len(data.splits[split]))])

    train = data.train_dataloader()
    first = next(iter(train))[0]
    assert torch.equal(first.sort().values, in_order("train").sort().values)  # all, once each
    assert not torch.equal(first, in_order("train"))
    train.sampler.set_epoch(1)
    assert not torch.equal(next(iter(train))[0], first)  # another order in the next epoch
    for split, loader in (("val", data.val_dataloader()), ("test", data.test_dataloader())):
        assert torch.equal(next(iter(loader))[0], in_order(split)), split
        assert torch.equal(next(iter(loader))[0], in_order(split)), split


def test_fractions_must_match_the_missing_splits() -> None:
    dataset = TensorDataset(torch.zeros(10))
    with pytest.raises(ValueError, match="3 splits"):
        BasicDataWrapper(dataset=dataset, split_fractions=(0.5, 0.5))


def test_empty_split_is_a_clear_error() -> None:
    data = BasicDataWrapper(
        train_dataset=TensorDataset(torch.zeros(4)), test_dataset=TensorDataset(torch.zeros(0))
    )
    data.setup()
    with pytest.raises(UserError, match="The test, predict splits are empty"):
        data.test_dataloader()


def test_threads_cap_workers() -> None:
    data = BasicDataWrapper(train_dataset=TensorDataset(torch.zeros(4)), num_workers="auto")
    data.set_threads(3)
    assert data._workers() == 2
    capped = BasicDataWrapper(train_dataset=TensorDataset(torch.zeros(4)), num_workers=8)
    capped.set_threads(2)
    assert capped._workers() == 2
