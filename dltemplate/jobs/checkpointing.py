"""Checkpoints a fit can resume from: written atomically, often enough, and when interrupted.

- `AtomicCheckpointIO` writes every checkpoint to a temporary file beside its target, flushes it
  to disk, then renames it over the target, so a kill at any moment leaves the previous
  checkpoint whole. (Lightning's own writer copies a finished temporary file from /tmp into
  place, which is not atomic across file systems and not flushed.)
- `ResumeCheckpoint` writes `checkpoints/last.ckpt` every N epochs, every N training steps,
  and when the fit is interrupted between batches (SIGTERM, Ctrl-C, an exception), and makes
  the random numbers of a fit independent of where it was resumed.
- `check_checkpoint` turns a checkpoint that cannot be loaded into one clear line.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException

from dltemplate.errors import UserError
from dltemplate.jobs import plateau
from dltemplate.jobs.sampling import epoch_seed
from dltemplate.records import write_json_atomic


class CheckpointError(UserError):
    """A checkpoint cannot be loaded: truncated, not a Lightning checkpoint, another model."""


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (disk full, file size limit, read-only folder)."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into `.<name>.tmp-<pid>` beside the target, fsync, then rename over it."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            raise CheckpointWriteError(
                f"Could not write the checkpoint {path} ({exc}); the previous {path.name} is "
                "kept. Free disk space (or raise the file size limit), then rerun the same "
                "target to resume"
            ) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _rng_states() -> dict[str, Any]:
    states = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: Mapping[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def seed_epoch(seed: int, epoch: int) -> None:
    """Seed torch (CPU and GPUs), NumPy and `random` for one epoch of a run."""
    value = epoch_seed(seed, epoch)
    torch.manual_seed(value)
    np.random.seed(value % 2**32)
    random.seed(value)


class ResumeCheckpoint(Checkpoint):
    """Keeps `last.ckpt` fresh and the fit's random numbers reproducible across resumes.

    Saves `path` at the end of every `every_n_epochs`-th epoch, after every
    `every_n_train_steps`-th optimizer step (0: never), and when the fit stops between two
    training batches: on SIGTERM (Lightning stops after the running batch; SLURM sends it at a
    time limit, on preemption and on scancel), on Ctrl-C (see `graceful_interrupts`) and on an
    exception. An exception in the middle of a batch or of validation keeps the previous
    checkpoint, whose state is consistent. After each save it writes `state_file` (JSON) with
    the epoch and step, for people and for the test suite.

    It must come after the ModelCheckpoint that keeps `best.ckpt` in the trainer's callbacks
    (see `place_last`), so that the state it saves at an epoch's end includes that epoch's
    best-checkpoint bookkeeping.

    Random numbers: every epoch starts from a seed made of (seed, epoch), so a fit resumed at
    an epoch boundary draws the same numbers as one that never stopped; a checkpoint taken
    part way through an epoch also stores the random states, restored before the next batch.

    Plateau schedulers: see dltemplate.jobs.plateau for the epoch-end steps that Lightning
    skips on a resume, and how this callback takes them.

    Gradient accumulation: a fit interrupted inside an accumulation window (SIGTERM after batch
    2 of 4) saves the gradients accumulated so far, and the resumed fit puts them back before
    its next batch, so the window's optimizer step sees all of its batches. Saves at steps and
    at epoch ends fall between windows.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        seed: int,
        every_n_epochs: int = 1,
        every_n_train_steps: int = 0,
        state_file: str | Path | None = None,
    ) -> None:
        if every_n_epochs < 0 or every_n_train_steps < 0:
            raise UserError(
                f"checkpoint every_n_epochs={every_n_epochs} and every_n_train_steps="
                f"{every_n_train_steps} must be >= 0 (0: never); see configs/workflow.yaml"
            )
        self.path = Path(path)
        self.seed = seed
        self.every_n_epochs = every_n_epochs
        self.every_n_train_steps = every_n_train_steps
        self.state_file = Path(state_file) if state_file else None
        self.saved_step = -1  # global step of the latest save
        self._pending_rng: Mapping[str, Any] | None = None
        self._pending_grads: list[torch.Tensor | None] | None = None
        # Plateau steps that Lightning takes right after the epoch-end save: stored in that
        # checkpoint, taken on resume ({scheduler index: monitor value}).
        self._plateau_after_save: dict[int, float] = {}
        self._saved_metrics: dict[str, torch.Tensor] = {}  # a resumed fit's metrics so far
        self._trainer: L.Trainer | None = None

    @property
    def state_key(self) -> str:
        return "ResumeCheckpoint"  # one per trainer; independent of the settings

    # -- saving ------------------------------------------------------------------------
    def save(self, trainer: L.Trainer, why: str, force: bool = False) -> None:
        """Write the checkpoint, unless one of this step exists (`force`: write it anyway)."""
        if trainer.sanity_checking or (trainer.global_step == self.saved_step and not force):
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self.saved_step = trainer.global_step
        if self.state_file is not None:
            write_json_atomic(
                self.state_file,
                {
                    "checkpoint": self.path.name,
                    "epoch": trainer.current_epoch,
                    "global_step": trainer.global_step,
                    "why": why,
                },
            )

    def setup(self, trainer, pl_module, stage: str) -> None:
        self._trainer = trainer  # state_dict() is called without it

    def on_train_start(self, trainer, pl_module) -> None:
        plateau.restore_callback_metrics(trainer, self._saved_metrics)
        self._saved_metrics = {}
        if self._plateau_after_save:  # resumed from an epoch-end save that preceded them
            plateau.step(trainer, self._plateau_after_save)
            self._plateau_after_save = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending_rng is not None:  # resumed part way through an epoch
            _set_rng_states(self._pending_rng)
            self._pending_rng = None
        if self._pending_grads is not None:  # ... and inside an accumulation window
            for param, grad in zip(pl_module.parameters(), self._pending_grads, strict=True):
                param.grad = None if grad is None else grad.to(param.device)
            self._pending_grads = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0:
            self.save(trainer, f"every {n} steps")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        seed_epoch(self.seed, trainer.current_epoch)
        self._pending_rng = None  # a fresh epoch: its seed decides, not a stored state

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        values = plateau.epoch_end_values(trainer)
        if plateau.lightning_skips_this_epoch_end(trainer):
            plateau.step(trainer, values)
        else:
            self._plateau_after_save = values
        n = self.every_n_epochs
        try:
            if n and (trainer.current_epoch + 1) % n == 0:
                self.save(trainer, f"every {n} epochs" if n > 1 else "every epoch")
        finally:
            self._plateau_after_save = {}  # Lightning takes them now

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, MisconfigurationException):
            return  # a setting Lightning refuses before any batch: the fit's error says which
        if not _between_batches(trainer):
            kept = f"kept {self.path} of step {self.saved_step}" if self.saved_step >= 0 else ""
            print(
                f"Fit stopped inside a batch or validation ({interruption(exception)}); "
                f"{kept or 'no checkpoint yet'}",
                flush=True,
            )
            return
        # Also when this step was just saved: the loops have moved on since (an epoch's end).
        self.save(trainer, f"interrupted ({interruption(exception)})", force=True)
        print(
            f"Fit interrupted ({interruption(exception)}) in epoch {trainer.current_epoch + 1}, "
            f"step {trainer.global_step}; saved {self.path}",
            flush=True,
        )

    # -- the callback's own state, stored in every checkpoint ----------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "saved_step": self.saved_step,
            "rng": _rng_states(),
            "plateau_after_save": dict(self._plateau_after_save),
            "callback_metrics": plateau.callback_metrics(self._trainer) if self._trainer else {},
            "accumulated_grads": _accumulated_grads(self._trainer),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.saved_step = state_dict.get("saved_step", -1)
        self._pending_rng = state_dict.get("rng")
        self._plateau_after_save = dict(state_dict.get("plateau_after_save") or {})
        self._saved_metrics = dict(state_dict.get("callback_metrics") or {})
        self._pending_grads = state_dict.get("accumulated_grads")


