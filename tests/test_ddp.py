"""DDP inside one job: the trainer settings a job gets (dltemplate.jobs.distributed), and a real
two-process fit on CPU (gloo), started from the job's one process as Snakemake runs it."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry

from dltemplate.errors import UserError
from dltemplate.jobs.distributed import (
    SRUN_RANKS_VARIABLE,
    launched_per_device,
    single_process_launch,
    srun_rank_settings,
)
from dltemplate.jobs.job_ddp import ForkDDPStrategy, JobDDPStrategy
from dltemplate.jobs.ranks import Ranks
from tests.conftest import Project, make_project

SLURM_STEP = {"SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}


def test_two_devices_fork_their_ranks_from_the_job() -> None:
    settings = single_process_launch({"accelerator": "cpu", "devices": 2, "strategy": "ddp"}, {})
    strategy = settings["strategy"]
    assert isinstance(strategy, DDPStrategy) and strategy._start_method == "fork"
    assert strategy.cluster_environment is None  # Lightning's default outside SLURM


DDP_NAMES = [n for n in StrategyRegistry.available_strategies() if n.startswith("ddp")]


@pytest.mark.parametrize("name", DDP_NAMES)
def test_every_one_node_ddp_name_forks_with_its_own_options(name: str) -> None:
    settings = single_process_launch({"accelerator": "cpu", "devices": 2, "strategy": name}, {})
    strategy = settings["strategy"]
    assert isinstance(strategy, DDPStrategy) and strategy._start_method == "fork"
    unused = StrategyRegistry[name]["init_params"].get("find_unused_parameters")
    assert strategy._ddp_kwargs.get("find_unused_parameters") == unused


def test_inside_a_one_task_slurm_job_lightning_starts_the_ranks() -> None:
    settings = single_process_launch({"accelerator": "cpu", "devices": 2}, SLURM_STEP)
    assert isinstance(settings["strategy"].cluster_environment, LightningEnvironment)


def test_one_device_in_slurm_never_requeues_behind_snakemake() -> None:
    settings = single_process_launch({"accelerator": "cpu", "devices": 1}, SLURM_STEP)
    (environment,) = settings["plugins"]
    assert isinstance(environment, SLURMEnvironment) and not environment.auto_requeue
    assert "strategy" not in settings


@pytest.mark.parametrize(
    "settings",
    [
        {"accelerator": "cpu", "devices": 1},
        {"accelerator": "cpu", "devices": 2, "strategy": "fsdp"},  # the config's choice
        {"accelerator": "cpu", "devices": 2, "plugins": [LightningEnvironment()]},
    ],
)
def test_other_settings_stay_as_the_config_made_them(settings: dict) -> None:
    before = dict(settings)
    assert single_process_launch(settings, {}) == before


def test_several_nodes_are_refused_in_one_line_unless_a_launcher_started_the_ranks() -> None:
    settings = {"accelerator": "cpu", "devices": 2, "num_nodes": 2}
    with pytest.raises(UserError, match=r"^trainer.num_nodes=2: a job spans one node unless"):
        single_process_launch(dict(settings), {})
    assert single_process_launch(dict(settings), {"SLURM_NTASKS": "4"}) == settings


def test_ranks_started_by_a_launcher_keep_lightnings_choice() -> None:
    assert launched_per_device({"LOCAL_RANK": "1"})
    assert launched_per_device({"SLURM_NTASKS": "4"})
    assert not launched_per_device(SLURM_STEP)
    settings = {"accelerator": "cpu", "devices": 4, "strategy": "ddp"}
    assert single_process_launch(dict(settings), {"SLURM_NTASKS": "4"}) == settings


SRUN_RANK = {
    SRUN_RANKS_VARIABLE: "1",
    "SLURM_NTASKS": "8",
    "SLURM_NNODES": "2",
    "SLURM_NTASKS_PER_NODE": "4",
}


@pytest.mark.parametrize("asked", [{}, {"devices": "auto", "num_nodes": 2}, {"devices": 4}])
def test_a_rank_that_srun_started_takes_its_counts_from_the_allocation(asked: dict) -> None:
    settings = srun_rank_settings({"accelerator": "cpu", "strategy": "ddp", **asked}, SRUN_RANK)
    assert (settings["num_nodes"], settings["devices"]) == (2, 4)
    strategy = settings["strategy"]
    assert isinstance(strategy, JobDDPStrategy) and not isinstance(strategy, ForkDDPStrategy)
    environment = strategy.cluster_environment
    assert isinstance(environment, SLURMEnvironment) and not environment.auto_requeue


@pytest.mark.parametrize(
    ("asked", "refusal"),
    [
        ({"devices": 2}, r"^trainer.devices=2: the run's resources start 2 node\(s\) with 4 rank"),
        ({"num_nodes": 1}, r"^trainer.num_nodes=1: .* set trainer.num_nodes to 2 or 'auto'"),
        ({"strategy": "fsdp"}, r"^trainer.strategy='fsdp': .* which train with DDP"),
    ],
)
def test_a_rank_refuses_counts_that_its_allocation_does_not_have(asked: dict, refusal: str) -> None:
    with pytest.raises(UserError, match=refusal):
        single_process_launch({"accelerator": "cpu", **asked}, SRUN_RANK)


FIT = """\
import json, sys
from dltemplate.jobs.fit import fit_run
from dltemplate.jobs.common import build_for_job

