"""`dltemplate new` writes a project of the user's own, and the engine installs as one package.

- The project has the design's layout, one example's files only, under 1,500 lines, and the
  engine's version range; a folder that is not empty is refused in one line, nothing written.
- Its commands work from any folder inside it; its Snakefile runs the engine's rules from the
  installed package, and its own example rule too.
- The wheel holds the engine alone (rules, step scripts, captions, schemas, wrappers, the
  scaffold), and a project written by the wheel's `new` runs from the wheel's rules.

Broken on purpose: with `new` writing every example's files whatever is asked, or the wheel's
package-data without `workflow/rules/*.smk`, these tests fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import dltemplate
from dltemplate.scaffold import EXAMPLES, write_project
from tests.conftest import BIN, REPO, Project

LAYOUT = (
    "Snakefile", "rules/extra.smk", "scripts/test_accuracy.py", "configs/workflow.yaml",
    "wrappers/__init__.py", "data/README.md", "results/.gitkeep", "envs/dltemplate.yaml",
    "profiles/default/config.yaml", "README.md", "Makefile", "pyproject.toml", ".gitignore",
    "main.py", "tests/test_configs.py", "configs/projects/README.md",
)  # fmt: skip
SMALL_RUN = """\
description: one small run
experiments:
  exp:
    description: the digits MLP, briefly
    runs:
      mlp:
        description: one short epoch
        config: configs/digits_mlp.py
        jobs: [fit, test]
        overrides: {trainer.max_epochs: 1, trainer.limit_train_batches: 4}
"""


def dltemplate_command(
    *args: str, cwd: Path, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dltemplate"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def lines_of(root: Path) -> int:
    files = [p for p in root.rglob("*") if p.is_file()]
    return sum(len(p.read_bytes().splitlines()) for p in files)


def clean_copy(folder: Path) -> Path:
    """The repository's files as a clone has them (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, folder / name)
    return folder


@pytest.mark.parametrize("example", [*EXAMPLES, "none"])
def test_new_writes_the_layout_and_one_examples_files(tmp_path: Path, example: str) -> None:
    root = tmp_path / "mine"
    written = {p.as_posix() for p in write_project(root, [example])}
    assert set(LAYOUT) <= written
    for name, files in EXAMPLES.items():
        present = {f for f in files if (root / f).exists()}
        assert present == (set(files) if name == example else set()), name
    assert lines_of(root) <= 1500
    pyproject = (root / "pyproject.toml").read_text()
    assert 'name = "mine"' in pyproject and "\n[tool.dltemplate]\n" in pyproject
    major_minor = ".".join(dltemplate.__version__.split(".")[:2])
    assert f'"dltemplate[search]>={major_minor},<' in pyproject
    unfilled = [f for f in written if re.search(r"@[a-z_]+@", (root / f).read_text())]
    assert not unfilled, unfilled


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine\n")
    result = dltemplate_command("new", "mine", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == "Error: mine is not empty: give a new folder (nothing was written)\n"
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    result = dltemplate_command("new", "other", "--example", "mnist", cwd=tmp_path)
    assert result.returncode == 2 and "invalid choice: 'mnist'" in result.stderr
    assert not (tmp_path / "other").exists()


def test_commands_find_the_project_from_a_subfolder(tmp_path: Path) -> None:
    result = dltemplate_command("new", "mine", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    inside = tmp_path / "mine" / "configs" / "components"
    for command in ([str(BIN / "dltemplate")], [sys.executable, "../../main.py"]):
        listed = subprocess.run(
            [*command, "ls", "-p", "digits"], cwd=inside, capture_output=True, text=True
        )
        assert listed.returncode == 0, listed.stderr
        assert "baseline" in listed.stdout and "lr_sweep" in listed.stdout
    # a path typed there is relative to there; the registry records it from the project
    declare = ["add-run", "-p", "digits", "-e", "baseline", "-n", "mine", "-d", "here"]
    added = dltemplate_command(*declare, "-c", "../digits_mlp.py", "--no-check", cwd=inside)
    assert added.returncode == 0, added.stderr
    registry = (tmp_path / "mine/configs/projects/digits.yaml").read_text()
    assert "description: here\n        config: configs/digits_mlp.py\n" in registry


@pytest.mark.slow
def test_a_new_project_trains_and_runs_its_own_rule(tmp_path: Path) -> None:
    project = Project(tmp_path / "mine")
    write_project(project.root, ["digits"])
    project.write("configs/projects/tiny.yaml", SMALL_RUN)
    extra = project.path("rules/extra.smk")
    rule = extra.read_text().split("# rule test_accuracy:")[1]
    extra.write_text(
        "rule test_accuracy:" + "\n".join(line[2:] for line in rule.splitlines()) + "\n"
    )
    project.snakemake("--cores", "2", "results/tiny/exp/mlp/test_accuracy.txt")
    accuracy = float(project.path("results/tiny/exp/mlp/test_accuracy.txt").read_text())
    assert 0.0 <= accuracy <= 1.0
    # Its tests/test_configs.py is this repository's, run by this suite (test_scaffold_mirror);
    # `make test` in a new project: BENCHMARKS.md.


@pytest.mark.slow
def test_the_wheel_holds_the_engine_alone_and_runs_a_new_project(tmp_path: Path) -> None:
    source = clean_copy(tmp_path / "source")  # no build/ of an earlier wheel
    subprocess.run(
        [str(BIN / "pip"), "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
         str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("dltemplate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {
        "dltemplate",
        wheel.name.split("-py")[0] + ".dist-info",
    }
    for needed in (
        "dltemplate/workflow/engine.smk", "dltemplate/workflow/rules/fit.smk",
        "dltemplate/workflow/scripts/fit.py", "dltemplate/workflow/report/workflow.rst",
        "dltemplate/schemas/registry.yaml", "dltemplate/wrappers/task_wrappers.py",
        "dltemplate/warm/server.py", "dltemplate/scaffold/project/Snakefile",
        "dltemplate/scaffold/examples/models/mlp.py",
    ):  # fmt: skip
        assert needed in names, needed
    assert not any("__pycache__" in n for n in names)
    site = tmp_path / "site"
    subprocess.run(
        [str(BIN / "pip"), "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ["PYTHONPATH"]])}
    code = "import dltemplate.workflow as w; print(w.ENGINE)"
    engine = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert engine.stdout.startswith(str(site)), engine
    made = subprocess.run(
        [sys.executable, "-m", "dltemplate", "new", "mine"], cwd=tmp_path,
        env={**os.environ, **env}, capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    project = Project(tmp_path / "mine")
    project.env.update(env)
    dry = project.snakemake("-n", "--cores", "1", "results/digits/baseline/mlp/test.done")
    assert "fit" in dry.stdout and "test" in dry.stdout
