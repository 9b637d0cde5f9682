"""Mistakes and limits of an adaptive search (docs/errors.md): searches of any length build
their DAG, bounds on trials and parallel, a study journal cut short or damaged, a val/ metric."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dltemplate.errors import RegistryError, UserError
from dltemplate.jobs.search import STUDY, storage
from dltemplate.registry.model import load_registry
from dltemplate.results.summary import write_experiment_summary
from dltemplate.workflow.targets import search_round_waits_for
from tests.conftest import Project, make_project
from tests.test_search import SEARCH

ROUNDS = 10_000


def sequential(trials: int) -> str:
    """The tests' search, one trial a round: `trials` rounds, each waiting for the one before."""
    return SEARCH.replace("trials: 3", f"trials: {trials}").replace("parallel: 2", "parallel: 1")


@pytest.fixture
def long_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    project = make_project(tmp_path / "proj", sequential(ROUNDS))
    monkeypatch.chdir(project.root)
    return project


def test_a_round_waits_for_the_first_untold_round_not_a_chain(long_search: Project) -> None:
    registry = load_registry("configs/projects")
    search = long_search.path("results/tiny/s/search")
    search.mkdir(parents=True)
    assert search_round_waits_for(registry, "tiny", "s", 0) is None
    assert search_round_waits_for(registry, "tiny", "s", ROUNDS - 1) == 0
    told = registry.experiment("tiny", "s").layout.search_told
    for k in range(ROUNDS - 2):
        Path(told(k)).write_text("{}")
    started = time.monotonic()
    # the last round waits for the one untold round before it, not for a chain back to round 0
    assert search_round_waits_for(registry, "tiny", "s", ROUNDS - 1) == ROUNDS - 2
    assert search_round_waits_for(registry, "tiny", "s", ROUNDS - 2) is None
    Path(told(17)).unlink()  # a round told, then its record lost: told again first
    assert search_round_waits_for(registry, "tiny", "s", ROUNDS - 1) == 17
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("trials", [250, ROUNDS])
def test_a_long_sequential_search_builds_its_dag(project: Project, trials: int) -> None:
    project.write("configs/projects/tiny.yaml", sequential(trials))
    result = project.snakemake("-n", "results/tiny/s/summary.csv", timeout=120)
    assert "RecursionError" not in result.stdout + result.stderr
    assert "search_round" in result.stdout


@pytest.mark.parametrize(
    "key, value, maximum", [("trials", 1_000_000_000, 100000), ("parallel", 5000, 1000)]
)
def test_trials_and_parallel_have_sane_maxima(
    project: Project, monkeypatch: pytest.MonkeyPatch, key: str, value: int, maximum: int
) -> None:
    registry = SEARCH.replace("trials: 3", "trials: 9000").replace("parallel: 2", "parallel: 2")
    registry = registry.replace(f"{key}: {9000 if key == 'trials' else 2}", f"{key}: {value}")
    project.write("configs/projects/tiny.yaml", registry)
    monkeypatch.chdir(project.root)
    with pytest.raises(RegistryError) as error:
        load_registry("configs/projects")
    assert f"at experiments.s.search.{key}: {value} is greater than the maximum of {maximum}" in (
        str(error.value)
    )
    assert "configs/projects/tiny.yaml" in str(error.value)


def a_study_with_one_trial(journal: Path) -> None:
    import optuna

    study = optuna.create_study(study_name=STUDY, storage=storage(journal), load_if_exists=True)
    study.tell(study.ask(), 1.0)


def trials_in(journal: Path) -> int:
    import optuna

    return len(optuna.load_study(study_name=STUDY, storage=storage(journal)).trials)


def test_a_journal_cut_short_by_a_crash_loses_only_the_unfinished_record(tmp_path: Path) -> None:
    journal = tmp_path / "search" / "study.journal"
    a_study_with_one_trial(journal)
    whole = journal.read_bytes()
    with journal.open("ab") as f:
        f.write(b'{"op_code": 4, "worker_id": "x", "study_id"')  # killed mid-append
    assert trials_in(journal) == 1
    assert journal.read_bytes() == whole
    a_study_with_one_trial(journal)  # and the study goes on
    assert trials_in(journal) == 2


def test_a_damaged_journal_record_is_one_line_naming_the_file_and_line(tmp_path: Path) -> None:
    journal = tmp_path / "search" / "study.journal"
    a_study_with_one_trial(journal)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join([lines[0], b"{not json\n", *lines[1:]]))
    with pytest.raises(UserError, match=f"The study journal {journal} is damaged at line 2"):
        storage(journal)


def test_a_search_ranked_by_a_val_metric_is_summarised(tmp_path: Path) -> None:
    runs = []
    for name, acc in (("t000", 0.5), ("t001", 0.75)):
        folder = tmp_path / name
        folder.mkdir()
        fit = {"epochs": 2, "fit_seconds": 1.0, "metrics": {"val/acc": acc, "val/loss": 1.0}}
        (folder / "fit.done").write_text(json.dumps(fit))
        (folder / "test.done").write_text(json.dumps({"metrics": {"test/acc": 0.1}}))
        lr = {"task_wrapper.lr": acc / 100}
        runs.append({"name": name, "folder": str(folder), "config": "c.py", "jobs": ["fit", "test"],
                     "overrides": lr})  # fmt: skip
    experiment = {"proj": "p", "exp": "s", "description": "d", "metric": "val/acc",
                  "metric_mode": "max", "runs": runs, "search": ["task_wrapper.lr"]}  # fmt: skip
    out = {f"out_{k}": tmp_path / f"summary.{k}" for k in ("csv", "points", "md", "png")}
    summary = write_experiment_summary(experiment=experiment, **out)
    assert summary.best is not None and summary.best["runs"] == "t001"
    assert "Best by val/acc (max)" in (tmp_path / "summary.md").read_text()
