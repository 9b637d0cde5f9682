"""The experiment trackers a job logs to, chosen by the trainer config's `loggers` list.

- `csv` (the default): `<run>/metrics/<job>/metrics.csv`.
- `tensorboard`: `<run>/tensorboard/<job>/`; `tensorboard --logdir results` shows every run.
- `mlflow`: the store `$MLFLOW_TRACKING_URI`, else `mlflow.db` in the results root; experiment
  `<proj>/<exp>`, run `<run>` (the fit and the test log to the same run).
- `wandb`: offline under `<run>/wandb/` unless `WANDB_MODE` says otherwise; project `<proj>`,
  group `<exp>`, name `<run>`, job_type the job.

The names come from the run folder, `results/<proj>/<exp>/<run>`. Each job records the tracker
runs it logged to in `<run>/trackers/<job>.json` (a job writes only its own file, so test and
predict may run at the same time). A fit that resumes from `checkpoints/last.ckpt` appends to
the MLflow and W&B runs its earlier attempt started; the test and predict jobs append to the
fit's MLflow run (a run declared with `ckpt:` has no fit: each starts its own) and get W&B runs of
their own in the run's group. Predict logs what it wrote (`predict/samples`, `predict/batches`,
the predictions file), as Lightning's predict loop has no `self.log` (dltemplate.jobs.predict).
MLflow and W&B also get the job's environment, as its record has it (`log_environment`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from dltemplate.errors import UserError
from dltemplate.layout import RunLayout, results_root
from dltemplate.records import read_json, write_json_atomic
from dltemplate.results.environment import tracker_facts

TRACKERS = ("csv", "tensorboard", "mlflow", "wandb")

PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


def run_names(run_dir: str | Path) -> tuple[str, str, str]:
    """`results/<proj>/<exp>/<run>` -> `(proj, exp, run)`."""
    parts = Path(run_dir).resolve().parts
    if len(parts) < 3:
        raise UserError(f"Run folder {run_dir} is not of the form results/<proj>/<exp>/<run>")
    return parts[-3], parts[-2], parts[-1]


def tracker_record(run_dir: str | Path, job: str) -> dict[str, Any]:
    """What `<run>/trackers/<job>.json` says (empty if the job never logged to a tracker)."""
    record = read_json(RunLayout.at(run_dir).tracker_record(job), default={})
    return record if isinstance(record, dict) else {}


def check_logger_names(names: Sequence[str]) -> list[str]:
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in TRACKERS]
    if unknown:
        raise UserError(
            f"Unknown logger {unknown[0]!r} in trainer.loggers; choose from {', '.join(TRACKERS)}"
        )
    for name in names:
        package = PACKAGES.get(name)
        if package:
            try:
                __import__(package)
            except ImportError:
                raise UserError(
                    f"trainer.loggers names {name!r} but the {package} package is not installed; "
                    f"install it: .venv/bin/pip install {package} (or -e '.[trackers]')"
                ) from None
    return list(dict.fromkeys(names))  # each once, in order


def make_loggers(
    names: Sequence[str],
    run_dir: str | Path,
    job: str,
    *,
    resuming: bool = False,
    csv_version: str | None = None,
) -> list[Logger]:
    """The Lightning loggers for `job` of the run in `run_dir`.

    `resuming` says that a fit continues from a checkpoint of an earlier attempt: it then
    appends to that attempt's tracker runs instead of starting new ones. The CSV log goes to
    `metrics/<csv_version or job>/`.
    """
    names = check_logger_names(names)
    run_dir = Path(run_dir)
    previous = tracker_record(run_dir, "fit") if (job != "fit" or resuming) else {}
    record: dict[str, Any] = {}
    loggers: list[Logger] = []
    for name in names:
        if name == "csv":
            loggers.append(csv_logger(run_dir, csv_version or job))
        elif name == "tensorboard":
            loggers.append(tensorboard_logger(run_dir, job))
        elif name == "mlflow":
            logger, record["mlflow"] = mlflow_logger(run_dir, job, previous.get("mlflow", {}))
            loggers.append(logger)
        elif name == "wandb":
            stored = previous.get("wandb", {}) if job == "fit" else {}
            logger, record["wandb"] = wandb_logger(run_dir, job, stored)
            loggers.append(logger)
    if record and rank_zero_only.rank == 0:
        write_json_atomic(RunLayout.at(run_dir).tracker_record(job), record)
        log_environment(loggers, run_dir, job)
    return loggers


def log_environment(loggers: Sequence[Logger], run_dir: str | Path, job: str) -> None:
    """Give MLflow and W&B what the job's record says about its environment
    (dltemplate.results.environment): MLflow as tags `env/<job>/<fact>` (one MLflow run holds
    the fit, test and predict, which may run on other machines), W&B as the config `env` of
    the job's own run."""
    facts = tracker_facts(run_dir, job)
    for logger in loggers:
        if isinstance(logger, MLFlowLogger):
            from mlflow.entities import RunTag

            tags = [RunTag(f"env/{job}/{k.removeprefix('env/')}", v) for k, v in facts.items()]
            logger.experiment.log_batch(logger.run_id, tags=tags)
        elif type(logger).__name__ == "WandbLogger":
            env = {k.removeprefix("env/"): v for k, v in facts.items()}
            logger.experiment.config.update({"env": env}, allow_val_change=True)


