"""Adaptive search (an experiment's `search:`): checked at parse time, then real studies through
real Snakemake runs: rounds asked and told, a trial pruned, a SIGKILL of Snakemake resumed.

Broken on purpose while writing these: seeding every round's sampler alike (round 1 asked round
0's points again: the distinct-params check failed), telling no trial as pruned (the pruning
test failed), and asking a round again without looking for its tagged trials (the round asked
again got new trials).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from dltemplate.errors import RegistryError
from dltemplate.registry.model import load_registry
from tests.conftest import BIN, Project
from tests.test_exit_statuses import wait_for_unlocked
from tests.test_slurm import slurm  # noqa: F401 (a fixture)

# A tiny MLP, short epochs: the search is under test here, not the model.
SMALL = (
    "trainer.max_epochs: 2, trainer.limit_train_batches: 4, trainer.limit_val_batches: 2, "
    "task_wrapper.model.hidden_dim: 16"
)
SEARCH = f"""\
description: A tiny project for tests
experiments:
  s:
    description: a search of three trials, two at a time
    search:
      config: configs/digits_mlp.py
      trials: 3
      parallel: 2
      metric: test/acc
      sampler: random
      seed: 0
      overrides: {{{SMALL}}}
      space:
        task_wrapper.lr: {{type: float, low: 1.0e-3, high: 0.1, log: true}}
        data_wrapper.batch_size: {{type: categorical, choices: [16, 32, 64]}}