def _accumulated_grads(trainer: L.Trainer | None) -> list[torch.Tensor | None] | None:
    """The gradients accumulated so far when training stands inside an accumulation window."""
    if trainer is None or trainer.accumulate_grad_batches == 1 or not trainer.training:
        return None
    if not trainer.fit_loop.epoch_loop._should_accumulate():
        return None
    return [
        None if p.grad is None else p.grad.detach().cpu().clone()
        for p in trainer.lightning_module.parameters()
    ]


def _between_batches(trainer: L.Trainer) -> bool:
    """Whether training stands between two batches (not inside one, not in validation), where
    its state is whole: Lightning counts a batch processed once its optimizer step is done."""
    if not trainer.training:
        return False
    progress = trainer.fit_loop.epoch_loop.batch_progress.current
    return progress.ready == progress.processed


def place_last(trainer: L.Trainer, callback: L.Callback) -> None:
    """Move `callback` to the end of the trainer's callbacks (they run in list order)."""
    trainer.callbacks.remove(callback)
    trainer.callbacks.append(callback)


_CTRL_C = {"pressed": False}  # whether the SIGTERM that stops this fit came from a Ctrl-C


def interruption(exception: BaseException) -> str:
    """What stopped a fit, for messages: Ctrl-C, SIGTERM, or the exception's type."""
    if isinstance(exception, SIGTERMException):
        return "Ctrl-C" if _CTRL_C["pressed"] else "SIGTERM"
    return type(exception).__name__


