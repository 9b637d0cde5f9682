"""Training a run in one process: the fit job's own, or each rank's that srun started.

`FitTraining` builds the run from its config, checks its trainer, and trains it, resuming a
checkpoint; `fit_record` is what fit.done says of the result. The fit job
(dltemplate.jobs.fit) decides what to resume and keeps the run's records; a fit across nodes
(dltemplate.jobs.ranks) runs this in every rank.
"""

from __future__ import annotations

import signal
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltemplate.errors import ShapeError
from dltemplate.jobs import resume
from dltemplate.layout import RunLayout
from dltemplate.records import portable_path

# How often last.ckpt is written, unless the workflow config says otherwise (`checkpoint:` in
# configs/workflow.yaml). A runtime setting: changing it never reruns or restarts a fit.
CHECKPOINT_DEFAULTS = {"every_n_epochs": 1, "every_n_train_steps": 0}


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in sorted(metrics.items()) if getattr(v, "numel", lambda: 1)() == 1
    }


def stopped_early(trainer) -> dict[str, Any] | None:
    """Where and why early stopping ended the fit (None when it did not)."""
    from lightning.pytorch.callbacks import EarlyStopping

    for callback in trainer.callbacks:
        if isinstance(callback, EarlyStopping) and callback.stopped_epoch > 0:
            return {
                "epoch": callback.stopped_epoch + 1,  # counted from 1, as the logs count
                "reason": callback.stopping_reason_message,
            }
    return None


