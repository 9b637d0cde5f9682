"""Callbacks the template ships that Lightning has no class for."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities import grad_norm


class GradNormLogger(L.Callback):
    """Logs the norm of all gradients together as `train/grad_norm`, before each optimizer step
    (after gradient accumulation, before clipping)."""

    def __init__(self, norm_type: float = 2.0) -> None:
        self.norm_type = float(norm_type)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        norms = grad_norm(pl_module, norm_type=self.norm_type)
        total = norms.get(f"grad_{self.norm_type}_norm_total")
        if total is not None:
            pl_module.log("train/grad_norm", total, on_step=True, on_epoch=True)
