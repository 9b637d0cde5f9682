"""`main.py diff RUN_A RUN_B` on two real runs (tests/conftest.py `finished_runs`).

Broken on purpose: with `compare` leaving out the archived config's source, or reading the
overrides from the registry instead of the archive, the a-b test fails; with RunFolder not
checking the jobs' records, the unfinished run is compared and its test fails.
"""

from __future__ import annotations

import json
import shutil

import pytest

from dltemplate.layout import RunLayout
from tests.conftest import Project

pytestmark = pytest.mark.slow

A, B = "tiny/exp/a", "tiny/exp/b"


def diff_json(project: Project, a: str, b: str) -> dict:
    return json.loads(project.main("diff", a, b, "--json").stdout)["differences"]


def copy_run(project: Project, name: str) -> RunLayout:
    """A copy of run a's folder under another name (as if brought from another machine)."""
    layout = RunLayout.of("tiny", "exp", name)
    shutil.copytree(
        project.path(RunLayout.of("tiny", "exp", "a").folder), project.path(layout.folder)
    )
    return layout


def test_the_same_run_twice_differs_in_nothing(finished_runs: Project) -> None:
    result = finished_runs.main("diff", A, A)
    assert result.stdout.strip() == f"{A} and {A}: no difference"
    assert diff_json(finished_runs, A, A) == {}


def test_two_runs_differ_in_what_made_them(finished_runs: Project) -> None:
    found = diff_json(finished_runs, A, B)
    assert found["overrides"] == {"task_wrapper.model.hidden_dim": [32, 16]}
    assert found["hparams"]["task_wrapper.model.hidden_dim"] == [32, 16]
    assert "seed" not in found["hparams"]
    assert found["seed"] == {"seed": [42, 7]}
    # the model getter's comment changed between the runs (the commit after a)
    config = "\n".join(found["config"])
    assert "--- a/configs/components/models/mlp.py" in config
    comment = "    in_features: int = 64,  # 8x8 digits"
    assert f"-{comment}\n+{comment}, flattened" in config
    assert "configs/digits_mlp.py" not in config  # a ran its uncommitted edit, b its commit
    fit = found["environment"]["fit"]
    assert set(fit) == {"commit", "dirty", "diff"}
    assert fit["dirty"] == [True, False]
    assert fit["diff"][0].endswith("(1 files: configs/digits_mlp.py)") and fit["diff"][1] is None
    assert "packages" not in found  # one machine, one venv
    assert set(found["metrics"]) >= {"test/loss", "test/acc"}
    # side by side, for people
    text = finished_runs.main("diff", A, B).stdout
    for expected in ("overrides", "seed", "test metrics", "config source", A, B, "hidden_dim"):
        assert expected in text


def test_other_packages_are_named(finished_runs: Project) -> None:
    other = copy_run(finished_runs, "a_elsewhere")
    packages = finished_runs.path(other.packages())
    listed = packages.read_text()
    torch = next(line for line in listed.splitlines() if line.startswith("torch=="))
    packages.write_text(listed.replace(torch, "torch==0.0.1"))
    found = diff_json(finished_runs, A, "tiny/exp/a_elsewhere")
    assert found["packages"] == {"torch": [torch.split("==")[1], "0.0.1"]}
    assert set(found) == {"packages"}


def test_missing_and_unfinished_runs_are_one_line(finished_runs: Project) -> None:
    missing = finished_runs.main("diff", A, "tiny/exp/nope", check=False)
    assert missing.returncode == 1
    assert missing.stderr == (
        "Error: No run folder results/tiny/exp/nope for tiny/exp/nope; list the runs with: "
        "main.py ls -p tiny -e exp\n"
    )
    unfinished = copy_run(finished_runs, "a_running")
    record_file = finished_runs.path(unfinished.record("test"))
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "status": "running"}))
    result = finished_runs.main("diff", "tiny/exp/a_running", A, check=False)
    assert result.returncode == 1
    assert result.stderr == (
        "Error: Run tiny/exp/a_running is not finished: its test job is running "
        "(results/tiny/exp/a_running/records/test.json); finish it first: main.py exec -p tiny "
        "-e exp -n a_running\n"
    )
    bad = finished_runs.main("diff", A, "tiny/a", check=False)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
