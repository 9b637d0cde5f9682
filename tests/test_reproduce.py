"""Seeds and reproduction: the same config and seed give the same run, a run's archived config
reproduces it, and a broken config stops its job with one line and no .done file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from dltemplate.config.build import build_run
from dltemplate.layout import RunLayout
from tests.conftest import FIXTURE, Project, make_project

NOISE_CONFIG = """\
import random

import numpy as np
import torch
from lightning import LightningModule
from torch.utils.data import Dataset

from dltemplate import RootConfig
from wrappers import BasicDataWrapper


class Noise(Dataset):
    # Random draws inside the DataLoader workers, from all three generators.
    def __len__(self):
        return 8

    def __getitem__(self, index):
        return torch.tensor([np.random.rand(), random.random(), torch.rand(()).item()])


class Echo(LightningModule):
    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def predict_step(self, batch, batch_idx):
        return batch


def get_echo() -> Echo:
    return Echo()


def get_data(*, num_workers: int = 2) -> BasicDataWrapper:
    return BasicDataWrapper(predict_dataset=Noise(), batch_size=2, num_workers=num_workers)


def get_trainer() -> dict:
    return {"accelerator": "cpu", "deterministic": True}


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_echo, data_wrapper=get_data, trainer=get_trainer)
"""


@pytest.mark.slow
def test_dataloader_workers_are_seeded(tmp_path: Path) -> None:
    import lightning as L

    path = tmp_path / "noise.py"
    path.write_text(NOISE_CONFIG)

    def draws(seed: int) -> torch.Tensor:
        built = build_run(path, job="predict", seed=seed)
        built.data_wrapper.set_threads(3)  # two workers
        trainer = L.Trainer(
            **built.trainer_kwargs,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        return torch.cat(trainer.predict(built.task_wrapper, datamodule=built.data_wrapper))

    first, again, other = draws(1), draws(1), draws(2)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    # Each worker has its own NumPy and Python streams (forked workers would otherwise
    # repeat the parent's): no value drawn twice.
    for column in range(3):
        assert len(set(first[:, column].tolist())) == 8


@pytest.fixture
def torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_same_seed_same_test_metrics_other_seed_others(tmp_path: Path, torch_threads) -> None:
    """The fit and test jobs, in this process: twice with seed 42, once with a `seed` override."""
    from dltemplate.jobs.evaluate import test_run
    from dltemplate.jobs.fit import fit_run

    def fit_and_test(name: str, **extra) -> dict:
        run_dir = tmp_path / name
        overrides = {"trainer.max_epochs": 2, "task_wrapper.model.hidden_dim": 16, **extra}
        job = {"run_dir": run_dir, "config_file": str(FIXTURE / "configs/digits_mlp.py")}
        fit = fit_run(
            **job, overrides=overrides, seed=42, threads=1, done_file=run_dir / "fit.done"
        )
        test_run(
            **job,
            overrides=overrides,
            seed=42,
            threads=1,
            fit_done=run_dir / "fit.done",
            done_file=run_dir / "test.done",
        )
        assert fit["seed"] == yaml.safe_load((run_dir / "hparams.yaml").read_text())["seed"]
        return json.loads((run_dir / "test.done").read_text())["metrics"]

    first = fit_and_test("first")
    assert fit_and_test("again") == first
    other = fit_and_test("other", seed=7)
    assert other["test/loss"] != first["test/loss"]
    assert yaml.safe_load((tmp_path / "other/hparams.yaml").read_text())["seed"] == 7


REGISTRY = """\
description: Reproducibility checks
experiments:
  exp:
    description: A run, a rerun from its archive, a broken config
    runs:
      a:
        description: the reference run
        config: configs/digits_mlp.py
        jobs: [fit, test]
        overrides: {trainer.max_epochs: 2, task_wrapper.model.hidden_dim: 32}
      from_archive:
        description: run a again from its archived config alone (it carries a's overrides)
        config: results/tiny/exp/a/archived_config.py
        jobs: [fit, test]
      broken:
        description: a getter that raises
        config: configs/broken.py
        jobs: [fit]
"""
BROKEN = """\
from dltemplate import RootConfig

from .components.data_wrappers.digits import get_data_wrapper
from .components.trainers.default import get_trainer


def get_task_wrapper(*, lr: float = 0.1) -> None:
    raise ValueError(f"lr {lr} is too large for this model")


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer
    )
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, str]:
    """One Snakemake run of the registry for the tests below. from_archive's fit waits for a's,
    which writes its config; one thread per fit, so that a and broken fit side by side."""
    project = make_project(tmp_path_factory.mktemp("reproduce") / "proj", REGISTRY)
    project.write("configs/broken.py", BROKEN)
    result = project.snakemake(
        "--cores",
        "2",
        "--keep-going",
        "results/tiny/exp/broken/fit.done",
        "results/tiny/exp/a/test.done",
        "results/tiny/exp/from_archive/test.done",
        check=False,
    )
    return project, result.stdout + result.stderr


