"""Values Lightning takes, given as overrides: `--set trainer.precision=16` is a precision (the
trainer getter takes `str | int`, as Lightning does), and a number where a getter expects text
is refused with the quoting that makes it text. In the fixture project (tests/conftest.py)."""

from __future__ import annotations

import subprocess

from tests.conftest import Project


def _hparams(project: Project, *assignments: str) -> subprocess.CompletedProcess:
    sets = [arg for assignment in assignments for arg in ("--set", assignment)]
    return project.main("hparams", "-c", "configs/digits_mlp.py", *sets, check=False)


def test_a_precision_lightning_takes_as_a_number(project: Project) -> None:
    result = _hparams(project, "trainer.precision=16")
    assert result.returncode == 0, result.stderr
    assert "precision = 16" in result.stdout


def test_a_number_where_text_is_expected_says_how_to_quote_it(project: Project) -> None:
    result = _hparams(project, "trainer.monitor=3")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: Override trainer.monitor=3 (override trainer.monitor from --set on the command "
        "line): expected str, got int; a value read as text is quoted: "
        "--set 'trainer.monitor=\"3\"' (in YAML: '3')"
    ]
