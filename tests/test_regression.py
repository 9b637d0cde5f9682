"""The regression example (diabetes): its dataset, and its runs end to end."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from dataset_classes.diabetes import DiabetesDataset
from tests.conftest import make_project


def test_diabetes_splits_are_disjoint_and_standardised_on_train_only() -> None:
    splits = {name: DiabetesDataset(split=name) for name in ("train", "val", "test")}
    assert sum(len(ds) for ds in splits.values()) == 442
    x, y = splits["train"][0]
    assert x.shape == (10,) and y.shape == (1,) and y.dtype == torch.float32
    train = splits["train"]
    assert torch.allclose(train.features.mean(0), torch.zeros(10), atol=1e-5)
    assert torch.allclose(train.features.std(0), torch.ones(10), atol=1e-5)
    assert abs(float(train.targets.mean())) < 1e-5
    # val and test are scaled with the train split's statistics, not their own
    assert abs(float(splits["test"].targets.mean())) > 1e-3
    rows = {tuple(ds.features[i].tolist()) for ds in splits.values() for i in range(len(ds))}
    assert len(rows) == 442  # no sample in two splits


def test_diabetes_split_follows_the_seed() -> None:
    a = DiabetesDataset(split="test", split_seed=0).targets
    b = DiabetesDataset(split="test", split_seed=1).targets
    assert not torch.equal(a, b)
    assert torch.equal(a, DiabetesDataset(split="test", split_seed=0).targets)


DIABETES_REGISTRY = """\
description: The regression example, one run
experiments:
  baseline:
    description: the MLP
    runs:
      mlp:
        description: Linear(10, 64), ReLU, Linear(64, 1)
        config: configs/diabetes_mlp.py
        jobs: [fit, test, predict]
        overrides: {trainer.max_epochs: 10}
"""


@pytest.mark.slow
def test_diabetes_run_end_to_end(tmp_path) -> None:
    project = make_project(tmp_path / "proj", DIABETES_REGISTRY)
    run = "results/tiny/baseline/mlp"
    project.snakemake("--cores", "2", f"{run}/run.json")
    test = json.loads(project.path(f"{run}/test.done").read_text())
    assert test["metrics"]["test/r2"] >= 0.4
    assert {"test/mae", "test/rmse", "test/loss"} <= set(test["metrics"])
    with project.path(f"{run}/predictions.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 66  # the test split
    assert list(rows[0]) == ["index", "prediction", "target"]
    predicted = torch.tensor([float(r["prediction"]) for r in rows])
    true = torch.tensor([float(r["target"]) for r in rows])
    r2 = 1 - ((predicted - true) ** 2).sum() / ((true - true.mean()) ** 2).sum()
    assert float(r2) == pytest.approx(test["metrics"]["test/r2"], abs=1e-4)
    assert test["regression"].endswith("test_regression.csv") and "confusion_matrix" not in test
    for name in ("regression.png", "confusion_matrix.png", "learning_curves.png"):
        assert project.path(f"{run}/plots/{name}").read_bytes().startswith(b"\x89PNG")
