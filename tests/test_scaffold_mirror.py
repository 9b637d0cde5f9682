"""This repository's root is the project that `dltemplate new --example digits --example
diabetes` writes (dltemplate/scaffold/), plus the engine's own files: every file `new` copies as
it is lies at the root with the same text, so `make demo` here runs what a new project runs, and
the engine's tests (which run on projects that `new` writes) check the code users get.

The project files (Snakefile, rules/, scripts/, profiles/, wrappers/ ...) are compared always;
the examples' configs, models and datasets while the examples are here.

Broken on purpose: with the fixture's trainer getter taking `precision: str` while the example's
takes `str | int`, or with a line of profiles/default/config.yaml edited at the root only, this
test fails and names the file."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from dltemplate.scaffold import EXAMPLES_TREE, PROJECT, RENAMED, TEMPLATE
from tests.conftest import HAS_EXAMPLES, REPO


def _copied(tree: Path) -> set[str]:
    """The files `new` copies from `tree` as they are (not filled in or renamed)."""
    return {
        path.relative_to(tree).as_posix()
        for path in tree.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and not path.name.endswith(TEMPLATE)
        and path.name not in RENAMED
    }


def _differing(tree: Path, files: set[str]) -> list[str]:
    return sorted(
        name
        for name in files
        if not (REPO / name).is_file() or not filecmp.cmp(tree / name, REPO / name, False)
    )


def test_the_root_holds_every_project_file_of_new_as_it_is() -> None:
    differing = _differing(PROJECT, _copied(PROJECT))
    assert not differing, f"edit dltemplate/scaffold/project/ and the root alike: {differing}"


@pytest.mark.skipif(not HAS_EXAMPLES, reason="the examples were deleted")
def test_the_root_examples_are_the_ones_new_writes() -> None:
    files = _copied(EXAMPLES_TREE)
    differing = _differing(EXAMPLES_TREE, files)
    assert not differing, f"edit dltemplate/scaffold/examples/ and the root alike: {differing}"
    at_root = {
        p.relative_to(REPO).as_posix()
        for folder in ("configs", "models", "dataset_classes")
        for p in (REPO / folder).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert at_root <= files, f"examples at the root only: {sorted(at_root - files)}"
