"""Layer 2: the example configs are there, and the one that reads idx files builds on such
files. (tests/test_configs.py, what `dltemplate new` writes, builds every config and trains one
batch; it skips this one, whose data is not linked.)"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dltemplate.config.build import build_run
from dltemplate.config.loader import ROOT_GETTER
from dltemplate.errors import UserError
from tests.conftest import REPO

ROOT_CONFIGS = sorted(p for p in (REPO / "configs").glob("*.py") if ROOT_GETTER in p.read_text())

# The example project's own tests: they skip when it was deleted.
pytestmark = pytest.mark.examples


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write `array` (uint8) as an idx file, gzipped when the name ends in .gz."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def write_mnist_format(root: Path, n_train: int = 40, n_test: int = 20, gz: bool = True) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, (n,)))
    return root


def test_the_example_configs_are_found() -> None:
    names = {p.name for p in ROOT_CONFIGS}
    assert {"digits_mlp.py", "digits_cnn.py", "exp_on_oracle_mnist.py", "diabetes_mlp.py"} <= names


@pytest.mark.parametrize("job", ["fit", "test", "predict"])
def test_the_idx_config_builds_on_idx_files(job: str, tmp_path: Path) -> None:
    config = REPO / "configs" / "exp_on_oracle_mnist.py"
    overrides = {"data_wrapper.root": str(write_mnist_format(tmp_path / "mnist"))}
    built = build_run(config, job=job, overrides=overrides, seed=1)
    built.data_wrapper.setup("fit")
    assert "max_epochs" in built.trainer_kwargs
    assert built.hparams["seed"] == 1
    batch = next(iter(built.data_wrapper.train_dataloader()))
    wrapper = built.task_wrapper
    # One batch through model, loss and metrics, whatever the task: no config may assume the
    # example's 10 classes, so a user's own config keeps `make test` green.
    if hasattr(wrapper, "check_shapes"):
        wrapper.check_shapes(batch)
    loss = wrapper.training_step(batch, 0)
    assert loss.dim() == 0 and torch.isfinite(loss)
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    assert len(wrapper.predict_step(batch, 0)) == len(first)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_format_reads_idx_files(tmp_path: Path, gz: bool) -> None:
    from dataset_classes.mnist_idx import MnistIdxDataset

    root = write_mnist_format(tmp_path / "m", n_train=7, n_test=3, gz=gz)
    train = MnistIdxDataset(root=root, split="train")
    image, label = train[0]
    assert len(train) == 7 and len(MnistIdxDataset(root=root, split="test")) == 3
    assert image.shape == (1, 28, 28) and float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    assert 0 <= int(label) < 10


def test_missing_mnist_data_says_how_to_link(tmp_path: Path) -> None:
    from dataset_classes.mnist_idx import MnistIdxDataset

    with pytest.raises(UserError, match=r"ln -s .*train-images-idx3-ubyte"):
        MnistIdxDataset(root=tmp_path / "oracle-mnist", split="train")


def test_truncated_idx_file_is_named(tmp_path: Path) -> None:
    from dataset_classes.mnist_idx import MnistIdxDataset

    root = write_mnist_format(tmp_path / "m", gz=False)
    path = root / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="truncated"):
        MnistIdxDataset(root=root, split="train")
