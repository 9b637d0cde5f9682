"""The root of a config: which getters build the three parts of a job."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

JOB_TYPES = ("fit", "test", "predict")


@dataclass(frozen=True, kw_only=True)
class RootConfig:
    """Names the getters that build a run's task wrapper, data wrapper and trainer settings.

    `trainer` returns keyword arguments for `lightning.Trainer`; the job adds what belongs to
    the run (its folder, loggers, checkpointing, progress). `job_trainers` may give a different
    trainer getter for one job type, e.g. `{"predict": get_predict_trainer}`. `overrides` are
    applied before a run's own (which win): an archived config carries the overrides and the
    seed of the run it archives there, so that it reproduces that run by itself.
    """

    task_wrapper: Callable[..., Any]
    data_wrapper: Callable[..., Any]
    trainer: Callable[..., Mapping[str, Any]]
    job_trainers: Mapping[str, Callable[..., Mapping[str, Any]]] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("task_wrapper", "data_wrapper", "trainer"):
            if not callable(getattr(self, name)):
                raise TypeError(
                    f"RootConfig.{name} must be a getter function, got {getattr(self, name)!r}"
                )
        unknown = set(self.job_trainers) - set(JOB_TYPES)
        if unknown:
            raise TypeError(
                f"RootConfig.job_trainers has unknown job types {sorted(unknown)}; "
                f"use {list(JOB_TYPES)}"
            )

    def getters_for(self, job: str) -> dict[str, Callable[..., Any]]:
        """The root getters a job calls, keyed by their override path.

        A job-specific trainer getter lives at `<job>_trainer` (e.g. `predict_trainer.*`).
        """
        trainer_path = f"{job}_trainer" if job in self.job_trainers else "trainer"
        return {
            "task_wrapper": self.task_wrapper,
            "data_wrapper": self.data_wrapper,
            trainer_path: self.job_trainers.get(job, self.trainer),
        }


ROOT_PATHS = (
    "seed",
    "task_wrapper",
    "data_wrapper",
    "trainer",
    *(f"{j}_trainer" for j in JOB_TYPES),
)
