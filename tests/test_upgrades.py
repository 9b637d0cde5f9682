"""Upgrades never retrain by themselves (docs/upgrading.md): what decides that a job is out of
date is its run inputs (its config and the local modules it imports, its overrides, seed and
the engine's FINGERPRINT_VERSION), not the engine's own job parameters nor its files.

Layer 1: the run inputs and the opt-in's value, on their own. Layer 4 (slow): real Snakemake
runs. Two tiny runs finish with the engine as it is; then the scratch project imports an
upgraded copy of the engine instead (first on PYTHONPATH): another version, a new field of its
own in JobSpec, and a job script touched as a checkout would. The slow tests share one project
and run in file order, each building on the last.

Broken on purpose: with the whole job spec back among the compared params (the function of
`get_job_params` in the engine's rules/common.smk without its `output` argument), the dry run after the
upgrade listed every job ("Params have changed since last execution ... 'engine_note': ...")
and test_an_engine_upgrade_reruns_nothing failed. With Snakemake's `code` trigger back (no
`rerun-triggers` in profiles/default), the touched script reran every fit ("Code has changed
since last execution") and it failed too. With `engine_rerun` going back to None when no rerun
is asked (instead of what the job's record says it was given), the runs that the opt-in had
rerun reran again without it, and test_the_opt_in_reruns_what_another_engine_made failed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from dltemplate import __version__
from dltemplate.jobs import resume
from dltemplate.registry.model import Run
from dltemplate.workflow import engine_change
from dltemplate.workflow.job_spec import JobSpec
from tests.conftest import REPO, Project, make_project, stop_warm_servers

NEW_VERSION = "99.0.0"  # the upgraded engine's
QUICK = "trainer.max_epochs: 1, trainer.limit_train_batches: 3, trainer.limit_val_batches: 2"
A, B = "results/tiny/exp/a", "results/tiny/exp/b"
TARGETS = (f"{A}/test.done", f"{B}/fit.done")
OPT_IN = ("--config", f"{engine_change.SETTING}=true")


# -- layer 1: the run inputs --------------------------------------------------------------------
SPEC = JobSpec(
    run_dir="results/p/e/r",
    config="configs/x.py",
    overrides={"b": 2, "a": 1},
    seed=42,
    source="configs/projects/p.yaml",
    sources={"configs/x.py": "abc"},
)


def test_the_run_inputs_are_the_params_that_jobs_were_recorded_with() -> None:
    """The repr Snakemake recorded for every job before the split: finished runs keep it."""
    recorded = (
        "{'run_dir': 'results/p/e/r', 'config': 'configs/x.py', 'overrides': {'a': 1, 'b': 2}, "
        "'seed': 42, 'source': 'configs/projects/p.yaml', 'sources': {'configs/x.py': 'abc'}}"
    )
    assert repr(SPEC.run_inputs()) == recorded


def test_a_field_of_the_engine_is_in_the_spec_and_no_run_input() -> None:
    upgraded = dataclasses.make_dataclass(
        "UpgradedJobSpec", [("engine_note", str, "new")], bases=(JobSpec,), frozen=True
    )
    spec = upgraded(**dataclasses.asdict(SPEC))
    assert spec.as_params()["engine_note"] == "new"
    assert spec.run_inputs() == SPEC.run_inputs()


def test_a_fingerprint_bump_and_a_rerun_on_an_engine_change_are_run_inputs() -> None:
    bumped = dataclasses.replace(SPEC, fingerprint=2, engine_rerun="0.1.0 -> 0.2.0")
    assert bumped.run_inputs() == {
        **SPEC.run_inputs(),
        "fingerprint": 2,
        "engine_rerun": "0.1.0 -> 0.2.0",
    }
    assert bumped.version_marks() == {"fingerprint": 2, "engine_rerun": "0.1.0 -> 0.2.0"}
    assert SPEC.version_marks() == {}


def record(made_with: str | None, given: str | None = None) -> dict:
    """A job's record: the engine version it ran with, and its `engine_rerun` run input."""
    versions = {"python": "3.11"} if made_with is None else {"dltemplate": made_with}
    inputs = {} if given is None else {"engine_rerun": given}
    return {"status": "done", "versions": versions, "run_inputs": inputs}


