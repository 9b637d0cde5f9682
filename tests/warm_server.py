"""Start a project's warm job server for a test, as the project's first job would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from dltemplate.warm import place
from dltemplate.warm.client import ask


def warm_env(state: Path) -> dict[str, str]:
    """The environment of warm jobs with their server's files in `state`."""
    return {"DLT_WARM": "1", "DLT_WARM_DIR": str(state), "DLT_WARM_IDLE": "300"}


def start_warm_server(root: Path, env: dict[str, str]) -> place.Place:
    """Start the warm server of project folder `root` for jobs with environment `env` (added
    to this process's) and wait until it takes jobs."""
    full = {**os.environ, **env}
    where = place.place_for(root, full)
    subprocess.Popen(
        [sys.executable, "-m", "dltemplate.warm.server", str(root), str(where.folder), where.key],
        cwd=root,
        env=full,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while ask(where, "status") is None:
        assert time.monotonic() < deadline, "no warm server came up"
        time.sleep(0.2)
    return where
