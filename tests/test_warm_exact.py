"""A warm job is a cold job, or it runs cold: what one job imports is not preloaded into the
next, edits are seen by content, and the environment a library reads at import is the job's.

The four cases an adversarial review found (issue #28), with the steps of tests/warm_steps.py:
a library that changes global state when imported, an edited preloaded library, a project file
edited with its size and modification time kept, environment variables read at import time.
tests/test_warm_differential.py trains real runs warm and cold and compares them.

Broken on purpose: with the server learning every module a job imported (server.is_safe
returning True), test_a_library_with_import_side_effects_stays_in_its_job fails (float64); with
fingerprint._content returning the file's size instead of its hash, the edit tests fail.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.warm_server import Warm, read

pytestmark = pytest.mark.slow  # every test starts a warm server

SIDE_EFFECT = "import torch\ntorch.set_default_dtype(torch.float64)\nVALUE = 1\n"


def _with_library(tmp_path: Path, name: str, text: str, preload: bool = False) -> Warm:
    """A project, and a library `name` outside it on the jobs' PYTHONPATH."""
    libs = tmp_path / "libs"
    (libs / name).mkdir(parents=True)
    (libs / name / "__init__.py").write_text(text)
    (tmp_path / "project").mkdir()
    config = {"warm_preload": [name]} if preload else {}
    warm = Warm(tmp_path / "project", tmp_path / "state", config)
    warm.pythonpath = f"{libs}{os.pathsep}{REPO}"
    return warm


