"""`main.py debug` (fast, overfit, profile) and `main.py lr-find` on the example projects.

Real Lightning on the real digits and diabetes configs, in process, on a scratch project. The
commands write only under the run's debug/ folder: a run that was never fitted has nothing
else afterwards, and a fitted run's files are byte-identical (slow: a real Snakemake fit).

Broken on purpose: the overfit monitor's LR schedule left on (the example models stall and
are told they cannot fit), the debug trainer pointed at the run folder instead of
debug/<mode>/ (its CSV log lands among the run's files), or ResumableDataLoader refusing the
sequential sampler that Lightning's overfit_batches puts in (overfit crashes), fails these tests.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from dltemplate.cli import main
from dltemplate.config.build import build_run
from dltemplate.config.values import parse_assignments
from dltemplate.layout import RunLayout
from tests.conftest import HAS_EXAMPLES, REPO, Project, make_project

NO_LR_CONFIG = '''\
"""Digits with SGD at a fixed rate: no getter parameter is a learning rate."""
from functools import partial

import torch
from torch import nn

from dltemplate import RootConfig
from wrappers import BasicTaskWrapper

from .components.data_wrappers.digits import get_data_wrapper
from .components.models.mlp import get_model
from .components.trainers.default import get_trainer


def get_task_wrapper(*, momentum: float = 0.9) -> BasicTaskWrapper:
    return BasicTaskWrapper(
        model=get_model(hidden_dim=32),
        loss_function=nn.CrossEntropyLoss(),
        optimizer=partial(torch.optim.SGD, lr=0.01, momentum=momentum),
    )


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer
    )
'''

NO_LR_REGISTRY = """\
description: Runs whose configs the lr finder cannot set
experiments:
  exp:
    description: One run
    runs:
      sgd:
        description: SGD at a fixed rate
        config: configs/no_lr.py
"""


@pytest.fixture
def examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A scratch project with the digits and diabetes registries, as the working folder."""
    if not HAS_EXAMPLES:
        pytest.skip("the example project was deleted (its registries are what this checks)")
    project = make_project(tmp_path / "proj")
    for name in ("digits", "diabetes"):
        source = REPO / "configs" / "projects" / f"{name}.yaml"
        project.write(f"configs/projects/{name}.yaml", source.read_text())
    monkeypatch.chdir(project.root)
    return project


