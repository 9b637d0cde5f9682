"""Exact resume for ReduceLROnPlateau schedulers that step once an epoch.

Lightning steps an epoch-interval plateau scheduler at the very end of an epoch, after every
`on_train_epoch_end` hook, and skips that step in an epoch it restarted in (its fit loop's
`if not self.restarting`). Two resumes lose a step that way:

- a fit stopped part way through an epoch (SIGTERM, Ctrl-C) resumes inside it, and Lightning
  skips the step at that epoch's end;
- a fit killed after an epoch-end checkpoint resumes from a file saved before that epoch's
  step, and Lightning does not go back to take it.

`ResumeCheckpoint` closes both with this module: in a restarted epoch it takes the step itself
before saving; at an ordinary epoch end it stores the monitor values of the step that Lightning
is about to take, and a fit resumed from that checkpoint takes it on `on_train_start`.

A plateau scheduler that steps every few batches reads the latest validation metric, which
Lightning does not save: a fit resumed part way through an epoch would have none until the
epoch's validation. The checkpoint therefore also keeps the scalar metrics the callbacks see
(`trainer.callback_metrics`), and the resumed fit starts with them.
Non-plateau schedulers need nothing: Lightning steps them before the saves.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException


def _due_at_epoch_end(trainer: L.Trainer, epoch: int) -> list[tuple[int, Any]]:
    """The (index, config) of the plateau schedulers that step at the end of `epoch`."""
    if not trainer.lightning_module.automatic_optimization:
        return []
    return [
        (i, config)
        for i, config in enumerate(trainer.lr_scheduler_configs)
        if config.reduce_on_plateau
        and config.interval == "epoch"
        and (epoch + 1) % config.frequency == 0
    ]


def _monitor_value(trainer: L.Trainer, config: Any) -> float | None:
    value = trainer.callback_metrics.get(config.monitor)
    if value is None and config.strict:
        raise MisconfigurationException(
            f"ReduceLROnPlateau conditioned on metric {config.monitor} which is not available. "
            f"Available metrics are: {list(trainer.callback_metrics)}."
        )
    return None if value is None else float(value)


def epoch_end_values(trainer: L.Trainer) -> dict[int, float]:
    """What each plateau scheduler due at this epoch's end will be stepped with, by index.
    Call it from `on_train_epoch_end`, once the epoch's batches are all done."""
    if not trainer.fit_loop.epoch_loop._num_ready_batches_reached():
        return {}
    due = _due_at_epoch_end(trainer, trainer.current_epoch)
    values = {i: _monitor_value(trainer, config) for i, config in due}
    return {i: v for i, v in values.items() if v is not None}


def lightning_skips_this_epoch_end(trainer: L.Trainer) -> bool:
    """Whether Lightning will skip the plateau step at the end of the running epoch."""
    return bool(trainer.fit_loop.restarting)


def step(trainer: L.Trainer, values: dict[int, float]) -> None:
    """Step the plateau schedulers named by index with their monitor values, as Lightning
    does (through the LightningModule's `lr_scheduler_step`, counted in its progress)."""
    progress = trainer.fit_loop.epoch_loop.scheduler_progress
    for index, value in sorted(values.items()):
        progress.increment_ready()
        config = trainer.lr_scheduler_configs[int(index)]
        trainer.lightning_module.lr_scheduler_step(config.scheduler, value)
        progress.increment_completed()


def callback_metrics(trainer: L.Trainer) -> dict[str, torch.Tensor]:
    """The scalar metrics the callbacks and schedulers see now, for a checkpoint."""
    return {
        key: value.detach().cpu().clone()
        for key, value in trainer.callback_metrics.items()
        if isinstance(value, torch.Tensor) and value.numel() == 1
    }


def restore_callback_metrics(trainer: L.Trainer, saved: dict[str, torch.Tensor]) -> None:
    """Give a resumed fit the metrics the interrupted one saw (metrics logged since win)."""
    device = trainer.lightning_module.device
    live = trainer.callback_metrics  # Lightning's own dict, updated in place
    for key, value in saved.items():
        live.setdefault(key, value.to(device))