@contextlib.contextmanager
def graceful_interrupts() -> Iterator[None]:
    """Turn the first Ctrl-C (SIGINT) into a SIGTERM, which Lightning answers by stopping after
    the running batch, so the checkpoint it saves is consistent; a second Ctrl-C stops at once.
    """
    if sys.platform == "win32":
        yield
        return

    def first(signum, frame):
        print("Ctrl-C: stopping after this batch (press again to stop now)", flush=True)
        _CTRL_C["pressed"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


TRUST_VARIABLE = "DLT_TRUST_CHECKPOINTS"


def weights_only() -> bool:
    """Load checkpoints with torch's weights_only unpickler, unless the user trusts them."""
    return os.environ.get(TRUST_VARIABLE, "") in ("", "0")


@contextlib.contextmanager
def safe_checkpoint_loading() -> Iterator[None]:
    """Allow, besides tensors and plain data, the numpy arrays of the saved random states."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core
    allowed = [core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype("uint32"))]
    with torch.serialization.safe_globals(allowed):
        yield


def _load(path: Path) -> Any:
    """torch.load, memory-mapped (cheap for big files) when the file's format allows it."""
    with safe_checkpoint_loading():
        try:
            return torch.load(path, map_location="cpu", weights_only=weights_only(), mmap=True)
        except pickle.UnpicklingError:
            raise
        except Exception:  # not a zip-format file, or a truncated one: the plain load says
            return torch.load(path, map_location="cpu", weights_only=weights_only())


def check_checkpoint(
    path: str | Path, task_wrapper: torch.nn.Module, way_out: str
) -> dict[str, Any]:
    """Load `path` (memory-mapped, cheap) and check that it fits `task_wrapper`'s weights.

    Raises CheckpointError naming the file, what is wrong and `way_out`. Returns the
    checkpoint's metadata (epoch, global_step).
    """
    path = Path(path)
    try:
        checkpoint = _load(path)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise
        refused = re.search(r"GLOBAL (\S+)", str(exc))
        raise CheckpointError(
            f"Checkpoint {path} holds objects that safe loading (weights_only) refuses "
            f"({refused.group(1) if refused else 'a Python object'}); if you trust the file, "
            f"rerun with {TRUST_VARIABLE}=1"
        ) from None
    except Exception as exc:
        reason = str(exc).split(". ")[0].splitlines()[0][:150] if str(exc) else ""
        reason = reason or type(exc).__name__
        raise CheckpointError(
            f"Checkpoint {path} cannot be loaded ({reason}): it is truncated or not a "
            f"checkpoint. {way_out}"
        ) from None
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
        raise CheckpointError(
            f"Checkpoint {path} is not a Lightning checkpoint (it has no 'state_dict'). {way_out}"
        )
    saved = checkpoint["state_dict"]
    expected = task_wrapper.state_dict()
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    shapes = [
        f"{k} {tuple(saved[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in saved and hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or shapes:
        problems = []
        if shapes:
            problems.append(f"shapes differ: {', '.join(shapes[:3])}")
        if missing:
            problems.append(f"missing {', '.join(missing[:3])}")
        if unexpected:
            problems.append(f"unexpected {', '.join(unexpected[:3])}")
        raise CheckpointError(
            f"Checkpoint {path} was saved by a different model than this run's config builds "
            f"({'; '.join(problems)}). {way_out}"
        )
    return {"epoch": checkpoint.get("epoch"), "global_step": checkpoint.get("global_step")}
