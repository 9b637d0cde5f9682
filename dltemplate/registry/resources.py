"""What a job asks of the machine or cluster: GPUs, CPUs, memory and time.

A run's `resources:` in the registry (or its experiment's) sets them, and Snakemake passes them
on: `gpus` becomes the `gpu` resource (locally, `--resources gpu=N` caps the GPUs in use and
dltemplate.jobs.gpu_slots gives each job its own; SLURM gets `--gpus`), a share below 1 (0.25)
the `gpu_share` resource or a whole GPU (dltemplate.registry.gpu_shares), `cpus` the rule's
threads (SLURM's `--cpus-per-task`), `mem_mb` the memory in MB (`--mem`), `runtime` the time
limit in minutes (`--time`).

    resources:            # every job of the run (test and predict take at most 1 GPU, export none)
      gpus: 2
      mem_mb: 16000
      fit: {runtime: 12h} # one job type: wins over the keys above
      test: {runtime: 30}

Lowest to highest precedence: `configs/workflow.yaml` (`threads:` and `resources:` per job
type), the experiment's `resources:`, its job-type keys, the run's, its job-type keys.
Imported while Snakemake parses the workflow: no torch here.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dltemplate import schemas
from dltemplate.config.root import JOB_TYPES
from dltemplate.errors import UserError
from dltemplate.registry.gpu_shares import gpu_resource_names, snakemake_gpus

# Registry key -> Snakemake resource name (`cpus` becomes the rule's threads instead, `gpus`
# the resources of dltemplate.registry.gpu_shares).
SNAKEMAKE_NAMES = {"mem_mb": "mem_mb", "runtime": "runtime"}
VALUE_KEYS = ("gpus", "cpus", "mem_mb", "runtime")
# Test and predict inherit at most this many of the run's GPUs (Lightning advises one device
# for them: a distributed sampler would repeat samples); their own key may ask for more.
EVAL_GPUS = 1

# "90m", "12h", "2d": the pattern the schema checks (dltemplate/schemas/common.yaml)
_RUNTIME_VALUE = schemas.schema("common")["$defs"]["resource_values"]["properties"]["runtime"]
_RUNTIME = re.compile(_RUNTIME_VALUE["oneOf"][1]["pattern"])
_MINUTES = {"m": 1, "min": 1, "h": 60, "d": 24 * 60}


def runtime_minutes(value: int | str) -> int:
    """`90` -> 90, `"90m"` -> 90, `"12h"` -> 720, `"2d"` -> 2880 (minutes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _RUNTIME.match(str(value).strip())
    if not match:
        raise UserError(
            f"Runtime {value!r} is not minutes (90) nor a number with a unit (90m, 12h, 2d)"
        )
    return int(str(value).strip()[: match.start(1)]) * _MINUTES[match.group(1)]


def job_layers(
    experiment: Mapping[str, Any] | None, run: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """The registry's resources for each job type of a run, the run's winning over its
    experiment's; keys the registry leaves out are absent (the workflow's defaults apply)."""
    resolved: dict[str, dict[str, Any]] = {}
    for job in JOB_TYPES:
        values: dict[str, Any] = {}
        for layer in (experiment or {}, run or {}):
            general = {k: layer[k] for k in VALUE_KEYS if k in layer}
            if job != "fit" and "gpus" in general:
                general["gpus"] = min(general["gpus"], EVAL_GPUS)
            if job == "export":  # on the CPU (onnxruntime's check too): no GPU unless asked
                general.pop("gpus", None)
            values.update(general)
            values.update(layer.get(job) or {})
        if "runtime" in values:
            values["runtime"] = runtime_minutes(values["runtime"])
        resolved[job] = values
    return resolved


def workflow_defaults(config: Mapping[str, Any], job: str) -> dict[str, Any]:
    """The defaults of job type `job` in the workflow config: `threads:` and `resources:`."""
    # Asked once per job while Snakemake builds a DAG: validate each distinct setting once.
    settings = json.dumps([config.get("resources"), config.get("threads")], sort_keys=True)
    return dict(_workflow_defaults(settings, job))


@functools.lru_cache(maxsize=64)
def _workflow_defaults(settings: str, job: str) -> dict[str, Any]:

    resources, threads = json.loads(settings)
    defaults = dict((resources or {}).get(job) or {})
    errors = list(schemas.validator("common", "/$defs/resource_values").iter_errors(defaults))
    if errors:
        raise UserError(
            f"Workflow config (configs/workflow.yaml or --config): resources.{job}: "
            f"{errors[0].message}; allowed keys: {', '.join(VALUE_KEYS)}"
        )
    if "runtime" in defaults:
        defaults["runtime"] = runtime_minutes(defaults["runtime"])
    threads = (threads or {}).get(job)
    if threads is not None and "cpus" not in defaults:
        defaults["cpus"] = threads
    return defaults


def job_resources(
    run_resources: Mapping[str, Mapping[str, Any]], job: str, config: Mapping[str, Any]
) -> dict[str, Any]:
    """Everything job `job` of a run asks for, with registry keys (gpus, cpus, mem_mb, runtime)."""
    return {**workflow_defaults(config, job), **(run_resources.get(job) or {})}


def job_threads(
    run_resources: Mapping[str, Mapping[str, Any]], job: str, config: Mapping[str, Any]
) -> int:
    """The rule's threads: the run's `cpus`, else the workflow's `threads` for the job type."""
    return int(job_resources(run_resources, job, config).get("cpus", 1))


def run_gpus(
    run_resources: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any]
) -> float | None:
    """The most GPUs that any job of a run asks for, where a cluster's GPU shares need it
    (`cluster_gpu_shares`: dltemplate.registry.gpu_shares); else None."""
    if not config.get("cluster_gpu_shares"):
        return None
    return max(job_resources(run_resources, job, config).get("gpus", 0) for job in JOB_TYPES)


def snakemake_resources(
    values: Mapping[str, Any],
    config: Mapping[str, Any],
    local_shares: bool = False,
    largest_gpus: float | None = None,
) -> dict[str, Any]:
    """A job's registry values (gpus, mem_mb, runtime) as Snakemake resources (gpu, gpu_share
    or gres, mem_mb, runtime); `local_shares` and `largest_gpus` (`run_gpus`): see
    dltemplate.registry.gpu_shares."""
    found = {SNAKEMAKE_NAMES[k]: v for k, v in values.items() if k in SNAKEMAKE_NAMES}
    if "gpus" in values:
        found.update(snakemake_gpus(values["gpus"], config, local_shares, largest_gpus))
    return found


def resource_names(config: Mapping[str, Any], local_shares: bool = False) -> tuple[str, ...]:
    """The Snakemake resources that a rule may give its jobs (a function each per job)."""
    return (*gpu_resource_names(config, local_shares), "mem_mb", "runtime")


def job_resource(
    run_resources: Mapping[str, Mapping[str, Any]],
    job: str,
    name: str,
    config: Mapping[str, Any],
    local_shares: bool = False,
) -> int | str | None:
    """The value of Snakemake resource `name` (gpu, gpu_share, gres, mem_mb, runtime) for the
    job, or None: Snakemake then leaves the resource out (no `--gpus`, no `--mem`, ...)."""
    values = job_resources(run_resources, job, config)
    largest = run_gpus(run_resources, config)
    return snakemake_resources(values, config, local_shares, largest).get(name)


def shared_by_all(
    runs_resources: Iterable[Mapping[str, Mapping[str, Any]]],
    job: str,
    config: Mapping[str, Any],
    local_shares: bool = False,
) -> dict[str, Any] | None:
    """What job type `job` asks for when every run asks the same, as the rule's constants:
    `threads` and the Snakemake resources that anyone asks for (no per-job evaluation while
    Snakemake builds the DAG). None when runs differ: the rule then looks up each run."""
    shared = None
    for run_resources in runs_resources:
        values = (job_resources(run_resources, job, config), run_gpus(run_resources, config))
        if shared is not None and values != shared:
            return None
        shared = values
    values, largest = shared if shared is not None else (workflow_defaults(config, job), None)
    found = snakemake_resources(values, config, local_shares, largest)
    return {"threads": int(values.get("cpus", 1)), "resources": found}
