"""Experiment trackers: real TensorBoard and MLflow (local SQLite store), W&B offline if installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from dltemplate.errors import UserError
from dltemplate.jobs.loggers import check_logger_names, make_loggers, run_names
from tests.conftest import REPO

RUN = "results/tiny/exp/mlp"
SHRINK = {
    "trainer.limit_train_batches": 3,
    "trainer.limit_val_batches": 2,
    "task_wrapper.model.hidden_dim": 16,
}


def fit(run_dir: str, epochs: int, loggers: list[str]) -> dict:
    from dltemplate.jobs.fit import fit_run

    return fit_run(
        run_dir=run_dir,
        config_file=str(REPO / "configs/digits_mlp.py"),
        overrides={**SHRINK, "trainer.max_epochs": epochs, "trainer.loggers": loggers},
        seed=0,
        threads=1,
        done_file=f"{run_dir}/fit.done",
    )


def killed_after_its_last_checkpoint(run_dir: str) -> None:
    """What a fit job killed after its last checkpoint, before it recorded the end, leaves: no
    fit.done (Snakemake removes a failed job's outputs) and an unfinished fit record. Run again
    with the same config, the fit resumes (dltemplate.jobs.resume)."""
    Path(run_dir, "fit.done").unlink()
    state_file = Path(run_dir, "checkpoints/fit_state.json")
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "finished": False}))


def test_run_names_come_from_the_run_folder() -> None:
    assert run_names("results/digits/baseline/cnn") == ("digits", "baseline", "cnn")


def test_unknown_logger_is_one_clear_line() -> None:
    with pytest.raises(UserError, match=r"Unknown logger 'tensorbord' in trainer\.loggers; choose"):
        check_logger_names(["csv", "tensorbord"])


def test_predict_logs_to_no_tracker(tmp_path: Path) -> None:
    assert make_loggers(["csv", "tensorboard"], tmp_path / "p/e/r", "predict") == []


@pytest.mark.slow
def test_tensorboard_and_mlflow_follow_proj_exp_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dltemplate.jobs.evaluate import test_run

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    loggers = ["csv", "tensorboard", "mlflow"]
    fit(RUN, 2, loggers)
    first = json.loads(Path(RUN, "trackers/fit.json").read_text())["mlflow"]
    assert first["tracking_uri"] == "sqlite:///results/mlflow.db"
    # A second attempt of the fit resumes from last.ckpt: it appends to the same MLflow run.
    killed_after_its_last_checkpoint(RUN)
    fit(RUN, 2, loggers)
    assert json.loads(Path(RUN, "fit.done").read_text())["attempts"] == 2
    second = json.loads(Path(RUN, "trackers/fit.json").read_text())["mlflow"]
    assert second["run_id"] == first["run_id"]
    test_run(
        run_dir=RUN,
        config_file=str(REPO / "configs/digits_mlp.py"),
        overrides={**SHRINK, "trainer.loggers": loggers},
        seed=0,
        threads=1,
        fit_done=f"{RUN}/fit.done",
        done_file=f"{RUN}/test.done",
    )

    client = MlflowClient("sqlite:///results/mlflow.db")
    experiment = client.get_experiment_by_name("tiny/exp")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs] == ["mlp"]
    run = runs[0]
    assert run.info.run_id == first["run_id"]
    assert {"train/loss", "val/loss", "val/acc", "test/acc", "test/loss"} <= set(run.data.metrics)
    assert run.data.params["trainer/max_epochs"] == "2"
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert len(history) == 2  # one value per epoch; the resumed attempt had none left to train

    fit_events = EventAccumulator(str(Path(RUN, "tensorboard/fit"))).Reload()
    assert {"train/loss", "val/loss", "val/acc"} <= set(fit_events.Tags()["scalars"])
    test_events = EventAccumulator(str(Path(RUN, "tensorboard/test"))).Reload()
    assert "test/acc" in test_events.Tags()["scalars"]
    assert Path(RUN, "metrics/fit/metrics.csv").is_file()  # csv still there beside them


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_logs_offline_into_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    fit(RUN, 1, ["wandb"])
    record = json.loads(Path(RUN, "trackers/fit.json").read_text())["wandb"]
    assert record["mode"] == "offline" and record["project"] == "tiny" and record["group"] == "exp"
    assert list(Path(RUN, "wandb").glob(f"offline-run-*-{record['id']}"))
    killed_after_its_last_checkpoint(RUN)
    fit(RUN, 1, ["wandb"])  # resumes: the same W&B run
    assert json.loads(Path(RUN, "trackers/fit.json").read_text())["wandb"]["id"] == record["id"]