def _edit_keeping_size_and_time(path: Path, old: str, new: str) -> None:
    assert len(old) == len(new)
    before = path.stat()
    path.write_text(path.read_text().replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `touch -r` would
    assert path.stat().st_size == before.st_size


def _sees(warm: Warm, **params) -> tuple[dict, str]:
    code, output, log, out = warm.run("reports_what_it_sees", **params)
    assert code == 0, output
    return json.loads(out.read_text()), read(log)


@pytest.mark.timeout(300)
def test_a_library_with_import_side_effects_stays_in_its_job(tmp_path: Path) -> None:
    warm = _with_library(tmp_path, "globlib", SIDE_EFFECT)
    try:
        assert warm.run("imports", module="globlib")[0] == 0  # starts the server, runs in it
        server = warm.wait_ready()
        code, output, log, _ = warm.run("imports", module="globlib")  # warm: its own import
        assert code == 0 and "Warm start" in read(log), output
        time.sleep(0.5)  # the server would learn it now
        seen, log = _sees(warm)
        assert seen["ppid"] == server and "Warm start" in log
        assert seen["dtype"] == "torch.float32" and not seen["loaded"], seen
        assert "globlib" not in read(warm.file("log"))
    finally:
        warm.stop()


@pytest.mark.timeout(300)
def test_an_edited_preloaded_library_restarts_the_server(tmp_path: Path) -> None:
    warm = _with_library(tmp_path, "mylib", "VALUE = 1\n", preload=True)
    library = tmp_path / "libs" / "mylib" / "__init__.py"
    try:
        assert warm.run("imports", module="mylib")[0] == 0
        first = warm.wait_ready()
        seen, log = _sees(warm, module="mylib")
        assert seen["loaded"] and seen["value"] == 1 and "Warm start" in log, seen  # preloaded
        _edit_keeping_size_and_time(library, "VALUE = 1", "VALUE = 2")
        seen, log = _sees(warm, module="mylib")
        assert seen["value"] == 2, seen
        second = warm.wait_ready(other_than=first)  # started by that job, which ran in it
        assert seen["ppid"] == second, seen
        assert f"(started for this job: a preloaded library changed ({library})" in log, log
        seen, log = _sees(warm, module="mylib")
        assert seen["ppid"] == second and seen["value"] == 2, seen
    finally:
        warm.stop()


@pytest.mark.timeout(300)
def test_project_code_edited_with_size_and_time_kept_is_seen(tmp_path: Path) -> None:
    (tmp_path / "project" / "mycode").mkdir(parents=True)
    module = tmp_path / "project" / "mycode" / "__init__.py"
    module.write_text("VALUE = 1\n")
    warm = Warm(tmp_path / "project", tmp_path / "state", {"warm_preload": ["mycode"]})
    try:
        assert warm.run("reports_state")[0] == 0
        first = warm.wait_ready()
        seen, log = _sees(warm, module="mycode")
        assert seen["loaded"] and seen["value"] == 1 and "Warm start" in log, seen
        _edit_keeping_size_and_time(module, "VALUE = 1", "VALUE = 3")
        seen, log = _sees(warm, module="mycode")
        assert seen["value"] == 3, seen
        assert f"(started for this job: the project's code changed ({module.resolve()})" in log
        assert seen["ppid"] == warm.wait_ready(other_than=first), seen
    finally:
        warm.stop()


@pytest.mark.timeout(300)
def test_project_code_is_not_preloaded_unless_listed(tmp_path: Path) -> None:
    (tmp_path / "project" / "mycode").mkdir(parents=True)
    (tmp_path / "project" / "mycode" / "__init__.py").write_text(SIDE_EFFECT)
    warm = Warm(tmp_path / "project", tmp_path / "state")
    try:
        assert warm.run("reports_state")[0] == 0
        warm.wait_ready()
        seen, log = _sees(warm)
        assert "Warm start" in log and seen["dtype"] == "torch.float32", seen
    finally:
        warm.stop()


@pytest.mark.timeout(300)
def test_import_time_variables_are_the_jobs(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    warm = Warm(tmp_path / "project", tmp_path / "state")
    own_tmp = tmp_path / "own-tmp"
    own_tmp.mkdir()
    try:
        assert warm.run("reports_state")[0] == 0
        default = warm.wait_ready()
        # read at import time (torchmetrics and torch fix folders under TMPDIR)
        other = warm.env(MPLBACKEND="svg", OPENBLAS_NUM_THREADS="1", TMPDIR=str(own_tmp))
        seen, log = _sees(warm, env=other)
        assert "(started for this job: no warm job server" in log, log  # not the default one
        assert seen["backend"] == "svg" and seen["openblas"] == "1", seen
        assert seen["ppid"] == warm.wait_ready(env=other) != default
        seen, log = _sees(warm, env=other)
        assert "Warm start" in log and seen["backend"] == "svg", seen
        assert seen["openblas"] == "1" and seen["tmp"] == str(own_tmp), seen
    finally:
        warm.stop()


@pytest.mark.timeout(300)
def test_an_edited_learned_module_restarts_the_server(tmp_path: Path) -> None:
    """A module of an import-safe library that the server learned from a job (mylib.sub) is
    checked for edits as the preloaded ones are."""
    warm = _with_library(tmp_path, "mylib", "", preload=True)
    sub = tmp_path / "libs" / "mylib" / "sub.py"
    sub.write_text("VALUE = 1\n")
    try:
        assert warm.run("imports", module="mylib")[0] == 0
        first = warm.wait_ready()
        seen, log = _sees(warm, module="mylib.sub")  # imported by the job, then learned
        assert not seen["loaded"] and seen["value"] == 1 and "Warm start" in log, seen
        deadline = time.monotonic() + 30
        while "learned" not in read(warm.file("log")) and time.monotonic() < deadline:
            time.sleep(0.1)
        seen, log = _sees(warm, module="mylib.sub")
        assert seen["loaded"] and seen["value"] == 1, seen  # the server holds it now
        _edit_keeping_size_and_time(sub, "VALUE = 1", "VALUE = 4")
        seen, log = _sees(warm, module="mylib.sub")
        assert seen["value"] == 4 and f"a preloaded library changed ({sub})" in log, log
        warm.wait_ready(other_than=first)
    finally:
        warm.stop()


@pytest.mark.timeout(300)
def test_any_other_variable_gets_its_own_server(tmp_path: Path) -> None:
    """Not only the variables known to be read at import: any but a terminal's."""
    (tmp_path / "project").mkdir()
    warm = Warm(tmp_path / "project", tmp_path / "state")
    try:
        assert warm.run("reports_state")[0] == 0
        default = warm.wait_ready()
        seen, log = _sees(warm, env=warm.env(TERM="other", DLT_TEST_MARKER="x"))
        assert seen["ppid"] == default and "Warm start" in log  # a terminal's: the same
        seen, log = _sees(warm, env=warm.env(SOME_LIBRARY_FLAG="1"))
        assert "(started for this job: no warm job server" in log, log
        assert seen["ppid"] != default, seen
    finally:
        warm.stop()


@pytest.mark.timeout(300)
def test_lightning_logs_through_the_root_logger_warm_as_cold(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    warm = Warm(tmp_path / "project", tmp_path / "state")
    try:
        code, output, log, out = warm.run("reports_logging", env=warm.env(DLT_WARM="0"))
        assert code == 0 and "start" not in read(log), output  # cold: warm jobs are off
        cold = json.loads(out.read_text())
        code, output, log, out = warm.run("reports_logging")
        assert code == 0 and "Warm start" in read(log), output
        assert json.loads(out.read_text()) == cold == {"handlers": 0, "propagate": True}
    finally:
        warm.stop()


@pytest.mark.timeout(300)
def test_a_folder_made_after_the_server_started_is_searched(tmp_path: Path) -> None:
    """A PYTHONPATH folder that a later rule makes: the server's import caches say it is not
    there; the job looks again, as a cold process does."""
    (tmp_path / "project").mkdir()
    warm = Warm(tmp_path / "project", tmp_path / "state")
    generated = tmp_path / "generated"
    warm.pythonpath = f"{generated}{os.pathsep}{warm.pythonpath}"
    try:
        assert warm.run("reports_state")[0] == 0
        warm.wait_ready()
        assert "Warm start" in _sees(warm)[1]
        (generated / "genmod").mkdir(parents=True)
        (generated / "genmod" / "__init__.py").write_text("VALUE = 7\n")
        seen, log = _sees(warm, module="genmod")
        assert "Warm start" in log and seen["value"] == 7, (seen, log)
    finally:
        warm.stop()
