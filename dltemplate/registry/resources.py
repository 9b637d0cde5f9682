"""What a job asks of the machine or cluster: GPUs, CPUs, memory and time.

A run's `resources:` in the registry (or its experiment's) sets them, and Snakemake passes them
on: `gpus` becomes the `gpu` resource (locally, `--resources gpu=N` caps the GPUs in use and
dltemplate.jobs.gpu_slots gives each job its own; SLURM gets `--gpus`), a share below 1 (0.25)
the `gpu_share` resource or a whole GPU (dltemplate.registry.gpu_shares), `cpus` the rule's
threads (SLURM's `--cpus-per-task`), `mem_mb` the memory in MB (`--mem`), `runtime` the time
limit in minutes (`--time`). `nodes` spans the fit across nodes under SLURM, one rank per GPU
on each (`gpus` then counts per node) or `tasks_per_node` ranks on CPUs: the fit asks for
that many nodes and tasks and the `mpi` resource, so that the slurm plugin starts it without
`srun -n1` and it starts its ranks with srun (dltemplate.jobs.ranks); every job of such a run
asks for its GPUs per node (`gres: gpu:G`), the text that one submission must agree on.

    resources:            # every job of the run (test and predict take at most 1 GPU, export none)
      gpus: 2             # per node when `nodes:` is given (the fit's, under SLURM)
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
VALUE_KEYS = ("gpus", "cpus", "nodes", "tasks_per_node", "mem_mb", "runtime")
GPU_GRES = "gpu:"  # a fit across nodes asks for `gpu:<G>` on each node
SPAN_KEYS = ("nodes", "tasks_per_node")  # the fit's only: other jobs run as one process
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
            if job != "fit":
                for key in SPAN_KEYS:
                    general.pop(key, None)
                _refuse_span(layer.get(job) or {}, job)
            values.update(general)
            values.update(layer.get(job) or {})
        if "runtime" in values:
            values["runtime"] = runtime_minutes(values["runtime"])
        resolved[job] = values
    return resolved


def _refuse_span(values: Mapping[str, Any], job: str) -> None:
    for key in SPAN_KEYS:
        if key in values:
            raise UserError(
                f"resources: {job}: {{{key}: ...}}: only the fit spans nodes (test, predict and "
                f"the others run as one process); move `{key}` to the run's or its fit's resources"
            )


def fit_span(
    run_resources: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
    fit_defaults: Mapping[str, Any] | None = None,
) -> int | None:
    """The GPUs per node of a run whose fit spans nodes (`nodes`), else None."""
    fit = job_resources(run_resources, "fit", config, fit_defaults)
    if "nodes" not in fit:
        return None
    gpus = fit.get("gpus", 0)
    if 0 < gpus < 1:
        raise UserError(
            f"resources: {{nodes: {fit['nodes']}, gpus: {gpus}}}: a fit across nodes takes "
            "whole GPUs (one rank each); ask for gpus: 1 or more, or drop nodes"
        )
    return int(gpus)


def any_spans(
    runs_resources: Iterable[Mapping[str, Mapping[str, Any]]], config: Mapping[str, Any]
) -> bool:
    """Whether the fit of any of these runs spans nodes."""
    defaults = workflow_defaults(config, "fit")
    return any(fit_span(r, config, defaults) is not None for r in runs_resources)


def gres_per_node(gpus: int) -> str:
    """SLURM's generic resource of `gpus` GPUs on each node (sbatch's and srun's `--gres`)."""
    return f"{GPU_GRES}{gpus}"


def gpus_per_node(gres: str | None) -> int:
    """The GPUs per node that `gres_per_node` wrote, or 0 for any other generic resource."""
    text = str(gres or "")
    return int(text.removeprefix(GPU_GRES)) if text.startswith(GPU_GRES) else 0


