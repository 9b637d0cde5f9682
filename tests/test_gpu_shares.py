"""A share of a GPU in the registry (`gpus: 0.25`) becomes integer Snakemake resources: units
of `gpu_share` where this machine counts them (profiles/local), else a whole GPU, or the
cluster's GPU shards when the workflow config names them; what the slurm plugin then asks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from dltemplate.errors import UserError
from dltemplate.registry import gpu_shares, resources
from dltemplate.workflow.settings import check_workflow_config
from tests.conftest import Project
from tests.test_resources import _dry_run_jobs, registry

REGISTRY = """\
description: P
experiments:
  e:
    description: E
    resources: {gpus: 0.25}
    runs:
      quarter: {description: R, config: configs/digits_mlp.py}
      half: {description: R, config: configs/digits_mlp.py, resources: {fit: {gpus: 0.5}}}
      whole: {description: R, config: configs/digits_mlp.py, resources: {gpus: 2}}
      mixed: {description: R, config: configs/digits_mlp.py, resources: {fit: {gpus: 1}}}
"""
SHARDS = {"cluster_gpu_shares": {"gres": "shard", "per_gpu": 4}}


@pytest.mark.parametrize(
    ("share", "units"), [(0.25, 15), (0.5, 30), (0.33, 20), (0.1, 6), (0.001, 1), (0.99, 59)]
)
def test_a_share_is_counted_in_sixtieths(share: float, units: int) -> None:
    assert gpu_shares.share_units(share) == units


def test_each_place_gets_what_it_can_count(tmp_path: Path) -> None:
    reg = registry(tmp_path, REGISTRY)
    quarter, half, whole, mixed = (
        reg.run("p", "e", r).resources for r in ("quarter", "half", "whole", "mixed")
    )
    assert quarter["test"] == {"gpus": 0.25} and quarter["export"] == {}  # export: on the CPU

    def asks(run, job, config, local):
        values = resources.job_resources(run, job, config)
        largest = resources.run_gpus(run, config)
        return resources.snakemake_resources(values, config, local, largest)

    # This machine counts shares (--resources gpu_share=N): units, and no whole GPU.
    assert asks(quarter, "fit", {}, True) == {"gpu_share": 15}
    assert asks(half, "fit", {}, True) == {"gpu_share": 30}
    assert asks(whole, "fit", {}, True) == {"gpu": 2, "gpu_share": 120}  # both kinds counted
    assert asks(whole, "test", {}, True) == {"gpu": 1, "gpu_share": 60}
    # Elsewhere (SLURM, or no gpu_share limit): a whole GPU; whole jobs as before.
    assert asks(quarter, "fit", {}, False) == {"gpu": 1}
    assert asks(whole, "fit", {}, False) == {"gpu": 2}
    # A cluster that shares GPUs: its shards (4 per GPU here; 0.5 of 4 is 2).
    assert asks(quarter, "fit", SHARDS, False) == {"gres": "shard:1"}
    assert asks(half, "fit", SHARDS, False) == {"gres": "shard:2"}
    assert asks(whole, "fit", SHARDS, False) == {"gpu": 2}
    # One SLURM job holds a run's jobs, whose `gres` must agree: the run's largest share, or
    # a whole GPU when one of its jobs takes one.
    assert asks(half, "test", SHARDS, False) == {"gres": "shard:2"}
    assert asks(mixed, "test", SHARDS, False) == {"gpu": 1}
    assert resources.job_resource(half, "predict", "gres", SHARDS) == "shard:2"
    assert resources.shared_by_all([quarter, half], "test", SHARDS) is None  # shard:1, shard:2
    assert asks(half, "test", {}, True) == {"gpu_share": 15}  # locally: each its own share
    mps = {"cluster_gpu_shares": {"gres": "mps", "per_gpu": 100}}
    assert asks(half, "fit", mps, False) == {"gres": "mps:50"}
    # The rules' view: one function per resource that any job may get.
    assert resources.job_resource(quarter, "fit", "gpu_share", {}, True) == 15
    assert resources.job_resource(quarter, "fit", "gpu", {}, True) is None
    assert resources.resource_names({}, True) == ("gpu", "gpu_share", "mem_mb", "runtime")
    assert resources.resource_names(SHARDS) == ("gpu", "gres", "mem_mb", "runtime")


def test_the_cluster_setting_is_checked() -> None:
    base = {"registry": "configs/projects", "seed": 1}
    check_workflow_config({**base, **SHARDS})
    check_workflow_config({**base, "cluster_gpu_shares": None})
    with pytest.raises(UserError, match=r"at cluster_gpu_shares\.gres: 'gpu' is not one of"):
        check_workflow_config({**base, "cluster_gpu_shares": {"gres": "gpu", "per_gpu": 4}})
    with pytest.raises(UserError, match=r"at cluster_gpu_shares: 'per_gpu' is a required"):
        check_workflow_config({**base, "cluster_gpu_shares": {"gres": "shard"}})


def test_dry_runs_show_units_locally_and_a_whole_gpu_elsewhere(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", REGISTRY)
    # profiles/local counts shares: gpu_share is in its `resources:`
    out = project.snakemake("-n", "--workflow-profile", "profiles/local").stdout
    jobs = _dry_run_jobs(out)
    assert jobs[("fit", "quarter")]["gpu_share"] == "15" and "gpu" not in jobs[("fit", "quarter")]
    assert jobs[("fit", "half")]["gpu_share"] == "30"
    # Snakemake lowers what a job asks to the limit: the profile's one GPU, 60 units.
    assert (jobs[("fit", "whole")]["gpu"], jobs[("fit", "whole")]["gpu_share"]) == ("1", "60")
    limits = yaml.safe_load(project.path("profiles/local/config.yaml").read_text())["resources"]
    assert limits["gpu_share"] == limits["gpu"] * gpu_shares.UNITS_PER_GPU  # in step
    # Without a gpu_share limit (here: only gpu), a share job asks for a whole GPU.
    out = project.snakemake("-n", "--cores", "2", "--resources", "gpu=2").stdout
    jobs = _dry_run_jobs(out)
    assert jobs[("fit", "quarter")]["gpu"] == "1" and "gpu_share" not in jobs[("fit", "quarter")]
    assert "gpu_share" not in jobs[("fit", "whole")]
    # profiles/slurm, on a cluster with 4 GPU shards per GPU (configs/workflow.yaml's setting)
    project.write("shards.yaml", "cluster_gpu_shares: {gres: shard, per_gpu: 4}\n")
    args = ("-n", "--workflow-profile", "profiles/slurm", "--configfile", "shards.yaml")
    jobs = _dry_run_jobs(project.snakemake(*args).stdout)
    assert [jobs[(j, "half")]["gres"] for j in ("fit", "test", "predict")] == ["shard:2"] * 3
    assert jobs[("fit", "quarter")]["gres"] == "shard:1" and "gpu" not in jobs[("fit", "quarter")]
    assert (jobs[("fit", "mixed")]["gpu"], jobs[("test", "mixed")]["gpu"]) == ("1", "1")


class _Resources(dict):
    """A job's resources as the slurm plugin reads them: `.get` and attributes."""

    __getattr__ = dict.__getitem__


@pytest.mark.parametrize(
    ("asked", "option"),
    [
        ({"gpu": 1}, " --gpus=1"),
        ({"gres": "shard:1"}, " --gres=shard:1"),
        ({"gpu": 2}, " --gpus=2"),
    ],
)
def test_what_the_slurm_plugin_asks_for(asked: dict, option: str) -> None:
    utils = pytest.importorskip("snakemake_executor_plugin_slurm.utils")
    assert utils.set_gres_string(SimpleNamespace(resources=_Resources(asked))) == option