@pytest.mark.parametrize(
    ("job", "asked", "value"),
    [
        (None, True, None),  # never ran: it runs anyway
        (record("0.2.0"), True, None),  # made with this version
        (record("0.1.0"), False, None),  # another, not asked: kept
        (record("0.1.0", given="0.0.9 -> 0.1.0"), False, "0.0.9 -> 0.1.0"),  # as last given
        (record("0.1.0"), True, "0.1.0 -> 0.2.0"),  # asked: it reruns
        (record(None), True, "0.1.0 -> 0.2.0"),  # made before versions were recorded
        (record("0.2.0", given="0.1.0 -> 0.2.0"), True, "0.1.0 -> 0.2.0"),  # rerun already
        (record("0.1.0", given="0.1.0 -> 0.2.0"), True, "0.1.0 -> 0.2.0 (again)"),  # downgraded
        (record("0.1.0", given="0.1.0 -> 0.2.0 (again)"), True, "0.1.0 -> 0.2.0"),
    ],
)
def test_the_engine_rerun_input_changes_only_to_ask_for_a_rerun(
    job: dict | None, asked: bool, value: str | None
) -> None:
    assert engine_change.engine_rerun(job, asked, current="0.2.0") == value


def test_the_note_names_the_runs_made_with_another_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    engine_change.clear_cache()
    runs = [Run(proj="p", exp="e", name=f"r{i}", description="", config="c.py") for i in range(5)]
    for i, run in enumerate(runs):
        folder = Path(run.folder, "records")
        folder.mkdir(parents=True)
        made = ["0.1.0", "0.1.0", "0.2.0", "0.1.0", "0.1.0"][i]
        (folder / "fit.json").write_text(json.dumps(record(made)))
    (Path(runs[0].folder) / "records/test.json").write_text(json.dumps(record("0.0.9")))
    note = engine_change.note(runs, asked=False, current="0.2.0")
    assert note == (
        "Note: 4 runs were made with another version of the engine than this one (dltemplate "
        "0.2.0): 0.0.9: p/e/r0; 0.1.0: p/e/r0, p/e/r1, p/e/r3 and 1 more. They are kept; to "
        "rerun them: --config rerun_on_engine_change=true (docs/upgrading.md)"
    )
    assert engine_change.note(runs[2:3], asked=False, current="0.2.0") is None
    engine_change.clear_cache()


def test_a_fit_asked_to_rerun_by_an_engine_change_says_why() -> None:
    old = resume.fingerprint("c.py", {}, {}, 1)
    new = resume.fingerprint("c.py", {}, {}, 1, {"engine_rerun": "0.1.0 -> 0.2.0"})
    assert old == resume.fingerprint("c.py", {}, {}, 1, {})  # recorded before marks existed
    assert resume._differences(old, new) == "a rerun on an engine change (0.1.0 -> 0.2.0)"
    bumped = resume.fingerprint("c.py", {}, {}, 1, {"fingerprint": 2})
    assert resume._differences(old, bumped) == "the engine's FINGERPRINT_VERSION 1 -> 2"


# -- layer 4: real runs -------------------------------------------------------------------------
def registry(b_width: int = 8) -> str:
    return f"""\
description: P
experiments:
  exp:
    description: E
    runs:
      a:
        description: a fit and its test
        config: configs/a_mlp.py
        jobs: [fit, test]
        overrides: {{{QUICK}, task_wrapper.model.hidden_dim: 8}}
      b:
        description: a fit
        config: configs/b_mlp.py
        jobs: [fit]
        overrides: {{{QUICK}, task_wrapper.model.hidden_dim: {b_width}}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    """Runs a (fit, test) and b (fit), finished with the engine as it is."""
    project = make_project(tmp_path_factory.mktemp("upgrades") / "proj", registry())
    for name in ("a_mlp", "b_mlp"):
        shutil.copy(project.path("configs/digits_mlp.py"), project.path(f"configs/{name}.py"))
    project.snakemake("--cores", "2", *TARGETS)
    yield project
    stop_warm_servers(project.root)


def upgraded_engine(folder: Path) -> dict[str, str]:
    """A copy of the engine in `folder/dltemplate`, of version NEW_VERSION and with a new field
    of its own in JobSpec, and the environment that imports it instead of the repo's."""
    engine = folder / "dltemplate"
    shutil.copytree(REPO / "dltemplate", engine, ignore=shutil.ignore_patterns("__pycache__"))
    edit(engine / "__init__.py", f'__version__ = "{__version__}"', f'__version__ = "{NEW_VERSION}"')
    field = "    engine_rerun: str | None = None\n"
    edit(engine / "workflow/job_spec.py", field, f'{field}    engine_note: str = "new"\n')
    return {"PYTHONPATH": os.pathsep.join([str(folder), os.environ["PYTHONPATH"]])}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, path
    path.write_text(text.replace(old, new))