def record(project: Project, run: str, name: str):
    path = project.path(f"results/tiny/exp/{run}/{name}")
    return (
        yaml.safe_load(path.read_text()) if name.endswith(".yaml") else json.loads(path.read_text())
    )


@pytest.mark.slow
def test_seed_is_recorded_and_an_archive_reproduces_the_run(runs) -> None:
    project, _ = runs
    assert record(project, "a", "hparams.yaml")["seed"] == 42  # configs/workflow.yaml
    assert record(project, "a", "fit.done")["seed"] == 42
    metrics = record(project, "a", "test.done")["metrics"]
    assert {"test/acc", "test/loss"} <= set(metrics)
    assert record(project, "from_archive", "test.done")["metrics"] == metrics


@pytest.mark.slow
def test_archived_config_records_the_same_run(runs) -> None:
    project, _ = runs
    assert record(project, "from_archive", "hparams.yaml") == record(project, "a", "hparams.yaml")
    # Its own archive holds the same modules again.
    ours = project.path("results/tiny/exp/a/archived_config.py").read_text()
    theirs = project.path("results/tiny/exp/from_archive/archived_config.py").read_text()
    assert theirs.split("MODULES = ", 1)[1] == ours.split("MODULES = ", 1)[1]


@pytest.mark.slow
def test_loggers_get_the_recorded_hparams(runs) -> None:
    project, _ = runs
    hparams = record(project, "a", "hparams.yaml")
    assert hparams["objects"]["task_wrapper"]["optimizer"]["lr"] == 1e-3
    assert record(project, "a", "metrics/fit/hparams.yaml") == hparams


@pytest.mark.slow
def test_a_broken_config_stops_its_job_with_one_line(runs) -> None:
    project, output = runs
    assert not project.path("results/tiny/exp/broken/fit.done").exists()
    pattern = (
        r"Error: Config configs/broken\.py: the task_wrapper getter raised ValueError at "
        r"\S*configs/broken\.py:8: lr 0\.1 is too large for this model"
    )
    assert re.search(pattern, output), output
    assert re.search(pattern, project.path("results/tiny/exp/broken/logs/fit.log").read_text())
    assert "Traceback" not in project.path("results/tiny/exp/broken/logs/fit.log").read_text()


TINY_FIT = (
    "{trainer.max_epochs: 1, trainer.limit_train_batches: 4, trainer.limit_val_batches: 2, "
    "task_wrapper.model.hidden_dim: 16}"
)
ARCHIVED = RunLayout.of("tiny", "exp", "a")
ARCHIVES = f"""\
description: Runs from archives in every format
experiments:
  exp:
    description: a, then z from a's zip archive, then f from z's folder archive
    runs:
      a: {{description: the original, config: configs/digits_mlp.py, jobs: [fit], overrides: {TINY_FIT}}}
      z: {{description: from a's zip, config: {ARCHIVED.archive("zip")}, jobs: [fit]}}
      f: {{description: "from z's folder", config: results/tiny/exp/z/archived_config, jobs: [fit]}}
"""
EDITED = """) -> MLP:
    raise RuntimeError("the project's edited model getter ran, not the archived one")
"""


