"""Layer 1: registry edits keep comments and layout, refuse bad or clashing names, and never
lose an edit when several processes write at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import yaml

from dltemplate.errors import RegistryError, UserError
from dltemplate.registry import edit as registry_edit
from dltemplate.registry.model import load_registry

COMMENTED = """\
# Keep this header comment.
description: A project   # and this inline one
experiments:
  base:
    # A comment above a key.
    description: Baseline runs
    runs:
      old:
        description: An older run
        config: configs/digits_mlp.py
        jobs:
        - fit
        - test
        overrides: {trainer.max_epochs: 3}  # flow style stays flow
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "proj.yaml").write_text(COMMENTED)
    return folder


def entry(description: str = "A run", **overrides) -> dict:
    return registry_edit.run_entry(description, "configs/digits_mlp.py", ("fit",), overrides)


def test_add_run_keeps_comments_and_layout(folder: Path) -> None:
    registry_edit.add_run(folder, "proj", "base", "new", entry(**{"task_wrapper.lr": 0.01}))
    text = (folder / "proj.yaml").read_text()
    for line in COMMENTED.splitlines():
        assert line in text, f"lost line: {line!r}"
    block = (
        "      new:\n"
        "        description: A run\n"
        "        config: configs/digits_mlp.py\n"
        "        jobs: [fit]\n"
        "        overrides:\n"
        "          task_wrapper.lr: 0.01\n"
        "        created: '"
    )
    assert block in text
    run = load_registry(folder).run("proj", "base", "new")
    assert run.overrides == {"task_wrapper.lr": 0.01} and run.jobs == ("fit",)
    created = yaml.safe_load(text)["experiments"]["base"]["runs"]["new"]["created"]
    assert isinstance(created, str) and created == run.created and "T" in created


def test_init_then_add_exp_writes_a_valid_project(tmp_path: Path) -> None:
    folder = tmp_path / "new_registry"  # does not exist yet
    path = registry_edit.create_project(folder, "p1", "Project one", "e1", "First")
    registry_edit.add_experiment(folder, "p1", "e2", "Second")
    registry_edit.add_run(folder, "p1", "e2", "r", entry())
    project = load_registry(folder).projects["p1"]
    assert path == folder / "p1.yaml"
    assert list(project.experiments) == ["e1", "e2"]
    assert project.created and project.experiments["e2"].created
    assert project.experiments["e2"].runs["r"].description == "A run"
    assert path.read_text().startswith("# Project p1")


@pytest.mark.parametrize("name", ["a b", "a/b", "..", "-x", "a,b", "a=b", "x" * 65, ""])
def test_bad_names_are_refused_with_the_rule(folder: Path, name: str) -> None:
    with pytest.raises(UserError, match=r"Invalid run name .*names match \[A-Za-z0-9\]"):
        registry_edit.add_run(folder, "proj", "base", name, entry())
    with pytest.raises(UserError, match="Invalid experiment name"):
        registry_edit.add_experiment(folder, "proj", name, "E")
    with pytest.raises(UserError, match="Invalid project name"):
        registry_edit.create_project(folder, name, "P", "e", "E")
    assert (folder / "proj.yaml").read_text() == COMMENTED


def test_duplicates_and_case_clashes_are_refused(folder: Path) -> None:
    with pytest.raises(RegistryError, match="The run proj/base/old already exists"):
        registry_edit.add_run(folder, "proj", "base", "old", entry())
    with pytest.raises(RegistryError, match="'OLD' clashes with the existing run proj/base/old"):
        registry_edit.add_run(folder, "proj", "base", "OLD", entry())
    with pytest.raises(RegistryError, match="'Base' clashes with the existing experiment"):
        registry_edit.add_experiment(folder, "proj", "Base", "E")
    with pytest.raises(RegistryError, match="'PROJ' clashes with the existing project proj"):
        registry_edit.create_project(folder, "PROJ", "P", "e", "E")
    with pytest.raises(RegistryError, match=r"No project 'Proj'.*did you mean 'proj'"):
        registry_edit.add_experiment(folder, "Proj", "e2", "E")
    with pytest.raises(RegistryError, match="No experiment proj/nope; known: base"):
        registry_edit.add_run(folder, "proj", "nope", "r", entry())
    assert (folder / "proj.yaml").read_text() == COMMENTED


def test_descriptions_are_required(folder: Path) -> None:
    with pytest.raises(UserError, match="needs a description"):
        registry_edit.add_run(folder, "proj", "base", "r", entry("  "))
    with pytest.raises(UserError, match="needs a description"):
        registry_edit.add_experiment(folder, "proj", "e", "")


def test_check_only_writes_nothing(folder: Path) -> None:
    registry_edit.add_run(folder, "proj", "base", "r", entry(), check_only=True)
    assert (folder / "proj.yaml").read_text() == COMMENTED


def test_remove_run_experiment_and_project(folder: Path) -> None:
    registry_edit.add_experiment(folder, "proj", "other", "Other")
    registry_edit.remove(folder, "proj", "base", "old")
    text = (folder / "proj.yaml").read_text()
    assert "old:" not in text and "# Keep this header comment." in text
    assert load_registry(folder).experiment("proj", "base").runs == {}
    registry_edit.remove(folder, "proj", "base")
    assert list(load_registry(folder).projects["proj"].experiments) == ["other"]
    with pytest.raises(RegistryError, match="No run proj/other/x"):
        registry_edit.remove(folder, "proj", "other", "x")
    registry_edit.remove(folder, "proj")
    assert not (folder / "proj.yaml").exists()


def test_an_edit_that_would_break_the_schema_keeps_the_old_file(folder: Path) -> None:
    bad = {"description": "R", "config": "c.py", "jobs": ["train"]}
    with pytest.raises(RegistryError, match=r"proj\.yaml: at experiments\.base\.runs\.r\.jobs"):
        registry_edit.add_run(folder, "proj", "base", "r", bad)
    assert (folder / "proj.yaml").read_text() == COMMENTED
    assert [p.name for p in folder.iterdir() if p.name != registry_edit.LOCK_NAME] == ["proj.yaml"]


def _add(args: tuple[str, int]) -> None:
    folder, i = args
    registry_edit.add_run(folder, "proj", "base", f"r{i}", entry(f"run {i}"))


def test_concurrent_edits_lose_nothing(folder: Path) -> None:
    with multiprocessing.get_context("fork").Pool(8) as pool:
        pool.map(_add, [(str(folder), i) for i in range(16)])
    runs = load_registry(folder).experiment("proj", "base").runs
    assert set(runs) == {"old", *(f"r{i}" for i in range(16))}
    assert "# Keep this header comment." in (folder / "proj.yaml").read_text()
