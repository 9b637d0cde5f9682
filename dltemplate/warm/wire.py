"""The messages between a job's script and its warm server: JSON objects, each after its
length, over a Unix socket whose other end is checked to be this user's (SO_PEERCRED). The first
message of a job also carries its stdin, stdout and stderr as file descriptors (SCM_RIGHTS).

Plain data only: nothing that is read here can run code (no pickle).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
from typing import Any

_LENGTH = struct.Struct("!Q")
_CREDENTIALS = struct.Struct("3i")  # pid, uid, gid
MAX_FDS = 3
MAX_MESSAGE = 64 << 20  # bytes: a job's request is some kB (its environment, its params)


class NotPlainData(ValueError):
    """A message that JSON cannot carry exactly (a tuple, a Path, a set ...)."""


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end of `sock` (told by the kernel)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    return _CREDENTIALS.unpack(raw)[1]


def check_peer(sock: socket.socket, uid: int) -> None:
    """PermissionError unless the other end of `sock` runs as user `uid`."""
    other = peer_uid(sock)
    if other != uid:
        raise PermissionError(f"the other end of the socket runs as uid {other}, not {uid}")


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = encode(message)
    head = _LENGTH.pack(len(data))
    if fds:
        socket.send_fds(sock, [head], fds)
    else:
        sock.sendall(head)
    sock.sendall(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The next message and the file descriptors that came with it; EOFError when the other
    side has closed the connection, ValueError when it sent something that is not a message."""
    head, fds, _, _ = socket.recv_fds(sock, _LENGTH.size, MAX_FDS)
    fds = list(fds)
    try:
        head += _exactly(sock, _LENGTH.size - len(head))
        (length,) = _LENGTH.unpack(head)
        if length > MAX_MESSAGE:
            raise ValueError(f"a message of {length} bytes (at most {MAX_MESSAGE})")
        message = json.loads(_exactly(sock, length))
        if not isinstance(message, dict):
            raise ValueError("a message that is not a JSON object")
    except BaseException:
        _close(fds)
        raise
    return message, fds


def encode(message: Any) -> bytes:
    """`message` as JSON; NotPlainData unless decoding gives back exactly the same value."""
    _check_plain(message, "the message")
    return json.dumps(message, separators=(",", ":")).encode()


def _check_plain(value: Any, where: str) -> None:
    if value is None or type(value) in (bool, int, float, str):
        return
    if type(value) is list:
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise NotPlainData(f"{where} has a key that is not a string ({key!r})")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise NotPlainData(f"{where} is a {type(value).__name__}, not plain data")


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
