"""Several devices in one job: Lightning's DDP, its processes started from inside the job.

Snakemake runs every job as one process: locally a Python script, under SLURM one task
(`srun -n1`, one per job, whatever the job asks). Lightning's default DDP launch does not fit
there. Plain `ddp` starts the other ranks by running the program again, which is Snakemake's
temporary job script, so every rank would redo the job's records, locks and outputs. Inside a
SLURM job Lightning picks SLURMEnvironment, which expects SLURM to have started one task per
device, and with one task it silently trains as a single rank ("MEMBER: 1/1"): a 2-GPU job
would leave a GPU idle.

So a job whose trainer asks for DDP on more than one device of its node gets `ddp_fork`
(the ranks are forked at `trainer.fit`, after the job's own setup; CUDA must not be started
before then, which Lightning checks) and, under SLURM, LightningEnvironment, which lets Lightning
start those processes within the job's allocation. Processes that a launcher already started
per device (torchrun, or `srun` with one task per device) keep Lightning's choice.

A fit whose run asks for `nodes` (dltemplate.jobs.ranks) has its ranks started by `srun`, one
task per device on each node; each rank's trainer gets `num_nodes` and `devices` from the
allocation and the job's DDP with SLURMEnvironment (`srun_rank_settings`).

Every one-node DDP name Lightning registers (`ddp`, `ddp_spawn`, `ddp_fork`, `ddp_notebook`,
their `_find_unused_parameters_true|false` variants) and `auto` on several devices launch this
way, with the name's own options (find_unused_parameters). Lightning's own spawn and fork
launchers would leave the job's process without the ranks' progress (its records would say
epoch 0), and spawn pickles the model through a weights-only load that refuses it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import Any

from dltemplate.errors import UserError

AUTO = "auto"  # DDP on several devices, Lightning's default
# Set by the fit job for the ranks that it starts with srun (dltemplate.jobs.ranks).
SRUN_RANKS_VARIABLE = "DLT_SRUN_RANKS"


def ddp_options(strategy: Any) -> dict[str, Any] | None:
    """The options of a DDP strategy named by `strategy` (Lightning's registry), without its
    start method; None for any other strategy (an object, fsdp, deepspeed ...)."""
    from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

    if strategy == AUTO:
        return {}
    if not isinstance(strategy, str) or strategy not in StrategyRegistry:
        return None
    entry = StrategyRegistry[strategy]
    if entry["strategy"] is not DDPStrategy:
        return None
    return {k: v for k, v in entry["init_params"].items() if k != "start_method"}


def launched_per_device(environ: Mapping[str, str]) -> bool:
    """True when a launcher started one process per device (torchrun, multi-task srun)."""
    if "LOCAL_RANK" in environ or "TORCHELASTIC_RUN_ID" in environ:
        return True
    return int(environ.get("SLURM_NTASKS", "1") or 1) > 1


def _count(devices: Any, available: int) -> int:
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1"):
            return available
        if "," in text:
            return len([d for d in text.split(",") if d.strip()])
        return int(text) if text.isdigit() else 1
    if isinstance(devices, int):
        return available if devices == -1 else devices
    return 1


def device_count(settings: Mapping[str, Any]) -> int:
    """How many processes the trainer settings ask for on this node (without starting CUDA)."""
    from lightning.fabric.accelerators.cuda import num_cuda_devices

    accelerator = str(settings.get("accelerator", "auto"))
    devices = settings.get("devices", "auto")
    if accelerator == "cpu":
        return 1 if devices == "auto" else _count(devices, os.cpu_count() or 1)
    cuda = num_cuda_devices() if accelerator in ("auto", "gpu", "cuda") else 0
    if accelerator == "auto" and cuda == 0:
        return 1 if devices == "auto" else _count(devices, 1)
    return _count(devices, cuda)


def srun_rank_settings(
    settings: MutableMapping[str, Any], environ: Mapping[str, str]
) -> MutableMapping[str, Any]:
    """The trainer settings of a rank that the fit job started with srun: `num_nodes` and
    `devices` from the allocation (a config that asks for others is refused in one line), and
    the job's DDP with SLURMEnvironment, which never requeues behind Snakemake."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    from dltemplate.jobs.job_ddp import JobDDPStrategy

    allocation = {
        "num_nodes": int(environ["SLURM_NNODES"]),
        "devices": int(environ["SLURM_NTASKS_PER_NODE"]),
    }
    where = (
        f"the run's resources start {allocation['num_nodes']} node(s) with "
        f"{allocation['devices']} rank(s) each (resources: nodes, gpus or tasks_per_node)"
    )
    for key, value in allocation.items():
        asked = settings.get(key, AUTO)
        if asked not in (AUTO, None) and _count(asked, value) != value:
            raise UserError(
                f"trainer.{key}={asked!r}: {where}; set trainer.{key} to {value} or 'auto', "
                "or change the run's resources"
            )
    strategy = settings.get("strategy", AUTO)
    options = ddp_options(strategy)
    if options is None:
        raise UserError(
            f"trainer.strategy={strategy!r}: {where}, which train with DDP; use "
            "trainer.strategy 'ddp' (or 'auto'), or drop nodes from the run's resources"
        )
    environment = SLURMEnvironment(auto_requeue=False)
    settings.update(allocation, strategy=JobDDPStrategy(cluster_environment=environment, **options))
    return settings


def fork_ddp_strategy(cluster_environment: Any = None, **options: Any) -> Any:
    """The job's forked DDP (dltemplate.jobs.job_ddp) with DDP's `options`."""
    from dltemplate.jobs.job_ddp import ForkDDPStrategy

    return ForkDDPStrategy(cluster_environment=cluster_environment, **options)


def _has_environment(plugins: list[Any]) -> bool:
    from lightning.fabric.plugins.environments import ClusterEnvironment

    return any(isinstance(p, ClusterEnvironment) for p in plugins)


def single_process_launch(
    settings: MutableMapping[str, Any], environ: Mapping[str, str] | None = None
) -> MutableMapping[str, Any]:
    """Adapt trainer settings to a job that Snakemake started as one process.

    DDP on several devices of this node: `ddp_fork`, and LightningEnvironment inside a SLURM
    job (see the module doc). One process inside a SLURM job: SLURMEnvironment without
    auto-requeue, so that Lightning never requeues the job behind Snakemake's back (Snakemake
    resubmits failed jobs itself, `retries:`). Unchanged when the config chose a cluster
    environment or a strategy object, for several nodes, or when a launcher already started
    one process per device. Several nodes are refused (docs/distributed.md).
    """
    from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment

    environ = os.environ if environ is None else environ
    if SRUN_RANKS_VARIABLE in environ:
        return srun_rank_settings(settings, environ)
    plugins = settings.get("plugins") or []
    plugins = list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
    if _has_environment(plugins) or launched_per_device(environ):
        return settings
    nodes = int(settings.get("num_nodes", 1))
    if nodes != 1:
        raise UserError(
            f"trainer.num_nodes={nodes}: a job spans one node unless its run asks for several "
            "in the registry (resources: {nodes: N, gpus: G}, then submitted to SLURM with "
            "profiles/slurm); set it there, or train on one node with trainer.devices"
        )
    in_slurm = "SLURM_NTASKS" in environ  # Lightning would pick SLURMEnvironment
    strategy = settings.get("strategy", AUTO)
    options = ddp_options(strategy)
    ranks = device_count(settings) if options is not None else 1
    if ranks > 1:
        environment = LightningEnvironment() if in_slurm else None
        settings["strategy"] = fork_ddp_strategy(environment, **options)
        where = f", LightningEnvironment in SLURM job {environ.get('SLURM_JOB_ID')}"
        asked = "" if strategy in (AUTO, "ddp") else f"; asked: {strategy}"
        print(f"DDP: {ranks} ranks forked by this job (fork{where if in_slurm else ''}{asked})")
    elif in_slurm:
        settings["plugins"] = [*plugins, SLURMEnvironment(auto_requeue=False)]
    return settings
