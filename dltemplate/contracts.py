"""What the engine calls on the user's task and data wrappers, declared once.

A task wrapper is a `lightning.LightningModule` and a data wrapper a `lightning.LightningDataModule`
(required). Each job also runs some of their hooks (JOB_HOOKS: a fit runs `training_step`,
`configure_optimizers` and `train_dataloader`, as Lightning's Trainer requires). Beyond that the
engine reads a few members that BasicTaskWrapper and BasicDataWrapper have and any other
LightningModule or LightningDataModule may leave out (TASK_WRAPPER_MEMBERS,
DATA_WRAPPER_MEMBERS): each has a declared kind and a default that the engine uses without it.

`check_wrappers` checks all of it when a run is built (dltemplate.config.build), and raises a
ContractError whose one line names the config, the wrapper, the member and what it should be.
Jobs read the optional members through the accessors below (`split_batch_of(task_wrapper)`),
which return the member or its default, never by probing with `hasattr`.

The members are a table rather than `typing.Protocol`s: a runtime-checkable Protocol checks only
that a name exists, not that it is callable or what it returns, and holds no defaults.
Torch-free at import: Lightning is imported only to check a built run.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltemplate.errors import ContractError

TASK_WRAPPER, DATA_WRAPPER = "task_wrapper", "data_wrapper"
CLASSIFICATION, MULTILABEL, REGRESSION = "classification", "multilabel", "regression"
TASK_KINDS = (CLASSIFICATION, MULTILABEL, REGRESSION)
DOCS = "docs/own-task.md#the-wrappers-contract"

SplitBatch = Callable[[Any], tuple[Any, Any]]  # batch -> (model inputs, target or None)


def split_positional(batch: Any) -> tuple[Any, Any]:
    """The default split: `(x, y, *extra)` -> `((x,), y)`, `(x,)` -> `((x,), None)`; anything
    else is the model's one input, without a target."""
    if isinstance(batch, list | tuple):
        return tuple(batch[:1]), (batch[1] if len(batch) >= 2 else None)
    return (batch,), None


def keep_threads(threads: int) -> None:
    """The default `set_threads`: a data wrapper without one keeps its own loader settings."""


def no_reader(path: str | Path) -> None:
    """The default `predict_from`: no reader, so the file's array is the model's input."""
    return None


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(name, str) for name in value)


@dataclass(frozen=True)
class Member:
    """An optional member of a wrapper: what it must be, and what the engine does without it.

    `returns`, for a method the engine calls without arguments, checks what it returns."""

    name: str
    should_be: str  # in words, for the error line and the docs
    fits: Callable[[Any], bool]
    default: Any
    without: str  # the engine's default behaviour, in words
    returns: Callable[[Any], bool] | None = None
    returns_should_be: str = ""


SPLIT_BATCH = Member(
    "split_batch",
    "a function batch -> (inputs, target)",
    callable,
    split_positional,
    "batches are `(x, y, *extra)`: the model gets `x`, the target is `y`",
)
TASK_KIND = Member(
    "task_kind",
    f"one of {', '.join(map(repr, TASK_KINDS))}",
    lambda value: value in TASK_KINDS,
    None,
    "the kind follows from `loss_function`, else from the outputs' and targets' shapes",
)
LOSS_FUNCTION = Member(
    "loss_function",
    "a loss, callable as loss(outputs, targets)",
    callable,
    None,
    "the task's kind follows from the outputs' and targets' shapes",
)
LR_SCHEDULER = Member(
    "lr_scheduler",
    "a factory optimizer -> scheduler, or a dict in Lightning's lr_scheduler_config form",
    lambda value: callable(value) or isinstance(value, Mapping),
    None,
    "no scheduler's `monitor` is checked before the fit",
)
LOGGED_METRIC_NAMES = Member(
    "logged_metric_names",
    "a method returning a list of str",
    callable,
    None,
    "monitored metrics are checked against what the sanity-check validation logged",
    returns=_is_str_list,
    returns_should_be="a list of str",
)
SET_THREADS = Member(
    "set_threads",
    "a method set_threads(threads: int)",
    callable,
    keep_threads,
    "the job's threads are not passed on (its loaders keep their own workers)",
)
PREDICT_FROM = Member(
    "predict_from",
    "a method path -> tuple of input tensors (or None)",
    callable,
    no_reader,
    "`main.py predict --input` gives the model the file's array as it is",
)
INPUT_READER = Member(
    "input_reader",
    "a function path -> input tensor(s)",
    callable,
    None,
    "the export's README says the inputs are what the dataset yields",
)
TASK_WRAPPER_MEMBERS = (SPLIT_BATCH, TASK_KIND, LOSS_FUNCTION, LR_SCHEDULER, LOGGED_METRIC_NAMES)
DATA_WRAPPER_MEMBERS = (SET_THREADS, PREDICT_FROM, INPUT_READER)


@dataclass(frozen=True)
class Hooks:
    """The hooks a job runs on each wrapper; each entry is a tuple of names, one of which the
    wrapper must define (override): what Lightning's Trainer refuses to start without."""

    task_wrapper: tuple[tuple[str, ...], ...]
    data_wrapper: tuple[tuple[str, ...], ...]


