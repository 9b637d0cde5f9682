"""The `hparams` command: the tree of overridable paths, JSON for scripts, and config errors
as one line with file and line through the command line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dltemplate.cli import main
from dltemplate.cli.common import add_set_option, set_overrides, workflow_settings
from dltemplate.errors import OverrideError
from dltemplate.registry.model import load_registry
from tests.conftest import FIXTURE, REPO


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    path = tmp_path / "workflow.yaml"
    path.write_text("seed: 17\n")
    return path


def hparams(*args: str, workflow: Path) -> list[str]:
    return ["hparams", "--workflow", str(workflow), *args]


def test_tree_shows_values_types_and_origins(capsys, workflow: Path) -> None:
    code = main(
        hparams(
            "-c",
            str(FIXTURE / "configs/digits_cnn.py"),
            "--set",
            "task_wrapper.model.dropout=0.3",
            workflow=workflow,
        )
    )
    out = capsys.readouterr().out
    assert code == 0
    lines = [line.strip("│├└─ ") for line in out.splitlines()]
    seed_line = (
        f"seed = 17 int default (workflow: seed in {workflow}, the global seed (GLOBAL_SEED))"
    )
    assert seed_line in " ".join(" ".join(lines).split())  # however the tree wraps it
    assert "dropout = 0.3  float  override" in lines
    assert "channels = 32  int  argument" in lines  # passed by get_task_wrapper
    assert "max_epochs = 20  int  default" in lines
    assert 'precision = "32-true"  str | int  default' in lines
    assert any(
        line.startswith("model  get_model()  ") and "small_cnn.py:" in line for line in lines
    )
    # A getter's own arguments come before the getters it calls.
    assert out.index("lr = 0.003  float  default") < out.index("model  get_model()")


def test_json_lists_every_path_and_the_hparams(capsys, workflow: Path) -> None:
    config = str(FIXTURE / "configs/digits_mlp.py")
    assert main(hparams("-c", config, "--json", "--set", "seed=3", workflow=workflow)) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["paths"]["seed"] == {
        "value": 3,
        "type": "int",
        "origin": "override",
        "from": "--set on the command line",
    }
    assert data["paths"]["task_wrapper.model.hidden_dim"] == {
        "value": 128,
        "type": "int",
        "origin": "argument",
    }
    assert data["paths"]["data_wrapper.batch_size"]["origin"] == "default"
    assert data["hparams"]["seed"] == 3
    assert data["hparams"]["objects"]["task_wrapper"]["model"]["_target_"] == "models.mlp.MLP"


def test_origins_of_an_archived_config(capsys, workflow: Path, tmp_path: Path) -> None:
    from dltemplate.config.archive import archive_config

    config = FIXTURE / "configs/digits_mlp.py"
    path = archive_config(config, tmp_path, "py", {"trainer.max_epochs": 3, "seed": 5})
    assert (
        main(hparams("-c", str(path), "--set", "trainer.limit_val_batches=2", workflow=workflow))
        == 0
    )
    lines = [line.strip("│├└─ ") for line in capsys.readouterr().out.splitlines()]
    assert "seed = 5  int  archived (the archived config's overrides)" in lines
    assert "max_epochs = 3  int  archived" in lines
    assert "limit_val_batches = 2  float | int  override" in lines
    # The getter's origin beside it; a long tmp_path (xdist's) wraps it at 120 columns.
    at = next(i for i, line in enumerate(lines) if line.startswith("model  get_model()"))
    assert str(path) in "".join(line.strip() for line in lines[at : at + 3]), lines[at : at + 3]


SEEDED_REGISTRY = """\
description: P
experiments:
  exp:
    description: E
    runs:
      plain: {description: R, config: configs/digits_mlp.py}
      own: {description: R, config: configs/digits_mlp.py, overrides: {seed: 7}}
  swept:
    description: S
    sweep: {config: configs/digits_mlp.py, grid: {task_wrapper.lr: [0.1]}, seeds: [3]}
