"""The parameters a rule hands a job script: one typed record that round-trips through
Snakemake's `params` (plain data there, so that a change in it reruns the job)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class JobSpec:
    """What shapes a run's job: its folder, config, overrides, seed and the digests of the
    config's local source files. `source` names the registry file, for messages."""

    run_dir: str
    config: str
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: str = ""
    init_from: str | None = None  # another run's fit.done whose best weights start the fit
    sources: dict[str, str] = field(default_factory=dict)
    pruning: dict[str, Any] | None = None  # a search trial's fit reports to its study

    def as_params(self) -> dict[str, Any]:
        """Plain data for a rule's `params`. Overrides are sorted (Snakemake compares params
        by repr, and the order of keys in the YAML says nothing about the run); `init_from` and
        `pruning` appear only when set, so runs without them keep the params they were
        recorded with."""
        params = asdict(self)
        params["overrides"] = dict(sorted(self.overrides.items(), key=lambda kv: str(kv[0])))
        for optional in ("init_from", "pruning"):  # only when set: old runs keep their params
            if params[optional] is None:
                del params[optional]
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> JobSpec:
        return cls(**dict(params))
