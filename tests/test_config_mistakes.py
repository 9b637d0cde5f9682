"""Configs that return the wrong thing or leave a parameter untyped (issue 20, points 5-6).

Broken on purpose: without `_check_base` (dltemplate/contracts.py) a getter returning a plain
nn.Module passes `main.py hparams` and the fit dies in Lightning with `AttributeError: ...
save_hyperparameters`; without the default's type, `--set ...lr=abc` is accepted and the fit
dies comparing a float with a string.
"""

from __future__ import annotations

import pytest

from tests.conftest import Project

WRONG_PARTS = '''\
"""Getters that return the wrong parts."""
from torch import nn

from dltemplate import RootConfig

from .components.data_wrappers.digits import get_data_wrapper
from .components.trainers.default import get_trainer
from .digits_mlp import get_task_wrapper


def get_plain_module(*, width: int = 8) -> nn.Module:
    return nn.Linear(64, width)  # forgot the task wrapper


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_plain_module, data_wrapper=get_data_wrapper, trainer=get_trainer)


def get_swapped_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_data_wrapper, data_wrapper=get_task_wrapper, trainer=get_trainer)
'''

UNTYPED = '''\
"""A getter whose parameters have defaults but no type hints."""
from dltemplate import RootConfig

from .components.data_wrappers.digits import get_data_wrapper
from .components.models.mlp import get_model
from .components.task_wrappers.classifier import get_classifier
from .components.trainers.default import get_trainer


def get_task_wrapper(*, lr=1e-3, hidden=16):
    return get_classifier(model=get_model(hidden_dim=hidden), lr=lr)


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer)
'''


def error_line(result) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_getter_that_returns_a_plain_module_is_named(project: Project) -> None:
    project.write("configs/wrong_parts.py", WRONG_PARTS)
    line = error_line(project.main("hparams", "-c", "configs/wrong_parts.py", check=False))
    assert line == (
        "Error: Config configs/wrong_parts.py: the task_wrapper getter returned "
        "torch.nn.modules.linear.Linear, not a lightning.LightningModule; wrap the model: "
        "return BasicTaskWrapper(model=..., ...)"
    )


def test_swapped_getters_are_named(project: Project) -> None:
    text = WRONG_PARTS.replace("get_root_config_instance", "get_unused").replace(
        "get_swapped_config_instance", "get_root_config_instance"
    )
    project.write("configs/swapped.py", text)
    line = error_line(project.main("hparams", "-c", "configs/swapped.py", check=False))
    assert (
        "the task_wrapper getter returned dltemplate.wrappers.data_wrappers.BasicDataWrapper"
        in line
    )


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("task_wrapper.lr=abc", "task_wrapper.lr"),
        ("task_wrapper.hidden=0.5", "task_wrapper.hidden"),
    ],
)
def test_untyped_parameters_take_their_defaults_type(
    project: Project, assignment: str, message: str
) -> None:
    project.write("configs/untyped.py", UNTYPED)
    line = error_line(
        project.main("hparams", "-c", "configs/untyped.py", "--set", assignment, check=False)
    )
    assert message in line
    shown = project.main("hparams", "-c", "configs/untyped.py").stdout
    assert "float (from its default)" in shown and "int (from its default)" in shown


@pytest.mark.parametrize("inside_link", [False, True])
def test_add_run_refuses_a_config_outside_the_project_before_running_it(
    project: Project, tmp_path, inside_link: bool
) -> None:
    """Broken on purpose (no confinement in the CLI): the outside file runs (its marker
    appears) and "Added run" is printed before Snakemake refuses the run."""
    marker = tmp_path / "ran"
    outside = tmp_path / "elsewhere.py"
    outside.write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = str(outside)
    if inside_link:
        (project.path("configs") / "link.py").symlink_to(outside)
        config = "configs/link.py"
    registry = project.path("configs/projects/tiny.yaml").read_text()
    result = project.main(
        "add-run", "-p", "tiny", "-e", "exp", "-n", "x", "-d", "X", "-c", config, check=False
    )
    line = error_line(result)
    assert "must be a relative path under configs/" in line
    assert not marker.exists()  # never imported
    assert project.path("configs/projects/tiny.yaml").read_text() == registry
