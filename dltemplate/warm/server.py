"""The warm job server: `python -m dltemplate.warm.server <project folder>`.

It imports the import-safe libraries (place.IMPORT_SAFE and the workflow config's
`warm_preload`: torch, Lightning, torchmetrics, numpy, matplotlib, the engine ...) once, then
waits on its Unix socket in its private folder, and serves only its own user (SO_PEERCRED).
For each job it forks a child (dltemplate.warm.child) from that clean state; the server itself
runs no job code, touches no GPU and starts no torch thread pool, so every child starts as the
previous one did. Nothing else is preloaded: the project's code, the configs and any other
library are imported by each job, fresh, as a cold job imports them. Before each fork it checks
that what it loaded is unchanged (dltemplate.warm.fingerprint); when it changed, it refuses the
job (the job runs cold), stops taking jobs and exits once its running jobs end, and the next job
starts a fresh server. It also stops after `idle` seconds without a job, on SIGTERM, and when
its socket file is removed or replaced. A connection may also ask for its status or its stop.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from dltemplate.errors import one_line
from dltemplate.jobs.logs import configure_logging
from dltemplate.warm import child, place, private, wire
from dltemplate.warm.fingerprint import Fingerprint

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"  # the server's own, never a job's
# What a server imports before it takes jobs: modules of import-safe libraries (place.py) that
# every job imports; it learns the others jobs import from those libraries (their data's and
# model's) as they come.
PRELOAD = (
    "numpy",
    "torch",
    "lightning",
    "torchmetrics",
    "matplotlib.pyplot",
    "snakemake.script",
    "dltemplate.jobs.fit",
    "dltemplate.jobs.evaluate",
    "dltemplate.jobs.predict",
    "dltemplate.results.run_records",
    "dltemplate.results.plots",
    "dltemplate.results.summary",
)


def say(message: str) -> None:
    """A line of the server's log (a full disk costs the line, not the server)."""
    with contextlib.suppress(OSError):
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}", flush=True)