"""


def trials_of(project: Project, exp: str = "s") -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(
            str(project.path(f"results/tiny/{exp}/search/study.journal"))
        )
    )
    return optuna.load_study(study_name="search", storage=storage).get_trials()


def rounds_of(project: Project, exp: str = "s") -> list[list[int]]:
    folder = project.path(f"results/tiny/{exp}/search")
    return [
        [t["number"] for t in json.loads(p.read_text())["trials"]]
        for p in sorted(folder.glob("round-*.json"))
    ]


# --- layer 1: the registry -------------------------------------------------------------------

BAD = {
    "inverted range": (
        "low: 1.0e-3, high: 0.1",
        "low: 0.1, high: 1.0e-3",
        "search.space.task_wrapper.lr: `low` (0.1) must be below `high`",
    ),
    "empty range": ("low: 1.0e-3, high: 0.1", "low: 0.1, high: 0.1", "must be below"),
    "log range touching zero": (
        "low: 1.0e-3, high: 0.1",
        "low: 0, high: 0.1",
        "search.space.task_wrapper.lr.low: a log range needs `low` > 0",
    ),
    "unknown sampler": ("sampler: random", "sampler: bayes", "search.sampler: 'bayes' is not"),
    "unknown pruner": ("seed: 0", "seed: 0\n      pruner: asha", "search.pruner: 'asha' is not"),
    "pruner without intermediate metric": (
        "seed: 0",
        "seed: 0\n      pruner: median",
        "search.pruner: the median pruner reads a metric every epoch",
    ),
    "pruner on a test metric": (
        "seed: 0",
        "seed: 0\n      pruner: median\n      intermediate: test/acc",
        "search.intermediate: 'test/acc' is not logged every epoch",
    ),
    "parallel above trials": ("parallel: 2", "parallel: 4", "search.parallel: 4 is more than"),
    "a sweep beside": (
        "    search:",
        "    sweep: {config: configs/digits_mlp.py, grid: {task_wrapper.lr: [0.1]}}\n    search:",
        "experiments.s.search: an experiment has a sweep or a search, not both",
    ),
    "empty categorical": (
        "choices: [16, 32, 64]",
        "choices: []",
        "search.space.data_wrapper.batch_size: a categorical needs `choices:`",
    ),
    "float on a grid": ("sampler: random", "sampler: grid", "the grid sampler enumerates"),
    "name without trial": (
        "seed: 0",
        'seed: 0\n      name: "x{data_wrapper.batch_size}"',
        "must name the trial",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_searches_are_refused_at_parse_time_in_one_line(tmp_path: Path, case: str) -> None:
    old, new, message = BAD[case]
    assert old in SEARCH
    path = tmp_path / "tiny.yaml"
    path.write_text(SEARCH.replace(old, new, 1))
    with pytest.raises(RegistryError) as error:
        load_registry(tmp_path)
    text = str(error.value)
    assert "\n" not in text and str(path) in text and message in text, text


def test_a_search_declares_no_runs_before_its_first_round(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(SEARCH)
    experiment = load_registry(tmp_path).experiment("tiny", "s")
    assert experiment.runs == {}
    assert experiment.search.rounds == 2 and experiment.search.round_size(1) == 1
    assert experiment.metric == "test/acc" and experiment.metric_mode == "max"


# --- layer 4: real studies through real Snakemake --------------------------------------------


@pytest.mark.slow
def test_a_search_runs_its_rounds_and_tells_the_study(project: Project) -> None:
    project.write("configs/projects/tiny.yaml", SEARCH)
    project.snakemake("-j2", "results/tiny/s/summary.csv")
    trials = trials_of(project)
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert rounds_of(project) == [[0, 1], [2]]
    assert len({json.dumps(t.params, sort_keys=True) for t in trials}) == 3  # no point twice
    for trial in trials:  # the study's value is the run's own test record
        test = json.loads(project.path(f"results/tiny/s/t{trial.number:03d}/test.done").read_text())
        assert trial.value == pytest.approx(test["metrics"]["test/acc"])
        hparams = project.path(f"results/tiny/s/t{trial.number:03d}/hparams.yaml").read_text()
        assert f"batch_size: {trial.params['data_wrapper.batch_size']}" in hparams
    summary = project.path("results/tiny/s/summary.csv").read_text().splitlines()
    assert len(summary) == 4 and all(",done," in row for row in summary[1:])
    best = max(trials, key=lambda t: t.value)
    markdown = project.path("results/tiny/s/summary.md").read_text()
    lr = best.params["task_wrapper.lr"]
    assert f"Best parameters (trial run t{best.number:03d}):" in markdown
    assert f"--set task_wrapper.lr={lr!r} --set data_wrapper.batch_size=" in markdown

    project.snakemake("-j1", "results/tiny/s/plots/optimization_history.png")
    for name in ("optimization_history.png", "param_importances.png"):
        assert project.path(f"results/tiny/s/plots/{name}").stat().st_size > 10_000

    again = project.snakemake("-n", "-j2", "results/tiny/s/summary.csv")
    assert "Nothing to be done" in again.stdout + again.stderr

    # More trials extend the study: the last round asks one more, nothing is trained again.
    fits = {p: p.stat().st_mtime_ns for p in project.path("results/tiny/s").glob("t*/fit.done")}
    project.write("configs/projects/tiny.yaml", SEARCH.replace("trials: 3", "trials: 4"))
    project.snakemake("-j2", "results/tiny/s/summary.csv")
    assert len(fits) == 3 and all(p.stat().st_mtime_ns == t for p, t in fits.items())
    assert project.path("results/tiny/s/t003/test.done").is_file()
    assert rounds_of(project) == [[0, 1], [2, 3]]
    assert [t.state.name for t in trials_of(project)] == ["COMPLETE"] * 4

    # A changed space would mix two searches in one study: refused in one line, nothing run.
    project.write("configs/projects/tiny.yaml", SEARCH.replace("high: 0.1", "high: 0.5"))
    refused = project.snakemake("-j2", "results/tiny/s/summary.csv", check=False)
    assert refused.returncode == 1
    line = [x for x in refused.stderr.splitlines() if x.startswith("Error:")]
    assert line and "experiments.s.search: space differ(s) from the study" in line[0], line
    assert len(trials_of(project)) == 4


PRUNED = f"""\
description: A tiny project for tests
experiments:
  s:
    description: a good learning rate, then a hopeless one that the pruner stops
    search:
      config: configs/digits_mlp.py
      trials: 2
      parallel: 1
      metric: test/acc
      sampler: grid
      seed: 0  # the grid's order: 0.05 first (checked below)
      pruner: {{type: median, startup_trials: 1}}
      intermediate: val/loss
      overrides: {{{SMALL.replace("max_epochs: 2", "max_epochs: 3")}}}
      space:
        task_wrapper.lr: {{type: categorical, choices: [0.05, 1.0e-9]}}
