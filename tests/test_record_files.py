"""Layer 1: every record is strict JSON and readable by whoever may read its folder.

Broken on purpose: `json.dumps` without the strict pass writes a bare NaN (which a strict
parser refuses); the temporary file's 0600 surviving the rename fails the mode check.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from dltemplate.records import write_json_atomic, write_text_atomic, write_yaml_atomic


def strict_load(path: Path):
    def refuse(name: str):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_non_finite_numbers_become_null_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "test.done"
    write_json_atomic(
        path, {"metrics": {"test/loss": float("nan"), "test/acc": 0.5}, "lr": float("inf")}
    )
    record = strict_load(path)
    assert record["metrics"] == {"test/loss": None, "test/acc": 0.5} and record["lr"] is None
    assert record["nonfinite"] == {"metrics.test/loss": "nan", "lr": "inf"}


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_records_get_the_mode_the_umask_gives(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        for name, write in (
            ("a.json", lambda p: write_json_atomic(p, {"a": 1})),
            ("a.yaml", lambda p: write_yaml_atomic(p, {"a": 1})),
            ("a.csv", lambda p: write_text_atomic(p, "a\n1\n")),
        ):
            write(tmp_path / name)
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
    finally:
        os.umask(previous)


def test_a_crash_between_write_and_rename_leaves_the_old_record(
    tmp_path: Path, monkeypatch
) -> None:
    """Broken on purpose (write_text_atomic writing the record in place): the rename is never
    reached, or the record already holds the new text when the job dies before it."""
    from dltemplate import records

    path = tmp_path / "run.json"
    write_json_atomic(path, {"status": "old"})
    old = path.read_text()
    new = {"status": "new", "values": list(range(2_000))}
    at_rename = []
    synced = []

    def fsync(fd: int) -> None:
        synced.append(fd)

    def crash(src: str, dst: str) -> None:
        # What lies on disk when the job dies between the write and the rename.
        at_rename.append((Path(src).read_text(), Path(dst).read_text(), list(synced)))
        raise OSError(5, "the job died here")

    monkeypatch.setattr(records.os, "fsync", fsync)
    monkeypatch.setattr(records.os, "replace", crash)
    with pytest.raises(OSError, match=r"run\.json"):
        write_json_atomic(path, new)
    monkeypatch.undo()
    assert at_rename, "write_json_atomic never renamed a temporary file over the record"
    temp_text, record_text, fsynced = at_rename[0]
    assert json.loads(temp_text) == new and fsynced  # the whole new text, on disk, first
    assert record_text == old and path.read_text() == old  # readers still see the old record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # no temporary file left
