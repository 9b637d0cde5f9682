"""Bad input and faults (issue 10): a clear one-line error every time, and nothing lost.

Each case checks the exit status, the one message (no traceback), that no `.done` file was
written for the failed job, and that the registry and earlier results are unchanged.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from dltemplate.errors import RegistryError
from dltemplate.layout import RunLayout
from dltemplate.registry.model import load_registry
from dltemplate.registry.run_paths import check_run_paths
from tests.conftest import BIN, Project
from tests.warm_server import start_warm_server, warm_env

REGISTRY = "configs/projects/tiny.yaml"


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("Error:")]
    assert lines, output
    assert "Traceback" not in output, output
    return lines[0]


def registry_with_runs(runs: str) -> str:
    return (
        "description: P\nexperiments:\n  exp:\n    description: E\n    runs:\n"
        + textwrap.indent(textwrap.dedent(runs), "      ")
    )


# -- the registry ------------------------------------------------------------------------------
def test_duplicate_run_names_are_refused_with_their_line(tmp_path: Path) -> None:
    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "p.yaml").write_text(
        registry_with_runs(
            """\
            a: {description: R, config: configs/digits_mlp.py}
            a: {description: again, config: configs/digits_cnn.py}
            """
        )
    )
    with pytest.raises(
        RegistryError, match=r"p\.yaml:7:\d+ does not parse as YAML: found duplicate key 'a'"
    ):
        load_registry(folder)


@pytest.mark.parametrize(
    ("config", "ckpt", "message"),
    [
        ("configs/nope.py", None, "config configs/nope.py does not exist"),
        ("../outside.py", None, "must be a relative path under configs/"),
        ("/etc/passwd", None, "must be a relative path under configs/"),
        ("configs/../../x.py", None, "must be a relative path under configs/"),
        (
            "configs/digits_mlp.py",
            "/tmp/x.ckpt",
            "ckpt '/tmp/x.ckpt' must lie under results/ or data/",
        ),
        (
            "configs/digits_mlp.py",
            "results/../../x.ckpt",
            "must lie under results/ or data/",
        ),
        ("configs/digits_mlp.py", "results/none.ckpt", "ckpt results/none.ckpt does not exist"),
    ],
)
def test_run_paths_stay_inside_the_project(project: Project, config, ckpt, message) -> None:
    extra = f", ckpt: {ckpt}, jobs: [test]" if ckpt else ""
    project.write(REGISTRY, registry_with_runs(f"r: {{description: R, config: {config}{extra}}}\n"))
    cwd = os.getcwd()
    os.chdir(project.root)
    try:
        run = load_registry("configs/projects").run("tiny", "exp", "r")
        with pytest.raises(RegistryError, match=f"tiny.yaml: run tiny/exp/r: .*{message}"):
            check_run_paths(run)
    finally:
        os.chdir(cwd)


def test_a_run_with_a_missing_config_stops_only_itself(project: Project) -> None:
    project.write(
        REGISTRY,
        registry_with_runs(
            """\
            gone: {description: R, config: configs/nope.py}
            fine: {description: R, config: configs/digits_mlp.py}
            """
        ),
    )
    result = project.snakemake("-n", "--cores", "1", "results/tiny/exp/gone/fit.done", check=False)
    assert result.returncode != 0
    assert "run tiny/exp/gone: config configs/nope.py does not exist" in one_error_line(
        result.stderr
    )
    project.snakemake("-n", "--cores", "1", "results/tiny/exp/fine/fit.done")


@pytest.mark.parametrize("name", ["../x", "a/b", "a b", "a,b", "a=b", "", "x" * 65, "MLP"])
def test_bad_run_names_leave_the_registry_unchanged(project: Project, name: str) -> None:
    project.write(
        REGISTRY, registry_with_runs("mlp: {description: R, config: configs/digits_mlp.py}\n")
    )
    before = project.path(REGISTRY).read_text()
    result = project.main(
        "add-run",
        "-p",
        "tiny",
        "-e",
        "exp",
        "-n",
        name,
        "-d",
        "D",
        "-c",
        "configs/digits_mlp.py",
        "--no-check",
        check=False,
    )
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "differ in more than case" in line or "Invalid run name" in line
    assert project.path(REGISTRY).read_text() == before


def test_unknown_job_type_in_r(project: Project) -> None:
    result = project.main(
        "add-run",
        "-p",
        "tiny",
        "-e",
        "exp",
        "-n",
        "x",
        "-d",
        "D",
        "-c",
        "configs/digits_mlp.py",
        "-r",
        "fit,train",
        check=False,
    )
    assert result.returncode != 0
    assert "unknown job type(s) train" in result.stderr and "Traceback" not in result.stderr


# -- faults while writing ----------------------------------------------------------------------
def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path: Path) -> None:
    """A real file-size limit (as a full disk) makes the second, larger save fail."""
    code = textwrap.dedent(
        f"""
        import resource, signal, torch
        from dltemplate.jobs.checkpointing import AtomicCheckpointIO, CheckpointWriteError
        path = {str(tmp_path / "last.ckpt")!r}
        io = AtomicCheckpointIO()
        io.save_checkpoint({{"weights": torch.zeros(10)}}, path)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        try:
            io.save_checkpoint({{"weights": torch.zeros(100_000)}}, path)
        except CheckpointWriteError as exc:
            print("ERROR", exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert (
        "ERROR Could not write the checkpoint" in result.stdout
        and "previous last.ckpt is kept" in result.stdout
    )
    assert torch.load(tmp_path / "last.ckpt")["weights"].shape == (10,)
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_write_past_the_file_size_limit_ends_the_job_with_one_line(tmp_path: Path) -> None:
    """A real failing write (a file-size limit, as a full disk: EFBIG from write(2)) of a record
    inside a job's log: one line naming the file, no traceback, no file left behind.

    Broken on purpose: without the path that write_text_atomic (dltemplate/records.py) adds to
    the OSError (write(2)'s error names no file), job_log keeps the traceback and this test
    fails; so it did before that was added."""
    target = tmp_path / "results/p/e/r/hparams.yaml"
    code = textwrap.dedent(
        f"""
        import resource, signal
        from dltemplate.jobs.logs import job_log
        from dltemplate.records import write_yaml_atomic
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        with job_log({str(tmp_path / "job.log")!r}):
            resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
            write_yaml_atomic({str(target)!r}, {{"values": list(range(10_000))}})
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert one_error_line(result.stderr) == (
        f"Error: Cannot write or read {target}: File too large; the file size limit (ulimit -f) "
        "is too low, then rerun the same target (earlier checkpoints and results are kept)"
    )
    assert list(target.parent.iterdir()) == []  # neither the record nor its temp file


# -- faults during a fit -----------------------------------------------------------------------
NAN_CONFIG = '''\
"""The MLP digits config with a loss that turns NaN at a given optimizer step."""

import torch
from torch import nn

from dltemplate import RootConfig
from wrappers import BasicTaskWrapper

from .components.data_wrappers.digits import get_data_wrapper
from .components.models.mlp import get_model
from .components.task_wrappers.classifier import get_classifier
from .components.trainers.default import get_trainer


class NanAfter(nn.Module):
    def __init__(self, *, step: int) -> None:
        super().__init__()
        self.step = step
        self.calls = 0

    def forward(self, output, target):
        loss = nn.functional.cross_entropy(output, target)
        if self.training:
            self.calls += 1
            if self.calls > self.step:
                return loss * torch.tensor(float("nan"))
        return loss


def get_task_wrapper(*, nan_after_step: int = 30) -> BasicTaskWrapper:
    wrapper = get_classifier(model=get_model(hidden_dim=16))
    wrapper.loss_function = NanAfter(step=nan_after_step)
    return wrapper


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer)
'''


@pytest.mark.slow
def test_nan_loss_stops_the_fit_and_keeps_the_last_good_checkpoint(project: Project) -> None:
    project.write("configs/nan_loss.py", NAN_CONFIG)
    project.write(
        REGISTRY,
        registry_with_runs(
            """\
            nan:
              description: the loss turns NaN in epoch 2
              config: configs/nan_loss.py
              overrides: {trainer.max_epochs: 3, data_wrapper.batch_size: 64}
            """
        ),
    )
    target = "results/tiny/exp/nan/fit.done"
    result = project.snakemake("--cores", "1", target, check=False)
    assert result.returncode != 0
    # 1,257 training samples in batches of 64: 20 steps an epoch, so step 31 is in epoch 2.
    line = one_error_line(result.stderr)
    assert "The training loss became nan at epoch 2, step 31" in line
    assert "trainer.stop_on_nonfinite_loss=false" in line
    assert not project.path(target).exists()
    last = project.path("results/tiny/exp/nan/checkpoints/last.ckpt")
    state = torch.load(last, weights_only=False)
    assert state["global_step"] == 20  # the end of epoch 1: the last good state
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())

    registry = project.path(REGISTRY)
    registry.write_text(
        registry.read_text().replace(
            "max_epochs: 3,", "max_epochs: 3, trainer.stop_on_nonfinite_loss: false,"
        )
    )
    project.snakemake("--cores", "1", target)
    assert (
        "Non-finite loss nan at epoch 2, step 31"
        in project.path("results/tiny/exp/nan/logs/fit.log").read_text()
    )
    assert json.loads(project.path(target).read_text())["epochs"] == 3


@pytest.mark.slow
@pytest.mark.parametrize("start", ["cold", "warm"])
def test_second_snakemake_is_locked_out_and_ctrl_c_leaves_a_resumable_fit(
    project: Project, start: str, tmp_path: Path
) -> None:
    """The first fit is held open in epoch 2 by a test hook (tests/fit_hooks.py) until the
    second Snakemake has been turned away and the Ctrl-C has arrived: no race with a clock.

    A resume, not a restart: the trace hook records the global step at which each attempt
    starts training, and the second must start at the Ctrl-C's checkpoint.
    Broken on purpose: with the fit's `ckpt_path` forced to None (dltemplate/jobs/fit.py, a
    silent restart from scratch) the trace reads [0, 0] and this test fails. Warm (the job in
    a fork of the warm server, dltemplate.warm), the Ctrl-C reaches the fit through its job's
    script, and ends it as it ends a cold one."""
    starts = {"DLT_WARM": "0"}
    if start == "warm":
        starts = warm_env(tmp_path / "warm")
        start_warm_server(project.root, starts)
    config = project.add_fit_hooks()
    project.write(
        REGISTRY,
        registry_with_runs(
            f"""\
            long:
              description: held open in epoch 2 until Ctrl-C
              config: {config}
              overrides: {{trainer.max_epochs: 3, task_wrapper.model.hidden_dim: 16, data_wrapper.batch_size: 256}}
            """
        ),
    )
    target = "results/tiny/exp/long/fit.done"
    hold = project.path("release")
    first = subprocess.Popen(
        [str(BIN / "snakemake"), "--cores", "1", target],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        env={
            **os.environ,
            **starts,
            "DLT_TEST_HOLD": f"1,2,{hold}",
            "DLT_TEST_TRACE": "trace.json",
        },
    )
    deadline = time.monotonic() + 300
    while not Path(f"{hold}.held").exists():
        assert time.monotonic() < deadline and first.poll() is None, "the fit was not held"
        time.sleep(0.1)

    second = project.snakemake("--cores", "1", target, check=False)
    assert second.returncode != 0
    assert "cannot be locked" in second.stderr and "--unlock" in second.stderr

    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C in the terminal
    first.communicate(timeout=120)
    assert first.returncode != 0
    assert not project.path(target).exists()
    saved = json.loads(project.path("results/tiny/exp/long/checkpoints/last.json").read_text())
    assert saved["global_step"] == 5 + 3  # 5 steps an epoch; held after epoch 2's third batch
    assert saved["why"] == "interrupted (Ctrl-C)"  # named as what the user did
    log = project.path("results/tiny/exp/long/logs/fit.log").read_text()
    assert "Fit stopped by Ctrl-C in epoch 2, step 8" in log
    assert log.startswith("Warm start") == (start == "warm")

    project.snakemake("--cores", "1", target, env={"DLT_TEST_TRACE": "trace.json"})
    assert json.loads(project.path(target).read_text())["resumed_from_step"] == saved["global_step"]
    trace = json.loads(project.path("results/tiny/exp/long/trace.json").read_text())
    assert trace["starts"] == [0, saved["global_step"]]  # trained only the remaining batches


class Payload:
    """Anything that is not plain data: unpickling it could run code."""


def test_checkpoints_load_weights_only(tmp_path: Path) -> None:
    from dltemplate.config.build import build_run
    from dltemplate.jobs.checkpointing import CheckpointError, check_checkpoint
    from tests.conftest import FIXTURE

    built = build_run(
        FIXTURE / "configs/digits_mlp.py", overrides={"task_wrapper.model.hidden_dim": 8}
    )
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": built.task_wrapper.state_dict(), "extra": Payload()}, path)
    with pytest.raises(
        CheckpointError,
        match=r"safe loading \(weights_only\) refuses .*Payload.*DLT_TRUST_CHECKPOINTS=1",
    ):
        check_checkpoint(path, built.task_wrapper, "way out")
    os.environ["DLT_TRUST_CHECKPOINTS"] = "1"
    try:
        check_checkpoint(path, built.task_wrapper, "way out")
    finally:
        del os.environ["DLT_TRUST_CHECKPOINTS"]


def test_batch_size_larger_than_the_split_works() -> None:
    from torch.utils.data import TensorDataset

    from wrappers import BasicDataWrapper

    data = BasicDataWrapper(
        train_dataset=TensorDataset(torch.zeros(5, 2), torch.zeros(5)),
        test_dataset=TensorDataset(torch.zeros(3, 2), torch.zeros(3)),
        batch_size=64,
    )
    data.setup()
    assert [len(b[0]) for b in data.test_dataloader()] == [3]


@pytest.mark.slow
def test_test_of_a_run_whose_fit_fails_writes_nothing(project: Project) -> None:
    project.write(
        REGISTRY,
        registry_with_runs(
            "bad: {description: R, config: configs/digits_mlp.py, overrides: {trainer.max_epochs: -5x}}\n"
        ),
    )
    result = project.snakemake("--cores", "1", "results/tiny/exp/bad/test.done", check=False)
    assert result.returncode != 0
    assert "Override trainer.max_epochs='-5x'" in one_error_line(result.stderr)
    assert not any(project.path("results/tiny/exp/bad").glob("*.done"))


@pytest.mark.slow
def test_results_that_cannot_be_written_stop_the_job_with_one_line(project: Project) -> None:
    """The run's checkpoints/ folder is immutable (chattr +i: even root cannot write there), so
    the fit itself fails at its first file there: the template's one line, not Snakemake's.

    Broken on purpose: without the OSError branch of job_log (dltemplate/jobs/logs.py) the job
    ends with a traceback and no "Error:" line, and this test fails; before write_text_atomic
    (dltemplate/records.py) named the record, the line named its absolute temp file."""
    run = RunLayout.of("tiny", "exp", "mlp")
    checkpoints = project.path(run.checkpoints)
    checkpoints.mkdir(parents=True)
    if subprocess.run(["chattr", "+i", str(checkpoints)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        result = project.snakemake("--cores", "1", "results/tiny/exp/mlp/fit.done", check=False)
    finally:
        subprocess.run(["chattr", "-i", str(checkpoints)], check=True)
    assert result.returncode != 0
    assert one_error_line(result.stderr) == (
        f"Error: Cannot write or read {run.fit_state}: Operation not permitted; fix the "
        "permissions (or the immutable flag), then rerun the same target (earlier checkpoints "
        "and results are kept)"
    )
    assert list(checkpoints.iterdir()) == []
    assert not project.path("results/tiny/exp/mlp/fit.done").exists()
