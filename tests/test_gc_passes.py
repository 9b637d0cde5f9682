"""The workflow's process collects garbage less often once the registry is loaded."""

from __future__ import annotations

import subprocess
import sys


def test_collect_garbage_less_often_freezes_and_raises_the_threshold() -> None:
    code = (
        "import gc\n"
        "from dltemplate.workflow.gc_passes import (\n"
        "    YOUNG_OBJECTS_PER_PASS, YOUNGER_PASSES_PER_OLDER_PASS, collect_garbage_less_often)\n"
        "collect_garbage_less_often()\n"
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()\n"
        "assert gc.get_threshold()[0] == YOUNG_OBJECTS_PER_PASS > 700\n"
        "assert gc.get_threshold()[1:] == (YOUNGER_PASSES_PER_OLDER_PASS,) * 2\n"
        "cycle = []; cycle.append(cycle); del cycle\n"
        "assert gc.collect() >= 1  # cycles are still collected\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # a fresh process: gc is global
