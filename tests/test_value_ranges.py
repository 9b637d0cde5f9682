"""Values out of range are refused where they enter, in one line (issue 20, point 7).

Broken on purpose: without the range check, `seed=-1` ends in NumPy's ValueError traceback,
`data_wrapper.batch_size=0` in torch's, and `trainer.max_epochs=-1` trains until killed.
"""

from __future__ import annotations

import pytest

from dltemplate.errors import UserError
from dltemplate.jobs.trainer import check_bounded
from tests.conftest import Project


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        (
            "seed=-1",
            "Override seed=-1 from --set on the command line is out of range: seeds run from 0 to 4294967295",
        ),
        (
            "seed=4294967296",
            "Override seed=4294967296 from --set on the command line is out of range",
        ),
        (
            "task_wrapper.lr=" + "1" * 5000,
            "Override task_wrapper.lr from --set on the command line cannot be read (Exceeds the limit (4300 digits)",
        ),
        ("data_wrapper.batch_size=0", "batch_size must be at least 1, got {'train': 0"),
    ],
)
def test_out_of_range_values_get_one_line(project: Project, assignment: str, message: str) -> None:
    result = project.main(
        "hparams", "-c", "configs/digits_mlp.py", "--set", assignment, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {message}"), result.stderr


@pytest.mark.parametrize(
    "settings",
    [{"max_epochs": -1}, {"max_epochs": -5, "max_steps": 100}, {"max_epochs": -1, "max_steps": -1}],
)
def test_a_fit_without_an_end_is_refused(settings: dict) -> None:
    with pytest.raises(UserError, match=r"max_epochs=-\d+ never ends the fit"):
        check_bounded(settings)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_epochs": 0},
        {"max_epochs": 3},
        {"max_epochs": -1, "max_steps": 50},
        {"max_epochs": -1, "max_time": "00:01:00:00"},
    ],
)
def test_bounded_fits_pass(settings: dict) -> None:
    check_bounded(settings)


def test_when_every_split_is_empty_the_message_says_so() -> None:
    import torch
    from torch.utils.data import TensorDataset

    from wrappers import BasicDataWrapper

    data = BasicDataWrapper(
        train_dataset=TensorDataset(torch.zeros(0, 2), torch.zeros(0)),
        val_dataset=TensorDataset(torch.zeros(0, 2), torch.zeros(0)),
        test_dataset=TensorDataset(torch.zeros(0, 2), torch.zeros(0)),
    )
    data.setup("fit")
    with pytest.raises(UserError, match=r"The train, val, test, predict splits are empty"):
        data.val_dataloader()


def test_a_set_without_equals_exits_1_as_the_docs_say(project: Project) -> None:
    result = project.main("hparams", "-c", "configs/digits_mlp.py", "--set", "seed", check=False)
    assert result.returncode == 1 and "has no '='" in result.stderr
