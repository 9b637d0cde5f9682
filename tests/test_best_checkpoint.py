"""Layer 3: `monitor` and `monitor_mode` pick best.ckpt, and test and predict use that one."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from dltemplate.jobs.evaluate import test_run
from dltemplate.jobs.fit import fit_run
from dltemplate.jobs.predict import predict_run
from dltemplate.layout import RunLayout
from tests.conftest import Project

# 3 epochs of 5 steps (1,257 training samples in batches of 256), at learning rates high enough
# that the last epoch is not the best: best.ckpt differs from last.ckpt. At lr 0.5 the highest
# val/acc is epoch 0, while the default (the lowest val/loss) and the lowest val/acc (the
# mode ignored) are the last epoch; at lr 0.3 the lowest val/loss is epoch 1. (The job refuses
# modes against a metric's nature, `val/loss` with "max": dltemplate.jobs.monitors.)
OVERRIDES = {
    "trainer.max_epochs": 3,
    "task_wrapper.model.hidden_dim": 16,
    "data_wrapper.batch_size": 256,
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("metric", "mode", "pick", "lr"),
    [("val/acc", "max", max, 0.5), ("val/loss", "min", min, 0.3)],
    ids=["another-metric-and-mode", "the-default"],
)
def test_best_checkpoint_follows_monitor_and_test_and_predict_use_it(
    project: Project, monkeypatch: pytest.MonkeyPatch, metric: str, mode: str, pick, lr: float
) -> None:
    """best.ckpt holds the epoch whose `metric` is best by `mode` (read from the fit's own
    metrics.csv), fit.done records that choice, and the test and predict jobs evaluate with
    exactly its weights (the trace hook of tests/fit_hooks.py saves the weights they run with).

    Broken on purpose: with make_trainer's ModelCheckpoint keeping `monitor="val/loss",
    mode="min"` whatever the config says (or ignoring the mode), best.ckpt holds the last
    epoch and the first setting fails; with test_run and predict_run given `ckpt_path` of last.ckpt, the
    weights they evaluate with are last.ckpt's and it fails too (each of the two alone as well)."""
    config = project.add_fit_hooks()
    monkeypatch.chdir(project.root)
    monkeypatch.setenv("DLT_TEST_TRACE", "trace.json")
    run = RunLayout.of("p", "e", "r")
    job = dict(
        run_dir=run.folder,
        config_file=config,
        overrides={
            **OVERRIDES,
            "task_wrapper.lr": lr,
            "trainer.monitor": metric,
            "trainer.monitor_mode": mode,
        },
        seed=1,
        threads=1,
    )
    fit = fit_run(**job, done_file=run.done("fit"))
    test_run(**job, fit_done=run.done("fit"), done_file=run.done("test"))
    predict_run(
        **job,
        fit_done=run.done("fit"),
        predictions_file=run.path / "predictions.csv",
        done_file=run.done("predict"),
    )

    with (run.path / "metrics/fit/metrics.csv").open() as f:
        per_epoch = {int(r["epoch"]): float(r[metric]) for r in csv.DictReader(f) if r[metric]}
    assert sorted(per_epoch) == [0, 1, 2]
    best_epoch = pick(per_epoch, key=per_epoch.get)
    assert best_epoch != 2  # else best and last could not be told apart
    best = torch.load(run.best_checkpoint, weights_only=False)
    last = torch.load(run.last_checkpoint, weights_only=False)
    assert best["epoch"] == best_epoch and last["epoch"] == 2
    assert fit["monitor"] == {"metric": metric, "mode": mode}
    assert json.loads(Path(run.done("test")).read_text())["checkpoint"] == run.best_checkpoint
    for job_name in ("test", "predict"):
        used = torch.load(run.path / f"trace.json.{job_name}.pt")
        assert set(used) == set(best["state_dict"])
        assert all(torch.equal(used[k], best["state_dict"][k]) for k in used), job_name
        assert not all(torch.equal(used[k], last["state_dict"][k]) for k in used), job_name