class FitInterrupted(SystemExit):
    """The fit stopped on SIGTERM or Ctrl-C after saving a checkpoint: exit 143, no fit.done."""

    def __init__(self, message: str) -> None:
        super().__init__(128 + signal.SIGTERM)  # the exit status of a process ended by SIGTERM
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class FitTraining:
    """What every process that trains the run needs: the job's own, or each rank's."""

    run_dir: Path
    config_file: str
    overrides: Mapping[str, Any]
    seed: int
    threads: int
    source: str
    resume_from: Path | None
    attempt: int
    checkpoint: Mapping[str, int] | None = None
    init_from: str | Path | None = None
    pruning: Mapping[str, Any] | None = None

    @property
    def last(self) -> Path:
        return Path(RunLayout.at(self.run_dir).last_checkpoint)

    def build(self, ranks: Any = None) -> tuple[Any, Any, Any]:
        """The run's objects and its trainer, checked: (built run, trainer, pruning reporter).
        With `ranks` (dltemplate.jobs.ranks.Ranks), the job's own check of a fit that they
        train: the trainer settings must fit their allocation, the rest is checked here on a
        one-process trainer."""
        # Imported here, under the run's lock: a second writer is turned away in a second, not
        # after torch and Lightning have loaded.
        from dltemplate.jobs.checkpointing import AtomicCheckpointIO, ResumeCheckpoint, place_last
        from dltemplate.jobs.common import build_for_job
        from dltemplate.jobs.monitors import check_before_fit
        from dltemplate.jobs.trainer import check_batch_limits, make_trainer

        built = build_for_job(
            "fit", self.config_file, self.overrides, self.seed, self.threads, self.source
        )
        every = {**CHECKPOINT_DEFAULTS, **(self.checkpoint or {})}
        keeper = ResumeCheckpoint(
            self.last,
            seed=built.hparams["seed"],
            every_n_epochs=int(every["every_n_epochs"]),
            every_n_train_steps=int(every["every_n_train_steps"]),
            state_file=RunLayout.at(self.run_dir).last_checkpoint_state,
        )
        settings = dict(built.trainer_kwargs)
        if ranks is not None:
            settings = ranks.checked(settings)
        settings["callbacks"] = [*settings.get("callbacks", []), keeper]
        reporter = None
        if self.pruning is not None:  # a search trial: report each epoch, stop when pruned
            from dltemplate.jobs.pruning import ReportToStudy

            reporter = ReportToStudy(self.pruning)
            settings["callbacks"].append(reporter)
        settings["plugins"] = [*settings.get("plugins", []), AtomicCheckpointIO()]
        trainer = make_trainer(
            settings, self.run_dir, "fit", log_version=f"fit/attempt-{self.attempt}"
        )
        check_batch_limits(trainer, built.data_wrapper)
        names_check = check_before_fit(
            trainer, built.task_wrapper, f"see {self.config_file} and the trainer.* overrides"
        )
        if names_check is not None:
            trainer.callbacks.append(names_check)
        place_last(trainer, keeper)
        return built, trainer, reporter

    def resumed_step(self, built: Any) -> int | None:
        """The step of the checkpoint that the fit resumes (checked against the model)."""
        from dltemplate.jobs.checkpointing import check_checkpoint

        if self.resume_from is None:
            return None
        hint = resume.restart_hint(self.run_dir)
        meta = check_checkpoint(self.resume_from, built.task_wrapper, hint)
        epoch = meta.get("epoch")
        where = f"in epoch {epoch + 1}" if isinstance(epoch, int) else "in an unknown epoch"
        print(f"The checkpoint was saved {where}, at step {meta.get('global_step')}", flush=True)
        return meta.get("global_step")

    def train(
        self, built: Any, trainer: Any, reporter: Any, resumed_step: int | None
    ) -> dict[str, Any]:
        """Fit (resuming `resume_from`, saved at `resumed_step`) and return its record."""
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        from dltemplate.jobs.checkpointing import (
            graceful_interrupts,
            interruption,
            safe_checkpoint_loading,
            weights_only,
        )
        from dltemplate.jobs.trainer import lightning_refusals

        built.task_wrapper.save_hyperparameters(built.hparams)
        if self.init_from and self.resume_from is None:  # a resumed fit restores its own
            from dltemplate.jobs.init_from import load_init_weights

            load_init_weights(built.task_wrapper, self.init_from)
        try:
            with graceful_interrupts(), warnings.catch_warnings():
                # The run's checkpoints/ folder holds earlier checkpoints on purpose (resume).
                warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and")
                with safe_checkpoint_loading(), lightning_refusals("fit"):
                    trainer.fit(
                        built.task_wrapper,
                        datamodule=built.data_wrapper,
                        ckpt_path=str(self.resume_from) if self.resume_from else None,
                        weights_only=weights_only(),
                    )
        except ShapeError as exc:
            raise ShapeError(f"{self.config_file}: {exc}") from None
        except SIGTERMException as exc:
            message = (
                f"Fit stopped by {interruption(exc)} in epoch {trainer.current_epoch + 1}, step "
                f"{trainer.global_step}; rerun the same target to resume from {self.last}"
            )
            print(message, flush=True)
            raise FitInterrupted(message) from None
        return fit_record(trainer, reporter, self.last, resumed_step, built.hparams["seed"])


def fit_record(
    trainer: Any, reporter: Any, last: Path, resumed_step: int | None, seed: int
) -> dict[str, Any]:
    """What fit.done says of a finished fit (the job adds its attempts and seconds)."""
    keeper_of_best = trainer.checkpoint_callback
    best = keeper_of_best.best_model_path if keeper_of_best else ""
    return {
        "best_checkpoint": portable_path(best) if best else None,
        # what picked best.ckpt, for the plots (the per-job trainer of fit decides it)
        "monitor": {"metric": keeper_of_best.monitor, "mode": keeper_of_best.mode}
        if keeper_of_best
        else None,
        "last_checkpoint": portable_path(last) if last.is_file() else None,
        "epochs": trainer.current_epoch,  # trained, early stopping included
        "stopped_early": stopped_early(trainer),
        **(
            {"pruned": {"epoch": reporter.pruned_epoch}}
            if reporter and reporter.pruned_epoch
            else {}
        ),
        "global_step": trainer.global_step,
        "resumed_from_step": resumed_step,
        "seed": seed,
        "metrics": scalar_metrics(trainer.callback_metrics),
    }
