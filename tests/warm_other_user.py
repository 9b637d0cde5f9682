"""What another local user tries against a warm job server (tests/test_warm_security.py).

Run as that user with the system's Python (standard library only):
  listen FOLDER NAME RECORD MODE  make FOLDER (mode MODE, octal), listen on socket FOLDER/NAME
                                  (mode 777) and write to RECORD, per connection, the bytes
                                  received; RECORD.ready once listening; 20 s at most
  send SOCKET KIND RECORD         connect to SOCKET, send a job request (KIND json) or a pickle
                                  that would create RECORD.pwned when loaded (KIND pickle), and
                                  write to RECORD what happened
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import struct
import sys
import time


class Pwn:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def listen(folder: str, name: str, record: str, mode: str) -> None:
    os.makedirs(folder, exist_ok=True)
    os.chmod(folder, int(mode, 8))
    path = os.path.join(folder, name)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(8)
    server.settimeout(0.5)
    with open(record + ".ready", "w") as ready:
        ready.write("listening")
    received = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not os.path.exists(record + ".stop"):
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.settimeout(2)
        data = b""
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except OSError:
            pass
        received.append(len(data))
        conn.close()
        with open(record, "w") as file:
            json.dump(received, file)


def send(path: str, kind: str, record: str) -> None:
    if kind == "pickle":
        body = pickle.dumps({"ask": "job", "x": Pwn(record + ".pwned")})
    else:
        body = json.dumps({"ask": "status"}).encode()
    outcome = {}
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(path)
        outcome["connected"] = True
        sock.sendall(struct.pack("!Q", len(body)) + body)
        outcome["reply"] = len(sock.recv(65536))
    except OSError as exc:
        outcome["error"] = exc.__class__.__name__
    with open(record, "w") as file:
        json.dump(outcome, file)


if __name__ == "__main__":
    {"listen": listen, "send": send}[sys.argv[1]](*sys.argv[2:])
