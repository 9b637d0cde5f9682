"""Stop a fit whose loss stops being a number, before the bad step reaches the weights."""

from __future__ import annotations

import lightning as L
import torch

from dltemplate.errors import UserError


class NonFiniteLoss(UserError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(L.Callback):
    """Checks each training loss before backward; a NaN or infinite loss stops the fit.

    The check runs before the optimizer step, so the weights (and `last.ckpt`, which is only
    written between batches) stay those of the last good step. With `stop=False` the fit goes
    on and the log says which steps were not finite.
    """

    def __init__(self, stop: bool = True) -> None:
        self.stop = stop

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss) -> None:
        if bool(torch.isfinite(loss).all()):
            return
        where = (
            f"epoch {trainer.current_epoch + 1}, step {trainer.global_step + 1} "
            f"(batch {trainer.fit_loop.epoch_loop.batch_idx} of the epoch)"
        )
        if not self.stop:
            print(f"Non-finite loss {float(loss)} at {where}; going on", flush=True)
            return
        raise NonFiniteLoss(
            f"The training loss became {float(loss)} at {where} in {trainer.default_root_dir}; "
            "the last good checkpoint is kept. Lower the learning rate or clip gradients "
            "(trainer.gradient_clip_val), or set trainer.stop_on_nonfinite_loss=false to go on"
        )
