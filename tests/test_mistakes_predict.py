"""Mistakes with `main.py predict` (docs/errors.md): outputs it must not write (a run's folder,
the input, devices, anything but a regular file), inputs it cannot use (NaN rows, strings, a
folder, a path under a file). Each is one line, exit 1, and nothing written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from dltemplate.cli import main
from dltemplate.errors import UserError
from dltemplate.jobs.predict_paths import check_output_path
from tests.conftest import Project

PREDICT = ("predict", "-p", "tiny", "-e", "exp", "-n", "a")


@pytest.fixture
def fitted(finished_runs: Project, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The finished runs, read only: predict never writes into the project."""
    monkeypatch.chdir(finished_runs.root)
    return finished_runs


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    path = tmp_path / "new.npy"
    np.save(path, np.random.default_rng(0).uniform(0, 16, (6, 64)))
    return path


def refused(capsys: pytest.CaptureFixture, input_path: Path | str, output: Path | str) -> str:
    code = main([*PREDICT, "--input", str(input_path), "--output", str(output)])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1, err  # one line, no traceback
    return err


def test_an_output_inside_a_run_folder_is_refused(fitted: Project, digits: Path, capsys) -> None:
    predictions = fitted.path("results/tiny/exp/a/predictions.csv")
    predictions.parent.mkdir(exist_ok=True)
    before = predictions.read_bytes() if predictions.exists() else None
    err = refused(capsys, digits, "results/tiny/exp/a/predictions.csv")
    assert "lies inside the results root results/" in err
    assert (predictions.read_bytes() if predictions.exists() else None) == before


@pytest.mark.parametrize("spelling", ["same", "dotted", "link"])
def test_an_output_that_is_the_input_is_refused(
    fitted: Project, digits: Path, capsys, spelling: str
) -> None:
    output = {"same": digits, "dotted": digits.parent / "." / digits.name}.get(spelling)
    if spelling == "link":
        output = digits.parent / "link.csv"
        output.symlink_to(digits)
    before = digits.read_bytes()
    assert "is the input itself" in refused(capsys, digits, output)
    assert digits.read_bytes() == before


@pytest.mark.parametrize("output", ["/dev/full", "/dev/null", "/dev/stdout", "/proc/self/fd/1"])
def test_a_device_or_system_file_output_is_refused(tmp_path: Path, output: str) -> None:
    # Checked on the function, never through a predict that could write: a predict without
    # this check, run as root, replaces /dev/full with a regular file.
    with pytest.raises(UserError, match=f"Output {output} is a device or system file"):
        check_output_path(Path(output), tmp_path / "new.npy")


def test_a_device_node_as_output_is_refused(
    fitted: Project, digits: Path, tmp_path: Path, capsys
) -> None:
    node = tmp_path / "null"  # a stand-in for /dev/null, where losing it costs nothing
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    assert "exists and is not a regular file" in refused(capsys, digits, node)
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_an_output_that_is_not_a_regular_file_is_refused(
    fitted: Project, digits: Path, tmp_path: Path, capsys
) -> None:
    fifo, folder = tmp_path / "fifo", tmp_path / "folder"
    os.mkfifo(fifo)
    folder.mkdir()
    for output in (fifo, folder):
        assert "exists and is not a regular file" in refused(capsys, digits, output)
    assert "is a file, not a folder" in refused(capsys, digits, digits / "o.csv")


def test_nan_and_infinite_rows_are_named(fitted: Project, tmp_path: Path, capsys) -> None:
    samples = np.random.default_rng(0).uniform(0, 16, (9, 64))
    samples[2, 5], samples[7, 0] = np.nan, np.inf
    path = tmp_path / "bad.npy"
    np.save(path, samples)
    err = refused(capsys, path, tmp_path / "out.csv")
    assert f"Input {path} has NaN or infinite values in 2 row(s): 2, 7" in err
    assert not (tmp_path / "out.csv").exists()


def test_unusable_inputs_are_one_line_each(fitted: Project, tmp_path: Path, capsys) -> None:
    strings = tmp_path / "strings.npy"
    np.save(strings, np.array([["a"] * 64] * 2))
    (tmp_path / "folder.npy").mkdir()
    (tmp_path / "file").write_text("x")
    out = tmp_path / "out.csv"
    assert "holds str" in refused(capsys, strings, out)
    assert "is a folder" in refused(capsys, tmp_path / "folder.npy", out)
    assert "file is a file, not a folder" in refused(capsys, tmp_path / "file" / "x.npy", out)
    assert not out.exists()
