"""A project file that passed the schema is read back from the cache while its text stays the
same (dltemplate.registry.checked_cache); any edit is parsed and checked again."""

from __future__ import annotations

from pathlib import Path

import pytest

from dltemplate.errors import RegistryError
from dltemplate.registry import checked_cache
from dltemplate.registry.model import load_registry

PROJECT = """\
description: P
experiments:
  e:
    description: E
    runs:
      r: {description: R, config: configs/digits_mlp.py, overrides: {seed: 3}}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(checked_cache.CACHE_ENV, str(tmp_path / "cache"))
    (tmp_path / "projects").mkdir()
    return tmp_path / "projects"


def test_a_checked_file_is_not_parsed_again_until_its_text_changes(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "p.yaml").write_text(PROJECT)
    assert load_registry(folder).run("p", "e", "r").overrides == {"seed": 3}
    parsed = []
    monkeypatch.setattr("dltemplate.registry.model.parse_project", lambda *a: parsed.append(a))
    assert load_registry(folder).run("p", "e", "r").overrides == {"seed": 3}  # from the cache
    assert parsed == []
    monkeypatch.undo()
    monkeypatch.setenv(checked_cache.CACHE_ENV, str(folder.parent / "cache"))
    (folder / "p.yaml").write_text(PROJECT.replace("overrides:", "overides:"))
    with pytest.raises(RegistryError, match=r"'overides' was unexpected"):  # checked again
        load_registry(folder)
    (folder / "p.yaml").write_text(PROJECT.replace("seed: 3", "seed: 4"))
    assert load_registry(folder).run("p", "e", "r").overrides == {"seed": 4}


def test_what_json_cannot_give_back_is_checked_every_time(folder: Path) -> None:
    text = PROJECT.replace("{seed: 3}", "{seed: 3, 1: one}")  # an int key
    checked_cache.remember(folder / "p.yaml", text, {"overrides": {1: "one"}})
    assert checked_cache.checked(folder / "p.yaml", text) is None
    assert list((folder.parent / "cache").glob("**/*.json")) == []