"""


def test_hparams_of_a_run_says_where_its_seed_came_from(
    capsys, workflow: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The original's GLOBAL_SEED is the workflow's `seed`; a run's override or its
    experiment's sweep wins, and --set over all."""
    registry = tmp_path / "projects"
    registry.mkdir()
    (registry / "p.yaml").write_text(SEEDED_REGISTRY)
    monkeypatch.chdir(FIXTURE)  # the registry's configs/digits_mlp.py

    def seed(*args: str) -> dict:
        assert main(hparams("--registry", str(registry), "--json", *args, workflow=workflow)) == 0
        return json.loads(capsys.readouterr().out)["paths"]["seed"]

    assert seed("-p", "p", "-e", "exp", "-n", "plain") == {
        "value": 17,
        "type": "int",
        "origin": "default",
        "from": f"workflow: seed in {workflow}, the global seed (GLOBAL_SEED)",
    }
    own = seed("-p", "1", "-e", "1", "-n", "own")  # ids work too
    assert own["value"] == 7 and own["from"] == f"run p/exp/own: its overrides in {registry}/p.yaml"
    (swept,) = load_registry(registry).experiment("p", "swept").runs
    assert seed("-p", "p", "-e", "swept", "-n", swept)["from"] == (
        f"experiment p/swept: its sweep's seeds: in {registry}/p.yaml"
    )
    assert seed("-p", "p", "-e", "exp", "-n", "own", "--set", "seed=9")["value"] == 9
    assert main(hparams("-c", "configs/digits_mlp.py", "-n", "own", workflow=workflow)) == 1
    assert capsys.readouterr().err == (
        "Error: hparams takes a config (-c CONFIG) or a declared run (-p P -e E -n R)\n"
    )


def test_set_option_is_repeatable_and_strict() -> None:
    parser = argparse.ArgumentParser()
    add_set_option(parser)
    args = parser.parse_args(["--set", "a.b=3", "--set", "c=[1, 2]", "--set", "d=1e-3"])
    assert set_overrides(args) == {"a.b": 3, "c": [1, 2], "d": 0.001}  # YAML 1.2 floats
    with pytest.raises(OverrideError, match="given twice"):
        set_overrides(parser.parse_args(["--set", "a=1", "--set", "a=2"]))


def test_set_without_equals_is_one_clear_line(capsys, workflow: Path) -> None:
    code = main(
        hparams("-c", "configs/digits_mlp.py", "--set", "trainer.max_epochs", workflow=workflow)
    )
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: Override 'trainer.max_epochs'") and "has no '='" in err
    assert len(err.strip().splitlines()) == 1


def test_workflow_settings(tmp_path: Path) -> None:
    assert workflow_settings(tmp_path / "missing.yaml") == {}
    assert workflow_settings(REPO / "configs/workflow.yaml")["archive_format"] == "py"


GOOD = """\
from dltemplate import RootConfig

from .parts import get_inner


def get_outer(*, width: int = 4) -> dict:
    return {"inner": get_inner(depth=width)}


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_outer, data_wrapper=get_outer, trainer=get_outer)
"""
PARTS = """\
def get_inner(*, depth: int = 1, rate: float = 0.5) -> dict:
    return {"depth": depth, "rate": rate}
"""


@pytest.fixture
def package(tmp_path: Path) -> Path:
    folder = tmp_path / "errpkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "parts.py").write_text(PARTS)
    (folder / "main.py").write_text(GOOD)
    return folder


# (file to write, its text, extra --set, what the one line must contain)
CASES = {
    "missing file": (None, None, [], r"Config file .*nope\.py does not exist"),
    "no root getter": ("main.py", "X = 1\n", [], r"main\.py has no function get_root_config"),
    "syntax error": (
        "parts.py",
        "def get_inner(*, depth: int = 1:\n    pass\n",
        [],
        r"syntax error at .*parts\.py:1",
    ),
    "import error": (
        "parts.py",
        "\nimport not_a_module_anywhere\n",
        [],
        r"failed to import at .*parts\.py:2.*not_a_module_anywhere",
    ),
    "positional parameter": (
        "parts.py",
        "def get_inner(depth: int = 1):\n    return depth\n",
        [],
        r"parts\.py:1 getter get_inner\(\) has positional parameter 'depth'.*`\*,`",
    ),
    "getter raises": (
        "parts.py",
        "def get_inner(*, depth: int = 1):\n    x = 1\n    raise KeyError('boom')\n",
        [],
        r"task_wrapper getter raised KeyError at .*parts\.py:3: 'boom'",
    ),
    "unknown path": (None, "", ["task_wrapper.inner.rat=1"], r"closest: task_wrapper\.inner\.rate"),
    "wrong type": (None, "", ["task_wrapper.width=wide"], r"expected int, got str"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_errors_are_one_line_with_file_and_line(
    case: str, package: Path, capsys, workflow: Path
) -> None:
    file, text, sets, pattern = CASES[case]
    config = package / ("nope.py" if case == "missing file" else "main.py")
    if file:
        (package / file).write_text(text)
    args = ["-c", str(config)] + [a for s in sets for a in ("--set", s)]
    assert main(hparams(*args, workflow=workflow)) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), captured.err
    assert captured.out == ""
    import re

    assert re.search(pattern, lines[0]), lines[0]


def test_main_py_exits_non_zero(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "hparams", "-c", str(tmp_path / "none.py")],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: Config file ") and result.stderr.count("\n") == 1
    assert textwrap.dedent(result.stdout) == ""
