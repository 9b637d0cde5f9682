"""Every rerun command the template prints does exactly what it says: one run, not all of them.

Broken on purpose: the old hint `snakemake -R fit <target>` (-R swallows the target, and
Snakemake falls back to its default target) lists the jobs of every run and fails here.
"""

from __future__ import annotations

import re
import shlex

import pytest

from dltemplate.jobs.common import checkpoint_hint
from dltemplate.layout import RunLayout
from dltemplate.workflow.targets import rerun_command
from tests.conftest import TINY_REGISTRY, Project

TWO_RUNS = (
    TINY_REGISTRY
    + """\
      other:
        description: a second run, which no hint may touch
        config: configs/digits_mlp.py
"""
)
RUN = RunLayout.of("tiny", "exp", "mlp")


def dry_run_jobs(project: Project, command: str) -> list[tuple[str, str]]:
    """(rule, run) of every job that a dry run of the printed `command` lists."""
    words = shlex.split(command)
    assert words[0] == "snakemake", command
    output = project.snakemake(*words[1:], "-n").stdout
    rules = re.findall(r"^rule (\w+):", output, flags=re.M)
    runs = re.findall(r"wildcards: .*?run=([\w.-]+)", output)
    return list(zip(rules, runs, strict=True))


@pytest.mark.parametrize(
    ("hint", "expected"),
    [
        (checkpoint_hint(RUN.done("fit"), "registry").split(": ", 1)[1], [("fit", "mlp")]),
        (rerun_command(RUN.done("test"), "test"), [("fit", "mlp"), ("test", "mlp")]),
    ],
)
def test_a_printed_rerun_command_reruns_one_run(
    project: Project, hint: str, expected: list[tuple[str, str]]
) -> None:
    project.write("configs/projects/tiny.yaml", TWO_RUNS)
    assert sorted(dry_run_jobs(project, hint)) == expected


def test_the_old_hint_would_have_rerun_every_run(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", TWO_RUNS)
    output = project.snakemake("-n", "-R", "fit", RUN.done("fit")).stdout
    assert "run=other" in output  # why the target must come first
