"""Experiment trackers: real TensorBoard and MLflow (local SQLite store), W&B offline if installed."""

from __future__ import annotations

import csv
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import platform
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dltemplate.errors import UserError
from dltemplate.jobs.loggers import check_logger_names, make_loggers, run_names
from tests.conftest import FIXTURE

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
        config_file=str(FIXTURE / "configs/digits_mlp.py"),
        overrides={**SHRINK, "trainer.max_epochs": epochs, "trainer.loggers": loggers},
        seed=0,
        threads=1,
        done_file=f"{run_dir}/fit.done",
    )


def after_fit(job: str, run_dir: str, loggers: list[str]) -> dict:
    """The test or predict job of the fitted run in `run_dir`."""
    from dltemplate.jobs.evaluate import test_run
    from dltemplate.jobs.predict import predict_run

    args = {
        "run_dir": run_dir,
        "config_file": str(FIXTURE / "configs/digits_mlp.py"),
        "overrides": {**SHRINK, "trainer.loggers": loggers},
        "seed": 0,
        "threads": 1,
        "fit_done": f"{run_dir}/fit.done",
        "done_file": f"{run_dir}/{job}.done",
    }
    if job == "test":
        return test_run(**args)
    return predict_run(**args, predictions_file=f"{run_dir}/predictions.csv")


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


def test_predict_gets_the_trackers_of_the_trainer_config(tmp_path: Path) -> None:
    loggers = make_loggers(["csv", "tensorboard"], tmp_path / "p/e/r", "predict")
    assert [Path(logger.log_dir).relative_to(tmp_path) for logger in loggers] == [
        Path("p/e/r/metrics/predict"),
        Path("p/e/r/tensorboard/predict"),
    ]


@pytest.mark.slow
def test_tensorboard_and_mlflow_follow_proj_exp_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

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
    after_fit("test", RUN, loggers)
    rows = after_fit("predict", RUN, loggers)["rows"]
    assert json.loads(Path(RUN, "trackers/predict.json").read_text())["mlflow"] == second

    client = MlflowClient("sqlite:///results/mlflow.db")
    experiment = client.get_experiment_by_name("tiny/exp")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs] == ["mlp"]
    run = runs[0]
    assert run.info.run_id == first["run_id"]
    assert {"train/loss", "val/loss", "val/acc", "test/acc", "test/loss"} <= set(run.data.metrics)
    assert run.data.params["trainer/max_epochs"] == "2"
    # Predict appends to the same run: what it wrote, and where.
    batch_size = yaml.safe_load(Path(RUN, "hparams.yaml").read_text())["data_wrapper"]["batch_size"]
    assert run.data.metrics["predict/samples"] == rows > 0
    assert run.data.metrics["predict/batches"] == math.ceil(rows / batch_size)
    assert run.data.params["predict/predictions"] == f"{RUN}/predictions.csv"
    # Each job's environment, as its record has it (dltemplate.results.environment).
    torch_version = importlib.metadata.version("torch")
    packages_sha = hashlib.sha256(Path(RUN, "env/packages.txt").read_bytes()).hexdigest()
    for job in ("fit", "test", "predict"):
        assert run.data.tags[f"env/{job}/python_version"] == platform.python_version(), job
        assert run.data.tags[f"env/{job}/torch_version"] == torch_version, job
        assert run.data.tags[f"env/{job}/host"] == socket.gethostname(), job
        assert run.data.tags[f"env/{job}/packages"].endswith(
            "in env/packages.txt (sha256 " + packages_sha + ")"
        ), job
    history = client.get_metric_history(run.info.run_id, "val/loss")
    assert len(history) == 2  # one value per epoch; the resumed attempt had none left to train

    fit_events = EventAccumulator(str(Path(RUN, "tensorboard/fit"))).Reload()
    assert {"train/loss", "val/loss", "val/acc"} <= set(fit_events.Tags()["scalars"])
    test_events = EventAccumulator(str(Path(RUN, "tensorboard/test"))).Reload()
    assert "test/acc" in test_events.Tags()["scalars"]
    predict_events = EventAccumulator(str(Path(RUN, "tensorboard/predict"))).Reload()
    assert predict_events.Scalars("predict/samples")[0].value == rows
    assert {"predict/batches"} <= set(predict_events.Tags()["scalars"])
    # Test and predict give the loggers the run's hparams, as the fit does.
    for job in ("test", "predict"):
        logged = yaml.safe_load(Path(RUN, f"tensorboard/{job}/hparams.yaml").read_text())
        assert logged["trainer"]["limit_train_batches"] == 3, job
    with open(Path(RUN, "metrics/predict/metrics.csv")) as handle:  # csv still there beside them
        assert next(csv.DictReader(handle))["predict/samples"] == str(rows)
    assert Path(RUN, "metrics/fit/metrics.csv").is_file()


def wandb_records(path: Path) -> Iterator:
    """The records of an offline W&B run file (W&B has no reader of its own for them): a
    7-byte header, then LevelDB-style 32 KiB blocks of chunks (4-byte checksum, 2-byte length,
    1-byte type: 1 whole record, 2 first, 3 middle, 4 last part of one)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, parts = 7, b""
    while pos + 7 <= len(data):
        room = 32768 - pos % 32768
        if room < 7:  # a block's tail too short for a chunk header is padding
            pos += room
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        parts += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            yield record
            parts = b""


def finished_wandb_records(path: Path, timeout: float = 60) -> list:
    """The records of a finished offline W&B run. W&B's service process writes the file on its
    own after `wandb.finish()` returns: wait until it holds the run's `exit` record."""
    deadline = time.monotonic() + timeout
    while True:
        records = list(wandb_records(path))
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        if time.monotonic() > deadline:
            kinds = [r.WhichOneof("record_type") for r in records]
            raise AssertionError(f"{path} has no exit record after {timeout} s: {kinds}")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_logs_offline_into_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wandb

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    fit(RUN, 1, ["wandb"])
    record = json.loads(Path(RUN, "trackers/fit.json").read_text())["wandb"]
    assert record["mode"] == "offline" and record["project"] == "tiny" and record["group"] == "exp"
    assert list(Path(RUN, "wandb").glob(f"offline-run-*-{record['id']}"))
    killed_after_its_last_checkpoint(RUN)
    fit(RUN, 1, ["wandb"])  # resumes: the same W&B run
    assert json.loads(Path(RUN, "trackers/fit.json").read_text())["wandb"]["id"] == record["id"]
    rows = after_fit("predict", RUN, ["wandb"])["rows"]
    wandb.finish()  # as the job's process does when it exits
    predict = json.loads(Path(RUN, "trackers/predict.json").read_text())["wandb"]
    assert predict["id"] != record["id"] and predict["mode"] == "offline"
    (run_file,) = Path(RUN, "wandb").glob(f"offline-run-*-{predict['id']}/run-*.wandb")
    records = finished_wandb_records(run_file)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (run.project, run.run_group, run.display_name, run.job_type) == (
        "tiny",
        "exp",
        "mlp",
        "predict",
    )
    history = {
        item.key or "/".join(item.nested_key): item.value_json
        for r in records
        if r.WhichOneof("record_type") == "history"
        for item in r.history.item
    }
    assert history["predict/samples"] == str(rows)
    config = {
        item.key
        for r in records
        if r.WhichOneof("record_type") == "config"
        for item in r.config.update
    }
    assert {"trainer", "predict", "env"} <= config  # env: the job's environment
