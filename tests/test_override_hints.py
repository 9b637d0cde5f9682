"""Values Lightning takes, given as overrides: `--set trainer.precision=16` is a precision (the
example's trainer getter takes `str | int`, as Lightning does), and a number where a getter
expects text is refused with the quoting that makes it text."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def _hparams(*assignments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "main.py", "hparams", "-c", "configs/digits_mlp.py"]
    for assignment in assignments:
        command += ["--set", assignment]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)


def test_a_precision_lightning_takes_as_a_number() -> None:
    result = _hparams("trainer.precision=16")
    assert result.returncode == 0, result.stderr
    assert "precision = 16" in result.stdout


def test_a_number_where_text_is_expected_says_how_to_quote_it() -> None:
    result = _hparams("trainer.monitor=3")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: Override trainer.monitor=3 (override trainer.monitor from --set on the command "
        "line): expected str, got int; a value read as text is quoted: "
        "--set 'trainer.monitor=\"3\"' (in YAML: '3')"
    ]