"""


@pytest.mark.slow
def test_a_pruned_trial_stops_keeps_its_records_and_counts_as_finished(
    project: Project,
) -> None:
    project.write("configs/projects/tiny.yaml", PRUNED)
    project.snakemake("-j2", "results/tiny/s/summary.csv")
    first, second = trials_of(project)
    assert first.params["task_wrapper.lr"] == 0.05 and first.state.name == "COMPLETE"
    assert second.state.name == "PRUNED"
    assert list(second.intermediate_values) == [0]  # reported epoch 1, then stopped
    run = project.path("results/tiny/s/t001")
    fit = json.loads((run / "fit.done").read_text())
    assert fit["pruned"] == {"epoch": 1} and fit["epochs"] == 1
    assert (run / "checkpoints/last.ckpt").is_file() and (run / "test.done").is_file()
    record = json.loads((run / "records/fit.json").read_text())
    assert record["status"] == "done"  # stopped on purpose, not failed
    summary = project.path("results/tiny/s/summary.csv").read_text()
    assert "t001,pruned," in summary and "t000,done," in summary
    points = project.path("results/tiny/s/summary_points.csv").read_text().splitlines()
    assert points[0].endswith(",pruned") and points[1].startswith("1,")  # the good one ranks
    assert "1 of them pruned" in project.path("results/tiny/s/summary.md").read_text()
    listed = project.main("ls", "-p", "tiny", "-e", "s")
    assert "t001:fit: pruned" in listed.stdout


HELD = SEARCH.replace("configs/digits_mlp.py", "configs/hooked_mlp.py")


@pytest.mark.slow
def test_a_search_killed_mid_round_resumes_with_no_trial_lost_or_asked_twice(
    project: Project,
) -> None:
    project.add_fit_hooks()
    project.write("configs/projects/tiny.yaml", HELD)
    hold = project.path("release")
    held = Path(f"{hold}.held")
    target = "results/tiny/s/summary.csv"
    with open(project.path("snakemake.out"), "w") as out:  # not a pipe: an orphan holds it
        snakemake = subprocess.Popen(
            [str(BIN / "snakemake"), "-j2", target],
            cwd=project.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # One fit of round 0 holds in its second epoch (after a checkpoint): the other
            # finishes, fit and test, while it waits.
            env={**os.environ, "DLT_TEST_HOLD": f"1,2,{hold}"},
        )
    try:
        deadline = time.monotonic() + 300  # a bound for a broken test, not a timing assumption
        finished = []
        while not (held.exists() and finished):
            assert snakemake.poll() is None and time.monotonic() < deadline, project.path(
                "snakemake.out"
            ).read_text()
            finished = list(project.path("results/tiny/s").glob("t00*/test.done"))
            time.sleep(0.1)
        os.kill(snakemake.pid, signal.SIGKILL)
        snakemake.wait(timeout=60)
    finally:
        if snakemake.poll() is None:
            snakemake.kill()
        if held.exists():  # the orphaned fit: kill it too, as a node failure would
            os.kill(int(held.read_text()), signal.SIGKILL)
    runs = {project.path(f"results/tiny/s/t00{i}") for i in (0, 1)}
    (kept,) = [run for run in runs if (run / "test.done").exists()]
    (resumed,) = runs - {kept}
    wait_for_unlocked(resumed)
    assert rounds_of(project) == [[0, 1]]
    kept_record = (kept / "fit.done").read_text()

    project.snakemake("--unlock")
    project.snakemake("-j2", target)  # the same command again (the hold has held once)
    trials = trials_of(project)
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert rounds_of(project) == [[0, 1], [2]]
    assert (kept / "fit.done").read_text() == kept_record  # not trained again
    fit = json.loads((resumed / "fit.done").read_text())
    assert fit["attempts"] == 2 and fit["resumed_from_step"] > 0  # from its checkpoint
    assert sorted(p.name for p in project.path("results/tiny/s").glob("t*")) == [
        "t000",
        "t001",
        "t002",
    ]


def test_a_round_asked_again_gets_the_trials_it_asked_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A round job killed after asking (before its round file) and run again: the same trials,
    none asked twice; a trial asked but never tagged with its round is adopted by it."""
    from dltemplate.jobs.search import ask_round, distributions, open_study
    from dltemplate.layout import ExperimentLayout

    (tmp_path / "tiny.yaml").write_text(SEARCH)
    spec = load_registry(tmp_path).experiment("tiny", "s").search
    monkeypatch.chdir(tmp_path)  # the registry finds the round files under ./results
    layout = ExperimentLayout.of("tiny", "s")
    first = ask_round(layout, spec, 0)
    Path(layout.search_round(0)).unlink()  # as if killed before writing it
    assert ask_round(layout, spec, 0) == first
    untagged = open_study(layout, spec, 1).ask(distributions(spec))  # killed before tagging
    second = ask_round(layout, spec, 1)
    assert [t["number"] for t in second["trials"]] == [untagged.number]
    assert len(open_study(layout, spec).get_trials()) == 3
    # The asked trials are declared runs when the registry loads again.
    runs = load_registry(tmp_path).experiment("tiny", "s").runs
    assert {name: run.trial for name, run in runs.items()} == {"t000": 0, "t001": 1, "t002": 2}
    assert (
        runs["t001"].overrides["task_wrapper.lr"] == first["trials"][1]["params"]["task_wrapper.lr"]
    )


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.usefixtures("slurm")  # skips without a SLURM cluster
@pytest.mark.timeout(1200)  # queued jobs: the cluster's wait comes on top
def test_a_search_through_slurm_submits_each_trial_and_asks_locally(project: Project) -> None:
    from tests.test_slurm import TEST_SETTINGS

    # one round of two trials: the rounds themselves are test_a_search_runs_its_rounds_...'s
    project.write("configs/projects/tiny.yaml", SEARCH.replace("trials: 3", "trials: 2"))
    result = project.snakemake(*TEST_SETTINGS, "results/tiny/s/summary.csv")
    out = result.stdout + result.stderr
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", out)
    assert len(submitted) == 2, out  # one per trial: its fit and test; rounds ran here
    assert [t.state.name for t in trials_of(project)] == ["COMPLETE"] * 2
    assert rounds_of(project) == [[0, 1]]
    logs = sorted(p.name for p in project.path("logs/slurm").iterdir())
    assert all(name.startswith("group_run") for name in logs), logs


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.usefixtures("slurm")
@pytest.mark.timeout(1200)
def test_a_cancelled_trial_on_slurm_resumes_from_its_checkpoint(project: Project) -> None:
    from tests.test_slurm import TEST_SETTINGS, cancel_when

    project.add_fit_hooks()
    one = HELD.replace("trials: 3", "trials: 1").replace("parallel: 2", "parallel: 1")
    project.write("configs/projects/tiny.yaml", one)
    hold = project.path("release")  # never written: the fit holds until scancel's SIGTERM
    held = Path(f"{hold}.held")
    with open(project.path("snakemake.out"), "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "snakemake"), *TEST_SETTINGS, "results/tiny/s/summary.csv"],
            cwd=project.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            # The trial's fit holds in its second epoch, after its first checkpoint.
            env={**os.environ, "PYTHONUNBUFFERED": "1", "DLT_TEST_HOLD": f"1,2,{hold}"},
        )
        cancel_when(project, proc, held.exists, "the trial's fit was not held")
    fit = json.loads(project.path("results/tiny/s/t000/fit.done").read_text())
    assert fit["attempts"] == 2 and fit["resumed_from_step"] > 0, fit
    assert [t.state.name for t in trials_of(project)] == ["COMPLETE"]
