"""The commands in process, on a scratch project: init, add-exp, add-run, exec's checks, ls, rm."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dltemplate.cli import main
from dltemplate.cli.execute import snakemake_command
from dltemplate.registry.model import load_registry
from tests.conftest import BIN, Project, make_project

REGISTRY = "configs/projects"


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    project = make_project(tmp_path / "proj")
    monkeypatch.chdir(project.root)
    return project


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def registry_text() -> str:
    return Path(REGISTRY, "demo.yaml").read_text()


@pytest.fixture
def demo(proj: Project, capsys: pytest.CaptureFixture) -> Project:
    code, out, _ = cli(
        capsys, "init", "-pn", "demo", "-pd", "A demo", "-en", "first", "-ed", "First runs"
    )
    assert code == 0 and "Created project demo" in out
    return proj


def test_init_flags_long_and_underscore_forms(proj: Project, capsys) -> None:
    code, _, _ = cli(
        capsys,
        *("init", "--proj_name", "p2", "--proj-desc", "P"),
        *("--exp_name", "e", "--exp-desc", "E"),
    )
    assert code == 0
    project = load_registry(REGISTRY).projects["p2"]
    assert project.description == "P" and project.experiments["e"].description == "E"


def test_init_needs_every_flag(proj: Project, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["init", "-pn", "p", "-pd", "P", "-en", "e"])
    assert info.value.code == 2
    assert "-ed/--exp-desc/--exp_desc" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("init", "-pn", "bad name", "-pd", "P", "-en", "e", "-ed", "E"), "Invalid project name"),
        (("init", "-pn", "TINY", "-pd", "P", "-en", "e", "-ed", "E"), "clashes"),
        (("init", "-pn", "p", "-pd", "P", "-en", "e=1", "-ed", "E"), "Invalid experiment name"),
        (("add-exp", "-p", "tiny", "-n", "exp", "-d", "E"), "tiny/exp already exists"),
        (("add-exp", "-p", "nope", "-n", "e", "-d", "E"), "No project 'nope'"),
        (("add-exp", "-p", "tiny", "-n", "e", "-d", " "), "needs a description"),
    ],
)
def test_bad_input_is_one_line(proj: Project, capsys, args, message) -> None:
    before = Path(REGISTRY, "tiny.yaml").read_text()
    code, _, err = cli(capsys, *args)
    assert code == 1 and message in err and err.startswith("Error: ")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert Path(REGISTRY, "tiny.yaml").read_text() == before


def test_add_exp_and_add_run(demo: Project, capsys) -> None:
    assert cli(capsys, "add-exp", "-p", "demo", "-n", "second", "-d", "Second")[0] == 0
    code, out, _ = cli(
        capsys,
        *("add-run", "-p", "demo", "-e", "second", "-n", "lr-1e-3", "-d", "A quick MLP"),
        *("-c", "configs/digits_mlp.py", "-r", "fit,test"),
        *("--set", "task_wrapper.lr=1e-3", "--set", "trainer.max_epochs=1"),
    )
    assert code == 0 and "main.py exec -p demo -e second -n lr-1e-3" in out
    run = load_registry(REGISTRY).run("demo", "second", "lr-1e-3")
    assert run.jobs == ("fit", "test") and run.config == "configs/digits_mlp.py"
    assert run.overrides == {"task_wrapper.lr": 0.001, "trainer.max_epochs": 1}
    assert run.created.startswith("20")


@pytest.mark.parametrize(
    ("changes", "sets", "message"),
    [
        ({}, ["task_wrapper.model.hiden_dim=3"], "closest: task_wrapper.model.hidden_dim"),
        ({}, ["trainer.max_epochs=many"], "expected int, got str"),
        ({}, ["trainer.max_epochs"], "has no '='"),
        ({}, ["seed=1", "seed=2"], "given twice"),
        ({"-n": "Bad/name"}, [], "Invalid run name 'Bad/name'"),
        ({"-c": "configs/missing.py"}, [], "Config file configs/missing.py does not exist"),
        ({"-e": "nope"}, [], "No experiment demo/nope"),
        ({"-d": ""}, [], "needs a description"),
    ],
)
def test_add_run_refuses_before_writing(demo: Project, capsys, changes, sets, message) -> None:
    before = registry_text()
    args = {"-p": "demo", "-e": "first", "-n": "r", "-d": "R", "-c": "configs/digits_mlp.py"}
    args.update(changes)
    flags = [x for item in args.items() for x in item]
    code, _, err = cli(capsys, "add-run", *flags, *[x for v in sets for x in ("--set", v)])
    assert code == 1 and message in err, err
    assert registry_text() == before


def test_add_run_refuses_duplicates_and_case_clashes(demo: Project, capsys) -> None:
    args = ("-p", "demo", "-e", "first", "-d", "R", "-c", "configs/digits_mlp.py", "-r", "fit")
    assert cli(capsys, "add-run", *args, "-n", "mlp")[0] == 0
    code, _, err = cli(capsys, "add-run", *args, "-n", "mlp")
    assert code == 1 and "demo/first/mlp already exists" in err
    code, _, err = cli(capsys, "add-run", *args, "-n", "MLP")
    assert code == 1 and "'MLP' clashes with the existing run demo/first/mlp" in err


def test_unknown_job_type_is_an_argparse_error(demo: Project, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(
            [
                "add-run",
                "-p",
                "demo",
                "-e",
                "first",
                "-n",
                "x",
                "-d",
                "R",
                "-c",
                "c.py",
                "-r",
                "fit,train",
            ]
        )
    assert info.value.code == 2
    assert "unknown job type(s) train" in capsys.readouterr().err


def test_exec_checks_a_declared_run_before_running(proj: Project, capsys) -> None:
    base = ("exec", "-p", "tiny", "-e", "exp", "-n", "mlp")
    for extra, message in [
        (("-c", "configs/digits_cnn.py"), "declared with config configs/digits_mlp.py"),
        (("-d", "other words"), "declared with description 'a two-epoch MLP'"),
        (("--set", "trainer.max_epochs=3"), "declared with overrides"),
        (("-c", "configs/digits_mlp.py"), "declared with overrides"),  # none given != declared
    ]:
        code, _, err = cli(capsys, *base, *extra)
        assert code == 1 and message in err and "give a new run name" in err, err
    code, _, err = cli(capsys, "exec", "-p", "tiny", "-e", "exp", "-n", "new", "-c", "x.py")
    assert code == 1 and "is new: give its description (-d) and config (-c)" in err


def test_exec_declares_a_new_run_then_runs_snakemake(proj: Project, capfd) -> None:
    code = main(
        [
            *("exec", "-p", "tiny", "-e", "exp", "-n", "new", "-d", "A new run"),
            *("-c", "configs/digits_cnn.py", "-r", "fit,test", "--set", "trainer.max_epochs=1"),
            *("-j", "1", "--", "--dry-run"),
        ]
    )
    out, err = capfd.readouterr()
    assert code == 0, out + err
    assert "Declared run tiny/exp/new" in err
    assert "results/tiny/exp/new/fit.done results/tiny/exp/new/test.done" in err
    assert "results/tiny/exp/new/run.json --dry-run" in err
    for rule in ("rule fit:", "rule test:", "rule run_record:"):
        assert rule in out + err
    assert "rule predict:" not in out + err
    run = load_registry(REGISTRY).run("tiny", "exp", "new")
    assert run.jobs == ("fit", "test") and run.overrides == {"trainer.max_epochs": 1}
    assert not Path("results/tiny/exp/new").exists()  # a dry run


def test_exec_refuses_jobs_the_run_does_not_declare(proj: Project, capsys) -> None:
    proj.write(
        "configs/projects/tiny.yaml",
        "description: P\nexperiments: {exp: {description: E, runs: {r: {description: R, "
        "config: configs/digits_mlp.py, jobs: [fit]}}}}\n",
    )
    code, _, err = cli(capsys, "exec", "-p", "tiny", "-e", "exp", "-n", "r", "-r", "fit,test")
    assert code == 1 and "does not declare job(s) test" in err


def test_exec_outside_the_project_root(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "exec", "-p", "p", "-e", "e", "-n", "r")
    assert code == 1 and "has no Snakefile" in err


def test_snakemake_command_passes_options_through() -> None:
    targets = ["results/p/e/r/fit.done"]
    assert snakemake_command(targets)[3:] == ["--cores", "all", *targets]
    assert snakemake_command(targets, jobs="4", profile="profiles/slurm")[3:] == [
        *("--jobs", "4", "--workflow-profile", "profiles/slurm"),
        *targets,
    ]
    command = snakemake_command(targets, registry="other", passthrough=["--cores=2", "-n"])
    assert command[3:] == [*targets, "--cores=2", "-n", "--config", "registry=other"]


def test_arguments_after_dashes_are_only_for_exec(proj: Project, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["ls", "--", "-n"])
    assert "ls takes no arguments after --" in capsys.readouterr().err


def fake_results(folder: str, jobs: dict[str, str], acc: float | None = None) -> None:
    """A run folder as the jobs leave it: `.done` files and records/<job>.json."""
    Path(folder, "records").mkdir(parents=True, exist_ok=True)
    for job, status in jobs.items():
        Path(folder, "records", f"{job}.json").write_text(json.dumps({"status": status}))
        if status == "done":
            Path(folder, f"{job}.done").write_text("{}")
    if acc is not None:
        metrics = {"test/acc": acc, "test/loss": 0.3}
        Path(folder, "test.done").write_text(json.dumps({"metrics": metrics}))


def test_ls_json_at_three_levels(demo: Project, capsys) -> None:
    demo.write(
        "configs/projects/demo.yaml",
        """\
        description: A demo
        created: '2026-01-02T03:04:05+00:00'
        experiments:
          first:
            description: First runs
            runs:
              a: {description: A, config: configs/digits_mlp.py, created: '2026-01-03T00:00:00+00:00'}
              b: {description: B, config: configs/digits_mlp.py, jobs: [fit, test]}
              c: {description: C, config: configs/digits_mlp.py, jobs: [fit]}
          second: {description: Second}
        """,
    )
    fake_results("results/demo/first/a", {"fit": "done", "test": "done"}, acc=0.75)
    fake_results("results/demo/first/b", {"fit": "done", "test": "failed"})
    code, out, _ = cli(capsys, "ls", "--json")
    projects = {p["name"]: p for p in json.loads(out)["projects"]}
    assert code == 0 and set(projects) == {"demo", "tiny"}
    assert projects["demo"]["created"] == "2026-01-02T03:04:05+00:00"
    # init gave demo 2 (tiny was shown as 1) and wrote no id into tiny's file; both files now
    # hold no id and get the next free ones in file order (2 is never given again), shown
    # without writing the files.
    assert projects["demo"]["id"] == 3 and projects["tiny"]["id"] == 4
    assert "id:" not in demo.path("configs/projects/demo.yaml").read_text()
    assert projects["demo"]["experiments"][0] == {
        "id": 1,
        "name": "first",
        "description": "First runs",
        "runs": 3,
    }
    code, out, _ = cli(capsys, "ls", "-p", "demo", "--json")
    exps = json.loads(out)["experiments"]
    assert [(e["name"], e["runs"], e["complete"]) for e in exps] == [
        ("first", 3, 0),
        ("second", 0, 0),
    ]
    code, out, _ = cli(capsys, "ls", "-p", "demo", "-e", "first", "--json")
    data = json.loads(out)
    runs = {r["name"]: r for r in data["runs"]}
    assert {j: s["status"] for j, s in runs["a"]["jobs"].items()} == {
        "fit": "done",
        "test": "done",
        "predict": "not run",
    }
    assert runs["a"]["main_metric"] == {"name": "test/acc", "value": 0.75}
    assert runs["a"]["created"] == "2026-01-03T00:00:00+00:00"
    assert runs["b"]["jobs"]["test"]["status"] == "failed"
    assert list(runs["c"]["jobs"]) == ["fit"] and runs["c"]["main_metric"] is None
    assert "stale runs not detected" not in (data["note"] or "")  # the scratch has a Snakefile


def test_ls_tables(demo: Project, capsys) -> None:
    assert cli(capsys, "ls")[0] == 0
    code, out, _ = cli(capsys, "ls", "-p", "tiny", "-e", "exp", "--fast")
    assert code == 0 and "not run" in out and "a two-epoch MLP" in out
    code, _, err = cli(capsys, "ls", "-e", "exp")
    assert code == 1 and "needs its project" in err
    code, _, err = cli(capsys, "ls", "-p", "nope")
    assert code == 1 and "No project 'nope'" in err


def test_rm_asks_keeps_results_and_purges(demo: Project, capsys, monkeypatch) -> None:
    demo.write(
        "configs/projects/demo.yaml",
        """\
        # my notes
        description: A demo
        experiments:
          first:
            description: First runs
            runs:
              a: {description: A, config: configs/digits_mlp.py}
              b: {description: B, config: configs/digits_mlp.py}  # keep this comment
        """,
    )
    fake_results("results/demo/first/a", {"fit": "done"})
    fake_results("results/demo/first/b", {"fit": "done"})
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, _, err = cli(capsys, "rm", "-p", "demo", "-e", "first", "-n", "a")
    assert code == 1 and "Nothing removed" in err and "[y/N]" in err
    assert "a" in load_registry(REGISTRY).experiment("demo", "first").runs
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, err = cli(capsys, "rm", "-p", "demo", "-e", "first", "-n", "a")
    assert code == 0 and "results/demo/first/a/ are kept" in err
    assert list(load_registry(REGISTRY).experiment("demo", "first").runs) == ["b"]
    assert Path("results/demo/first/a/fit.done").is_file()
    assert "# keep this comment" in registry_text() and "# my notes" in registry_text()
    code, out, _ = cli(capsys, "rm", "-p", "demo", "-e", "first", "-n", "b", "-y", "--purge")
    assert code == 0 and "deleted results/demo/first/b/" in out
    assert not Path("results/demo/first/b").exists() and Path("results/demo/first/a").exists()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = cli(capsys, "rm", "-p", "demo")
    assert code == 1 and "pass -y" in err and Path(REGISTRY, "demo.yaml").exists()
    code, out, _ = cli(capsys, "rm", "-p", "demo", "-y", "--purge")
    assert code == 0 and not Path(REGISTRY, "demo.yaml").exists()
    assert not Path("results/demo").exists() and Path(REGISTRY, "tiny.yaml").exists()


def test_rm_purge_refuses_running_jobs(demo: Project, capsys) -> None:
    import os
    import socket

    demo.write(
        "configs/projects/demo.yaml",
        "description: D\nexperiments: {first: {description: F, runs: {a: {description: A, "
        "config: configs/digits_mlp.py}}}}\n",
    )
    Path("results/demo/first/a/records").mkdir(parents=True)
    Path("results/demo/first/a/records/fit.json").write_text(
        json.dumps({"status": "running", "host": socket.gethostname(), "pid": os.getpid()})
    )
    code, _, err = cli(capsys, "rm", "-p", "demo", "-e", "first", "-y", "--purge")
    assert code == 1 and "Jobs still running: demo/first/a:fit" in err
    assert Path("results/demo/first/a").exists()


def test_rm_errors(demo: Project, capsys) -> None:
    for args, message in [
        (("-p", "demo", "-n", "a"), "needs its experiment"),
        (("-p", "nope"), "No project 'nope'"),
        (("-p", "demo", "-e", "nope"), "No experiment demo/nope"),
        (("-p", "demo", "-e", "first", "-n", "nope"), "No run demo/first/nope"),
    ]:
        code, _, err = cli(capsys, "rm", *args, "-y")
        assert code == 1 and message in err, err


def test_rm_of_a_sweep_run_says_it_belongs_to_the_sweep(demo: Project, capsys, monkeypatch) -> None:
    demo.write(
        "configs/projects/demo.yaml",
        """\
        description: A demo
        experiments:
          lrs:
            description: A sweep
            sweep:
              config: configs/digits_mlp.py
              name: "lr{task_wrapper.lr}"
              grid: {task_wrapper.lr: [0.001, 0.01]}
        """,
    )
    before = registry_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # it must not ask: an answer would fail
    for yes in ((), ("-y",)):
        code, _, err = cli(capsys, "rm", "-p", "demo", "-e", "lrs", "-n", "lr0.01", *yes)
        assert code == 1 and err.count("\n") == 1, err
        assert err.startswith(
            "Error: Run demo/lrs/lr0.01 is generated by the sweep of experiment lrs in "
            f"{Path(REGISTRY, 'demo.yaml')}; to drop it, edit the values of experiments.lrs.sweep"
        ), err
        assert "main.py rm -p demo -e lrs" in err
    assert registry_text() == before
    code, _, err = cli(capsys, "rm", "-p", "demo", "-e", "lrs", "-n", "lr0.1", "-y")
    assert code == 1 and "No run demo/lrs/lr0.1" in err  # not one of the sweep's
    code, _, _ = cli(capsys, "rm", "-p", "demo", "-e", "lrs", "-y")  # the whole sweep goes
    assert code == 0 and "lrs" not in load_registry(REGISTRY).projects["demo"].experiments


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [str(BIN / "dltemplate"), "--help"], capture_output=True, text=True, check=True
    )
    for command in ("init", "add-exp", "add-run", "exec", "ls", "rm"):
        assert command in result.stdout
