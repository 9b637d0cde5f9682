"""Fits in fresh processes without a fresh import each: a parent that imported torch, Lightning
and the fit job once forks one child per fit, as the warm job server does (docs/warm-jobs.md).

A child is a new process: its own pid, signals and exit status (143 after SIGTERM, -9 when it
kills itself with SIGKILL), its working directory and environment set from the request, and
nothing trained before it (the parent never runs torch, so no thread pool crosses the fork).
Run as `python -m tests.forked_fits`; requests and exit statuses are JSON lines on stdin/stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path


def _child(request: dict) -> int:
    out = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv[:] = ["-c", *request["argv"]]
    sys.path.insert(0, "")  # as `python -c` has it: the working directory first
    try:
        exec(compile(request["code"], "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
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
    """The parent process, from the test's side: `run` is `subprocess.run` of `python -c code`."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.count = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forked_fits"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )

    def run(self, code: str, argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
        """The exit status and the output (stdout and stderr) of `code` run with `argv`."""
        self.count += 1
        output = self.scratch / f"fork-{self.count}.out"
        request = {"code": code, "argv": argv, "cwd": str(cwd), "env": env, "output": str(output)}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork parent died (exit {self.process.wait()})")
        return json.loads(line), output.read_text()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


if __name__ == "__main__":
    serve()
