"""Getter for the Trainer settings that describe the experiment.

Returns `lightning.Trainer` arguments. The job adds what belongs to the run: its folder,
loggers, checkpointing and progress reporting. Two keys are the template's own: `monitor` and
`monitor_mode` pick the best checkpoint.
"""


def get_trainer(
    *,
    max_epochs: int = 20,
    accelerator: str = "auto",
    devices: int | str = "auto",
    precision: str = "32-true",
    gradient_clip_val: float | None = None,
    deterministic: bool = True,
    monitor: str = "val/loss",
    monitor_mode: str = "min",
    limit_train_batches: float | int = 1.0,
    limit_val_batches: float | int = 1.0,
) -> dict:
    return {
        "max_epochs": max_epochs,
        "accelerator": accelerator,
        "devices": devices,
        "precision": precision,
        "gradient_clip_val": gradient_clip_val,
        "deterministic": deterministic,
        "monitor": monitor,
        "monitor_mode": monitor_mode,
        "limit_train_batches": limit_train_batches,
        "limit_val_batches": limit_val_batches,
        "log_every_n_steps": 10,
    }
