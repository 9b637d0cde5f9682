"""The root of a config: which getters build the three parts of a job."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dltemplate.layout import JOB_TYPES

__all__ = ["JOB_TYPES", "ROOT_PATHS", "RootConfig"]


@dataclass(frozen=True, kw_only=True)
class RootConfig:
    """Names the getters that build a run's task wrapper, data wrapper and trainer settings.

    `trainer` returns keyword arguments for `lightning.Trainer`; the job adds what belongs to
    the run (its folder, loggers, checkpointing, progress). `overrides` are applied before a
    run's own (which win): an archived config carries the overrides and the seed of the run it
    archives there, so that it reproduces that run by itself.
    """

    task_wrapper: Callable[..., Any]
    data_wrapper: Callable[..., Any]
    trainer: Callable[..., Mapping[str, Any]]
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("task_wrapper", "data_wrapper", "trainer"):
            if not callable(getattr(self, name)):
                raise TypeError(
                    f"RootConfig.{name} must be a getter function, got {getattr(self, name)!r}"
                )

    def getters(self) -> dict[str, Callable[..., Any]]:
        """The root getters every job calls, keyed by their override path."""
        return {
            "task_wrapper": self.task_wrapper,
            "data_wrapper": self.data_wrapper,
            "trainer": self.trainer,
        }


ROOT_PATHS = ("seed", "task_wrapper", "data_wrapper", "trainer")
