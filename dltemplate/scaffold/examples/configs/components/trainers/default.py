"""Getter for the Trainer settings that describe the experiment.

Returns `lightning.Trainer` arguments. The job adds what belongs to the run: its folder,
checkpointing and progress reporting. Four keys are the template's own: `monitor` and
`monitor_mode` pick the best checkpoint, `loggers` names the experiment trackers the jobs
log to (any of "csv", "tensorboard", "mlflow", "wandb"; see dltemplate/jobs/loggers.py), and
`stop_on_nonfinite_loss` stops a fit whose loss becomes NaN or infinite.

Any other `lightning.Trainer` argument can be set by path without a parameter here
(`--set trainer.accumulate_grad_batches=4`); the callbacks are at `trainer.callbacks.*`
(configs/components/callbacks/default.py).
"""

from ..callbacks.default import get_callbacks


def get_trainer(
    *,
    max_epochs: int = 20,
    accelerator: str = "auto",
    devices: int | str = "auto",
    strategy: str = "auto",  # several devices: DDP (see dltemplate.jobs.distributed)
    precision: str | int = "32-true",  # as Lightning takes it: "16-mixed", "bf16-mixed", 16, 64
    gradient_clip_val: float | None = None,
    deterministic: bool = True,
    monitor: str = "val/loss",
    monitor_mode: str = "min",
    limit_train_batches: float | int = 1.0,
    limit_val_batches: float | int = 1.0,
    loggers: tuple[str, ...] = ("csv",),  # e.g. ("csv", "tensorboard", "mlflow", "wandb")
    stop_on_nonfinite_loss: bool = True,  # False: a NaN/inf loss is logged and the fit goes on
) -> dict:
    return {
        "max_epochs": max_epochs,
        "accelerator": accelerator,
        "devices": devices,
        "strategy": strategy,
        "precision": precision,
        "gradient_clip_val": gradient_clip_val,
        "deterministic": deterministic,
        "monitor": monitor,
        "monitor_mode": monitor_mode,
        "limit_train_batches": limit_train_batches,
        "limit_val_batches": limit_val_batches,
        "log_every_n_steps": 10,
        "loggers": loggers,
        "stop_on_nonfinite_loss": stop_on_nonfinite_loss,
        "callbacks": get_callbacks(monitor=monitor, mode=monitor_mode),
    }
