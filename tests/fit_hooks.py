"""Test callbacks that put a fit's interruptions at exact places, whatever the machine's load.

`Project.add_fit_hooks()` copies this file into a scratch project's configs/, where a test
config adds `fit_hooks()` to its trainer's callbacks. Each hook does nothing unless its
environment variable is set (a job inherits Snakemake's environment):

- DLT_TEST_SIGNAL="epoch,batch,SIGNAL": after that training batch the fit sends itself SIGNAL,
  once per run folder (a marker file there says it was sent; a retried job is not signalled).
- DLT_TEST_HOLD="epoch,batch,path": after that batch the fit writes `path.held` and waits until
  `path` exists or it receives SIGTERM (a Ctrl-C becomes one), then goes on. It holds once.
- DLT_TEST_BARRIER="epoch,batch,folder,count": after that batch the fit writes `folder/<pid>` and
  waits until `count` fits have done so: they all run at once then, whatever the load.
- DLT_TEST_TRACE="name": the fit keeps `<run folder>/<name>` (JSON): the lr at the start of each
  epoch and the global step at which each attempt started training; and the weights each
  attempt started training with, as `<run folder>/<name>.start-<n>.pt` (n = 0, 1, ...); in a
  test or predict job, the weights it evaluates with, as `<name>.test.pt` or `<name>.predict.pt`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import lightning as L
import torch


def _at(variable: str, trainer: L.Trainer, batch_idx: int) -> str | None:
    """The rest of the variable's value when it names this epoch and batch."""
    spec = os.environ.get(variable)
    if not spec:
        return None
    epoch, batch, rest = spec.split(",", 2)
    if trainer.current_epoch == int(epoch) and batch_idx == int(batch):
        return rest
    return None


class SignalAt(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        name = _at("DLT_TEST_SIGNAL", trainer, batch_idx)
        sent = Path(trainer.default_root_dir) / ".test-signal-sent"
        if name and not sent.exists():
            sent.write_text(name)
            os.kill(os.getpid(), getattr(signal, name))


class HoldOpen(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        path = _at("DLT_TEST_HOLD", trainer, batch_idx)
        if not path or Path(f"{path}.held").exists():
            return
        Path(f"{path}.held").write_text(str(os.getpid()))
        deadline = time.monotonic() + 600  # never hang a test run for good
        while not Path(path).exists() and not trainer.received_sigterm:
            if time.monotonic() > deadline:
                raise TimeoutError(f"DLT_TEST_HOLD: {path} did not appear within 600 s")
            time.sleep(0.05)


class Barrier(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        spec = _at("DLT_TEST_BARRIER", trainer, batch_idx)
        if not spec:
            return
        folder, count = spec.rsplit(",", 1)
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / str(os.getpid())).write_text(trainer.default_root_dir)
        deadline = time.monotonic() + 300  # never hang a test run for good
        while len(list(Path(folder).iterdir())) < int(count):
            if time.monotonic() > deadline:
                raise TimeoutError(f"DLT_TEST_BARRIER: fewer than {count} fits in {folder}")
            time.sleep(0.05)


class Trace(L.Callback):
    def __init__(self) -> None:
        self.path: Path | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        name = os.environ.get("DLT_TEST_TRACE")
        self.path = Path(trainer.default_root_dir) / name if name else None

    def _update(self, key: str, value) -> None:
        if self.path is None:
            return
        trace = (
            json.loads(self.path.read_text()) if self.path.exists() else {"lr": {}, "starts": []}
        )
        if key == "lr":
            trace["lr"].update(value)
        else:
            trace[key].append(value)
        self.path.write_text(json.dumps(trace))

    def on_train_start(self, trainer, pl_module) -> None:
        self._update("starts", trainer.global_step)
        if self.path is not None:
            attempt = len(json.loads(self.path.read_text())["starts"]) - 1
            torch.save(pl_module.state_dict(), f"{self.path}.start-{attempt}.pt")

    def on_test_start(self, trainer, pl_module) -> None:
        if self.path is not None:
            torch.save(pl_module.state_dict(), f"{self.path}.test.pt")

    def on_predict_start(self, trainer, pl_module) -> None:
        if self.path is not None:
            torch.save(pl_module.state_dict(), f"{self.path}.predict.pt")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._update(
            "lr", {str(trainer.current_epoch): trainer.optimizers[0].param_groups[0]["lr"]}
        )


def fit_hooks() -> list[L.Callback]:
    return [Trace(), HoldOpen(), Barrier(), SignalAt()]
