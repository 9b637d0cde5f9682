"""Layer 3: `init_from` starts a fit from another run's best weights (a real, shrunk fit)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dltemplate.config.build import build_run
from dltemplate.errors import UserError
from dltemplate.jobs.fit import fit_run
from dltemplate.jobs.init_from import load_init_weights
from tests.conftest import REPO

CONFIG = str(REPO / "configs/digits_mlp.py")
SHRUNK = {
    "trainer.max_epochs": 1,
    "trainer.limit_train_batches": 3,
    "trainer.limit_val_batches": 2,
    "task_wrapper.model.hidden_dim": 16,
}


@pytest.fixture(scope="module")
def parent_fit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("init_from")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        fit_run(
            run_dir="results/p/e/parent",
            config_file=CONFIG,
            overrides=SHRUNK,
            seed=1,
            threads=1,
            done_file="results/p/e/parent/fit.done",
        )
    return root


def test_the_fit_starts_from_the_parents_best_weights(
    parent_fit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(parent_fit)
    best = torch.load("results/p/e/parent/checkpoints/best.ckpt", weights_only=False)["state_dict"]
    child = build_run(CONFIG, overrides=SHRUNK, seed=2).task_wrapper
    before = child.state_dict()
    assert not all(torch.equal(before[k], best[k]) for k in best)  # another seed, other weights
    loaded = load_init_weights(child, "results/p/e/parent/fit.done")
    assert loaded == Path("results/p/e/parent/checkpoints/best.ckpt")
    state = child.state_dict()
    assert set(state) == set(best)
    assert all(torch.equal(state[k], best[k]) for k in best)


def test_another_architecture_is_refused_with_the_checkpoint_named(
    parent_fit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(parent_fit)
    wider = build_run(CONFIG, overrides={**SHRUNK, "task_wrapper.model.hidden_dim": 32}, seed=2)
    message = (
        r"Checkpoint results/p/e/parent/checkpoints/best.ckpt was saved by a different model "
        r"than this run's config builds \(shapes differ: model.net.1.weight \(16, 64\) vs "
        r"\(32, 64\).*\). init_from needs a parent run that builds this run's model"
    )
    with pytest.raises(UserError, match=message):
        load_init_weights(wider.task_wrapper, "results/p/e/parent/fit.done")