def csv_logger(run_dir: Path, version: str) -> CSVLogger:
    # metrics/<version>/metrics.csv, as RunLayout.metrics(job) says
    return CSVLogger(save_dir=str(run_dir), name="metrics", version=version)


def tensorboard_logger(run_dir: Path, job: str) -> Logger:
    from lightning.pytorch.loggers import TensorBoardLogger

    # A fixed version folder: a resumed fit adds an event file beside the earlier ones, and
    # TensorBoard shows them as one run.
    return TensorBoardLogger(
        save_dir=str(run_dir), name="tensorboard", version=job, default_hp_metric=False
    )


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Serialise the creation of an SQLite store and its experiments between parallel jobs
    (two jobs creating the same database or experiment at once make one of them fail)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    database = Path(uri[len("sqlite:///") :])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(f".{database.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class AppendingMLFlowLogger(MLFlowLogger):
    """An MLFlowLogger that can log to a run again (a resumed fit, the test job).

    MLflow refuses to change a param once logged; a resumed fit whose hyperparameters changed
    (say, more epochs) keeps the first values in MLflow and says so in the job log.
    """

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        from lightning.fabric.utilities.logger import _convert_params, _flatten_dict

        flat = {k: str(v)[:250] for k, v in _flatten_dict(_convert_params(params)).items()}
        logged = self.experiment.get_run(self.run_id).data.params
        for key, value in flat.items():
            if key in logged and logged[key] != value:
                print(f"MLflow run {self.run_id} keeps {key}={logged[key]} (now {value})")
        super().log_hyperparams({k: v for k, v in flat.items() if k not in logged})


def mlflow_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{results_root()}/mlflow.db"


def mlflow_logger(run_dir: Path, job: str, stored: dict[str, Any]) -> tuple[Logger, dict]:
    from mlflow.exceptions import MlflowException

    proj, exp, run = run_names(run_dir)
    uri = mlflow_uri()
    run_id = stored.get("run_id") if stored.get("tracking_uri") == uri else None
    names = {"experiment_name": f"{proj}/{exp}", "run_name": run, "tracking_uri": uri}
    with _store_lock(uri):
        logger = AppendingMLFlowLogger(**names, run_id=run_id)
        try:
            _ = logger.run_id  # creates the experiment and the run now, under the lock
        except MlflowException:
            if run_id is None:
                raise
            # The stored run is gone (the store was deleted or moved): start a new one.
            logger = AppendingMLFlowLogger(**names)
            _ = logger.run_id
    return logger, {
        "tracking_uri": uri,
        "experiment": f"{proj}/{exp}",
        "experiment_id": logger.experiment_id,
        "run_id": logger.run_id,
    }


def wandb_logger(run_dir: Path, job: str, stored: dict[str, Any]) -> tuple[Logger, dict]:
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    if wandb.run is not None:  # an earlier job in this process (not under Snakemake): close it
        wandb.finish()
    proj, exp, run = run_names(run_dir)
    run_id = stored.get("id") or secrets.token_hex(4)  # W&B ids: lowercase letters and digits
    mode = os.environ.get("WANDB_MODE", "offline")  # offline unless the user says otherwise
    if mode == "dryrun":  # W&B's old name for offline, which wandb itself puts in the environment
        mode = "offline"
    logger = WandbLogger(
        project=proj,
        group=exp,
        name=run,
        job_type=job,
        id=run_id,
        resume="allow",
        save_dir=str(run_dir),
        offline=mode == "offline",
    )
    return logger, {
        "project": proj,
        "group": exp,
        "name": run,
        "job_type": job,
        "id": run_id,
        "mode": mode,
    }