@pytest.mark.slow
def test_zip_and_folder_archives_run_their_own_code_and_the_format_reruns_nothing(
    project: Project,
) -> None:
    """a fits with archive_format zip; switched to folder, nothing reruns; with the project's
    model getter then edited to raise, z (from a's zip) and f (from z's folder, which the
    switch made) still fit, with a's overrides and a's very weights: the archived code ran.

    Broken on purpose: with dltemplate/config/loader._import_archive importing the project's
    own file of the archive's root module when there is one, z's fit fails ("the project's
    edited model getter ran"); with the archive's modules last on sys.meta_path (`append` in
    dltemplate/config/embedded.install) the repo's configs win and it fails too; with
    archive_format in the fit rule's params (the engine's rules/fit.smk), the switch reruns a's fit and the
    "Nothing to be done" check fails."""
    settings = project.path("configs/workflow.yaml")
    settings.write_text(settings.read_text().replace("archive_format: py", "archive_format: zip"))
    project.write("configs/projects/tiny.yaml", ARCHIVES)
    project.snakemake("--cores", "1", ARCHIVED.done("fit"))
    assert project.path(ARCHIVED.archive("zip")).is_file()

    settings.write_text(
        settings.read_text().replace("archive_format: zip", "archive_format: folder")
    )
    again = project.snakemake("-n", "--cores", "1", ARCHIVED.done("fit"))
    assert "Nothing to be done" in again.stdout + again.stderr
    # a is finished: take it out of the registry (else its edited config would ask to rerun it)
    # and break the project's own model getter.
    registry = project.path("configs/projects/tiny.yaml")
    registry.write_text("\n".join(ln for ln in ARCHIVES.splitlines() if "the original" not in ln))
    model = project.path("configs/components/models/mlp.py")  # the same getter, raising
    model.write_text(model.read_text().replace(") -> MLP:\n", EDITED, 1))
    with pytest.raises(Exception, match="edited model getter ran"):
        build_run(project.path("configs/digits_mlp.py"))

    z, f = RunLayout.of("tiny", "exp", "z"), RunLayout.of("tiny", "exp", "f")
    project.snakemake("--cores", "1", f.done("fit"))
    assert project.path(z.archive("folder")).is_dir()
    expected = torch.load(project.path(ARCHIVED.last_checkpoint), weights_only=False)
    for run in (z, f):
        assert record(project, run.names[2], "hparams.yaml") == record(project, "a", "hparams.yaml")
        got = torch.load(project.path(run.last_checkpoint), weights_only=False)["state_dict"]
        assert all(torch.equal(got[k], v) for k, v in expected["state_dict"].items()), run


# -- main.py reproduce: a finished run again, from its folder alone -----------------------------
@pytest.mark.slow
def test_reproduce_runs_the_archive_again_and_the_metrics_match(finished_runs: Project) -> None:
    """b (seed 7, hidden_dim 16) reproduced as b_again: declared in the registry with a copy
    of b's archived config, run by Snakemake, the same test metrics to the last bit on CPU.

    Broken on purpose: with the new run declared with b's registry config
    (configs/digits_mlp.py) instead of the copy of its archive, b_again trains without b's
    overrides and seed, the metrics differ, and reproduce exits 1."""
    project = finished_runs
    result = project.main("reproduce", "tiny/exp/b", "--as", "b_again", "-j", "1", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Reproduced tiny/exp/b as tiny/exp/b_again: the test metrics match exactly (CPU)" in (
        result.stdout
    )
    again = RunLayout.of("tiny", "exp", "b_again")
    declared = yaml.safe_load(project.path("configs/projects/tiny.yaml").read_text())
    entry = declared["experiments"]["exp"]["runs"]["b_again"]
    assert entry["config"] == again.reproduced_archive("py") and entry["jobs"] == ["fit", "test"]
    assert "overrides" not in entry  # the archive carries b's overrides and seed
    assert (
        record(project, "b_again", "test.done")["metrics"]
        == record(project, "b", "test.done")["metrics"]
    )
    assert record(project, "b_again", "hparams.yaml") == record(project, "b", "hparams.yaml")
    assert project.path(again.run_json).is_file()
    missing = project.main("reproduce", "tiny/exp/nope", check=False)
    assert missing.returncode == 1 and "No run folder results/tiny/exp/nope" in missing.stderr


@pytest.mark.slow
def test_reproduce_names_what_differs_when_the_metrics_do_not_match(
    finished_runs: Project,
) -> None:
    """A copy of a whose records say it ran under another torch, and whose recorded test loss
    is not what its code gives: the reproduction says the metrics differ, names the loss and
    the torch version, and exits 1."""
    project = finished_runs
    other = RunLayout.of("tiny", "exp", "a_other_torch")
    shutil.copytree(
        project.path(RunLayout.of("tiny", "exp", "a").folder), project.path(other.folder)
    )
    done = project.path(other.done("test"))
    test = json.loads(done.read_text())
    done.write_text(json.dumps({**test, "metrics": {**test["metrics"], "test/loss": 9.5}}))
    for job in ("fit", "test"):
        path = project.path(other.record(job))
        data = json.loads(path.read_text())
        data["versions"]["torch"] = "0.0.1"
        path.write_text(json.dumps(data))
    result = project.main("reproduce", "tiny/exp/a_other_torch", "-j", "1", check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert (
        "Reproduced tiny/exp/a_other_torch as tiny/exp/a_other_torch-repro: the test metrics DIFFER "
        "(compared exactly (CPU))" in out
    )
    assert "test/loss" in out and "9.5" in out
    assert "fit: torch" in out and "0.0.1" in out
    assert "test/acc" not in out  # the accuracy matches