overrides = {
    "trainer.accelerator": "cpu", "trainer.devices": int(sys.argv[2]),
    "trainer.strategy": sys.argv[3], "trainer.max_epochs": 1, "task_wrapper.model.hidden_dim": 16,
}
data = build_for_job("fit", "configs/digits_mlp.py", overrides, 3, 1, "test").data_wrapper
data.setup("fit")
loader = data.train_dataloader()
record = fit_run(run_dir=sys.argv[1], config_file="configs/digits_mlp.py", overrides=overrides,
                 seed=3, threads=1, done_file=sys.argv[1] + "/fit.done")
print("RESULT", json.dumps({"train": len(loader.dataset), "batch": loader.batch_size,
                            "global_step": record["global_step"], "epochs": record["epochs"]}))
"""


def run_fit(
    run_dir: Path, devices: int, launcher: list[str] | None = None, strategy: str = "ddp"
) -> tuple[dict, str]:
    """Fit in a fresh process, as a Snakemake job script does: (its numbers, its output)."""
    project = make_project(run_dir.parent / "project")  # configs/digits_mlp.py
    result = subprocess.run(
        [*(launcher or []), sys.executable, "-c", FIT, str(run_dir), str(devices), strategy],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT ")), output


def check_two_ranks(numbers: dict, output: str, run_dir: Path) -> None:
    # Each rank sees half of the training set, so one epoch has half the steps.
    per_rank = math.ceil(numbers["train"] / 2)
    assert numbers["global_step"] == math.ceil(per_rank / numbers["batch"])
    assert numbers["epochs"] == 1  # the job's own process learned the ranks' progress
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    done = json.loads((run_dir / "fit.done").read_text())
    assert done["global_step"] == numbers["global_step"]
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp_spawn"])  # ddp: test_slurm.py; the rest: above
def test_ddp_fit_on_two_cpu_processes(tmp_path: Path, strategy: str) -> None:
    """lightning-hydra-template's CPU "DDP simulation" is ddp_spawn: before, its fit recorded
    epoch 0 and step 0, and its test job could not load the best checkpoint."""
    numbers, output = run_fit(tmp_path / "run", 2, strategy=strategy)
    assert "DDP: 2 ranks forked by this job" in output
    check_two_ranks(numbers, output, tmp_path / "run")


# test_fraction 0.151: 1,257 train, 269 val and 271 test samples, odd counts that 2 ranks
# cannot share without a padded repeat.
FITTED = """\
description: checkpoints evaluated by one process and by two
experiments:
  exp:
    description: the same checkpoints
    runs:
      one:
        description: fitted and evaluated by one process
        config: configs/digits_mlp.py
        jobs: [fit, test]
        overrides: {data_wrapper.test_fraction: 0.151, trainer.max_epochs: 1, trainer.accelerator: cpu, trainer.devices: 1}
      fit2:
        description: the CNN (BatchNorm's buffers) fitted by two DDP ranks, validated on the way
        config: configs/digits_cnn.py
        jobs: [fit]
        overrides: {data_wrapper.test_fraction: 0.151, trainer.max_epochs: 1, trainer.accelerator: cpu, trainer.devices: 2}
"""
EVALUATED = """\
      two:
        description: one's best checkpoint evaluated by two DDP ranks
        config: configs/digits_mlp.py
        ckpt: results/tiny/exp/one/checkpoints/best.ckpt
        jobs: [test]
        overrides: {data_wrapper.test_fraction: 0.151, trainer.accelerator: cpu, trainer.devices: 2, trainer.strategy: ddp}
      check:
        description: fit2's last checkpoint validated by one process
        config: configs/digits_cnn.py
        ckpt: results/tiny/exp/fit2/checkpoints/last.ckpt
        jobs: [validate]
        overrides: {data_wrapper.test_fraction: 0.151, trainer.accelerator: cpu, trainer.devices: 1}
"""


def metrics_of(project: Project, run: str, job: str) -> dict[str, float]:
    return json.loads(project.path(f"results/tiny/exp/{run}/{job}.done").read_text())["metrics"]


def last_validation(project: Project, run: str) -> dict[str, float]:
    """The val/ figures of a fit's last validation (its metrics.csv)."""
    with project.path(f"results/tiny/exp/{run}/metrics/fit/metrics.csv").open() as f:
        rows = [row for row in csv.DictReader(f) if row.get("val/loss")]
    return {k: float(v) for k, v in rows[-1].items() if k.startswith("val/") and v}


def assert_equal_figures(one: dict[str, float], two: dict[str, float], what: str) -> None:
    assert one.keys() == two.keys() and len(one) >= 3, (what, one, two)
    for name in one:
        assert two[name] == pytest.approx(one[name], abs=1e-6), (what, name, one, two)


@pytest.mark.slow
def test_two_ranks_evaluate_every_sample_once(project: Project) -> None:
    """Two DDP ranks give the one-process figures of the same checkpoint: a test job, and a
    fit's own validation (what picks its best checkpoint; a validate job runs the same loop
    as a test job). Each sample is on one
    rank only (no padded repeats); the loss's mean and the metrics are over both ranks'
    samples. Before: acc 0.7111 against 0.7138."""
    project.write("configs/projects/tiny.yaml", FITTED)  # `ckpt:` must exist when it loads
    jobs = ("validate", "test")
    first = [
        *(f"results/tiny/exp/one/{job}.done" for job in jobs),
        "results/tiny/exp/fit2/fit.done",
    ]
    project.snakemake("-j1", *first)
    project.write("configs/projects/tiny.yaml", FITTED + EVALUATED)
    then = [
        *(f"results/tiny/exp/two/{job}.done" for job in jobs),
        "results/tiny/exp/check/validate.done",
    ]
    project.snakemake("-j1", *then)
    one, two = (metrics_of(project, run, "test") for run in ("one", "two"))
    assert_equal_figures(one, two, "test")
    assert_equal_figures(
        metrics_of(project, "check", "validate"), last_validation(project, "fit2"), "fit"
    )
    for run, job in (("two", "test"), ("fit2", "fit")):
        log = project.path(f"results/tiny/exp/{run}/logs/{job}.log").read_text()
        assert "DDP: 2 ranks forked by this job" in log


def test_the_fit_job_checks_its_ranks_settings_before_it_starts_them() -> None:
    """The job refuses what its ranks would refuse, before the run's folder is touched, and
    checks the rest on a one-process trainer (the counts and the DDP are the ranks')."""
    ranks = Ranks(nodes=2, per_node=4, threads=1)
    with pytest.raises(UserError, match=r"^trainer.devices=3: the run's resources start 2 node"):
        ranks.checked({"accelerator": "cpu", "devices": 3})
    asked = {"accelerator": "cpu", "devices": 4, "num_nodes": 2, "strategy": "ddp", "max_epochs": 3}
    assert ranks.checked(asked) == {"accelerator": "cpu", "max_epochs": 3}