JOB_HOOKS = {  # one entry per job of dltemplate.layout.JOB_TYPES
    "fit": Hooks((("training_step",), ("configure_optimizers",)), (("train_dataloader",),)),
    "validate": Hooks((("validation_step",),), (("val_dataloader",),)),
    "test": Hooks((("test_step",),), (("test_dataloader",),)),
    "predict": Hooks((("predict_step", "forward"),), (("predict_dataloader",),)),
    "export": Hooks((("forward",),), (("predict_dataloader", "test_dataloader"),)),
}
# What to return from a getter that returned something else.
BASE_HINTS = {
    TASK_WRAPPER: "wrap the model: return BasicTaskWrapper(model=..., ...)",
    DATA_WRAPPER: "return BasicDataWrapper(...) (or your LightningDataModule)",
}


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {reprlib.repr(value)}"


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def member_problem(wrapper: Any, member: Member) -> str | None:
    """What is wrong with `wrapper`'s `member` (`task_kind is str 'x', not ...`), else None; a
    member that is absent (or None) is never wrong: it gets its default."""
    value = getattr(wrapper, member.name, None)
    if value is None:
        return None
    if not member.fits(value):
        return f"{member.name} is {_shown(value)}, not {member.should_be}"
    if member.returns is not None:
        result = value()
        if not member.returns(result):
            return f"{member.name}() returns {_shown(result)}, not {member.returns_should_be}"
    return None


def member_of(wrapper: Any, member: Member) -> Any:
    """`wrapper`'s `member`, or its default when the wrapper has none; a ContractError for one
    of the wrong kind (set after the run was built)."""
    problem = member_problem(wrapper, member)
    if problem is not None:
        raise ContractError(f"The wrapper {_qualified(type(wrapper))}'s {problem} (see {DOCS})")
    value = getattr(wrapper, member.name, None)
    return member.default if value is None else value


def split_batch_of(task_wrapper: Any) -> SplitBatch:
    """How the task wrapper splits a batch into (model inputs, target)."""
    return member_of(task_wrapper, SPLIT_BATCH)


def task_kind_of(task_wrapper: Any) -> str | None:
    """The kind the task wrapper declares (one of TASK_KINDS), else None."""
    return member_of(task_wrapper, TASK_KIND)


def loss_function_of(task_wrapper: Any) -> Callable | None:
    return member_of(task_wrapper, LOSS_FUNCTION)


def lr_scheduler_of(task_wrapper: Any) -> Callable | Mapping[str, Any] | None:
    return member_of(task_wrapper, LR_SCHEDULER)


def logged_metric_names_of(task_wrapper: Any) -> list[str] | None:
    """The names of what a fit of the task wrapper logs, or None when it does not say."""
    names = member_of(task_wrapper, LOGGED_METRIC_NAMES)
    return None if names is None else names()


def set_threads_of(data_wrapper: Any) -> Callable[[int], None]:
    return member_of(data_wrapper, SET_THREADS)


def predict_from_of(data_wrapper: Any) -> Callable[[Path], Any]:
    """The data wrapper's reader of new, raw inputs; it returns None without a reader."""
    return member_of(data_wrapper, PREDICT_FROM)


def input_reader_of(data_wrapper: Any) -> Callable | None:
    return member_of(data_wrapper, INPUT_READER)


def missing_hooks(wrapper: Any, required: tuple[tuple[str, ...], ...]) -> list[tuple[str, ...]]:
    """The entries of `required` of which `wrapper` defines none (Lightning's own test)."""
    from lightning.pytorch.utilities.model_helpers import is_overridden

    return [names for names in required if not any(is_overridden(n, wrapper) for n in names)]


def _hook_names(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"either {' or '.join(names)}"


def _check_base(config_file: str | Path, path: str, wrapper: Any, base: type) -> None:
    if not isinstance(wrapper, base):
        raise ContractError(
            f"Config {config_file}: the {path} getter returned {_qualified(type(wrapper))}, "
            f"not a {base.__module__.split('.')[0]}.{base.__name__}; {BASE_HINTS[path]}"
        )


def _check_members(
    config_file: str | Path, path: str, wrapper: Any, members: tuple[Member, ...]
) -> None:
    for member in members:
        problem = member_problem(wrapper, member)
        if problem is not None:
            raise ContractError(
                f"Config {config_file}: the {path} getter returned a "
                f"{_qualified(type(wrapper))} whose {problem} (see {DOCS})"
            )


def _check_hooks(
    config_file: str | Path, path: str, wrapper: Any, job: str, required: tuple
) -> None:
    missing = missing_hooks(wrapper, required)
    if missing:
        raise ContractError(
            f"Config {config_file}: the {path} getter returned a {_qualified(type(wrapper))} "
            f"without {_hook_names(missing[0])}, which the {job} job runs; define it "
            f"(see {DOCS})"
        )


def check_wrappers(
    config_file: str | Path, task_wrapper: Any, data_wrapper: Any, job: str | None = None
) -> None:
    """Raise a ContractError, in one line, for a wrapper that is not of its Lightning class,
    has an optional member of the wrong kind, or lacks a hook that `job` runs (None: no job's
    hooks are checked)."""
    import lightning

    _check_base(config_file, TASK_WRAPPER, task_wrapper, lightning.LightningModule)
    _check_base(config_file, DATA_WRAPPER, data_wrapper, lightning.LightningDataModule)
    _check_members(config_file, TASK_WRAPPER, task_wrapper, TASK_WRAPPER_MEMBERS)
    _check_members(config_file, DATA_WRAPPER, data_wrapper, DATA_WRAPPER_MEMBERS)
    if job is not None:
        hooks = JOB_HOOKS[job]
        _check_hooks(config_file, TASK_WRAPPER, task_wrapper, job, hooks.task_wrapper)
        _check_hooks(config_file, DATA_WRAPPER, data_wrapper, job, hooks.data_wrapper)