def run_cli(capfd: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """main.py in process; a job's failure ends it with SystemExit(1), as a job ends. print()
    writes to file descriptors 1 and 2 as in a process of its own (pytest's capture would
    otherwise take it before the job's log does)."""
    saved = sys.stdout, sys.stderr
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - fd 1 stays open
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved
    out, err = capfd.readouterr()
    return code, out, err


def entries(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def digests(folder: Path) -> dict[str, str]:
    """Every file of a run folder outside debug/, by path, with the SHA-256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != "debug"
    }


def test_fast_runs_a_batch_of_every_job_and_writes_only_debug(examples, capfd) -> None:
    run = RunLayout.of("digits", "baseline", "mlp")
    code, out, err = run_cli(capfd, "debug", "-p", "digits", "-e", "baseline", "-n", "mlp",
                             "--mode", "fast")  # fmt: skip
    assert code == 0, err
    assert "fast: fit, test, predict ran 1 batch(es) each without an error" in out
    assert entries(run.path) == {"debug"}  # no .done, checkpoints, hparams, logs or records
    assert entries(Path(run.debug)) == {"fast"}
    summary = json.loads(Path(run.debug_summary("fast")).read_text())
    assert summary["jobs"] == ["fit", "test", "predict"] and summary["batches"] == 1
    log = Path(run.debug_log("fast")).read_text()
    assert "fast: predict ran 1 batch(es)" in log and "fast_dev_run" in log


@pytest.mark.parametrize(
    ("proj", "name"), [("digits", "mlp"), ("diabetes", "mlp")], ids=["digits", "diabetes"]
)
def test_overfit_says_the_example_models_fit_a_few_batches(examples, capfd, proj, name) -> None:
    run = RunLayout.of(proj, "baseline", name)
    code, out, err = run_cli(capfd, "debug", "-p", proj, "-e", "baseline", "-n", name,
                             "--mode", "overfit")  # fmt: skip
    assert code == 0, err
    assert "the model can fit a few batches (2)" in out, out
    summary = json.loads(Path(run.debug_summary("overfit")).read_text())
    losses = summary["losses"]
    assert summary["fits"] and losses[-1] <= 0.01 * losses[0]
    assert summary["epochs"] == len(losses) < summary["max_epochs"]  # stopped once it fit
    assert f"train loss {losses[0]:.3g} -> {losses[-1]:.3g} in {len(losses)} epochs" in out
    assert Path(run.debug_metrics("overfit"), "metrics.csv").is_file()
    assert entries(run.path) == {"debug"}


def test_overfit_says_when_the_model_does_not_fit(examples, capfd) -> None:
    run = RunLayout.of("digits", "baseline", "mlp")
    code, out, err = run_cli(capfd, "debug", "-p", "digits", "-e", "baseline", "-n", "mlp",
                             "--mode", "overfit", "--epochs", "3", "--batches", "1",
                             "--set", "task_wrapper.lr=1e-9")  # fmt: skip
    assert code == 0, err
    assert "the model did not fit 1 batch(es)" in out, out
    summary = json.loads(Path(run.debug_summary("overfit")).read_text())
    assert not summary["fits"] and summary["epochs"] == 3


@pytest.mark.parametrize(
    ("proj", "profiler", "marker"),
    [("diabetes", "simple", "FIT Profiler Report"), ("digits", "advanced", "ncalls")],
)
def test_profile_writes_the_profilers_report(examples, capfd, proj, profiler, marker) -> None:
    run = RunLayout.of(proj, "baseline", "mlp")
    code, out, err = run_cli(capfd, "debug", "-p", proj, "-e", "baseline", "-n", "mlp",
                             "--mode", "profile", "--profiler", profiler)  # fmt: skip
    assert code == 0, err
    assert f"the {profiler} profiler's report of 1 epoch(s) is in {run.profile_report}" in out
    assert marker in Path(run.profile_report).read_text()
    assert entries(run.path) == {"debug"}


@pytest.mark.parametrize(
    ("proj", "name", "others"),
    [("digits", "mlp", []), ("diabetes", "wide", ["trainer.max_epochs=10"])],
    ids=["digits", "diabetes"],
)
def test_lr_find_saves_the_plot_and_prints_the_set_line(examples, capfd, proj, name, others):
    run = RunLayout.of(proj, "baseline", name)
    code, out, err = run_cli(capfd, "lr-find", "-p", proj, "-e", "baseline", "-n", name,
                             "--steps", "40")  # fmt: skip
    assert code == 0, err
    assert Path(run.lr_find_plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    found = json.loads(Path(run.lr_find_json).read_text())
    assert 20 <= len(found["lrs"]) == len(found["losses"]) <= 40  # it stops when it diverges
    assert found["lrs"] == sorted(found["lrs"]) and found["parameter"] == "task_wrapper.lr"
    assert found["current"] == 3e-3 if proj == "diabetes" else 1e-3
    set_line = next(line for line in out.splitlines() if line.strip().startswith("--set"))
    assert set_line.strip() == f"--set {found['set']}"
    # the printed --set applies the suggestion: it parses and builds the run's config
    overrides = parse_assignments([found["set"]], "the test")
    assert overrides["task_wrapper.lr"] == pytest.approx(found["suggestion"], rel=1e-2)
    config = f"configs/{proj}_mlp.py"
    built = build_run(config, overrides=overrides)
    assert built.build.origins["task_wrapper.lr"] == "override"
    new_run = next(line for line in out.splitlines() if "a new run with it" in line)
    assert f"-c {config}" in new_run and all(f"--set {o}" in new_run for o in others)
    assert entries(run.path) == {"debug"}
    assert entries(Path(run.debug)) == {"lr_find", "lr_find.png", "lr_find.json"}
    assert not list(Path(run.debug_mode("lr_find")).glob("*.ckpt"))  # Lightning's is removed


def test_lr_find_without_an_lr_parameter_still_saves_the_plot(examples, capfd) -> None:
    examples.write("configs/no_lr.py", NO_LR_CONFIG)
    examples.write("configs/projects/nolr.yaml", NO_LR_REGISTRY)
    run = RunLayout.of("nolr", "exp", "sgd")
    code, out, err = run_cli(capfd, "lr-find", "-p", "nolr", "-e", "exp", "-n", "sgd",
                             "--steps", "30")  # fmt: skip
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("lr-find:")]
    assert len(lines) == 1 and "no getter parameter of configs/no_lr.py is named lr" in lines[0]
    assert "--set" not in out.replace("no --set applies it", "")
    assert Path(run.lr_find_plot).is_file()
    assert json.loads(Path(run.lr_find_json).read_text())["parameter"] is None


def test_lr_find_with_too_few_steps_says_so_and_keeps_the_plot(examples, capfd) -> None:
    run = RunLayout.of("digits", "baseline", "mlp")
    code, out, err = run_cli(capfd, "lr-find", "-p", "digits", "-e", "baseline", "-n", "mlp",
                             "--steps", "5")  # fmt: skip
    assert code == 0, err
    assert "lr-find: no suggestion: 5 steps are too few" in out and "--set" not in out
    assert Path(run.lr_find_plot).is_file()
    assert json.loads(Path(run.lr_find_json).read_text())["suggestion"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "nope", "-e", "baseline", "-n", "mlp"], "No project nope in the registry"),
        (["-p", "digits", "-e", "nope", "-n", "mlp"], "No experiment digits/nope"),
        (["-p", "digits", "-e", "baseline", "-n", "nope"], "No run digits/baseline/nope"),
        (["-p", "digits", "-e", "baseline", "-n", "mlp", "--set", "task_wrapper.lr"],
         "task_wrapper.lr"),
        (["-p", "digits", "-e", "baseline", "-n", "mlp", "--set", "task_wrapper.lrr=0.1"],
         "Unknown override path 'task_wrapper.lrr'"),
        (["-p", "digits", "-e", "baseline", "-n", "mlp", "--set", "task_wrapper.lr=fast"],
         "expected float"),
    ],
    ids=["project", "experiment", "run", "set-without-value", "set-path", "set-type"],
)  # fmt: skip
@pytest.mark.parametrize("command", [["debug", "--mode", "fast"], ["lr-find"]])
def test_bad_input_is_one_line_and_writes_nothing(examples, capfd, command, args, message):
    code, out, err = run_cli(capfd, *command, *args)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("Error: ") and message in err, err
    assert out == "" and "Traceback" not in err
    assert not Path("results").exists()


def test_unknown_mode_and_bad_numbers_are_argparse_errors(examples, capfd) -> None:
    base = ["-p", "digits", "-e", "baseline", "-n", "mlp"]
    for args, message in (
        (["debug", *base, "--mode", "slow"], "argument --mode: invalid choice: 'slow'"),
        (["debug", *base, "--mode", "fast", "--batches", "0"], "argument --batches"),
        (["lr-find", *base, "--max-lr", "-1"], "argument --max-lr"),
    ):
        code, _, err = run_cli(capfd, *args)
        assert code == 2 and message in err.splitlines()[-1], err
    code, _, err = run_cli(capfd, "lr-find", *base, "--min-lr", "1", "--max-lr", "0.1")
    assert code == 1 and err == "Error: --min-lr 1 must be below --max-lr 0.1\n"
    assert not Path("results").exists()


def test_a_failing_fit_ends_with_the_jobs_one_line_error(examples, capfd) -> None:
    run = RunLayout.of("digits", "baseline", "mlp")
    code, _, err = run_cli(capfd, "debug", "-p", "digits", "-e", "baseline", "-n", "mlp",
                           "--mode", "overfit", "--set", "task_wrapper.lr=1e12")  # fmt: skip
    assert code == 1
    assert err.splitlines()[-1].startswith("Error: The training loss became"), err
    assert "Traceback" not in err
    assert Path(run.debug_log("overfit")).read_text().splitlines()[-1] == err.splitlines()[-1]
    assert entries(run.path) == {"debug"}


@pytest.mark.slow
def test_a_fitted_run_stays_byte_identical(project: Project, monkeypatch, capfd) -> None:
    run = RunLayout.of("tiny", "exp", "mlp")
    project.snakemake("--cores", "2", run.run_json)
    monkeypatch.chdir(project.root)
    before = digests(project.path(run.folder))
    assert {"fit.done", "hparams.yaml", "checkpoints/best.ckpt", "logs/fit.log"} <= set(before)
    assert "records/fit.json" in before
    base = ["-p", "tiny", "-e", "exp", "-n", "mlp"]
    for args in (
        ["debug", *base, "--mode", "fast"],
        ["debug", *base, "--mode", "overfit", "--epochs", "5"],
        ["debug", *base, "--mode", "profile"],
        ["lr-find", *base, "--steps", "20"],
    ):
        code, _, err = run_cli(capfd, *args)
        assert code == 0, err
    assert digests(project.path(run.folder)) == before
    assert entries(project.path(run.debug)) == {
        "fast", "overfit", "profile", "lr_find", "lr_find.png", "lr_find.json"
    }  # fmt: skip
    assert "Nothing to be done" in project.snakemake("-n", "--cores", "1", run.run_json).stdout
