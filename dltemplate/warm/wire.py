"""The messages between a job's script and its warm server: pickled dicts, each after its
length, over a Unix socket; the first message of a job also carries its stdin, stdout and
stderr as file descriptors (SCM_RIGHTS)."""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

_LENGTH = struct.Struct("!Q")
MAX_FDS = 3


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    head = _LENGTH.pack(len(data))
    if fds:
        socket.send_fds(sock, [head], fds)
    else:
        sock.sendall(head)
    sock.sendall(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The next message and the file descriptors that came with it; EOFError when the other
    side has closed the connection."""
    head, fds, _, _ = socket.recv_fds(sock, _LENGTH.size, MAX_FDS)
    head += _exactly(sock, _LENGTH.size - len(head))
    (length,) = _LENGTH.unpack(head)
    return pickle.loads(_exactly(sock, length)), list(fds)


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
