"""Fresh processes without a fresh import each: a parent that imported torch, Lightning and
the fit job once forks one child per fit or `main.py` command, as the warm job server does for
jobs (docs/warm-jobs.md). The resume tests' fits and every `Project.main` run so.

A child is a new process: its own pid, signals and exit status (143 after SIGTERM, -9 when it
kills itself with SIGKILL), its working directory, environment and sys.argv set from the
request, and nothing run before it (the parent never runs torch, so no thread pool crosses the
fork). Run as `python -m tests.forks`; requests and exit statuses are JSON lines on
stdin/stdout.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import traceback
from pathlib import Path


def _child(request: dict) -> int:
    for fd, name in ((1, "stdout"), (2, "stderr")):
        out = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, fd)
        os.close(out)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    script = request.get("script")
    # As `python -c code argv...` or `python script argv...` has them.
    sys.argv[:] = [script or "-c", *request["argv"]]
    sys.path.insert(0, str(Path(script).resolve().parent) if script else "")
    try:
        if script:
            runpy.run_path(script, run_name="__main__")
        else:
            exec(compile(request["code"], "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def serve() -> None:
    import lightning  # noqa: F401  (the imports every child would pay for)
    import torch  # noqa: F401

    import dltemplate.jobs.fit  # noqa: F401

    protocol = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(request)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code & 0xFF)
        _, status = os.waitpid(pid, 0)
        protocol.write(json.dumps(os.waitstatus_to_exitcode(status)) + "\n")
        protocol.flush()


class Forks:
    """The parent process, from the test's side."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forks"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )

    def call(self, argv: list[str], cwd: Path, env: dict[str, str], **how: str):
        """A CompletedProcess of `python -c code argv` (how: code=...) or `python script argv`
        (how: script=...), stdout and stderr as text."""
        self.count += 1
        out = {name: str(self.scratch / f"{self.count}.{name}") for name in ("stdout", "stderr")}
        request = {**how, "argv": argv, "cwd": str(cwd), "env": env, **out}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork parent died (exit {self.process.wait()})")
        texts = {name: Path(path).read_text() for name, path in out.items()}
        for path in out.values():
            Path(path).unlink()
        args = [sys.executable, how.get("script", "-c"), *argv]
        return subprocess.CompletedProcess(args, json.loads(line), **texts)

    def run(self, code: str, argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
        """The exit status and the output (stdout, then stderr) of `python -c code argv`."""
        done = self.call(argv, cwd, env, code=code)
        return done.returncode, done.stdout + done.stderr

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


if __name__ == "__main__":
    serve()
