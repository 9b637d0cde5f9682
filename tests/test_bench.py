"""The benchmark scripts run at a tiny size (`--quick`) and write results the report renders.

No timings are asserted: the figures belong in BENCHMARKS.md, made by `make bench`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import (
    batches,
    dag_floor,
    data_path,
    export_speed,
    gpu_share,
    gpu_step_overhead,
    orchestration,
    report,
    search_overhead,
    search_quality,
    step_overhead,
    sweep_throughput,
    warm_jobs,
)
from bench.common import REPO, RESULTS

# The example project's own tests: they skip when it was deleted.
pytestmark = pytest.mark.examples


@pytest.fixture(autouse=True)
def scratch(tmp_path: Path, monkeypatch) -> Path:
    """The scripts' scratch runs and workflow copies go to tmp_path, not bench/.scratch/."""
    monkeypatch.setenv("DLT_BENCH_SCRATCH", str(tmp_path / "scratch"))
    return tmp_path / "scratch"


def read(path: Path) -> dict:
    data = json.loads(path.read_text())
    assert data["quick"] is True
    assert data["machine"]["cores"] >= 1
    assert data["tables"] and all(t["rows"] for t in data["tables"])
    return data


def test_data_path_quick_and_the_report(tmp_path: Path) -> None:
    data = read(data_path.main(["--quick", "--out", str(tmp_path)]))
    rows = {row[0]: row for row in data["tables"][0]["rows"]}
    assert "data wrapper, train_dataset=TensorDataset" in rows
    assert [g["goal"] for g in data["goals"]] == [
        "data wrapper >= 0.8 of by hand with index_select (batch 64)"
    ]
    assert data["goals"][0]["verdict"] in ("met", "not met", "not shown")
    assert data["tables"][-1]["caption"].startswith("The data wrapper's own gain")
    text = report.render(tmp_path)
    assert "## Data path: batches per second" in text
    assert "| data wrapper >= 0.8 of by hand with index_select (batch 64) |" in text
    assert "Not measured yet: step_overhead" in text


@pytest.mark.slow
def test_step_overhead_quick(tmp_path: Path, scratch: Path) -> None:
    data = read(step_overhead.main(["--quick", "--out", str(tmp_path)]))
    epochs, ratios = data["tables"]
    assert [row[0][:3] for row in epochs["rows"]] == ["(a)", "(b)", "(c)"]
    assert [row[0][:3] for row in ratios["rows"]] == ["c/b", "c/a", "b/a"]
    # (c) was the fit job itself: its fit.done, checkpoints, CSV metrics and log exist.
    run = scratch / "step_overhead_cpu" / "c0"
    assert json.loads((run / "fit.done").read_text())["epochs"] == 2
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "train/loss" in (run / "metrics" / "fit" / "metrics.csv").read_text()
    assert (run / "logs" / "fit.log").is_file()  # (pytest captures what job_log would redirect)


