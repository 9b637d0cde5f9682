"""Keep non-finite training steps out of the weights, and stop the fit that has them.

A step whose loss is NaN or infinite never reaches the weights or the optimizer's state: they
are put back as they were before that step. Where the loss lives decides how:

- On the CPU, reading the loss costs nothing: each step is checked before its backward, a
  non-finite one stops the fit at once (`stop=True`), or its optimizer step is undone.
- On an accelerator (CUDA), reading a device value on the host waits for the device every
  step. Instead, each optimizer step's parameters and optimizer state are copied on the
  device before the step and selected back after it (`torch.where` on the loss's finiteness),
  with no host sync. The steps' flags are read every `trainer.log_every_n_steps` steps, when
  validation starts and when the epoch ends (before any checkpoint of the epoch is saved):
  a non-finite step then stops the fit, naming the first such step. Holding that copy costs
  the memory of the parameters and optimizer state once more.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch

from dltemplate.errors import UserError


class NonFiniteLoss(UserError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class _Step:
    epoch: int  # counted from 1, as the logs count
    step: int  # the optimizer step it would have been, counted from 1
    batch: int  # its batch in the epoch

    def __str__(self) -> str:
        return f"epoch {self.epoch}, step {self.step} (batch {self.batch} of the epoch)"


def _step_of(trainer: L.Trainer) -> _Step:
    return _Step(
        trainer.current_epoch + 1, trainer.global_step + 1, trainer.fit_loop.epoch_loop.batch_idx
    )


class _Snapshot:
    """The tensors that an optimizer step changes (parameters and optimizer state), copied.
    State that the step creates (an optimizer's first step) goes back to none, or to zeros,
    which is how Adam's moments and SGD's momentum start."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.tensors = [p for group in optimizer.param_groups for p in group["params"]]
        self.had_state = set(optimizer.state)
        for state in optimizer.state.values():
            self.tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
        with torch.no_grad():
            self.copies = [t.detach().clone() for t in self.tensors]

    def restore(self, bad: torch.Tensor | None = None) -> None:
        """Put every tensor back; with `bad` (a device bool), only where it is true."""
        with torch.no_grad():
            for tensor, copy in zip(self.tensors, self.copies, strict=True):
                if bad is None:
                    tensor.copy_(copy)
                else:
                    tensor.copy_(torch.where(bad.to(copy.device), copy, tensor))
            for param in [p for p in self.optimizer.state if p not in self.had_state]:
                if bad is None:
                    del self.optimizer.state[param]
                    continue
                for value in self.optimizer.state[param].values():
                    if isinstance(value, torch.Tensor):
                        zero = torch.zeros_like(value)
                        value.copy_(torch.where(bad.to(value.device), zero, value))


class FiniteLossGuard(L.Callback):
    """A NaN or infinite training loss stops the fit (`stop=True`) before any checkpoint holds
    a step after it, or (`stop=False`) the step is skipped, the log says which, and the fit
    goes on. Either way the step never reaches the weights (the module doc says how).
    `on_device`: None decides by the loss's device (True: the device-side way, on any device).
    """

    def __init__(self, stop: bool = True, on_device: bool | None = None) -> None:
        self.stop = stop
        self.on_device = on_device
        self._device_side = False  # decided by the first loss (or `on_device`)
        self._bad: torch.Tensor | None = None  # the batches' since the last optimizer step
        self._undo: tuple[_Snapshot, torch.Tensor] | None = None  # the running step's
        self._flags: list[tuple[torch.Tensor, torch.Tensor, _Step]] = []  # unread steps

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss) -> None:
        loss = loss.detach()
        self._device_side = loss.device.type != "cpu" if self.on_device is None else self.on_device
        if not self._device_side:  # on the CPU: free to read, and a good step costs no more
            if bool(torch.isfinite(loss).all()):
                return
            self._bad = torch.tensor(True)  # undone after its optimizer step
            self._report([(float(loss), _step_of(trainer))], trainer)
            return
        bad = ~torch.isfinite(loss).all()
        self._bad = bad if self._bad is None else self._bad | bad  # accumulated batches
        self._flags.append((bad, loss, _step_of(trainer)))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        bad, self._bad = self._bad, None
        if bad is not None:  # on the CPU only when the loss was not finite
            self._undo = (_Snapshot(optimizer), bad)  # undone after the step where `bad`

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._undo is not None:
            snapshot, bad = self._undo
            self._undo = None
            snapshot.restore(bad if self._device_side else None)
        if self._flags and trainer.global_step % max(1, trainer.log_every_n_steps) == 0:
            self._read(trainer)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._read(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._read(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._read(trainer)

    def _read(self, trainer: L.Trainer) -> None:
        """Read the unread steps' flags on the host: one wait for the device."""
        if not self._flags:
            return
        flags, self._flags = self._flags, []
        bad = torch.stack([flag for flag, _, _ in flags]).cpu().tolist()
        found = [(float(loss), step) for b, (_, loss, step) in zip(bad, flags, strict=True) if b]
        if found:
            self._report(found, trainer)

    def _report(self, found: list[tuple[float, _Step]], trainer: L.Trainer) -> None:
        value, first = found[0]
        more = f" (and {len(found) - 1} more, up to step {found[-1][1].step})" if found[1:] else ""
        if not self.stop:
            print(f"Non-finite loss {value} at {first}{more}; skipped, going on", flush=True)
            return
        raise NonFiniteLoss(
            f"The training loss became {value} at {first}{more} in {trainer.default_root_dir}; "
            "no such step reached the weights or a checkpoint. Lower the learning rate or clip "
            "gradients (trainer.gradient_clip_val), or set trainer.stop_on_nonfinite_loss=false "
            "to skip such steps and go on"
        )
