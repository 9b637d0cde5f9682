"""Mistakes around the command line itself: a reader that leaves early, init's reach, the warm
server's idle setting (docs/errors.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dltemplate.warm.place import IDLE_ENV, IDLE_SECONDS, idle_seconds
from tests.conftest import Project, make_project
from tests.test_cli_commands import cli

OTHER_PROJECT = """\
# someone else's project, without ids
description: Other
experiments:
  one: {description: One}
"""


@pytest.mark.parametrize("command, status", [("warm", 141), ("ls", 1)])  # ls: Rich's own exit
def test_a_reader_that_leaves_early_ends_the_command_quietly(
    project: Project, command: str, status: int
) -> None:
    argv = [sys.executable, str(project.root / "main.py"), command]
    pipe = subprocess.PIPE
    reader = subprocess.Popen(argv, cwd=project.root, stdout=pipe, stderr=pipe)
    reader.stdout.close()  # `| head` that has read enough
    stderr = reader.stderr.read().decode()
    assert (reader.wait(timeout=60), stderr) == (status, "")


def test_init_writes_only_its_own_project_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    project = make_project(tmp_path / "proj", OTHER_PROJECT)
    monkeypatch.chdir(project.root)
    before = project.path("configs/projects/tiny.yaml").read_text()
    code, out, err = cli(capsys, "init", "-pn", "mine", "-pd", "P", "-en", "e", "-ed", "E")
    assert code == 0, err
    assert project.path("configs/projects/tiny.yaml").read_text() == before
    assert project.path("configs/projects/mine.yaml").is_file()
    # the new id is above the ones shown for the others, so no id is given twice
    code, out, _ = cli(capsys, "ls", "--json")
    assert code == 0 and '"id": 1' in out and '"id": 2' in out


@pytest.mark.parametrize(
    "value, seconds",
    [("0", 10.0), ("-5", 10.0), ("0.001", 10.0), ("abc", IDLE_SECONDS), ("nan", IDLE_SECONDS),
     ("inf", IDLE_SECONDS), ("120", 120.0)],
)  # fmt: skip
def test_warm_idle_below_the_minimum_or_not_a_number_is_not_a_server_per_job(
    value: str, seconds: float
) -> None:
    assert idle_seconds({IDLE_ENV: value}) == seconds
