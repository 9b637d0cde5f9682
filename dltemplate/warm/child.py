"""What a warm server's forked child does: become the job's process, run its step, exit.

The child takes the job script's stdin, stdout and stderr, working directory, environment (and
forgets what the server read from its own: the temporary folder, the time zone), umask,
`sys.path` and `sys.argv`, gives the signals back their defaults, draws fresh random seeds (a
cold process starts with fresh ones), rebuilds the job's Snakemake object from plain data, and
runs the step through the cold path of dltemplate.jobs.steps. It ends itself with SIGKILL when
the job script goes away (its connection closes) or the server dies (PR_SET_PDEATHSIG), so
nothing runs on orphaned. At the end it runs the exit handlers and exits without waiting for
threads the job left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
import weakref
from pathlib import Path
from typing import Any, NoReturn

from dltemplate.results.environment import JOB_SCRIPT_PID_ENV
from dltemplate.warm import job_object, private, wire

_PR_SET_PDEATHSIG = 1


def _die_with_server(server_pid: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != server_pid:  # the server died before the line above
        os.kill(os.getpid(), signal.SIGKILL)


def _die_with_script(conn: socket.socket) -> None:
    conn.settimeout(None)  # the server's timeout for reading the job would end the watch

    def watch() -> None:
        with contextlib.suppress(OSError):
            while conn.recv(4096):
                pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="warm-job-script-watch", daemon=True).start()


def _wait_for_go(conn: socket.socket) -> None:
    """Wait until the script has the job's pid and still wants it run here (a script that gave
    up on the server runs the job cold: then this process ends before doing anything)."""
    try:
        conn.settimeout(None)
        go, _ = wire.receive(conn)
    except (OSError, EOFError, ValueError):
        go = {}
    if not go.get("go"):
        os._exit(0)


def _become(message: dict[str, Any], fds: list[int], added: dict[str, str]) -> None:
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(message["cwd"])
    os.environ.clear()
    os.environ.update(message["env"])
    for name, value in added.items():  # what the server's imports set, as a cold job's would
        os.environ.setdefault(name, value)
    os.environ[JOB_SCRIPT_PID_ENV] = str(message["client_pid"])  # its Snakemake is the script's
    tempfile.tempdir = None  # found again from the job's TMPDIR, as in a cold process
    time.tzset()  # the job's TZ
    importlib.invalidate_caches()  # folders made since the server started are searched too
    os.umask(message["umask"])
    sys.path[:] = message["sys_path"]
    sys.argv[:] = message["argv"]
    random.seed()
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()


def _forget_server_finalizers() -> None:
    """The server's objects are not the job's: their weakref finalizers (torch frees its
    operator libraries so, at 36 ms a process) do not run when the job's process exits."""
    for finalizer in list(weakref.finalize._registry):  # type: ignore[attr-defined]
        finalizer.atexit = False


def _reset_signals() -> None:
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _step(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def _exit_code(exc: SystemExit) -> int:
    """What Python's own exit makes of a SystemExit."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _report_imports(before: set[str], project: str, learned: tuple[Path, str]) -> None:
    """Name, in file `learned` (the server's folder, a name), the modules the job imported from
    outside the project (the libraries of its data and model): the server imports those of
    import-safe libraries too, for the next jobs."""
    root = os.path.realpath(project) + os.sep
    names = []
    for name in set(sys.modules) - before:
        path = getattr(sys.modules.get(name), "__file__", None) or ""
        outside = not os.path.realpath(path).startswith(root) or "site-packages" in path
        if path and outside:
            names.append(name)
    if names:
        folder = private.open_folder(learned[0])
        try:
            private.remove(
                folder, learned[1]
            )  # left by a process of this pid that the server missed
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            with os.fdopen(private.open_file(folder, learned[1], flags), "w") as file:
                file.write("\n".join(sorted(names)))
        finally:
            os.close(folder)


def run_job(
    message: dict[str, Any],
    conn: socket.socket,
    fds: list[int],
    *,
    server_pid: int,
    close: list[int],
    learned: tuple[Path, str],
    added: dict[str, str],
) -> NoReturn:
    code = 1
    before = set(sys.modules)
    try:
        _reset_signals()
        _die_with_server(server_pid)
        _forget_server_finalizers()
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        _wait_for_go(conn)
        _die_with_script(conn)
        _become(message, fds, added)
        snakemake = job_object.from_plain(message["snakemake"])
        from dltemplate.jobs.steps import run_here

        note = f"Warm start: process {os.getpid()}, forked by the warm job server {server_pid}"
        if message.get("started"):  # the job started the server (dltemplate.warm.client)
            note += f" ({message['started']})"
        run_here(snakemake, _step(message["step"]), note=note)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc)
    except KeyboardInterrupt:  # as Python does: the traceback, then death by SIGINT
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        with contextlib.suppress(BaseException):  # after the exit handlers: theirs count too
            _report_imports(before, message["project"], learned)
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        if code < 0:
            signal.signal(-code, signal.SIG_DFL)
            os.kill(os.getpid(), -code)
        os._exit(code & 0xFF)
