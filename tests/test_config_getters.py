"""Layer 1: loading config modules, resolving overrides by dotted path, recording hparams."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dltemplate.config.build import build_run
from dltemplate.config.getters import Build, call_root_getter
from dltemplate.config.loader import load_config_module, load_root_config
from dltemplate.config.values import check_value, parse_assignment
from dltemplate.errors import ConfigError, OverrideError

CONFIG = """\
from dltemplate import RootConfig

from .parts import get_inner


def get_outer(*, width: int = 4, rate: float = 0.5, mode: str = "a") -> dict:
    return {"width": width, "rate": rate, "inner": get_inner(depth=width)}


def get_trainer(*, max_epochs: int = 1) -> dict:
    return {"max_epochs": max_epochs}


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_outer, data_wrapper=get_outer, trainer=get_trainer)
"""
PARTS = """\
from typing import Literal


def get_inner(*, depth: int = 1, kind: Literal["x", "y"] = "x", scale: float | None = None) -> dict:
    return {"depth": depth, "kind": kind, "scale": scale}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    package = tmp_path / "cfgpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "parts.py").write_text(PARTS)
    path = package / "main_config.py"
    path.write_text(CONFIG)
    return path


def resolve(config_file: Path, overrides: dict) -> tuple[dict, Build]:
    root = load_root_config(config_file)
    build = Build(overrides=overrides, source="test")
    result = call_root_getter(build, "task_wrapper", root.task_wrapper)
    return result, build


def test_relative_imports_and_defaults(config_file: Path) -> None:
    result, build = resolve(config_file, {})
    assert result == {"width": 4, "rate": 0.5, "inner": {"depth": 4, "kind": "x", "scale": None}}
    assert build.tree["task_wrapper"]["inner"] == {"depth": 4, "kind": "x", "scale": None}
    assert build.origins["task_wrapper.inner.depth"] == "argument"
    assert build.origins["task_wrapper.width"] == "default"


def test_nested_override_wins_and_is_recorded(config_file: Path) -> None:
    result, build = resolve(
        config_file,
        {"task_wrapper.inner.kind": "y", "task_wrapper.rate": 1, "task_wrapper.inner.scale": 2},
    )
    assert result["inner"]["kind"] == "y"
    assert result["rate"] == 1.0 and isinstance(result["rate"], float)
    assert result["inner"]["scale"] == 2.0
    assert build.origins["task_wrapper.inner.kind"] == "override"


def test_getter_outside_a_build_is_the_plain_function(config_file: Path) -> None:
    module = load_config_module(config_file)
    assert module.get_outer(width=2)["inner"]["depth"] == 2


def test_unknown_path_names_source_config_and_closest(config_file: Path) -> None:
    build_overrides = {"task_wrapper.inner.detph": 3}
    _, build = resolve(config_file, build_overrides)
    with pytest.raises(OverrideError) as info:
        build.check_consumed(config_file)
    message = str(info.value)
    assert "task_wrapper.inner.detph" in message and "task_wrapper.inner.depth" in message
    assert str(config_file) in message and "test" in message


@pytest.mark.parametrize(
    ("value", "hint", "expected"),
    [
        (3, int, 3),
        ("1e-3", float, 0.001),
        (2, float, 2.0),
        (True, bool, True),
        ("x", str, "x"),
        (None, int | None, None),
        ([1, 2], list[int], [1, 2]),
    ],
)
def test_values_are_checked_and_converted(value, hint, expected) -> None:
    assert check_value(value, hint, "p", "test") == expected


@pytest.mark.parametrize(
    ("value", "hint"), [("abc", float), (1.5, int), ("yes", bool), ([1, "a"], list[int])]
)
def test_wrong_types_name_the_expected_type(value, hint) -> None:
    with pytest.raises(OverrideError, match="expected"):
        check_value(value, hint, "task_wrapper.lr", "override from test")


def test_literal_choices(config_file: Path) -> None:
    with pytest.raises(OverrideError, match=r"one of \['x', 'y'\]"):
        resolve(config_file, {"task_wrapper.inner.kind": "z"})


def test_parse_assignment_reads_yaml_values() -> None:
    assert parse_assignment("a.b=3") == ("a.b", 3)
    assert parse_assignment("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_assignment("a.b=null") == ("a.b", None)
    with pytest.raises(OverrideError, match="no '='"):
        parse_assignment("a.b")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_root_config(tmp_path / "nope.py")


def test_missing_root_getter(tmp_path: Path) -> None:
    path = tmp_path / "plain.py"
    path.write_text("X = 1\n")
    with pytest.raises(ConfigError, match="get_root_config_instance"):
        load_root_config(path)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("x = 1\ndef get_a(*, b: int = 1:\n    pass\n")
    with pytest.raises(ConfigError, match=r"broken\.py:2"):
        load_root_config(path)


def test_import_error_in_component_names_the_component(config_file: Path) -> None:
    (config_file.parent / "parts.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(ConfigError, match=r"parts\.py:1"):
        load_root_config(config_file)


def test_positional_getter_parameters_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "positional.py"
    path.write_text(
        textwrap.dedent("""\
        def get_model(width: int = 3):
            return width
        """)
    )
    with pytest.raises(ConfigError, match=r"positional.py:1.*keyword-only"):
        load_config_module(path)


def test_getter_that_raises_names_the_line(config_file: Path) -> None:
    (config_file.parent / "parts.py").write_text(
        "def get_inner(*, depth: int = 1):\n    raise RuntimeError('boom')\n"
    )
    with pytest.raises(ConfigError, match=r"parts\.py:2.*boom"):
        build_run(config_file, job="fit")


def test_edits_are_read_again(config_file: Path) -> None:
    result, _ = resolve(config_file, {})
    (config_file.parent / "parts.py").write_text(PARTS.replace("depth: int = 1", "depth: int = 9"))
    (config_file).write_text(CONFIG.replace("get_inner(depth=width)", "get_inner()"))
    result, _ = resolve(config_file, {})
    assert result["inner"]["depth"] == 9
