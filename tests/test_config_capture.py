"""Layer 1: the constructor arguments of what the getters build end up in hparams."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from dltemplate.config.build import build_run
from dltemplate.config.capture import Capture
from dltemplate.config.values import to_record
from tests.conftest import FIXTURE


def _walk(value):
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def test_example_config_records_literals_partials_and_defaults() -> None:
    hparams = build_run(FIXTURE / "configs/digits_cnn.py", seed=5).hparams
    task = hparams["objects"]["task_wrapper"]
    assert task["_target_"] == "dltemplate.wrappers.task_wrappers.BasicTaskWrapper"
    # The model built by get_model, nested where it was passed, with its arguments.
    assert task["model"] == {
        "_target_": "models.small_cnn.SmallCNN",
        "in_channels": 1,
        "num_classes": 10,
        "channels": 32,
        "dropout": 0.1,
    }
    # Literals written in get_classifier's body, and the classes' own defaults.
    assert task["val_metrics"]["acc"]["average"] == "micro"
    assert task["val_metrics"]["acc"]["num_classes"] == 10
    assert task["val_metrics"]["f1"]["average"] == "macro"
    assert task["test_metrics"] == task["val_metrics"]
    assert task["loss_function"]["label_smoothing"] == 0.0
    assert task["loss_function"]["reduction"] == "mean"
    # functools.partial: the keywords given (lr from the override tree) and the defaults.
    assert task["optimizer"]["_target_"] == "torch.optim.adamw.AdamW"
    assert task["optimizer"]["lr"] == 0.003 and task["optimizer"]["weight_decay"] == 1e-4
    assert task["optimizer"]["betas"] == [0.9, 0.999]
    scheduler = task["lr_scheduler"]["scheduler"]
    assert scheduler["_target_"] == "torch.optim.lr_scheduler.ReduceLROnPlateau"
    assert scheduler["factor"] == 0.5 and scheduler["patience"] == 3
    data = hparams["objects"]["data_wrapper"]
    assert data["dataset"] == "dataset_classes.digits.DigitsDataset"
    assert data["split_fractions"] == pytest.approx([0.7, 0.15, 0.15])
    assert data["num_workers"] == 0  # a literal of the data-wrapper getter
    assert hparams["objects"]["trainer"]["log_every_n_steps"] == 10  # ditto, trainer getter
    # Layers built inside SmallCNN are the model's business, not separate records.
    targets = [v["_target_"] for v in _walk(hparams) if isinstance(v, dict) and "_target_" in v]
    assert not any("conv" in t.lower() for t in targets)
    assert "other" not in hparams["objects"]


def test_hparams_are_plain_yaml() -> None:
    hparams = build_run(FIXTURE / "configs/digits_mlp.py", seed=1).hparams
    for value in _walk(hparams):
        assert value is None or isinstance(value, bool | int | float | str | list | dict), value
    assert yaml.safe_load(yaml.safe_dump(hparams, sort_keys=False)) == hparams


SGD_CONFIG = """\
from functools import partial

import lightning as L
import torch
from torch import nn

from dltemplate import RootConfig


class Task(L.LightningModule):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model


def get_task(*, lr: float = 0.1) -> Task:
    nn.Linear(2, 2)  # built, then dropped: recorded under objects.other
    loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.25)
    model = nn.Sequential(nn.Linear(4, 3))
    model.extra = {"optimizer": partial(torch.optim.SGD, lr=lr, momentum=0.9), "loss": loss}
    return Task(model)


def get_data(*, n: int = 1) -> L.LightningDataModule:
    return L.LightningDataModule()


def get_trainer(*, max_epochs: int = 1) -> dict:
    return {"max_epochs": max_epochs}


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_task, data_wrapper=get_data, trainer=get_trainer)
"""


def test_objects_nobody_holds_and_tensors(tmp_path: Path) -> None:
    path = tmp_path / "sgd.py"
    path.write_text(SGD_CONFIG)
    hparams = build_run(path, overrides={"task_wrapper.lr": 0.5}, seed=0).hparams
    assert hparams["task_wrapper"] == {"lr": 0.5}
    other = hparams["objects"]["other"]
    losses = [o for o in other if o["_target_"].endswith("CrossEntropyLoss")]
    assert losses[0]["weight"] == [1.0, 2.0, 0.5]  # a small tensor as its values
    assert losses[0]["label_smoothing"] == 0.25
    assert any(o["_target_"] == "torch.nn.modules.linear.Linear" for o in other)
    assert hparams["objects"]["task_wrapper"]["model"]["_target_"].endswith("Sequential")


def test_partial_records_keywords_then_defaults() -> None:
    from functools import partial

    record = to_record(partial(torch.optim.SGD, lr=0.1, momentum=0.9))
    assert record["_target_"] == "torch.optim.sgd.SGD"
    assert (record["lr"], record["momentum"], record["weight_decay"]) == (0.1, 0.9, 0)
    assert "params" not in record  # filled in by the caller
    assert to_record(torch.zeros(100, 3)) == "<torch.Tensor shape=[100, 3]>"


def test_capture_puts_the_previous_profiler_back() -> None:
    calls = []

    def profiler(frame, event, arg):
        calls.append(event)

    sys.setprofile(profiler)
    try:
        with Capture() as capture:
            module = torch.nn.Linear(2, 3)
        assert sys.getprofile() is profiler
    finally:
        sys.setprofile(None)
    assert capture.describe(module) == {
        "_target_": "torch.nn.modules.linear.Linear",
        "in_features": 2,
        "out_features": 3,
        "bias": True,
        "device": None,
        "dtype": None,
    }


def test_a_getter_that_raises_leaves_no_profiler(tmp_path: Path) -> None:
    path = tmp_path / "raises.py"
    path.write_text(
        textwrap.dedent("""\
        from dltemplate import RootConfig


        def get_task(*) -> None:
            raise ValueError("no")


        def get_root_config_instance() -> RootConfig:
            return RootConfig(task_wrapper=get_task, data_wrapper=get_task, trainer=get_task)
        """).replace("(*)", "()")
    )
    with pytest.raises(Exception, match="no"):
        build_run(path)
    assert sys.getprofile() is None
