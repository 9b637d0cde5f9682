"""The non-finite loss guard (dltemplate.jobs.guards): a NaN step never reaches the weights or
the optimizer's state, read on the host each step (CPU) or selected back on the device with no
host sync (the accelerator's way, run here on the CPU with `on_device=True`)."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dltemplate.jobs.guards import FiniteLossGuard, NonFiniteLoss

NAN_BATCHES = (0, 3)  # the first (the optimizer creates its state there) and a later one


class Tiny(L.LightningModule):
    """Adam on a linear layer; the batches in `nan_batches` give a NaN loss, or with
    `skip=True` no loss (Lightning then skips their optimizer step: the reference)."""

    def __init__(self, skip: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer = torch.nn.Linear(4, 1)
        self.skip = skip

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        if batch_idx in NAN_BATCHES:
            return None if self.skip else loss * torch.tensor(float("nan"))
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.1, weight_decay=0.01)


def fit(module: Tiny, *callbacks: L.Callback) -> Tiny:
    torch.manual_seed(1)
    data = TensorDataset(torch.randn(48, 4), torch.randn(48, 1))
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        callbacks=list(callbacks),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=2,
    )
    trainer.fit(module, DataLoader(data, batch_size=8))
    return module


@pytest.mark.parametrize("on_device", [False, True], ids=["host", "device"])
def test_a_nan_step_leaves_the_weights_and_optimizer_state_untouched(on_device: bool) -> None:
    guarded = fit(Tiny(), FiniteLossGuard(stop=False, on_device=on_device))
    skipped = fit(Tiny(skip=True))
    for name, weight in skipped.state_dict().items():
        assert torch.equal(guarded.state_dict()[name], weight), name
    assert guarded.trainer.global_step == 6  # the NaN batches count as steps, undone
    guarded_state = guarded.trainer.optimizers[0].state_dict()["state"]
    skipped_state = skipped.trainer.optimizers[0].state_dict()["state"]
    for param, state in skipped_state.items():
        for key, value in state.items():  # Adam's moments and its step count
            assert torch.equal(guarded_state[param][key], value), (param, key)


@pytest.mark.parametrize("on_device", [False, True], ids=["host", "device"])
def test_a_nan_step_stops_the_fit_naming_the_first_one(on_device: bool) -> None:
    with pytest.raises(NonFiniteLoss, match=r"became nan at epoch 1, step 1 \(batch 0 of"):
        fit(Tiny(), FiniteLossGuard(stop=True, on_device=on_device))


class SyncFree(L.Callback):
    """Turns any host sync into an error from step 3 to step 8 (the steady state)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        torch.cuda.set_sync_debug_mode("error" if 3 <= batch_idx < 8 else 0)

    def on_train_end(self, trainer, pl_module) -> None:
        torch.cuda.set_sync_debug_mode(0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (bench/gpu_check.sh)")
def test_the_guard_waits_for_no_cuda_step() -> None:
    """On a GPU the guard reads no device value on the host in steady-state steps."""
    module = Tiny().cuda()
    torch.manual_seed(1)
    data = TensorDataset(torch.randn(96, 4), torch.randn(96, 1))
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="gpu",
        devices=1,
        callbacks=[FiniteLossGuard(stop=False), SyncFree()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=50,
    )
    trainer.fit(module, DataLoader(data, batch_size=8, pin_memory=True))
    assert all(torch.isfinite(p).all() for p in module.parameters())
