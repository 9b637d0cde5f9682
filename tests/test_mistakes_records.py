"""Damaged run folders (docs/errors.md): `main.py diff`, `show` and `reproduce` name the damaged
file in one line; `rm --purge` still removes the run. Each test damages a copy of the shared
finished runs, never the runs themselves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dltemplate.cli import main
from tests.conftest import Project

RUN = "results/tiny/exp/a"
READERS = [
    ("diff", "tiny/exp/a", "tiny/exp/b"),
    ("show", "tiny/exp/a"),
    ("reproduce", "tiny/exp/a"),
]


@pytest.fixture
def copy(finished_runs: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    root = tmp_path / "proj"
    shutil.copytree(finished_runs.root, root, symlinks=True)
    monkeypatch.chdir(root)
    return Project(root)


def edit_json(path: Path, **fields) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


DAMAGES = {
    "hparams.yaml missing": (
        lambda run: (run / "hparams.yaml").unlink(),
        "hparams.yaml",
        "it is missing",
    ),
    "hparams.yaml not YAML": (
        lambda run: (run / "hparams.yaml").write_text("task_wrapper: [\n"),
        "hparams.yaml",
        "not valid YAML",
    ),
    "hparams.yaml a list": (
        lambda run: (run / "hparams.yaml").write_text("- 1\n"),
        "hparams.yaml",
        "it holds a list, not a mapping",
    ),
    "a record field of the wrong type": (
        lambda run: edit_json(run / "records" / "fit.json", git="abc123"),
        "records/fit.json",
        "its 'git' is str 'abc123', not dict",
    ),
    "a metric that is text": (
        lambda run: edit_json(run / "test.done", metrics={"test/acc": "high"}),
        "test.done",
        "its metric 'test/acc' is not a number",
    ),
}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_damaged_run_folder_is_named_in_one_line(
    copy: Project, capsys: pytest.CaptureFixture, damage: str, command: tuple[str, ...]
) -> None:
    spoil, file, reason = DAMAGES[damage]
    if command[0] == "show" and damage == "hparams.yaml missing":
        pytest.skip("show shows any run, one without a fit too: no hparams.yaml is no damage")
    spoil(copy.path(RUN))
    code = main(list(command))
    out, err = capsys.readouterr()
    assert code == 1, out
    assert err == f"Error: {RUN}/{file} is damaged: {reason}" + err.split(reason, 1)[1]
    assert err.count("\n") == 1 and "restore it, or run the job that wrote it again" in err


@pytest.mark.parametrize("command", READERS, ids=lambda c: c[0])
def test_a_truncated_test_done_is_damaged_not_missing(
    copy: Project, capsys: pytest.CaptureFixture, command: tuple[str, ...]
) -> None:
    done = copy.path(f"{RUN}/test.done")
    done.write_bytes(done.read_bytes()[:30])  # a disk that filled up mid-write
    assert main(list(command)) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {RUN}/test.done is damaged: not valid JSON (")
    assert "no test metrics" not in err


def test_rm_purge_removes_a_damaged_run(copy: Project, capsys: pytest.CaptureFixture) -> None:
    run = copy.path(RUN)
    (run / "records" / "fit.json").write_text("[1]")
    (run / "records" / "test.json").write_text('{"status": ["done"], "pid": "x"}')
    (run / "hparams.yaml").write_text("a: [\n")
    assert main(["rm", "-p", "tiny", "-e", "exp", "-n", "a", "--purge", "-y"]) == 0
    assert not run.exists()
