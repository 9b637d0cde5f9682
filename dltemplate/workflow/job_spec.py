"""The parameters a rule hands a job script: one typed record, and the part of it that decides
whether the job's results are out of date (its run inputs).

A rule hands the spec over as two `params` (dltemplate/workflow/rules/common.smk):

- `inputs`, `JobSpec.run_inputs()`: the fields named in RUN_INPUTS. Snakemake compares them with
  the value the job last ran with, and a change reruns the job.
- `job`, `JobSpec.as_params()`: the whole spec, which the script reads. Snakemake does not
  compare it: its function takes the rule's `output` (the spec's run folder is the outputs'), and
  Snakemake leaves params derived from the outputs out of its comparison (they change with the
  outputs anyway; `Persistence._params` keeps `job.non_derived_params` only).

So a field of the engine's own, added to JobSpec, renamed or given another value, reruns no
finished job: only the run's inputs and FINGERPRINT_VERSION do (docs/upgrading.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dltemplate import FINGERPRINT_VERSION

# What decides that a job is out of date, in the order of the fields below: the order in which
# Snakemake has recorded them since before this split (another order would rerun every job once).
# `run_dir` and `source` (the registry file) were there then: run_dir never changes without the
# outputs' paths, and the next FINGERPRINT_VERSION bump, which reruns every job anyway, may drop
# `source`.
RUN_INPUTS = (
    "run_dir",
    "config",
    "overrides",
    "seed",
    "source",
    "init_from",
    "sources",
    "pruning",
    "fingerprint",
    "engine_rerun",
)
FIRST_FINGERPRINT = 1
# Fields left out of the params while they hold these values, so that the jobs recorded before
# the field existed keep their params.
_LEFT_OUT_AT: dict[str, Any] = {
    "init_from": None,
    "pruning": None,
    "fingerprint": FIRST_FINGERPRINT,
    "engine_rerun": None,
}


@dataclass(frozen=True)
class JobSpec:
    """What a run's job needs: its folder, config, overrides, seed, the digests of the config's
    local source files, and the versions that decide its results. `source` names the registry
    file, for messages. A field of the engine's own goes at the end, out of RUN_INPUTS."""

    run_dir: str
    config: str
    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    source: str = ""
    init_from: str | None = None  # another run's fit.done whose best weights start the fit
    sources: dict[str, str] = field(default_factory=dict)
    pruning: dict[str, Any] | None = None  # a search trial's fit reports to its study
    fingerprint: int = FINGERPRINT_VERSION  # the engine's results version (CHANGELOG.md)
    # The rerun on an engine change that last asked for this job ("0.1.0 -> 0.2.0";
    # dltemplate.workflow.engine_change), kept while no other asks.
    engine_rerun: str | None = None

    def as_params(self) -> dict[str, Any]:
        """Plain data for a rule's `params`. Overrides are sorted (Snakemake compares params
        by repr, and the order of keys in the YAML says nothing about the run); the fields of
        _LEFT_OUT_AT appear only when set otherwise."""
        # Copies one level deep, not dataclasses.asdict's deep ones: each job asks twice.
        params = {f.name: getattr(self, f.name) for f in fields(self)}
        params = {k: dict(v) if isinstance(v, dict) else v for k, v in params.items()}
        params["overrides"] = dict(sorted(self.overrides.items(), key=lambda kv: str(kv[0])))
        for name, unset in _LEFT_OUT_AT.items():
            if params[name] == unset:
                del params[name]
        return params

    def run_inputs(self) -> dict[str, Any]:
        """The params that decide whether the job is out of date (RUN_INPUTS)."""
        return {k: v for k, v in self.as_params().items() if k in RUN_INPUTS}

    def version_marks(self) -> dict[str, Any]:
        """The run inputs that version the results (a FINGERPRINT_VERSION past the first, a
        rerun on an engine change), as set: a fit of other marks starts fresh."""
        inputs = self.run_inputs()
        return {name: inputs[name] for name in ("fingerprint", "engine_rerun") if name in inputs}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> JobSpec:
        return cls(**dict(params))