def _import(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception as exc:  # a module that fails here is imported by the job, as when cold
        say(f"not preloaded: {name}: {one_line(exc)}")


def preload(safe: tuple[str, ...]) -> None:
    """Import PRELOAD and the libraries that the workflow config adds to the import-safe ones
    (the others of `safe` as jobs import them)."""
    for name in (*PRELOAD, *(n for n in safe if n not in place.IMPORT_SAFE)):
        if name not in sys.modules:
            _import(name)


def is_safe(module: str, safe: tuple[str, ...]) -> bool:
    """Whether `module` is one of the import-safe libraries `safe`, or a module of one."""
    return module.partition(".")[0] in safe or module in safe


def imports_added(initial: dict[str, str]) -> dict[str, str]:
    """The environment variables that the server's imports set (torch's compile caches, say),
    which a cold job's imports would set in its own environment too."""
    ours = (place.START_LOCK_FD_ENV, NVML_CHECK)
    return {
        name: value
        for name, value in os.environ.items()
        if initial.get(name) != value and name not in ours
    }


def _send_pid(conn: socket.socket, pid: int) -> None:
    """The job's pid, and a pidfd of it where Linux has them (signals then never reach another
    process that got the pid after the job's process was reaped)."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        wire.send(conn, {"pid": pid})
        return
    try:
        wire.send(conn, {"pid": pid}, fds=[pidfd])
    finally:
        os.close(pidfd)


class Server:
    def __init__(
        self, project: Path, where: place.Place, idle: float, safe: tuple[str, ...]
    ) -> None:
        self.project = project
        self.where = where
        self.idle = idle
        self.safe = safe
        self.folder = private.open_folder(where.folder)
        self.started = time.time()
        self.children: dict[int, tuple[socket.socket, dict[str, Any]]] = {}
        self.served = 0
        self.stopping = ""
        self.listener: socket.socket | None = None
        self.inode = -1

    def run(self) -> None:
        initial = self.initial = dict(os.environ)
        configure_logging()  # as a cold job's log does before its imports (Lightning's loggers)
        preload(self.safe)
        self.loaded = Fingerprint(self.project)
        self.added = imports_added(initial)
        self._listen()
        lock = os.environ.pop(place.START_LOCK_FD_ENV, None)
        if lock:  # the next job may start a server again (when this one stops)
            with contextlib.suppress(OSError):
                os.close(int(lock))
        say(f"ready in {time.time() - self.started:.1f} s: {self.where.path(self.where.socket)}")
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._stop_on_signal)
        self.wake = (wake_r, wake_w)
        selector = self.selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        last_job = time.monotonic()
        while self.listener is not None or self.children:
            for key, _ in selector.select(timeout=1.0):
                if key.fileobj is self.listener:
                    self._accept()
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
            self._reap()
            if self.children:
                last_job = time.monotonic()
            if self.listener is None:
                continue
            if not self.stopping and time.monotonic() - last_job > self.idle:
                self.stopping = f"idle for {self.idle:g} s"
            if not self.stopping and not self._owns_socket():
                self.stopping = "its socket file was removed or replaced"
            if self.stopping:
                selector.unregister(self.listener)
                self._close_listener()
        say(f"stopped ({self.stopping}); {self.served} jobs served")

    def _stop_on_signal(self, signum: int, _frame: Any) -> None:
        self.stopping = self.stopping or f"signal {signal.Signals(signum).name}"

    def _listen(self) -> None:
        staging = f"{self.where.socket}.{os.getpid()}"
        private.remove(self.folder, staging)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        umask = os.umask(0o177)  # the socket file is 600 (in a 700 folder)
        try:
            listener.bind(private.address(self.folder, staging))
        finally:
            os.umask(umask)
        listener.listen(64)
        # over a stale socket file, atomically
        os.replace(staging, self.where.socket, src_dir_fd=self.folder, dst_dir_fd=self.folder)
        self.inode = private.inode(self.folder, self.where.socket)
        self.listener = listener
        state = {
            "pid": os.getpid(),
            "started": self.started,
            "project": str(self.project),
            "python": sys.executable,
            "socket": str(self.where.path(self.where.socket)),
            "log": str(self.where.path(self.where.log)),
            "idle_seconds": self.idle,
        }
        private.write_text_atomic(self.folder, self.where.state, json.dumps(state, indent=1))

    def _owns_socket(self) -> bool:
        return private.inode(self.folder, self.where.socket) == self.inode

    def _close_listener(self) -> None:
        if self._owns_socket():
            for name in (self.where.socket, self.where.state):
                private.remove(self.folder, name)
        assert self.listener is not None
        self.listener.close()
        self.listener = None

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "started": self.started,
            "project": str(self.project),
            "served": self.served,
            "running": {str(pid): job for pid, (_, job) in self.children.items()},
            "idle_seconds": self.idle,
            "log": str(self.where.path(self.where.log)),
        }

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        fds: list[int] = []
        try:
            wire.check_peer(conn, os.getuid())  # before reading a byte of what it sends
            conn.settimeout(10)
            message, fds = wire.receive(conn)
            ask = message.get("ask")
            if ask == "status":
                wire.send(conn, self.status())
            elif ask == "stop":
                self.stopping = self.stopping or "asked to stop"
                wire.send(conn, self.status())
            elif ask == "job":
                self._start_job(conn, message, fds)
                return  # the connection stays open until the job ends
        except Exception as exc:  # a client that left or sent garbage costs only itself
            say(f"a connection failed: {one_line(exc)}")
        for fd in fds:
            os.close(fd)
        conn.close()

    def _refusal(self) -> str | None:
        changed = self.loaded.what_changed()
        if changed:
            self.stopping = changed
            return f"{changed}; this server stops"
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():  # never expected: a fork would break
            self.stopping = "CUDA was initialized in the server"
            return self.stopping
        if self.stopping:
            return f"the server is stopping ({self.stopping})"
        return None

    def _start_job(self, conn: socket.socket, message: dict[str, Any], fds: list[int]) -> None:
        refusal = self._refusal()
        if refusal:
            say(f"refused a job: {refusal}")
            wire.send(conn, {"refused": refusal})
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            others = [c.fileno() for c, _ in self.children.values()]
            assert self.listener is not None
            ours = [self.listener.fileno(), *self.wake, self.selector.fileno(), self.folder]
            child.run_job(
                message,
                conn,
                fds,
                server_pid=os.getppid(),
                close=[*ours, *others],
                learned=(self.where.folder, self.where.learned(os.getpid())),
                added=self.added,
            )  # does not return
        for fd in fds:
            os.close(fd)
        conn.settimeout(None)
        self.served += 1
        job = {key: message.get(key) for key in ("step", "cwd", "client_pid", "log")}
        self.children[pid] = (conn, job)
        say(f"job {self.served}: {job['step']} for {job['log']} runs in process {pid}")
        with contextlib.suppress(OSError):  # the script is gone: the child notices and ends
            _send_pid(conn, pid)

    def _learn(self, pid: int) -> None:
        """Import the modules of import-safe libraries that job `pid` imported (its data's and
        model's: sklearn.datasets, torch.nn.functional ...), so that the next jobs find them
        loaded; once each, between jobs. Any other module stays the job's own."""
        name = self.where.learned(pid)
        try:
            listed = private.read_text(self.folder, name).split()
            private.remove(self.folder, name)
        except OSError:
            return
        names = [n for n in listed if n not in sys.modules and is_safe(n, self.safe)]
        if names and not self.loaded.what_changed():  # else the next job refuses, and it stops
            started = time.monotonic()
            for name in names:
                if name not in sys.modules:
                    _import(name)
            self.loaded.add_new_modules()  # their files are checked before each fork too
            self.added = imports_added(self.initial)
            took = time.monotonic() - started
            say(f"learned {len(names)} modules from process {pid} in {took:.1f} s")

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid not in self.children:
                continue
            conn, job = self.children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            say(f"process {pid} ({job['step']}) ended: {_status_text(code)}")
            with contextlib.suppress(OSError):
                wire.send(conn, {"exit": code})
            conn.close()
            self._learn(pid)


def _status_text(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def main(argv: list[str] | None = None) -> None:
    """Arguments: the project folder, the server's private folder, its key, and the
    import-safe libraries (place.preloaded), one argument each."""
    project, folder, key, *safe = sys.argv[1:] if argv is None else argv
    os.chdir(project)
    # An import that asks whether CUDA is there (torch.cuda.device_count) would start the CUDA
    # driver, and a forked child could not use CUDA then; NVML answers without starting it.
    os.environ[NVML_CHECK] = "1"
    where = place.Place(Path(folder), key)
    Server(Path(project), where, place.idle_seconds(), tuple(safe)).run()


if __name__ == "__main__":
    main()
