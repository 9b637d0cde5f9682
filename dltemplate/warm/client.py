"""The job script's side of a warm start (torch-free: it runs before anything heavy loads).

`hand_over` sends the job to the project's warm server, forwards the signals the script gets
to the job's process, and exits with that process's status. Without a server (none yet, a
stale socket, a server whose code is out of date), the job starts one, waits until it listens
and runs in it; jobs that find a server starting wait for it too. When warm jobs are off, or no
server can be reached or started (a full /tmp, a server folder that other users could reach, a
socket of another user, a server that does not come up), it returns the one line that says so,
and the job runs cold in the script's own process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from dltemplate.warm import job_object, place, private, wire

FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
CONNECT_TIMEOUT = 10  # seconds for the server to take the job (it forks at once)
# seconds a job waits for the server that it (or another job) is starting to listen
START_TIMEOUT = 120


def hand_over(snakemake: Any, step: Callable[..., Any]) -> str | None:
    """Run the job in a warm server's child and exit with its status. Returns only when the
    job is to run cold here: None when warm jobs are off, else the line for its log."""
    if place.why_cold(snakemake.config):
        return None
    try:
        request = _request(snakemake, step)
    except (TypeError, ValueError) as exc:  # NotPlainData; an int too long for JSON's text
        return f"Cold start: this job cannot travel to a warm server as plain data ({exc})"
    if not os.path.isdir("/proc/self/fd"):
        return "Cold start: warm jobs need /proc (a server's socket is reached through it)"
    project = Path.cwd()
    where = place.place_for(project, os.environ, snakemake.config)
    try:
        folder = private.open_folder(where.folder)
    except private.UnsafeFolder as exc:
        return f"Cold start: {exc}"
    except OSError as exc:
        return f"Cold start: no warm job server; none can be started ({exc})"
    try:
        return _hand_over(snakemake, request, project, where, folder)
    finally:
        os.close(folder)


def _hand_over(
    snakemake: Any, request: dict[str, Any], project: Path, where: place.Place, folder: int
) -> str:
    """Hand the job to the server of `where`. Without one (or with one that refuses the job),
    start one, wait until it listens, and hand the job to it: the job that starts a server runs
    warm too, rather than paying for its imports beside the server's. Returns the cold line."""
    why, startable = _offer(snakemake, request, where, folder)
    if not startable:
        return f"Cold start: {why}"
    if problem := _start(project, where, folder, snakemake.config):
        return f"Cold start: {why}; {problem}"
    request["started"] = f"started for this job: {why}"
    again, _ = _offer(snakemake, request, where, folder)
    return f"Cold start: {again}, after a server was started (its log: {where.path(where.log)})"


def _offer(
    snakemake: Any, request: dict[str, Any], where: place.Place, folder: int
) -> tuple[str, bool]:
    """Run the job in a child of the server and exit as it did. Returns only when the server
    did not take the job: why, and whether starting a server could help."""
    try:
        sock = _connect(where, folder)
    except PermissionError as exc:
        return f"not this user's warm job server ({exc})", False
    except OSError as exc:
        return f"no warm job server ({exc.strerror or exc})", True
    with sock:
        try:
            wire.send(sock, request, fds=_std_fds())
            reply, pidfds = wire.receive(sock)
        except (OSError, EOFError, ValueError) as exc:
            return f"the warm job server did not take the job ({exc})", False
        if "refused" in reply:
            return str(reply["refused"]), True
        try:
            wire.send(sock, {"go": True})  # from here on the job is the child's
        except OSError as exc:
            return f"the warm job server did not take the job ({exc})", False
        sock.settimeout(None)
        _exit_like(_wait(sock, _Child(reply["pid"], pidfds), snakemake.log))