def snakemake_ranks(values: Mapping[str, Any]) -> dict[str, Any]:
    """The slurm plugin's resources for a fit across nodes: nodes, tasks and `mpi`, which
    starts the job without `srun -n1` (it starts its ranks itself); {} for one process."""
    nodes = values.get("nodes")
    if nodes is None:
        return {}
    per_node = values.get("tasks_per_node") or max(1, int(values.get("gpus", 0)))
    if nodes * per_node == 1:
        return {}
    # The plugin wants more than one for each (and sets --ntasks-per-gpu from `tasks` on GPUs).
    tasks = {"tasks_per_node": per_node} if per_node > 1 else {"tasks": nodes}
    return {"nodes": nodes, **tasks, "mpi": "srun"}


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
    run_resources: Mapping[str, Mapping[str, Any]],
    job: str,
    config: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything job `job` of a run asks for, with registry keys (gpus, cpus, mem_mb, runtime);
    `defaults`: `workflow_defaults(config, job)`, when the caller has them already."""
    defaults = workflow_defaults(config, job) if defaults is None else defaults
    return {**defaults, **(run_resources.get(job) or {})}


def job_threads(
    run_resources: Mapping[str, Mapping[str, Any]], job: str, config: Mapping[str, Any]
) -> int:
    """The rule's threads: the run's `cpus`, else the workflow's `threads` for the job type."""
    return int(job_resources(run_resources, job, config).get("cpus", 1))


def run_gpus(
    run_resources: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
    defaults: Mapping[str, Mapping[str, Any]] | None = None,
) -> float | None:
    """The most GPUs that any job of a run asks for, where a cluster's GPU shares need it
    (`cluster_gpu_shares`: dltemplate.registry.gpu_shares); else None. `defaults`: each job
    type's `workflow_defaults`, when the caller has them already."""
    if not config.get("cluster_gpu_shares"):
        return None
    return max(
        job_resources(run_resources, job, config, (defaults or {}).get(job)).get("gpus", 0)
        for job in JOB_TYPES
    )


def snakemake_resources(
    values: Mapping[str, Any],
    config: Mapping[str, Any],
    local_shares: bool = False,
    largest_gpus: float | None = None,
    span_gpus: int | None = None,
) -> dict[str, Any]:
    """A job's registry values (gpus, nodes, mem_mb, runtime) as Snakemake resources (gpu,
    gpu_share or gres, nodes and tasks, mem_mb, runtime); `local_shares` and `largest_gpus`
    (`run_gpus`): see dltemplate.registry.gpu_shares; `span_gpus`: `fit_span` of the run."""
    found = {SNAKEMAKE_NAMES[k]: v for k, v in values.items() if k in SNAKEMAKE_NAMES}
    found.update(snakemake_ranks(values))
    if span_gpus and values.get("gpus", 0) >= 1:
        found["gres"] = gres_per_node(span_gpus)
    elif "gpus" in values:
        found.update(snakemake_gpus(values["gpus"], config, local_shares, largest_gpus))
    return found


def resource_names(
    config: Mapping[str, Any], local_shares: bool = False, spans: bool = False
) -> tuple[str, ...]:
    """The Snakemake resources that a rule may give its jobs (a function each per job);
    `spans`: some run's fit spans nodes."""
    names = (*gpu_resource_names(config, local_shares), "mem_mb", "runtime")
    if spans:
        names = (*dict.fromkeys((*names, "gres")), "nodes", "tasks_per_node", "tasks", "mpi")
    return names


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
    span = fit_span(run_resources, config)
    return snakemake_resources(values, config, local_shares, largest, span).get(name)


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
    defaults = {name: workflow_defaults(config, name) for name in JOB_TYPES}
    for run_resources in runs_resources:
        values = (
            job_resources(run_resources, job, config, defaults[job]),
            run_gpus(run_resources, config, defaults),
            fit_span(run_resources, config, defaults["fit"]),
        )
        if shared is not None and values != shared:
            return None
        shared = values
    values, largest, span = (
        shared if shared is not None else (workflow_defaults(config, job), None, None)
    )
    found = snakemake_resources(values, config, local_shares, largest, span)
    return {"threads": int(values.get("cpus", 1)), "resources": found}
