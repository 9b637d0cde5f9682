"""What the engine calls on the wrappers is declared once (dltemplate/contracts.py) and
checked when a run is built, in one line that names the config, the wrapper and the member.

A plain LightningModule and LightningDataModule (not the basic wrappers) build and get the
declared defaults; a member of the wrong kind, or a hook that the job runs and the wrapper lacks,
fails the build (`build_run`, and `main.py hparams`) before anything runs.

Broken on purpose: with `member_problem` returning None at once, the 11 wrong-kind tests failed
(each config built, `main.py hparams` of bad_split.py exited 0, and the read after the build
returned the wrong member); with `_check_hooks` raising nothing, the 6 missing-hook tests failed
(the plain Task built for the test job without a `test_step`, which Lightning's `trainer.test`
refuses only once the job runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dltemplate import contracts
from dltemplate.config.build import build_run
from dltemplate.errors import ContractError
from dltemplate.jobs.export import model_inputs, preprocessing_note
from dltemplate.jobs.monitors import MonitorCheck, check_before_fit
from dltemplate.jobs.task_kind import batch_target, declared_kind
from dltemplate.layout import JOB_TYPES
from tests.conftest import REPO, Project

PLAIN = '''\
"""Plain Lightning classes: only the hooks a fit runs."""
import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dltemplate import RootConfig


class Task(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 3)

    def forward(self, x):
        return self.layer(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Data(L.LightningDataModule):
    def train_dataloader(self):
        data = TensorDataset(torch.randn(8, 4), torch.randint(0, 3, (8,)))
        return DataLoader(data, batch_size=4)


def get_task() -> Task:
    task = Task()
    # task
    return task


def get_data() -> Data:
    data = Data()
    # data
    return data


def get_trainer() -> dict:
    return {"max_epochs": 1}


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_task, data_wrapper=get_data, trainer=get_trainer)
'''
DOCS = "(see docs/own-task.md#the-wrappers-contract)"


def config(tmp_path: Path, task: str = "", data: str = "", replace: tuple[str, str] = ("", "")):
    """The PLAIN config with a line added to a getter (`task.split_batch = 'first'`) or a
    piece of it replaced (a hook renamed away)."""
    text = PLAIN.replace("# task", task or "pass").replace("# data", data or "pass")
    path = tmp_path / "plain.py"
    path.write_text(text.replace(*replace) if replace[0] else text)
    return path


def refusal(path: Path, job: str | None = "fit") -> str:
    with pytest.raises(ContractError) as caught:
        build_run(path, job=job)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_plain_lightning_module_and_data_module_build_and_get_the_defaults(
    tmp_path: Path,
) -> None:
    built = build_run(config(tmp_path), job="fit")
    task, data = built.task_wrapper, built.data_wrapper
    assert contracts.split_batch_of(task) is contracts.split_positional
    assert contracts.task_kind_of(task) is None
    assert contracts.loss_function_of(task) is None
    assert contracts.lr_scheduler_of(task) is None
    assert contracts.logged_metric_names_of(task) is None
    assert contracts.set_threads_of(data) is contracts.keep_threads
    assert contracts.predict_from_of(data)(tmp_path / "new.npy") is None
    assert contracts.input_reader_of(data) is None


def test_the_jobs_use_the_defaults_of_a_plain_module(tmp_path: Path) -> None:
    built = build_run(config(tmp_path), job="fit")
    task, data = built.task_wrapper, built.data_wrapper
    x, y = torch.randn(2, 4), torch.tensor([0, 2])
    assert model_inputs(task, (x, y))[0] is x
    assert batch_target((x, y), task) is y
    assert batch_target(x, task) is None  # a lone tensor: inputs, no target
    assert declared_kind(task) is None
    assert "what the data wrapper's dataset yields" in preprocessing_note(data)
    trainer = type("Trainer", (), {"callbacks": []})()
    assert isinstance(check_before_fit(trainer, task, "fix"), MonitorCheck)  # names unknown


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "task.split_batch = 'first'",
            "split_batch is str 'first', not a function batch -> (inputs, target)",
        ),
        (
            "task.logged_metric_names = ['val/loss']",
            "logged_metric_names is list ['val/loss'], not a method returning a list of str",
        ),
        (
            "task.logged_metric_names = lambda: ['val/loss', 3]",
            "logged_metric_names() returns list ['val/loss', 3], not a list of str",
        ),
        (
            "task.task_kind = 'ranking'",
            "task_kind is str 'ranking', not one of 'classification', 'multilabel', 'regression'",
        ),
        ("task.lr_scheduler = 0.1", "lr_scheduler is float 0.1, not a factory optimizer"),
        ("task.loss_function = 'mse'", "loss_function is str 'mse', not a loss"),
    ],
)
def test_a_task_wrapper_member_of_the_wrong_kind_fails_the_build(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = config(tmp_path, task=line)
    message = refusal(path)
    assert message.startswith(
        f"Config {path}: the task_wrapper getter returned a plain.Task whose {problem}"
    )
    assert message.endswith(DOCS)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("data.set_threads = 4", "set_threads is int 4, not a method set_threads(threads: int)"),
        ("data.predict_from = 'x.npy'", "predict_from is str 'x.npy', not a method path ->"),
        ("data.input_reader = 'x'", "input_reader is str 'x', not a function path ->"),
    ],
)
def test_a_data_wrapper_member_of_the_wrong_kind_fails_the_build(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = config(tmp_path, data=line)
    assert f"the data_wrapper getter returned a plain.Data whose {problem}" in refusal(path)


def test_a_hook_that_the_job_runs_is_required(tmp_path: Path) -> None:
    predicts = "data.predict_dataloader = data.train_dataloader"
    path = config(tmp_path, data=predicts, replace=("def training_step", "def train_step"))
    assert refusal(path) == (
        f"Config {path}: the task_wrapper getter returned a plain.Task without training_step, "
        f"which the fit job runs; define it {DOCS}"
    )
    built = build_run(path, job="predict")  # predict runs forward
    assert contracts.split_batch_of(built.task_wrapper) is contracts.split_positional


@pytest.mark.parametrize(
    ("job", "missing"),
    [
        ("validate", "task_wrapper getter returned a plain.Task without validation_step"),
        ("test", "task_wrapper getter returned a plain.Task without test_step"),
        ("predict", "data_wrapper getter returned a plain.Data without predict_dataloader"),
        (
            "export",
            "data_wrapper getter returned a plain.Data without either predict_dataloader or "
            "test_dataloader, which the export job runs",
        ),
    ],
)
def test_each_job_names_the_hook_it_lacks(tmp_path: Path, job: str, missing: str) -> None:
    assert missing in refusal(config(tmp_path), job=job)


def test_predict_takes_predict_step_or_forward(tmp_path: Path) -> None:
    predicts = "data.predict_dataloader = data.train_dataloader"
    forward = ("def forward(self, x)", "def predict_step(self, x, batch_idx)")
    path = config(tmp_path, data=predicts, replace=forward)
    build_run(path, job="predict")
    assert "plain.Task without forward, which the export job runs" in refusal(path, job="export")


def test_a_getter_that_returns_no_data_module_is_named(tmp_path: Path) -> None:
    path = config(tmp_path, replace=("    data = Data()", "    data = [1, 2]"))
    assert refusal(path, job=None) == (
        f"Config {path}: the data_wrapper getter returned builtins.list, not a "
        "lightning.LightningDataModule; return BasicDataWrapper(...) (or your LightningDataModule)"
    )


def test_a_member_set_wrong_after_the_build_is_named_where_it_is_read(tmp_path: Path) -> None:
    task = build_run(config(tmp_path)).task_wrapper
    task.split_batch = 3
    with pytest.raises(ContractError, match=r"plain\.Task's split_batch is int 3, not a function"):
        batch_target((torch.zeros(1), torch.zeros(1)), task)


def test_every_job_has_its_hooks_and_the_docs_list_every_member_and_default() -> None:
    assert set(contracts.JOB_HOOKS) == set(JOB_TYPES)
    section = (REPO / "docs/own-task.md").read_text().split("## The wrappers' contract")[1]
    section = section.split("\n## ")[0]
    members = (*contracts.TASK_WRAPPER_MEMBERS, *contracts.DATA_WRAPPER_MEMBERS)
    assert all(f"`{member.name}`" in section and member.without in section for member in members)


BAD_SPLIT = '''\
"""The digits MLP whose task wrapper's split_batch is not a function."""
from dltemplate import RootConfig

from .components.data_wrappers.digits import get_data_wrapper
from .components.trainers.default import get_trainer
from .digits_mlp import get_task_wrapper as basic_task_wrapper


def get_task_wrapper(*, lr: float = 1e-3):
    task = basic_task_wrapper(lr=lr)
    task.split_batch = "first"
    return task


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer)
'''


def test_main_py_names_the_member_in_one_line(project: Project) -> None:
    project.write("configs/bad_split.py", BAD_SPLIT)
    result = project.main("hparams", "-c", "configs/bad_split.py", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: Config configs/bad_split.py: the task_wrapper getter returned a "
        "dltemplate.wrappers.task_wrappers.BasicTaskWrapper whose split_batch is str 'first', not a "
        f"function batch -> (inputs, target) {DOCS}"
    ]


def test_the_contract_module_loads_nothing_heavy() -> None:
    from tests.test_import_boundaries import heavy_imports_of

    assert heavy_imports_of(["dltemplate.contracts"]) == ""
