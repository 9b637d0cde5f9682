"""A folder only this user can enter, and the files in it, for a warm server's socket, state,
log and locks (torch-free: job scripts import it).

The folder is checked once, on the open directory itself (`fstat` of a descriptor opened with
O_NOFOLLOW): it is a real directory, owned by this user, and nobody else may enter or write it
(mode 0700 or narrower). Every later path is relative to that descriptor, so a folder swapped
after the check is never used, and no file in it is opened through a symlink. A Unix socket
is reached as `/proc/self/fd/<fd>/<name>`: short whatever the folder's path, so there is never
a reason to put a socket in a shared folder.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


class UnsafeFolder(OSError):
    """The folder exists but another user could reach into it."""


def open_folder(path: Path) -> int:
    """A descriptor of folder `path`, created (mode 0700, with its parents) when missing.
    UnsafeFolder when it is a symlink, not a directory, another user's, or open to others."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)  # 0700 whatever the umask: a umask only takes bits away
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(path) or not os.path.isdir(path):
            raise UnsafeFolder(f"{path} is {_kind(path)}, not a folder of yours{_FIX}") from None
        raise exc
    problem = _problem(os.fstat(fd))
    if problem:
        os.close(fd)
        raise UnsafeFolder(f"{path} {problem}{_FIX}")
    return fd


_FIX = "; warm jobs need a folder only you can enter: remove it, or set DLT_WARM_DIR"


def _kind(path: Path) -> str:
    return "a symlink" if os.path.islink(path) else "a file"


def _problem(info: os.stat_result) -> str | None:
    if info.st_uid != os.getuid():
        return f"belongs to uid {info.st_uid}, not to you (uid {os.getuid()})"
    if stat.S_IMODE(info.st_mode) & 0o077:
        return f"has mode {stat.S_IMODE(info.st_mode):o}: other users may enter it (needs 700)"
    return None


def address(folder: int, name: str) -> str:
    """The address of Unix socket `name` in the open folder `folder` (at most ~40 bytes)."""
    return f"/proc/self/fd/{folder}/{name}"


def open_file(folder: int, name: str, flags: int, mode: int = 0o600) -> int:
    """Open `name` in the open folder `folder`, never through a symlink."""
    return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=folder)


def read_text(folder: int, name: str) -> str:
    fd = open_file(folder, name, os.O_RDONLY)
    with os.fdopen(fd) as file:
        return file.read()


def write_text_atomic(folder: int, name: str, text: str) -> None:
    """Write `name` whole or not at all (a staged file, then a rename in the folder)."""
    staged = f".{name}.{os.getpid()}.tmp"
    fd = open_file(folder, staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(staged, name, src_dir_fd=folder, dst_dir_fd=folder)


def inode(folder: int, name: str) -> int | None:
    try:
        return os.stat(name, dir_fd=folder, follow_symlinks=False).st_ino
    except OSError:
        return None


def remove(folder: int, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder)
