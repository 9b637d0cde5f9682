"""Warm job servers for the tests: one started as a project's first job would start it, and
`Warm`, a project whose job scripts run the steps of tests/warm_steps.py."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from dltemplate.warm import place
from dltemplate.warm.client import start_server, wait_until_serving

REPO = Path(__file__).resolve().parents[1]


# What Snakemake sets for a job of one thread (and conftest.Project for every job): a server
# that jobs are to find must be started with them, as a job's server is (place.py: read at
# import time, so part of a server's key).
ONE_THREAD_JOB = {
    **place.snakemake_job_environment(os.environ, threads=1),
    "PYTHONUNBUFFERED": "1",  # conftest.Project's, for every job
}


def warm_env(state: Path) -> dict[str, str]:
    """The environment of warm one-thread jobs with their server's files in `state`."""
    return {**ONE_THREAD_JOB, "DLT_WARM": "1", "DLT_WARM_DIR": str(state), "DLT_WARM_IDLE": "300"}


def start_warm_server(root: Path, env: dict[str, str], config: dict | None = None) -> place.Place:
    """Start the warm server of project folder `root` for jobs with environment `env` (added
    to this process's) and workflow config `config`, and wait until it takes jobs."""
    full = {**os.environ, **env}
    where = place.place_for(root, full, config)
    start_server(root, where, full, config)
    wait_until_serving(where)
    return where


CLIENT = (
    "import json, sys; from dltemplate.jobs.steps import run_step; "
    "from tests import warm_steps as w; "
    "run_step(w.job(sys.argv[2], sys.argv[3], **json.loads(sys.argv[4])), getattr(w, sys.argv[1]))"
)


class Warm:
    """A project folder, a private folder for its warm server, and job scripts to run there."""

    def __init__(self, project: Path, state: Path, config: dict | None = None) -> None:
        self.project = project
        self.state = state
        self.config = config or {}
        self.pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        self.count = 0

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": self.pythonpath,
            "DLT_WARM": "1",
            "DLT_WARM_DIR": str(self.state),
            "DLT_WARM_IDLE": "300",
            **extra,
        }

    def start(self, step: str, env: dict[str, str] | None = None, umask: int = -1, **params):
        self.count += 1
        log = self.project / f"job-{self.count}.log"
        out = self.project / f"job-{self.count}.out"
        process = subprocess.Popen(
            [
                *(sys.executable, "-c", CLIENT, step, str(log), str(out)),
                json.dumps({"config": self.config, **params}),
            ],
            cwd=self.project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or self.env(),
            umask=umask,
        )
        return process, log, out

    def run(self, step: str, env: dict[str, str] | None = None, umask: int = -1, **params):
        process, log, out = self.start(step, env, umask, **params)
        stdout, stderr = process.communicate(timeout=120)
        return process.returncode, stdout + stderr, log, out

    def where(self, env: dict[str, str] | None = None) -> place.Place:
        return place.place_for(self.project, env or self.env(), self.config)

    def file(self, name: str, env: dict[str, str] | None = None) -> Path:
        """A file of the server for jobs of environment `env`: socket, state or log."""
        where = self.where(env)
        return where.path(getattr(where, name))

    def server_pid(self, env: dict[str, str] | None = None) -> int | None:
        try:
            return json.loads(self.file("state", env).read_text())["pid"]
        except (OSError, ValueError):
            return None

    def wait_ready(self, other_than: int | None = None, env: dict | None = None) -> int:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            pid = self.server_pid(env)
            if pid and pid != other_than and self.file("socket", env).exists():
                return pid
            time.sleep(0.2)
        raise AssertionError(f"no warm server came up; its log:\n{read(self.file('log', env))}")

    def stop(self) -> None:
        """Kill every server of this state folder."""
        for state in self.state.glob("*.json") if self.state.is_dir() else ():
            with contextlib.suppress(ProcessLookupError, ValueError, OSError):
                os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)


def read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


def wait_for(path: Path, within: float = 60) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear")
