"""k-fold cross-validation (`folds: K` in a sweep or a search): the data wrapper's folds, the
runs a registry declares for them, and a summary that averages over folds, through Snakemake.

Broken on purpose while writing these: cutting the folds from the train split alone (the pooled
check failed), and grouping a point's runs by fold (the summary had two points).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from dltemplate.errors import RegistryError, UserError
from dltemplate.registry.model import load_registry
from tests.conftest import Project
from tests.test_search import SEARCH
from wrappers import BasicDataWrapper


def split_ids(folds: int = 1, fold: int = 0) -> dict[str, set[int]]:
    data = BasicDataWrapper(
        dataset=TensorDataset(torch.arange(100)),
        split_fractions=(0.7, 0.15, 0.15),
        split_seed=3,
        folds=folds,
        fold=fold,
    )
    data.setup("fit")
    return {s: {int(data.splits[s][i][0]) for i in range(len(data.splits[s]))} for s in data.splits}


def test_folds_cut_train_and_val_into_k_and_leave_test_alone() -> None:
    plain = split_ids()
    pooled = plain["train"] | plain["val"]
    vals = []
    for fold in range(3):
        ids = split_ids(3, fold)
        assert ids["test"] == plain["test"] and ids["predict"] == plain["test"]
        assert ids["train"] | ids["val"] == pooled and not ids["train"] & ids["val"]
        assert len(ids["val"]) in (28, 29)  # 85 samples in 3 folds
        vals.append(ids["val"])
    assert set().union(*vals) == pooled and sum(map(len, vals)) == len(pooled)
    assert split_ids(3, 1) == split_ids(3, 1)  # the same folds in every job


@pytest.mark.parametrize(("folds", "fold"), [(3, 3), (3, -1), (0, 0)])
def test_a_fold_that_does_not_exist_is_refused(folds: int, fold: int) -> None:
    with pytest.raises(UserError, match=f"fold {fold} of {folds} folds does not exist"):
        BasicDataWrapper(dataset=TensorDataset(torch.arange(10)), folds=folds, fold=fold)


SWEEP = """\
description: A tiny project for tests
experiments:
  cv:
    description: one learning rate, 2 seeds x 3 folds
    sweep:
      config: configs/digits_mlp.py
      grid: {task_wrapper.lr: [0.01]}
      seeds: 2
      folds: 3
"""


def test_a_sweeps_folds_are_runs_of_one_point(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(SWEEP)
    runs = load_registry(tmp_path).experiment("tiny", "cv").runs
    assert list(runs)[:4] == ["lr0.01-s0-f0", "lr0.01-s0-f1", "lr0.01-s0-f2", "lr0.01-s1-f0"]
    assert runs["lr0.01-s1-f2"].overrides == {
        "task_wrapper.lr": 0.01,
        "seed": 1,
        "data_wrapper.folds": 3,
        "data_wrapper.fold": 2,
    }
    (tmp_path / "tiny.yaml").write_text(SWEEP.replace("[0.01]}", "[0.01], data_wrapper.fold: [0]}"))
    with pytest.raises(RegistryError, match="are set by the `folds:` key"):
        load_registry(tmp_path)


def test_a_search_trial_runs_every_fold_and_one_reports(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(
        SEARCH.replace(
            "seed: 0", "seed: 0\n      folds: 2\n      pruner: median\n      intermediate: val/loss"
        )
    )
    spec = load_registry(tmp_path).experiment("tiny", "s").search
    runs = spec.trial_runs(4, {"task_wrapper.lr": 0.01}, "here")
    assert [r["name"] for r in runs] == ["t004-f0", "t004-f1"]
    assert [r["overrides"]["data_wrapper.fold"] for r in runs] == [0, 1]
    layout = load_registry(tmp_path).experiment("tiny", "s").layout
    assert [spec.pruning(layout, 4, r) is not None for r in runs] == [True, False]


@pytest.mark.slow
def test_a_k_fold_sweep_is_summarised_as_one_point(project: Project) -> None:
    project.write(
        "configs/projects/tiny.yaml",
        """\
        description: A tiny project for tests
        experiments:
          cv:
            description: two folds of one point
            sweep:
              config: configs/digits_mlp.py
              jobs: [fit, test]
              overrides: {trainer.max_epochs: 1, trainer.limit_train_batches: 2}
              list: [{task_wrapper.lr: 0.01}]
              folds: 2
        """,
    )
    project.snakemake("-j2", "results/tiny/cv/summary.csv")
    with project.path("results/tiny/cv/summary_points.csv").open() as f:
        (point,) = list(csv.DictReader(f))
    assert point["n"] == "2" and point["runs"] == "lr0.01-f0 lr0.01-f1"
    for fold in (0, 1):
        hparams = project.path(f"results/tiny/cv/lr0.01-f{fold}/hparams.yaml").read_text()
        assert f"fold: {fold}" in hparams and "folds: 2" in hparams