def dry_run(project: Project, *args: str) -> tuple[dict[str, str], str]:
    """`{job: reason}` of the jobs a dry run would run, e.g. {"fit a": "Params have ..."},
    and its whole output."""
    result = project.snakemake("-n", "--cores", "1", *TARGETS, *args)  # --config swallows targets
    output = result.stdout + result.stderr
    jobs = {}
    for block in re.split(r"\n(?=rule |localrule )", output):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        where = re.search(r"output: results/tiny/exp/(\w+)/", block)
        reason = re.search(r"reason: (.*)", block)
        if rule and where:
            jobs[f"{rule.group(1)} {where.group(1)}"] = reason.group(1) if reason else ""
    return jobs, output


@pytest.mark.slow
def test_the_opt_in_reruns_nothing_made_with_this_engine(project: Project) -> None:
    jobs, output = dry_run(project, *OPT_IN)
    assert jobs == {} and "Nothing to be done" in output
    assert "Note:" not in output


@pytest.mark.slow
def test_an_engine_upgrade_reruns_nothing(project: Project) -> None:
    project.env.update(upgraded_engine(project.root.parent / "engine"))
    later = project.path(f"{A}/test.done").stat().st_mtime + 10
    step = project.root.parent / "engine/dltemplate/workflow/scripts/fit.py"
    os.utime(step, (later, later))  # as an upgrade leaves it
    jobs, output = dry_run(project)
    assert jobs == {} and "Nothing to be done" in output, output
    assert (
        f"Note: 2 runs were made with another version of the engine than this one (dltemplate "
        f"{NEW_VERSION}): {__version__}: tiny/exp/a, tiny/exp/b. They are kept; to rerun them: "
        "--config rerun_on_engine_change=true (docs/upgrading.md)"
    ) in output


@pytest.mark.slow
def test_an_edit_of_a_run_reruns_it_after_an_upgrade(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", registry(b_width=12))
    jobs, _ = dry_run(project)
    assert set(jobs) == {"fit b"} and "'task_wrapper.model.hidden_dim': 12" in jobs["fit b"]
    project.write("configs/projects/tiny.yaml", registry())

    jobs, _ = dry_run(project, "--config", "seed=7")
    assert set(jobs) == {"fit a", "test a", "fit b"}
    assert all(jobs[f"fit {run}"].startswith("Params have changed") for run in "ab")

    config = project.path("configs/a_mlp.py")
    original = config.read_text()
    config.write_text(original.replace("lr: float = 1e-3", "lr: float = 2e-3"))
    jobs, _ = dry_run(project)
    assert set(jobs) == {"fit a", "test a"} and "configs/a_mlp.py" in jobs["fit a"]
    config.write_text(original)
    assert dry_run(project)[0] == {}


@pytest.mark.slow
def test_the_opt_in_reruns_what_another_engine_made(project: Project) -> None:
    jobs, output = dry_run(project, *OPT_IN)
    assert set(jobs) == {"fit a", "test a", "fit b"}
    assert f"'engine_rerun': '{__version__} -> {NEW_VERSION}'" in jobs["fit b"]
    assert "Those among the targets rerun (rerun_on_engine_change)" in output

    project.snakemake("--cores", "1", f"{A}/test.done", *OPT_IN)
    log = project.path(f"{A}/logs/fit.log").read_text()
    why = f"a rerun on an engine change ({__version__} -> {NEW_VERSION})"
    assert "Starting fresh: moved the earlier fit to" in log and why in log, log
    for job in ("fit", "test"):
        made = json.loads(project.path(f"{A}/records/{job}.json").read_text())["versions"]
        assert made["dltemplate"] == NEW_VERSION

    assert dry_run(project)[0] == {}  # a rerun job is up to date without the opt-in
    assert set(dry_run(project, *OPT_IN)[0]) == {"fit b"}  # and with it


@pytest.mark.slow
def test_diff_names_the_two_engine_versions(project: Project) -> None:
    result = project.main("diff", "tiny/exp/a", "tiny/exp/b", "--json")
    found = json.loads(result.stdout)["differences"]
    assert found["environment"]["fit"]["dltemplate"] == [NEW_VERSION, __version__]
