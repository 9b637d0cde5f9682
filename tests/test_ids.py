"""Numeric ids beside names: stored in the registry, never reused, accepted by -p/-e."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dltemplate.errors import RegistryError
from dltemplate.registry.edit import LOCK_NAME
from dltemplate.registry.model import load_registry
from tests.conftest import Project, make_project
from tests.test_cli_commands import cli
from tests.test_configs_build import write_mnist_format

REGISTRY = Path("configs/projects")
TWO_PROJECTS = {
    "alpha.yaml": """\
        # alpha's own comment
        description: A
        experiments:
          one: {description: One}
          two:
            description: Two  # a comment that stays
        """,
    "beta.yaml": """\
        description: B
        experiments:
          first: {description: First}
        """,
}


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    project = make_project(tmp_path / "proj")
    (project.root / REGISTRY / "tiny.yaml").unlink()
    monkeypatch.chdir(project.root)
    return project


def snapshot() -> dict[str, str]:
    """The registry's files (less the lock file, which any edit leaves)."""
    return {p.name: p.read_text() for p in sorted(REGISTRY.iterdir()) if p.name != LOCK_NAME}


def test_init_and_add_exp_print_and_store_ids(proj: Project, capsys) -> None:
    code, out, _ = cli(capsys, "init", "-pn", "first", "-pd", "P", "-en", "base", "-ed", "E")
    assert code == 0 and "Created project first (id 1) with experiment base (id 1)" in out
    assert "main.py exec -p 1 -e 1" in out
    code, out, _ = cli(capsys, "init", "-pn", "second", "-pd", "P", "-en", "base", "-ed", "E")
    assert "(id 2)" in out
    code, out, _ = cli(capsys, "add-exp", "-p", "2", "-n", "more", "-d", "More")
    assert code == 0 and "Added experiment second/more (id 2)" in out
    second = load_registry(REGISTRY).projects["second"]
    assert second.id == 2 and {e.name: e.id for e in second.experiments.values()} == {
        "base": 1,
        "more": 2,
    }
    text = (REGISTRY / "second.yaml").read_text()
    assert "id: 2\nnext_experiment_id: 3\n" in text
    # -p/-e take the id or the name, in every command
    code, _, _ = cli(
        capsys, "add-run", "-p", "2", "-e", "2", "-n", "r", "-d", "R", "-c",
        "configs/digits_mlp.py", "--no-check",
    )  # fmt: skip
    assert code == 0 and "r" in load_registry(REGISTRY).projects["second"].experiments["more"].runs
    code, out, _ = cli(capsys, "ls", "-p", "2", "-e", "more", "--json")
    assert code == 0 and '"experiment": "more"' in out
    code, out, _ = cli(capsys, "ls", "-p", "second", "-e", "2", "--json")
    assert code == 0 and '"name": "r"' in out
    code, out, _ = cli(capsys, "show", "second/more/r")
    assert code == 0 and "project 2, experiment 2" in out
    code, _, _ = cli(capsys, "rm", "-p", "2", "-e", "2", "-n", "r", "-y")
    assert code == 0 and not load_registry(REGISTRY).projects["second"].experiments["more"].runs


def test_ids_are_never_reused_after_rm(proj: Project, capsys) -> None:
    cli(capsys, "init", "-pn", "a", "-pd", "P", "-en", "e", "-ed", "E")
    cli(capsys, "init", "-pn", "b", "-pd", "P", "-en", "e", "-ed", "E")
    cli(capsys, "add-exp", "-p", "b", "-n", "f", "-d", "F")
    assert cli(capsys, "rm", "-p", "2", "-e", "2", "-y")[0] == 0
    assert "(id 3)" in cli(capsys, "add-exp", "-p", "b", "-n", "g", "-d", "G")[1]
    assert cli(capsys, "rm", "-p", "2", "-y")[0] == 0
    _, out, _ = cli(capsys, "init", "-pn", "c", "-pd", "P", "-en", "e", "-ed", "E")
    assert "Created project c (id 3)" in out
    assert cli(capsys, "ls", "-p", "2")[2] == "Error: No project with id 2 in the registry " \
        "configs/projects; known: 1 (a), 3 (c)\n"  # fmt: skip


def test_a_registry_without_ids_gets_them_in_file_order_once(proj: Project, capsys) -> None:
    for name, text in TWO_PROJECTS.items():
        proj.write(f"configs/projects/{name}", text)
    before = snapshot()
    code, out, _ = cli(capsys, "ls", "--json")
    assert code == 0 and snapshot() == before  # shown, not written
    assert re.search(r'"id": 1,\s+"name": "alpha"', out)
    assert re.search(r'"id": 2,\s+"name": "beta"', out)
    assert cli(capsys, "ls", "-p", "1", "-e", "2", "--json")[0] == 0
    # The first command that writes assigns them all, keeping comments; later ones keep them.
    assert "(id 2)" in cli(capsys, "add-exp", "-p", "2", "-n", "second", "-d", "S")[1]
    alpha = (REGISTRY / "alpha.yaml").read_text()
    assert alpha.startswith("# alpha's own comment\nid: 1\nnext_experiment_id: 3\n")
    assert "    id: 2\n    description: Two  # a comment that stays" in alpha
    assert (REGISTRY / ".next_project_id").read_text() == "3\n"
    registry = load_registry(REGISTRY)
    assert [(p.name, p.id) for p in registry.projects.values()] == [("alpha", 1), ("beta", 2)]
    after = snapshot()
    cli(capsys, "ls")
    assert snapshot() == after