def _connect(where: place.Place, folder: int) -> socket.socket:
    """A connection to the server of `where`, whose folder is open as `folder`; PermissionError
    when the process listening there is not this user's."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(private.address(folder, where.socket))
        wire.check_peer(sock, os.getuid())
    except OSError:
        sock.close()
        raise
    return sock


def _start(project: Path, where: place.Place, folder: int, config: Mapping[str, Any]) -> str | None:
    """Start a server, unless another job is starting one, and wait until it listens (it lets
    go of the start lock then, or when it fails). None once it does, else why not."""
    try:
        lock = private.open_file(folder, where.start_lock, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        return f"none can be started ({exc})"
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        start_server(project, where, os.environ, config, lock=lock)  # it holds the lock on
    except BlockingIOError:
        pass  # another job is starting one
    except OSError as exc:
        return f"none could be started ({exc})"
    finally:
        os.close(lock)
    return _wait_for_start(where, folder)


def _wait_for_start(where: place.Place, folder: int) -> str | None:
    """Wait until the server being started lets go of the start lock; None when it did."""
    try:
        lock = private.open_file(folder, where.start_lock, os.O_RDWR)
    except OSError as exc:
        return f"none can be started ({exc})"
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return (
                        f"its server did not listen within {START_TIMEOUT} s "
                        f"(its log: {where.path(where.log)})"
                    )
                time.sleep(0.05)
    finally:
        os.close(lock)


def start_server(
    project: Path,
    where: place.Place,
    environ: Mapping[str, str],
    config: Mapping[str, Any] | None = None,
    lock: int | None = None,
) -> None:
    """Start the server of `where` for project folder `project` and workflow config `config`
    (its `warm_preload`), in the background, with the environment `environ`; it lets go of the
    start lock `lock` once it listens."""
    env = dict(environ)
    if lock is not None:
        env[place.START_LOCK_FD_ENV] = str(lock)
    folder = private.open_folder(where.folder)
    try:
        log = private.open_file(folder, where.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    finally:
        os.close(folder)
    with os.fdopen(log, "a") as log:
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dltemplate.warm.server",
                str(project),
                str(where.folder),
                where.key,
                *place.preloaded(config or {}),
            ],
            cwd=project,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # out of the terminal's signals and Snakemake's kills
            pass_fds=() if lock is None else (lock,),
            env=env,
        )


def wait_until_serving(where: place.Place, timeout: float = 120) -> dict[str, Any]:
    """The status of the server of `where` once it takes jobs (TimeoutError after `timeout` s)."""
    deadline = time.monotonic() + timeout
    while (status := ask(where, "status")) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no warm server in {where.folder} after {timeout} s; see {where.path(where.log)}"
            )
        time.sleep(0.1)
    return status


def _std_fds() -> list[int]:
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            fd = os.open(os.devnull, os.O_RDWR)
        fds.append(fd)
    return fds


def _request(snakemake: Any, step: Callable[..., Any]) -> dict[str, Any]:
    umask = os.umask(0o022)
    os.umask(umask)
    request = {
        "ask": "job",
        "step": f"{step.__module__}:{step.__name__}",
        "snakemake": job_object.to_plain(snakemake),
        "cwd": os.getcwd(),
        "project": os.getcwd(),
        "env": dict(os.environ),
        "umask": umask,
        "sys_path": list(sys.path),
        "argv": list(sys.argv),
        "client_pid": os.getpid(),
        "log": str(snakemake.log[0]) if snakemake.log else None,
    }
    wire.encode(request)  # NotPlainData now, rather than once connected
    return request


class _Child:
    """The job's process: its pid, and its pidfd when the server sent one (a signal through
    it never reaches another process that got the pid after this one was reaped)."""

    def __init__(self, pid: int, pidfds: list[int]) -> None:
        self.pid = pid
        self.pidfd = pidfds[0] if pidfds else None

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signum)
            else:
                os.kill(self.pid, signum)


def _wait(sock: socket.socket, child: _Child, logs: Any) -> int:
    """The exit status of the job's process `child`, passing it the signals this script gets."""

    def forward(signum: int, _frame: Any) -> None:
        child.signal(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    try:
        reply, _ = wire.receive(sock)
        return int(reply["exit"])
    except (OSError, EOFError, KeyError, ValueError):
        child.signal(signal.SIGKILL)
    pid = child.pid
    message = (
        f"Error: the warm job server stopped while this job ran in its process {pid}, which "
        "was stopped too; run the same target again (a fit resumes from its last checkpoint)"
    )
    print(message, file=sys.stderr, flush=True)
    for log in list(logs or [])[:1]:
        with contextlib.suppress(OSError), open(log, "a") as file:
            print(message, file=file)
    return 1


def _exit_like(code: int) -> NoReturn:
    """Exit as the job's process did: with its status, or killed by the same signal."""
    sys.stdout.flush()
    sys.stderr.flush()
    if code < 0:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(
                resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1])
            )
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those have no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)


def servers_of(project: Path, environ: Mapping[str, str] = os.environ) -> list[place.Place]:
    """The servers of project folder `project` that the state folder lists: one for each
    environment whose jobs started one (place.place_for), newest first."""
    folder = place.state_folder(environ)
    try:
        fd = private.open_folder(folder)
    except OSError:
        return []
    found = []
    try:
        for name in os.listdir(fd):
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                state = json.loads(private.read_text(fd, name))
            except (OSError, ValueError):
                continue
            if Path(str(state.get("project"))).resolve() == project.resolve():
                found.append((state.get("started", 0), place.Place(folder, name[: -len(".json")])))
    finally:
        os.close(fd)
    return [where for _, where in sorted(found, key=lambda pair: -pair[0])]


def ask(where: place.Place, what: str) -> dict[str, Any] | None:
    """The server's answer to `what` (status, stop), or None when none is listening (or the
    folder is not a private one)."""
    try:
        folder = private.open_folder(where.folder)
    except OSError:
        return None
    try:
        with _connect(where, folder) as sock:
            wire.send(sock, {"ask": what})
            return wire.receive(sock)[0]
    except (OSError, EOFError, ValueError):
        return None
    finally:
        os.close(folder)
