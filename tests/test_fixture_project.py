"""tests/fixture_project/ is the engine tests' own copy of the example project's configs, models
and dataset classes (so that they pass with the example deleted). While the example is there, the
copy must be the same, file for file: an edit of the example is made in the copy too, or the
engine's tests check code that users no longer have.

Broken on purpose: with the fixture's trainer getter taking `precision: str` while the example's
takes `str | int` (as it did until today), this test fails and names the file."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from tests.conftest import FIXTURE, REPO

pytestmark = pytest.mark.examples


def _python_files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*.py") if "__pycache__" not in p.parts}


@pytest.mark.parametrize("folder", ["configs", "models", "dataset_classes"])
def test_the_fixture_project_is_the_examples_copy(folder: str) -> None:
    copy, example = FIXTURE / folder, REPO / folder
    files = _python_files(copy)
    assert files == _python_files(example), f"files differ between {copy} and {example}"
    differing = [str(f) for f in sorted(files) if not filecmp.cmp(copy / f, example / f, False)]
    assert not differing, f"edit tests/fixture_project/{folder} as the example: {differing}"
