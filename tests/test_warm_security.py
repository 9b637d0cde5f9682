"""Only its owner reaches a warm job server, and a job talks only to its owner's server.

A real second local user (made here with useradd, removed after; the suite runs as root in CI)
tries what the adversarial review found: a server folder made first by them (open to all,
theirs, or a symlink to theirs) with their socket in it, a socket of theirs swapped into the
owner's folder, and requests (plain or pickled) to the owner's server. tests/warm_other_user.py
is what that user runs.

Broken on purpose: with private.open_folder's owner and mode check removed, the first test
fails (the job connects to the other user's socket); with the server's check_peer removed,
test_the_server_serves_only_its_user fails (the other user gets a status reply); with the
client's removed, test_a_socket_of_another_user_in_the_folder_is_not_talked_to fails.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dltemplate.warm import place, private, wire
from tests.warm_server import REPO, Warm, read, wait_for

OTHER = "dlt-warm-other"
ATTACKER = Path(__file__).with_name("warm_other_user.py")
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


@pytest.fixture(scope="module")
def other_user() -> Iterator[int]:
    """The uid of a second local user, made for these tests."""
    if os.geteuid() != 0 or SYSTEM_PYTHON is None:
        pytest.skip("needs root (to make a second user) and the system's python3")
    made = subprocess.run(
        ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", OTHER],
        capture_output=True,
        text=True,
    )
    assert made.returncode in (0, 9), made.stderr  # 9: there already
    try:
        yield int(subprocess.check_output(["id", "-u", OTHER], text=True))
    finally:
        subprocess.run(["userdel", OTHER], capture_output=True)


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder every user may write in, as /tmp is (sticky)."""
    folder = Path(tempfile.mkdtemp(prefix="dlt-shared-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_other(uid: int, *args: str, wait: bool = True) -> subprocess.Popen:
    process = subprocess.Popen(
        [SYSTEM_PYTHON, str(ATTACKER), *args],
        user=uid,
        group=uid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    if wait:
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output
    return process


def attacker_listens(uid: int, folder: Path, name: str, record: Path, mode: str):
    process = as_other(uid, "listen", str(folder), name, str(record), mode, wait=False)
    wait_for(Path(f"{record}.ready"), within=30)
    return process


def stop_listening(process: subprocess.Popen, record: Path) -> list[int]:
    Path(f"{record}.stop").write_text("")
    process.communicate(timeout=30)
    return json.loads(record.read_text()) if record.exists() else []


@pytest.mark.timeout(180)
@pytest.mark.parametrize("made", ["open to all", "theirs", "a symlink to theirs"])
def test_a_folder_another_user_made_first_is_not_used(
    other_user: int, shared: Path, tmp_path: Path, made: str
) -> None:
    (tmp_path / "project").mkdir()
    state = shared / "dltemplate-warm"
    theirs = shared / "theirs"
    folder = {"open to all": state, "theirs": state, "a symlink to theirs": theirs}[made]
    mode = "777" if made == "open to all" else "700"
    warm = Warm(tmp_path / "project", state)
    record = shared / "record"
    listener = attacker_listens(other_user, folder, warm.where().socket, record, mode)
    if made == "a symlink to theirs":
        os.symlink(theirs, state)
        os.lchown(state, other_user, other_user)
    code, output, log, _ = warm.run("reports_state")
    assert code == 0, output
    assert "Cold start: " in read(log) and "warm jobs need a folder only you can enter" in read(
        log
    ), read(log)
    assert stop_listening(listener, record) == [], "the job connected to the other user's socket"
    assert not any(p.name.endswith(".log") for p in folder.iterdir())  # nothing written there


@pytest.mark.timeout(180)
def test_a_socket_of_another_user_in_the_folder_is_not_talked_to(
    other_user: int, shared: Path, tmp_path: Path
) -> None:
    (tmp_path / "project").mkdir()
    warm = Warm(tmp_path / "project", tmp_path / "state")
    private.open_folder(warm.state)  # the owner's private folder, as a first job makes it
    record = shared / "record"
    listener = attacker_listens(other_user, shared / "theirs", "s.sock", record, "755")
    os.rename(shared / "theirs" / "s.sock", warm.file("socket"))  # swapped in (say, by root)
    code, output, log, _ = warm.run("reports_state")
    assert code == 0, output
    assert (
        f"Cold start: not this user's warm job server (the other end of the socket runs as uid {other_user}"
        in read(log)
    ), read(log)
    assert stop_listening(listener, record) == [0], "the job sent something to it"


@pytest.mark.slow  # starts a warm server
@pytest.mark.timeout(180)
def test_the_server_serves_only_its_user(other_user: int, shared: Path, tmp_path: Path) -> None:
    """Started under umask 000, the folder is still 700 and the socket 600; opened up by hand
    (as a mistake would), the server still answers nobody else, and never unpickles."""
    (tmp_path / "project").mkdir()
    warm = Warm(tmp_path / "project", shared / "state")
    code, output, _, _ = warm.run("reports_state", umask=0)
    assert code == 0, output
    warm.wait_ready()
    try:
        assert stat.S_IMODE(warm.state.stat().st_mode) == 0o700
        assert stat.S_IMODE(warm.file("socket").lstat().st_mode) == 0o600
        record = shared / "record"
        as_other(other_user, "send", str(warm.file("socket")), "json", str(record))
        assert json.loads(record.read_text()) == {"error": "PermissionError"}

        warm.state.chmod(0o711)  # the mistake: the folder opened to others
        warm.file("socket").chmod(0o777)
        for kind in ("json", "pickle"):
            as_other(other_user, "send", str(warm.file("socket")), kind, str(record))
            outcome = json.loads(record.read_text())  # closed on it: no reply, or a reset
            assert outcome["connected"] and not outcome.get("reply"), (kind, outcome)
        assert not Path(f"{record}.pwned").exists()
        time.sleep(0.2)
        assert read(warm.file("log")).count(f"runs as uid {other_user}, not {os.getuid()}") == 2
    finally:
        warm.stop()


@pytest.mark.timeout(120)
def test_files_in_the_folder_are_not_followed_through_symlinks(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    warm = Warm(tmp_path / "project", tmp_path / "state")
    private.open_folder(warm.state)
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n")
    os.symlink(victim, warm.file("log"))
    code, output, log, _ = warm.run("reports_state")
    assert code == 0, output
    assert "none could be started" in read(log), read(log)
    assert victim.read_text() == "keep me\n"


def test_the_default_folder_is_never_a_shared_one(tmp_path: Path, other_user: int) -> None:
    """The user's runtime folder when it is theirs, else their cache folder: never a name in
    /tmp that another user could take first."""
    runtime = {"XDG_RUNTIME_DIR": str(tmp_path), "HOME": "/home/me"}
    assert place.state_folder(runtime) == tmp_path / "dltemplate-warm"
    assert place.state_folder({"HOME": "/home/me"}) == Path("/home/me/.cache/dltemplate-warm")
    cache = {"XDG_CACHE_HOME": "/c", "HOME": "/home/me"}
    assert place.state_folder(cache) == Path("/c/dltemplate-warm")
    assert place.state_folder({**runtime, "DLT_WARM_DIR": "/x"}) == Path("/x")
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, other_user, other_user)  # su keeps the caller's XDG_RUNTIME_DIR
    assert place.state_folder({"XDG_RUNTIME_DIR": str(theirs), "HOME": "/home/me"}) == Path(
        "/home/me/.cache/dltemplate-warm"
    )


def test_two_virtual_environments_of_one_python_get_two_servers(tmp_path: Path) -> None:
    """A job of another venv (built on the same interpreter) never runs on this venv's
    server: the key holds sys.prefix."""
    import subprocess as sp
    import sys

    venv = tmp_path / "venv"
    sp.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    code = "from dltemplate.warm import place; print(place.place_for('/p', {}).key)"
    env = {"PYTHONPATH": str(REPO), "HOME": "/h"}
    keys = {
        sp.run([python, "-c", code], env=env, capture_output=True, text=True).stdout
        for python in (sys.executable, str(venv / "bin" / "python"))
    }
    assert len(keys) == 2, keys


def test_messages_are_plain_data() -> None:
    assert wire.encode({"a": [1, 2.5, None, "x", {"b": True}]})
    for bad in ({"a": (1, 2)}, {"a": Path("/x")}, {1: "a"}, {"a": {1, 2}}):
        with pytest.raises(wire.NotPlainData):
            wire.encode(bad)
