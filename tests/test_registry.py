"""Layer 1: the run registry loads, validates, and names the file and key of every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from dltemplate.errors import RegistryError
from dltemplate.registry.model import load_registry
from dltemplate.workflow.targets import all_targets
from tests.conftest import REPO

GOOD = """\
description: P
experiments:
  e1:
    description: E
    runs:
      r1: {description: R, config: configs/digits_mlp.py}
      r2: {description: R, config: configs/digits_cnn.py, jobs: [fit, test], overrides: {seed: 3}}
"""


def write(tmp_path: Path, text: str, name: str = "proj.yaml") -> Path:
    folder = tmp_path / "projects"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


@pytest.mark.examples
def test_repository_registry_loads() -> None:
    registry = load_registry(REPO / "configs/projects")
    assert {r.key for r in registry.runs()} >= {"digits/baseline/mlp", "digits/baseline/cnn"}


def test_runs_and_targets(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD))
    r2 = registry.run("proj", "e1", "r2")
    assert r2.jobs == ("fit", "test") and r2.overrides == {"seed": 3}
    assert "results/proj/e1/r2/predict.done" not in all_targets(registry)
    assert "results/proj/e1/r1/predict.done" in all_targets(registry)
    assert "results/proj/e1/summary.csv" in all_targets(registry)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "description: P\nexperiments: {e: {description: E, runs: {r: {config: c.py}}}}\n",
            r"experiments\.e\.runs\.r: 'description' is a required property",
        ),
        (
            "description: P\nexperiments: {e: {description: E, colour: red}}\n",
            r"at experiments\.e: .*colour.*allowed keys",
        ),
        (
            "description: P\nexperiments: {e: {description: E, runs: {r: {description: R, config: 3}}}}\n",
            r"experiments\.e\.runs\.r\.config: 3 is not of type 'string'",
        ),
        (
            "description: P\nexperiments: {e: {description: E, runs: {r: {description: R, config: c.py, "
            "jobs: [fit, train]}}}}\n",
            r"'train' is not one of \['fit', 'validate', 'test', 'predict', 'export'\]",
        ),
        ("description: P\nexperiments: {'a b': {description: E}}\n", r"experiment name 'a b'"),
        (
            "description: P\nexperiments: {e: {description: E, runs: {Run: {description: R, config: c}, "
            "run: {description: R, config: c}}}}\n",
            "differ only in case",
        ),
    ],
)
def test_schema_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    folder = write(tmp_path, text)
    with pytest.raises(RegistryError, match=message) as info:
        load_registry(folder)
    assert "proj.yaml" in str(info.value)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    folder = write(tmp_path, "description: P\nexperiments:\n  e: [unclosed\n")
    with pytest.raises(RegistryError, match=r"proj\.yaml:\d+:\d+ does not parse"):
        load_registry(folder)


def test_unknown_run_is_named(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD))
    with pytest.raises(RegistryError, match="No run proj/e1/nope"):
        registry.run("proj", "e1", "nope")


@pytest.mark.parametrize(
    "name", ["plots", "logs", "Plots", "summary.csv", "summary.md", "run.json", "project.json"]
)
def test_names_the_layout_uses_are_reserved(tmp_path: Path, name: str) -> None:
    run = f"description: P\nexperiments: {{e: {{description: E, runs: {{{name}: {{description: R, config: c}}}}}}}}\n"
    with pytest.raises(RegistryError, match=f"run name '{name}'.*files that results/ keeps"):
        load_registry(write(tmp_path, run))
    experiment = f"description: P\nexperiments: {{{name}: {{description: E}}}}\n"
    with pytest.raises(RegistryError, match=f"experiment name '{name}'.*files that results/"):
        load_registry(write(tmp_path, experiment))


@pytest.mark.parametrize("key", ["123", "true", "null", "1.5"])
def test_unquoted_names_that_yaml_reads_as_other_types_say_so(tmp_path: Path, key: str) -> None:
    text = f"description: P\nexperiments: {{e: {{description: E, runs: {{{key}: {{description: R, config: c}}}}}}}}\n"
    with pytest.raises(RegistryError, match=r"must be a string.*quote the key"):
        load_registry(write(tmp_path, text))
