"""Layer 1 and 4: a registry file that does not parse is named in the same one line by Snakemake
and by every command that reads or edits the registry (issue #20, point 2), at the line of the
mistake, with exit status 1, no traceback, and the file left as it was."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from dltemplate.errors import RegistryError
from dltemplate.registry import edit as registry_edit
from dltemplate.registry.model import load_registry
from tests.conftest import Project, make_project

HEAD = "description: P\nexperiments:\n  base:\n    description: E\n    runs:\n"
GOOD_RUN = "      r{i}:\n        description: R{i}\n        config: configs/digits_mlp.py\n"

# Each broken file, and how its position must read.
BROKEN = {
    # line 7 indented one column too little: libyaml notices at 8:8
    "bad indentation": (
        HEAD + "      mlp:\n        description: R\n       config: configs/digits_mlp.py\n",
        r"adv\.yaml:8:\d+ does not parse as YAML: did not find expected key \(look at lines 7-8\)",
    ),
    "duplicate run": (
        HEAD + GOOD_RUN.format(i=1) + GOOD_RUN.format(i=1),
        r"adv\.yaml:9:7 does not parse as YAML: found duplicate key 'r1'",
    ),
    # an unsafe tag on line 107: the edit adds ids above it, yet the file's line is named
    "unsafe tag": (
        HEAD
        + "".join(GOOD_RUN.format(i=i) for i in range(33))
        + "      evil:\n        description: E\n"
        + "        config: !!python/object/apply:os.system [ls]\n",
        r"adv\.yaml:107:17 does not parse as YAML: could not determine a constructor",
    ),
}

COMMANDS = {
    "add-run": "add-run -p adv -e base -n new -d D --no-check -c configs/digits_mlp.py",
    "add-exp": "add-exp -p adv -n e2 -d D",
    "show": "show adv/base/r1",
}


def error_lines(output: str) -> list[str]:
    assert "Traceback" not in output, output
    return [line for line in output.splitlines() if line.startswith("Error:")]


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = make_project(tmp_path_factory.mktemp("parse") / "proj")
    (project.path("results/adv/base/r1")).mkdir(parents=True)  # `show` must not fall back
    return project


@pytest.mark.parametrize("case", BROKEN)
def test_commands_name_the_mistake_as_snakemake_does(broken: Project, case: str) -> None:
    text, position = BROKEN[case]
    registry = broken.write("configs/projects/adv.yaml", text)
    snakemake = broken.snakemake("-n", "--cores", "1", check=False)
    assert snakemake.returncode == 1, snakemake.stderr
    [line] = error_lines(snakemake.stderr)
    assert line.startswith("Error: Registry configs/projects/adv.yaml:"), line
    assert re.search(position, line), line
    for command, args in COMMANDS.items():  # the same line from each
        result = broken.main(*shlex.split(args), check=False)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert error_lines(result.stderr) == [line], (command, result.stderr)
        assert registry.read_text() == text, command
    assert not Path(broken.path("configs/projects/.edit-")).exists()


def test_what_only_the_round_trip_parser_refuses_is_named_with_its_line(tmp_path: Path) -> None:
    """A tab after `base:` is YAML that PyYAML reads and ruamel.yaml refuses: Snakemake runs,
    and the commands that edit say why they cannot, where, and that Snakemake reads it."""
    folder = tmp_path / "projects"
    folder.mkdir()
    text = HEAD.replace("  base:\n", "  base:\t\n") + GOOD_RUN.format(i=1)
    (folder / "adv.yaml").write_text(text)
    assert load_registry(folder).run("adv", "base", "r1")
    with pytest.raises(RegistryError) as info:
        registry_edit.add_experiment(folder, "adv", "e2", "D")
    assert str(info.value).startswith(
        f"Registry {folder}/adv.yaml:3:8 cannot be edited by main.py: ruamel.yaml, which keeps "
        "your comments, refuses it: found character '\\t' that cannot start any token"
    )
    assert str(info.value).endswith("(Snakemake reads it); fix the file by hand")
    assert (folder / "adv.yaml").read_text() == text