def test_gpu_step_overhead_skips_without_a_gpu(tmp_path: Path, capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here; test_gpu_step_overhead_quick runs it")
    assert gpu_step_overhead.main(["--quick", "--out", str(tmp_path)]) is None
    assert "skipped, no CUDA device" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


@pytest.mark.gpu
def test_gpu_step_overhead_quick(tmp_path: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    data = read(gpu_step_overhead.main(["--quick", "--out", str(tmp_path)]))
    assert data["machine"]["gpu"]


@pytest.mark.slow
def test_orchestration_quick(tmp_path: Path) -> None:
    data = read(orchestration.main(["--quick", "--out", str(tmp_path)]))
    sizes, per_job = data["tables"]
    # The sweep's target: 10 x (fit, test, predict) and the summary; `all` adds the records.
    assert [row[:3] for row in sizes["rows"]] == [
        ["10", "the sweep's summary.csv", "31"],
        ["10", "all (the default target)", "45"],
    ]
    assert [row[0].split(" (")[0] for row in per_job["rows"]] == [
        'python -c "import lightning"',
        "fit job function, 0 epochs, bench/configs/cnn28.py",
        "snakemake --cores 1 -f results/bench/sweep/r00000/fit.done",
    ]
    goals = [g["goal"] for g in data["goals"]]
    assert goals == ["zero-epoch fit < 1 s beyond `import lightning`"]  # 1,000 runs: not quick


@pytest.mark.slow
def test_the_gpu_check_runs_in_its_cpu_mode(tmp_path: Path) -> None:
    """bench/gpu_check.sh, the one script a lent GPU machine runs, at its tiny sizes on the
    CPU: every step runs and writes its result."""
    result = subprocess.run(
        ["bash", "bench/gpu_check.sh", "--cpu"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "== done" in result.stdout
    for name in ("gpu_step_overhead_cpu_check", "gpu_share_cpu_check"):
        data = read(tmp_path / f"{name}.json")
        assert data["name"] == name
    shares = read(tmp_path / "gpu_share_cpu_check.json")["tables"][0]["rows"]
    assert [row[0] for row in shares] == list(gpu_share.SHARES)


@pytest.mark.slow
def test_dag_floor_quick(tmp_path: Path) -> None:
    data = read(dag_floor.main(["--quick", "--out", str(tmp_path)]))
    rows = data["tables"][0]["rows"]
    assert [row[:3] for row in rows] == [["10", "21", "dry run"], ["10", "21", "no-op rerun"]]
    assert data["goals"] == []  # 1,000 runs: not quick


@pytest.mark.slow
def test_the_dry_run_of_1000_runs_stays_near_snakemakes_floor() -> None:
    """The one timing this suite checks, as a ratio measured side by side (the workflow's dry
    run of 1,000 runs over a toy Snakefile's of the same 2,001 jobs, the better of 2 paired
    repetitions): an alarm for a large regression at parse or DAG time, far above the goal
    (1.05x, bench/dag_floor.py; BENCHMARKS.md has the figures)."""
    ratio = dag_floor.dry_ratio(1000, reps=2)
    assert ratio <= dag_floor.ALARM, f"dry run of 1,000 runs: {ratio:.2f}x the toy Snakefile"


@pytest.mark.slow
def test_sweep_throughput_quick(tmp_path: Path, scratch: Path) -> None:
    data = read(sweep_throughput.main(["--quick", "--out", str(tmp_path)]))
    assert [row[0] for row in data["tables"][0]["rows"]] == [
        "snakemake --cores 1 (-j1)",
        "snakemake --cores 2 (-j2)",
    ]
    summary = scratch / "sweep_throughput" / sweep_throughput.TARGET
    assert summary.read_text().count("\n") == 2  # header and 1 run


@pytest.mark.slow
def test_warm_jobs_quick(tmp_path: Path, scratch: Path) -> None:
    data = read(warm_jobs.main(["--quick", "--out", str(tmp_path)]))
    per_job, sweep = data["tables"]
    assert [row[0].split(":")[0] for row in per_job["rows"][1:]] == ["cold job", "warm job"]
    assert [row[0] for row in sweep["rows"]] == list(warm_jobs.GOAL_VARIANTS)
    assert len(data["goals"]) == 2
    summary = scratch / "warm_jobs" / "sweep" / warm_jobs.SWEEP
    assert summary.read_text().count("\n") == 3  # header and 2 runs (12 when not quick)


def test_the_baselines_fetch_batches_as_the_data_wrapper_does() -> None:
    """Variants (a) and (b) of step_overhead get the same batches, by the same one
    `index_select` per tensor, as the data wrapper's TensorBatches gives (c)."""
    import torch

    from bench.common import synthetic_images
    from dltemplate.wrappers.data_wrappers import TensorBatches

    data = synthetic_images(50, seed=3)
    indices = [7, 0, 42, 7, 13]
    ours = batches.WholeBatches(data).__getitems__(indices)
    theirs = TensorBatches.of(data).__getitems__(indices)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    loader = batches.batch_loader(data, batch_size=16, shuffle=False)
    assert [len(x) for x, _ in loader] == [16, 16, 16, 2]
    shuffled = list(batches.ShuffledBatches(data, batch_size=16, seed=1))
    assert [len(x) for x, _ in shuffled] == [16, 16, 16, 2]
    seen = torch.cat([y for _, y in shuffled])
    assert sorted(seen.tolist()) == sorted(data.tensors[1].tolist())  # each sample once


def test_a_goal_straddled_by_its_repetitions_is_not_shown() -> None:
    from bench.common import verdict

    assert verdict({"min": -0.33, "max": 3.14}, 1) == "not shown"
    assert verdict({"min": 0.2, "max": 0.9}, 1) == "met"
    assert verdict({"min": 1.1, "max": 1.3}, 1) == "not met"
    assert verdict({"min": 0.7, "max": 0.9}, 0.8, below=False) == "not shown"
    assert verdict({"min": 0.81, "max": 0.9}, 0.8, below=False) == "met"


# --- BENCHMARKS.md holds only what the committed result files hold ---------------------------

# A number standing alone (not inside a name such as yaml12.py or a commit hash): 1,000 0.98
# 2.89e+04 and the like.
NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?:e[+-]?\d+)?(?!\w)")


def test_benchmarks_md_is_rendered_from_the_committed_results() -> None:
    """No hand edits: BENCHMARKS.md is what `python -m bench.report` makes of
    bench/results/*.json and bench/findings.md."""
    rendered = report.render(RESULTS)
    assert (REPO / "BENCHMARKS.md").read_text() == rendered, "run: python -m bench.report"


def test_every_figure_in_benchmarks_md_is_in_a_result_file() -> None:
    """Each number on the page (tables, goals, notes, findings; code spans aside) appears in a
    committed result file under bench/results/, so no figure outlives the measurement that
    made it."""
    stored = set()
    for path in RESULTS.glob("*.json"):
        stored |= set(NUMBER.findall(path.read_text()))
    text = (REPO / "BENCHMARKS.md").read_text()
    text = re.sub(r"\]\(#[^)]*\)", "]", text)  # anchors repeat the titles' words
    text = re.sub(r"`[^`]*`", "", text)  # code: commands, paths, versions (`YAML 1.2`)
    missing = sorted(set(NUMBER.findall(text)) - stored)
    assert not missing, f"figures in BENCHMARKS.md that no bench/results/*.json holds: {missing}"


@pytest.mark.slow
def test_export_speed_quick(tmp_path: Path) -> None:
    data = read(export_speed.main(["--quick", "--out", str(tmp_path)]))
    times, speeds = data["tables"]
    assert [row[0] for row in times["rows"]] == ["MLP", "CNN"]
    assert speeds["columns"][-1] == "onnxruntime over eager"
    assert len(speeds["rows"]) == 4  # two models, batches 1 and 64


def test_search_overhead_quick(tmp_path: Path) -> None:
    data = read(search_overhead.main(["--quick", "--out", str(tmp_path)]))
    asks, totals = data["tables"]
    assert [row[0] for row in asks["rows"]] == [10, 20]
    assert totals["rows"][1][0].startswith("snakemake -n")
    assert data["goals"][0]["goal"] == "ask + tell per round at 20 trials <= 1 s"
    assert "## Search overhead" in report.render(tmp_path)


def test_search_quality_enumerates_the_example_search_space_as_a_grid() -> None:
    """The grid is the example search's space at 3 values a parameter (81 runs), each value
    inside its range, and every search is the example's space with its own sampler seed."""
    import itertools

    import yaml

    text = search_quality.registry(27, 10, [0, 1, 2], 3, 2, 4, 0)
    experiments = yaml.safe_load(text)["experiments"]
    space = search_quality.example_search()["space"]
    grid = experiments["grid"]["sweep"]["grid"]
    assert list(grid) == list(space)
    assert len(list(itertools.product(*grid.values()))) == 81
    for path, values in grid.items():
        dist = space[path]
        assert len(set(values)) == 3
        assert all(dist["low"] <= v <= dist["high"] for v in values), path
    assert grid["task_wrapper.model.hidden_dim"] == [64, 160, 224]  # on the step of 32
    searches = [experiments[f"search_s{s}"]["search"] for s in (0, 1, 2)]
    assert [s["seed"] for s in searches] == [0, 1, 2]
    assert all(s["space"] == space and s["trials"] == 27 for s in searches)
    assert all(s["overrides"] == experiments["grid"]["sweep"]["overrides"] for s in searches)


@pytest.mark.slow
def test_search_quality_quick(tmp_path: Path, scratch: Path) -> None:
    data = read(search_quality.main(["--quick", "--out", str(tmp_path)]))
    experiments, against = data["tables"]
    assert [row[0] for row in experiments["rows"]] == ["grid (1^4 points)", "search, seed 0"]
    assert [row[1] for row in experiments["rows"]] == [1, 2]  # runs
    assert [row[2] for row in experiments["rows"]] == [1, 2]  # epochs: 1 a run
    assert against["rows"][-1][0] == "median over 1 seeds"
    assert [g["goal"].split(" (")[0] for g in data["goals"]] == [
        "search's best test/acc within 0.5 pp of the grid's best",
        "search's runs <= 1/3 of the grid's",
        "search's training epochs <= 1/4 of the grid's",
    ]
    assert "## Search quality" in report.render(tmp_path)
