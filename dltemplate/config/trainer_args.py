"""Any `lightning.Trainer` argument by dotted path: `--set trainer.accumulate_grad_batches=4`.

The trainer getter names the settings a config cares about; an override `trainer.<argument>`
that the getter has no parameter for sets that `lightning.Trainer.__init__` argument directly,
checked against Trainer's own annotations, recorded in hparams and counted for reruns like any
override. The arguments that the job owns are refused with the reason.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Mapping
from typing import Any

from dltemplate.config.getters import Build
from dltemplate.config.values import check_value, to_record, type_name
from dltemplate.errors import OverrideError

# What the job decides for every run, and where the user says what they want instead.
JOB_OWNED = {
    "default_root_dir": "the job writes into the run's folder results/<proj>/<exp>/<run>/",
    "logger": "the job makes the loggers; choose them with trainer.loggers "
    "(csv, tensorboard, mlflow, wandb)",
    "callbacks": "callbacks come from the trainer getter; set their settings by path, e.g. "
    "trainer.callbacks.early_stopping.patience=5",
    "enable_checkpointing": "the fit job keeps best.ckpt and last.ckpt; choose the metric "
    "with trainer.monitor and trainer.monitor_mode",
    "enable_progress_bar": "the job shows progress itself (a bar in a terminal, epoch lines "
    "in its log)",
    "plugins": "the fit job sets the checkpoint writer that keeps resume exact; give other "
    "plugins in the trainer getter's dict",
    "use_distributed_sampler": "the job's seeded sampler keeps resume exact",
    "barebones": "it turns off the logging and checkpointing the job relies on",
    "fast_dev_run": "a debug run: `main.py debug -p P -e E -n R --mode fast`",
    "overfit_batches": "a debug run: `main.py debug -p P -e E -n R --mode overfit`",
}


# Settings of the fit job that are no lightning.Trainer argument, settable the same way
# (`--set trainer.keep_every_n_epochs=5`) whether or not the trainer getter has a parameter
# for them; dltemplate.jobs.trainer reads them from the getter's dict.
JOB_SETTINGS: dict[str, Any] = {
    "keep_every_n_epochs": int,  # also keep checkpoints/epoch=<n>.ckpt every n epochs (0: none)
}


@functools.cache
def trainer_arguments() -> dict[str, Any]:
    """`lightning.Trainer.__init__`'s parameters and their type hints (`inspect.Parameter.empty`
    where a parameter has none)."""
    import lightning

    init = lightning.Trainer.__init__
    hints = typing.get_type_hints(init)
    return {
        name: hints.get(name, inspect.Parameter.empty)
        for name in inspect.signature(init).parameters
        if name != "self"
    }


def settable_paths(path: str) -> list[str]:
    """`trainer.<argument>` for every Trainer argument that an override may set."""
    names = [*trainer_arguments(), *JOB_SETTINGS]
    return [f"{path}.{name}" for name in names if name not in JOB_OWNED]


def apply_trainer_overrides(build: Build, path: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """`kwargs` (the trainer getter's dict) with the overrides `<path>.<argument>` that no getter
    parameter took, each checked against lightning.Trainer's signature and recorded in `build`.

    Unknown names are left to `Build.check_consumed`, which suggests the closest paths.
    """
    result = dict(kwargs)
    arguments = {**trainer_arguments(), **JOB_SETTINGS}
    node = build.tree.setdefault(path, {})
    for key, value in build.overrides.items():
        name = key.removeprefix(f"{path}.")
        if key in build.consumed or name == key or "." in name:
            continue
        if name in JOB_OWNED:
            raise OverrideError(
                f"Override {key} (from {build.source}) sets a Trainer argument that the job "
                f"owns: {JOB_OWNED[name]}"
            )
        if name not in arguments:
            continue
        hint = arguments[name]
        checked = check_value(value, hint, key, build._origin_text(key))
        result[name] = checked
        node[name] = to_record(checked)
        owner = "the fit job" if name in JOB_SETTINGS else "lightning.Trainer"
        build.types[key] = f"{type_name(hint)} ({owner})"
        build.origins[key] = "override"
        build.consumed.add(key)
    return result