@pytest.mark.parametrize(
    "args, message",
    [
        (("ls", "-p", "7"), "No project with id 7 in the registry configs/projects; known: 1 (alpha), 2 (beta)"),
        (("add-exp", "-p", "7", "-n", "x", "-d", "X"), "No project with id 7"),
        (("ls", "-p", "alpha", "-e", "9"), "No experiment with id 9 in project alpha; known: 1 (one), 2 (two)"),
        (("add-exp", "-p", "1", "-n", "12", "-d", "X"), "Invalid experiment name '12': a plain number"),
        (("init", "-pn", "5", "-pd", "P", "-en", "e", "-ed", "E"), "Invalid project name '5'"),
        (("init", "-pn", "p", "-pd", "P", "-en", "7", "-ed", "E"), "Invalid experiment name '7'"),
    ],
)  # fmt: skip
def test_bad_ids_and_number_names_say_so_and_write_nothing(
    proj: Project, capsys, args: tuple[str, ...], message: str
) -> None:
    for name, text in TWO_PROJECTS.items():
        proj.write(f"configs/projects/{name}", text)
    before = snapshot()
    code, _, err = cli(capsys, *args)
    assert code == 1 and err.startswith(f"Error: {message}") and err.count("\n") == 1
    assert "Traceback" not in err and snapshot() == before


def test_an_old_number_name_works_by_name_unless_it_is_another_projects_id(
    proj: Project, capsys
) -> None:
    proj.write("configs/projects/2.yaml", "description: N\nexperiments: {e: {description: E}}\n")
    proj.write("configs/projects/x.yaml", "description: X\nexperiments: {e: {description: E}}\n")
    # File order: 2.yaml gets id 1, x.yaml id 2; `-p 2` names both.
    before = snapshot()
    code, _, err = cli(capsys, "ls", "-p", "2")
    assert code == 1 and err == (
        "Error: '2' is both the name of a project and the id of project x in the registry "
        "configs/projects; use the name 'x', and rename the project '2'\n"
    )
    assert snapshot() == before
    proj.write(
        "configs/projects/2.yaml", "id: 2\ndescription: N\nexperiments: {e: {description: E}}\n"
    )
    code, out, err = cli(capsys, "ls", "-p", "2", "--json")
    assert code == 0 and '"project": "2"' in out
    assert err.startswith("Warning: the project name '2' is a plain number, read as its name")


def test_duplicate_ids_are_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "projects"
    folder.mkdir()
    (folder / "a.yaml").write_text("id: 1\ndescription: A\nexperiments: {}\n")
    (folder / "b.yaml").write_text("id: 1\ndescription: B\nexperiments: {}\n")
    with pytest.raises(RegistryError, match="have the same id 1"):
        load_registry(folder)
    (folder / "b.yaml").write_text(
        "description: B\nexperiments: {e: {id: 3, description: E}, f: {id: 3, description: F}}\n"
    )
    with pytest.raises(RegistryError, match="experiments e and f have the same id 3"):
        load_registry(folder)


@pytest.mark.slow
def test_the_original_walk_through_runs_as_written(tmp_path: Path) -> None:
    """README of DL-Project-Template: init, then exec by the ids that init printed."""
    project = make_project(tmp_path / "proj")
    write_mnist_format(project.path("data/oracle-mnist"), n_train=40, n_test=20)
    out = project.main(
        *("init", "-pn", "MyFirstProject", "-pd", "This is my first project."),
        *("-en", "baseline", "-ed", "Baseline exps."),
    ).stdout
    proj_id, exp_id = re.search(r"\(id (\d+)\) with experiment baseline \(id (\d+)\)", out).groups()
    assert (proj_id, exp_id) == ("2", "1")  # tiny, already there, is project 1
    project.main(
        *("exec", "-p", proj_id, "-e", exp_id, "-c", "configs/exp_on_oracle_mnist.py"),
        *("-r", "fit,test", "-n", "SimpleCNN", "-d", "Using a simple CNN."),
    )
    run = project.path("results/MyFirstProject/baseline/SimpleCNN")
    assert (run / "fit.done").is_file() and (run / "test.done").is_file()


def test_an_edit_of_a_file_that_does_not_parse_says_so(proj: Project, capsys) -> None:
    proj.write("configs/projects/bad.yaml", "description: [unclosed\nexperiments: {}\n")
    before = snapshot()
    code, _, err = cli(capsys, "add-exp", "-p", "bad", "-n", "e", "-d", "E")
    assert code == 1 and err.startswith("Error: Registry configs/projects/bad.yaml:")
    assert "does not parse as YAML" in err
    assert err.count("\n") == 1 and snapshot() == before
