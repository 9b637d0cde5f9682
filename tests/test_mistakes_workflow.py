"""Mistakes in the workflow config's output_dir (docs/errors.md): a link that loops, a folder
inside a Python environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from dltemplate.errors import UserError
from dltemplate.layout import RESULTS, use_results_root
from dltemplate.workflow.settings import apply_output_dir


@pytest.fixture(autouse=True)
def default_results_root():
    yield
    use_results_root(RESULTS)


def test_an_output_dir_that_is_a_link_loop_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(UserError, match="output_dir 'loop/results' cannot be followed to a folder"):
        apply_output_dir({"output_dir": "loop/results"}, tmp_path)


@pytest.mark.parametrize("output_dir", [".venv", ".venv/results", "env/results", "conda/out"])
def test_an_output_dir_inside_a_python_environment_is_refused(
    tmp_path: Path, output_dir: str
) -> None:
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "conda" / "conda-meta").mkdir(parents=True)
    with pytest.raises(UserError, match=r"inside the (project's \.venv/|Python environment)"):
        apply_output_dir({"output_dir": output_dir}, tmp_path)


def test_an_output_dir_elsewhere_is_still_fine(tmp_path: Path) -> None:
    assert apply_output_dir({"output_dir": "scratch/results"}, tmp_path) == "scratch/results"


def test_a_project_inside_the_interpreters_prefix_keeps_its_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.prefix", str(tmp_path))  # a container's /usr/local, say
    project = tmp_path / "app"
    project.mkdir()
    assert apply_output_dir({"output_dir": "results"}, project) == "results"
    (project / "env").mkdir()
    (project / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    with pytest.raises(UserError, match="inside the Python environment"):
        apply_output_dir({"output_dir": "env/lib/results"}, project)
