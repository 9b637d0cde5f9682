"""Start a project's warm job server for a test, as the project's first job would."""

from __future__ import annotations

import os
from pathlib import Path

from dltemplate.warm import place
from dltemplate.warm.client import start_server, wait_until_serving


def warm_env(state: Path) -> dict[str, str]:
    """The environment of warm jobs with their server's files in `state`."""
    return {"DLT_WARM": "1", "DLT_WARM_DIR": str(state), "DLT_WARM_IDLE": "300"}


def start_warm_server(root: Path, env: dict[str, str]) -> place.Place:
    """Start the warm server of project folder `root` for jobs with environment `env` (added
    to this process's) and wait until it takes jobs."""
    full = {**os.environ, **env}
    where = place.place_for(root, full)
    start_server(root, where, full)
    wait_until_serving(where)
    return where
