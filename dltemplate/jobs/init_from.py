"""Fine-tuning: start a fit from the weights of another run's best checkpoint.

Only the weights move over (the task wrapper's state dict: the model and any buffers it keeps);
the optimizer, scheduler, epoch and step counters start fresh, as fine-tuning expects. A fit that
resumes its own interrupted attempt restores its own checkpoint instead (dltemplate.jobs.fit).
"""

from __future__ import annotations

from pathlib import Path

from dltemplate.jobs.common import fitted_checkpoint


def load_init_weights(task_wrapper, parent_fit_done: str | Path) -> Path:
    """Load the weights of the checkpoint that `parent_fit_done` records into `task_wrapper`.

    Loads as every checkpoint of the template loads (torch's weights_only unless the user
    trusts the files, see dltemplate.jobs.checkpointing), and raises a UserError naming the
    checkpoint when its weights do not fit the model (other layer names or shapes).
    """
    from dltemplate.jobs.checkpointing import _load, check_checkpoint

    checkpoint = fitted_checkpoint(parent_fit_done)
    way_out = (
        f"init_from needs a parent run that builds this run's model (its fit: {parent_fit_done})"
    )
    check_checkpoint(checkpoint, task_wrapper, way_out)  # loads it safely, names what differs
    task_wrapper.load_state_dict(_load(checkpoint)["state_dict"])
    print(f"Initialised the weights from {checkpoint} (init_from)", flush=True)
    return checkpoint
