"""A share of a GPU (the registry's `gpus: 0.25`) as the integer resources Snakemake counts.

`gpus` below 1 asks for a share of one device (0.25: four such jobs on a GPU); 1 and more
are whole devices, as before. Snakemake counts integers only (a resource `gpu=0.25` is not
counted at all), so a share is counted in sixtieths of a GPU: 0.25 is `gpu_share=15`, 0.5 is
30, 0.33 is 20. Where the job runs decides what it asks for:

- Locally, when `--resources` gives `gpu_share` (profiles/local: 60 per GPU, next to `gpu`):
  a share job asks for its units of `gpu_share` and no `gpu`; a whole-device job asks for
  `gpu` and 60 units per device too, so that Snakemake counts both kinds against one
  capacity. dltemplate.jobs.gpu_slots then puts each share job on a device with room.
- Elsewhere (SLURM, other schedulers, or no `gpu_share` capacity): a share job asks for a
  whole GPU (`gpu=1`), unless the workflow config's `cluster_gpu_shares` names the GPU
  shares that the cluster offers (`{gres: shard, per_gpu: 4}`): then the resource
  `gres="shard:1"` (the share of `per_gpu`, at least 1; the run's largest share), which
  the slurm plugin passes on as `--gres=shard:1`.

Imported while Snakemake parses the workflow: no torch here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UNITS_PER_GPU = 60  # halves, thirds, quarters, fifths, sixths ... of a GPU are whole units
SHARE_RESOURCE = "gpu_share"  # Snakemake's resource of the units; `gpu` counts whole GPUs


def is_share(gpus: float) -> bool:
    """Whether the registry's `gpus` asks for a share of one device (0 < gpus < 1)."""
    return 0 < gpus < 1


def share_units(share: float, per_gpu: int = UNITS_PER_GPU) -> int:
    """The share of `per_gpu` units, rounded, at least 1: 0.25 -> 15 of 60, 0.5 -> 50 of 100."""
    return max(1, round(share * per_gpu))


def snakemake_gpus(
    gpus: float,
    config: Mapping[str, Any],
    local_shares: bool = False,
    run_gpus: float | None = None,
) -> dict[str, int | str]:
    """The Snakemake resources of a job whose registry `gpus` is `gpus`; `local_shares`: the
    `--resources` limits include `gpu_share` (GPUs are shared on this machine); `run_gpus`:
    the most that any job of its run asks for (used with the cluster's GPU shares)."""
    if not is_share(gpus):
        found: dict[str, int | str] = {"gpu": int(gpus)}
        if local_shares and gpus:
            found[SHARE_RESOURCE] = int(gpus) * UNITS_PER_GPU
        return found
    if local_shares:
        return {SHARE_RESOURCE: share_units(gpus)}
    cluster = config.get("cluster_gpu_shares")
    # One SLURM submission holds a run's jobs (profiles/slurm's groups), and Snakemake wants
    # a text resource such as `gres` to be the same for all of them: each share job of a run
    # asks for the run's largest share, or a whole GPU when another of its jobs takes one.
    largest = max(gpus, run_gpus or 0)
    if cluster and is_share(largest):
        return {"gres": f"{cluster['gres']}:{share_units(largest, cluster['per_gpu'])}"}
    return {"gpu": 1}


def gpu_resource_names(config: Mapping[str, Any], local_shares: bool = False) -> tuple[str, ...]:
    """The Snakemake resources that `snakemake_gpus` may give a job under these settings."""
    if local_shares:
        return ("gpu", SHARE_RESOURCE)
    return ("gpu", "gres") if config.get("cluster_gpu_shares") else ("gpu",)
