"""Build a job's lightning.Trainer from the config's settings plus what belongs to the run."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar

from dltemplate.config.trainer_args import JOB_OWNED, JOB_SETTINGS
from dltemplate.errors import UserError, one_line
from dltemplate.jobs.distributed import single_process_launch
from dltemplate.jobs.guards import FiniteLossGuard
from dltemplate.jobs.loggers import make_loggers
from dltemplate.jobs.progress import PlainProgress
from dltemplate.layout import EPOCH_CHECKPOINT, RunLayout

# Keys of the trainer getter's dict that are the template's, not lightning.Trainer's.
TEMPLATE_KEYS = ("monitor", "monitor_mode", "loggers", "stop_on_nonfinite_loss", *JOB_SETTINGS)
# Trainer arguments that the job sets itself (dltemplate.config.trainer_args says why).
SET_BY_THE_JOB = ("default_root_dir", "enable_checkpointing", "enable_progress_bar")


def progress_callbacks() -> tuple[list[L.Callback], bool]:
    """Rich bars in a terminal; plain epoch lines in a job log."""
    if sys.stderr.isatty():
        return [RichProgressBar()], True
    return [PlainProgress()], False


def check_bounded(kwargs: Mapping[str, Any]) -> None:
    """Refuse a fit without an end: `max_epochs=-1` (Lightning's "forever") needs `max_steps`
    or `max_time`; other negative epoch counts are mistakes."""
    epochs = kwargs.get("max_epochs")
    if epochs is None or epochs >= 0:
        return
    steps, time_limit = kwargs.get("max_steps", -1), kwargs.get("max_time")
    if epochs == -1 and ((steps is not None and steps > 0) or time_limit):
        return
    raise UserError(
        f"trainer max_epochs={epochs} never ends the fit; set trainer.max_epochs to 0 or more "
        "(or -1 together with max_steps or max_time)"
    )


def epoch_checkpoints(layout: RunLayout, every: int) -> list[L.Callback]:
    """The callback that keeps `checkpoints/epoch=<n>.ckpt` every `every` epochs (n counts from
    0, as Lightning counts epochs), besides best.ckpt and last.ckpt; none for 0."""
    if every < 0:
        raise UserError(f"trainer.keep_every_n_epochs={every}: give 0 (none) or more epochs")
    if not every:
        return []
    return [
        ModelCheckpoint(
            dirpath=layout.checkpoints,
            filename=EPOCH_CHECKPOINT,
            auto_insert_metric_name=False,
            every_n_epochs=every,
            save_top_k=-1,  # every one of them
            monitor=None,
            save_last=False,
            enable_version_counter=False,
        )
    ]


def make_trainer(
    settings: Mapping[str, Any], run_dir: str | Path, job: str, log_version: str | None = None
) -> L.Trainer:
    """`lightning.Trainer(**settings)` with the run's folder, loggers, checkpoints and progress.

    The CSV log goes to `metrics/<log_version or job>/`. For fit, this keeps `best.ckpt`; the
    fit job adds the callback that keeps `last.ckpt` (dltemplate.jobs.checkpointing).
    """
    layout = RunLayout.at(run_dir)
    kwargs = {k: v for k, v in settings.items() if k not in TEMPLATE_KEYS}
    for name in SET_BY_THE_JOB:
        if name in kwargs:
            raise UserError(f"The trainer getter returns {name!r}: {JOB_OWNED[name]}; remove it")
    check_bounded(kwargs)
    single_process_launch(kwargs)  # DDP ranks forked from the job's one process
    callbacks = list(kwargs.pop("callbacks", []))
    progress, bar = progress_callbacks()
    callbacks += progress
    if job == "fit":
        callbacks.append(FiniteLossGuard(stop=settings.get("stop_on_nonfinite_loss", True)))
        callbacks.append(
            ModelCheckpoint(
                dirpath=layout.checkpoints,
                filename=Path(layout.best_checkpoint).stem,
                monitor=settings.get("monitor", "val/loss"),
                mode=settings.get("monitor_mode", "min"),
                save_last=False,  # last.ckpt is ResumeCheckpoint's, written more often
                save_top_k=1,
                enable_version_counter=False,
            )
        )
        callbacks += epoch_checkpoints(layout, settings.get("keep_every_n_epochs") or 0)
    logger = kwargs.pop("logger", None)
    if logger is None:
        resuming = job == "fit" and Path(layout.last_checkpoint).is_file()
        names = settings.get("loggers", ("csv",))
        logger = (
            make_loggers(names, run_dir, job, resuming=resuming, csv_version=log_version) or False
        )
    try:
        return L.Trainer(
            default_root_dir=str(run_dir),
            logger=logger,
            callbacks=callbacks,
            enable_progress_bar=bar,
            enable_checkpointing=job == "fit",
            **kwargs,
        )
    except (MisconfigurationException, ValueError, TypeError) as exc:
        raise UserError(
            f"lightning.Trainer refuses the run's trainer settings: {one_line(exc)}; fix the "
            "trainer getter or the trainer.* overrides"
        ) from exc


def check_batch_limits(trainer: L.Trainer, datamodule: L.LightningDataModule) -> None:
    """Refuse, before anything is written, the batch settings that Lightning would refuse at
    the start of the fit (after its folders and records exist, with a traceback): a fraction
    `limit_train_batches` or `limit_val_batches` that leaves no batch of its split, and a
    `val_check_interval` of more batches than an epoch has. The data is set up only when one
    of them is set, so the common fit pays nothing."""
    fractions = {
        split: limit
        for split in ("train", "val")
        if isinstance(limit := getattr(trainer, f"limit_{split}_batches"), float) and limit < 1
    }
    interval = trainer.val_check_interval
    by_batches = isinstance(interval, int) and trainer.check_val_every_n_epoch is not None
    if not fractions and not by_batches:
        return
    datamodule.setup("fit")  # a data wrapper's setup runs once; Lightning's call finds it done
    batches = {split: _batch_count(datamodule, split) for split in ("train", "val")}
    for split, limit in fractions.items():
        length = batches[split]
        if length and limit > 0 and int(length * limit) == 0:
            raise UserError(
                f"trainer.limit_{split}_batches={limit:g} leaves no {split} batch: the {split} "
                f"split has {length} batches, and {limit:g} x {length} < 1; set it to at least "
                f"{1 / length:.3g}, or to a number of batches (an int, such as 1)"
            )
    train = batches["train"]
    if by_batches and train and interval > min(train, _limit(trainer.limit_train_batches, train)):
        raise UserError(
            f"trainer.val_check_interval={interval} is more batches than an epoch has "
            f"({min(train, _limit(trainer.limit_train_batches, train))}); lower it, or set "
            "trainer.check_val_every_n_epoch=null to count batches across epochs"
        )


def _batch_count(datamodule: L.LightningDataModule, split: str) -> int | None:
    """The batches of a split's loader; None when it has no length (an iterable dataset)."""
    try:
        return len(getattr(datamodule, f"{split}_dataloader")())
    except TypeError:
        return None


def _limit(limit: int | float, length: int) -> int:
    return limit if isinstance(limit, int) else int(length * limit)


@contextlib.contextmanager
def lightning_refusals(job: str) -> Iterator[None]:
    """A setting that Lightning refuses once the job's loop starts (MisconfigurationException),
    as one line: what `check_batch_limits` and the Trainer's own check cannot foresee."""
    try:
        yield
    except MisconfigurationException as exc:
        raise UserError(
            f"Lightning refuses the run's trainer settings at the start of the {job}: "
            f"{one_line(exc)}; fix the trainer getter or the trainer.* overrides"
        ) from None
