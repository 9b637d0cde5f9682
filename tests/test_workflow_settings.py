"""configs/workflow.yaml (and --config) is validated at parse time, errors naming the key."""

from __future__ import annotations

import pytest
import yaml

from dltemplate.errors import UserError
from dltemplate.workflow.settings import check_workflow_config
from tests.conftest import REPO, Project


def shipped() -> dict:
    return yaml.safe_load((REPO / "configs/workflow.yaml").read_text())


def test_the_shipped_workflow_config_is_valid() -> None:
    assert check_workflow_config(shipped())


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "archive_format",
            "tar",
            r"at archive_format: 'tar' is not one of \['py', 'zip', 'folder'\]",
        ),
        ("seed", -1, r"at seed: -1 is less than the minimum of 0"),
        ("seed", 2**32, r"at seed: 4294967296 is greater than the maximum"),
        ("threads", {"fit": 0}, r"at threads.fit: 0 is less than the minimum of 1"),
        ("checkpoint", {"every_n_epoch": 1}, r"at checkpoint: .*every_n_epoch.*allowed keys"),
        ("resources", {"fit": {"runtime": "soon"}}, r"at resources.fit.runtime"),
        (
            "archive_fromat",
            "py",
            r"at \(top level\): .*archive_fromat.*allowed keys: archive_format",
        ),
    ],
)
def test_a_bad_setting_names_its_key(key: str, value: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_workflow_config({**shipped(), key: value})


def test_snakemake_refuses_a_bad_setting_in_one_line_before_running_anything(
    project: Project,
) -> None:
    result = project.snakemake("-n", "--config", "archive_format=tar", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: Workflow config (configs/workflow.yaml or --config): at archive_format: 'tar' "
        "is not one of ['py', 'zip', 'folder']"
    ], output
