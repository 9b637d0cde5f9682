"""Fine-tuning: start a fit from the weights of another run's best checkpoint.

Only the weights move over (the task wrapper's state dict: the model and any buffers it keeps);
the optimizer, scheduler, epoch and step counters start fresh, as fine-tuning expects. A fit that
resumes its own interrupted attempt restores its own checkpoint afterwards, which wins.
"""

from __future__ import annotations

from pathlib import Path

from dltemplate.errors import UserError
from dltemplate.jobs.common import fitted_checkpoint


def load_init_weights(task_wrapper, parent_fit_done: str | Path) -> Path:
    """Load the weights of the checkpoint that `parent_fit_done` records into `task_wrapper`.

    Raises a UserError naming the checkpoint when its weights do not fit the model (other layer
    names or shapes): the parent must build the same architecture.
    """
    import torch

    checkpoint = fitted_checkpoint(parent_fit_done)
    # The checkpoint is one this workflow wrote (Lightning's format, with plain hparams).
    state = torch.load(checkpoint, map_location="cpu", weights_only=False).get("state_dict")
    if state is None:
        raise UserError(f"init_from: {checkpoint} holds no state_dict (not a Lightning checkpoint)")
    try:
        task_wrapper.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        details = " ".join(str(exc).split())
        raise UserError(
            f"init_from: the weights in {checkpoint} do not fit this run's model "
            f"({details[:300]}); init_from needs the parent's architecture"
        ) from None
    print(f"Initialised the weights from {checkpoint} (init_from)", flush=True)
    return checkpoint
