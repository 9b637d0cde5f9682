"""Layer 1: sweep expansion (grid, list, random, seeds, names) and its checks in the registry."""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dltemplate.errors import RegistryError
from dltemplate.registry.model import load_registry
from dltemplate.registry.sweeps import expand_sweep, format_value, sample_value
from dltemplate.workflow.targets import all_targets, init_from_done, job_spec

WHERE = "Registry p.yaml: at experiments.e.sweep"


def expand(text: str) -> list:
    return expand_sweep(yaml.safe_load(text), where=WHERE)


def registry(tmp_path: Path, experiments: str, name: str = "proj.yaml"):
    folder = tmp_path / "projects"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("description: P\nexperiments:\n" + experiments)
    return load_registry(folder)


def test_grid_is_the_cartesian_product_over_seeds_with_the_base_overrides() -> None:
    runs = expand(
        """
        config: c.py
        overrides: {trainer.max_epochs: 2}
        grid:
          task_wrapper.lr: [0.001, 1.0e-05]
          data_wrapper.batch_size: [32, 64]
        seeds: [0, 1]
        name: "lr{task_wrapper.lr}-bs{data_wrapper.batch_size}-s{seed}"
        """
    )
    assert [r.name for r in runs] == [
        f"lr{lr}-bs{bs}-s{s}" for lr in ("0.001", "1e-05") for bs in (32, 64) for s in (0, 1)
    ]
    assert runs[3].overrides == {
        "trainer.max_epochs": 2,
        "task_wrapper.lr": 0.001,
        "data_wrapper.batch_size": 64,
        "seed": 1,
    }
    assert (
        runs[3].description == "sweep run task_wrapper.lr=0.001, data_wrapper.batch_size=64, seed=1"
    )


def test_list_points_follow_the_grid_and_the_default_name_uses_last_path_parts() -> None:
    runs = expand(
        """
        config: c.py
        grid: {task_wrapper.lr: [0.1]}
        list:
          - {task_wrapper.lr: 0.5, task_wrapper.model.hidden_dim: 16}
        """
    )
    assert [r.name for r in runs] == ["lr0.1", "lr0.5-hidden_dim16"]


def test_seeds_alone_repeat_the_base_point_and_an_int_counts_from_zero() -> None:
    runs = expand("config: c.py\nseeds: 3\noverrides: {task_wrapper.lr: 0.1}\n")
    assert [r.name for r in runs] == ["s0", "s1", "s2"]
    assert [r.overrides["seed"] for r in runs] == [0, 1, 2]
    assert all(r.overrides["task_wrapper.lr"] == 0.1 for r in runs)


def test_exponents_without_a_dot_are_numbers_in_the_registry(tmp_path: Path) -> None:
    reg = registry(
        tmp_path,
        "  e:\n    description: E\n    sweep: {config: c.py, grid: {task_wrapper.lr: [1e-3, 3e-4]}}\n",
    )
    runs = list(reg.experiment("proj", "e").runs.values())
    assert [r.overrides["task_wrapper.lr"] for r in runs] == [0.001, 0.0003]
    assert [r.name for r in runs] == ["lr0.001", "lr0.0003"]


@pytest.mark.parametrize(
    ("value", "spec", "text"),
    [
        (0.001, "", "0.001"),
        (1e-05, "", "1e-05"),
        (1e16, "", "1e16"),
        (3.0, "", "3.0"),
        (64, "", "64"),
        (True, "", "true"),
        (None, "", "none"),
        ([64, 32], "", "64_32"),
        ("relu", "", "relu"),
        (0.000123, ".0e", "1e-04"),
    ],
)
def test_value_formatting_is_stable_and_path_safe(value, spec, text) -> None:
    assert format_value(value, spec) == text


def test_random_samples_are_seeded_in_range_and_stable_when_n_grows() -> None:
    spec = """
        config: c.py
        random:
          n: {n}
          seed: 7
          params:
            task_wrapper.lr: {{low: 1.0e-4, high: 1.0e-1, log: true}}
            task_wrapper.model.hidden_dim: [16, 32, 64]
            data_wrapper.batch_size: {{low: 8, high: 128, log: true}}
            task_wrapper.weight_decay: {{low: 0.0, high: 0.1, digits: 2}}
        seeds: [0]
        name: "r-lr{{task_wrapper.lr}}-h{{task_wrapper.model.hidden_dim}}-b{{data_wrapper.batch_size}}-s{{seed}}"
        """
    five, eight = expand(spec.format(n=5)), expand(spec.format(n=8))
    assert [r.overrides for r in eight[:5]] == [r.overrides for r in five]
    assert len({r.name for r in eight}) == 8
    for run in eight:
        o = run.overrides
        assert 1e-4 <= o["task_wrapper.lr"] <= 1e-1 and isinstance(o["task_wrapper.lr"], float)
        assert o["task_wrapper.model.hidden_dim"] in (16, 32, 64)
        assert 8 <= o["data_wrapper.batch_size"] <= 128 and isinstance(
            o["data_wrapper.batch_size"], int
        )
        assert o["task_wrapper.weight_decay"] == float(f"{o['task_wrapper.weight_decay']:.2g}")
    other_seed = expand(spec.format(n=5).replace("seed: 7", "seed: 8"))
    assert [r.overrides for r in other_seed] != [r.overrides for r in five]


def test_log_uniform_draws_spread_over_the_decades() -> None:
    rng = random.Random(0)
    draws = [sample_value(rng, {"low": 1e-5, "high": 1e-1, "log": True}, "w") for _ in range(400)]
    decades = [sum(10**-k <= d < 10 ** (-k + 1) for d in draws) for k in (5, 4, 3, 2)]
    assert all(60 < n < 140 for n in decades), decades  # about 100 in each of the 4 decades
    assert min(draws) >= 1e-5 and max(draws) <= 1e-1 and math.isfinite(sum(draws))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "config: c.py\ngrid: {task_wrapper.lr: [0.1, 0.2]}\nseeds: 2\nname: 'lr{task_wrapper.lr}'\n",
            r"gives the name 'lr0.1' to two runs \(task_wrapper.lr=0.1, seed=0 and task_wrapper.lr=0.1, seed=1\)",
        ),
        (
            "config: c.py\ngrid: {task_wrapper.lr: [0.1]}\nname: 'lr/{task_wrapper.lr}'\n",
            r"at experiments.e.sweep.name: run name 'lr/0.1' .* is not valid",
        ),
        (
            "config: c.py\ngrid: {task_wrapper.lr: [0.1]}\nname: 'x{task_wrapper.model.lr}'\n",
            r"uses \{task_wrapper.model.lr\}, which this run does not set \(its override paths: task_wrapper.lr\)",
        ),
        (
            "config: c.py\ngrid: {task_wrapper.lr: [0.1]}\nname: 'x{task_wrapper.lr'\n",
            "unmatched brace",
        ),
        ("config: c.py\ngrid: {seed: [1, 2]}\n", "`seed` is swept with the `seeds:` key"),
        (
            "config: c.py\nrandom: {n: 2, params: {task_wrapper.lr: {low: 0, high: 1, log: true}}}\n",
            r"random.params.task_wrapper.lr: a log-uniform range needs `low` > 0",
        ),
        (
            "config: c.py\nrandom: {n: 2, params: {task_wrapper.lr: {low: 1.0, high: 0.5}}}\n",
            r"`low` \(1.0\) must be below `high` \(0.5\)",
        ),
        (
            "config: c.py\nrandom: {n: 2, params: {task_wrapper.lr: {lo: 1, hi: 2}}}\n",
            "unknown key",
        ),
        ("config: c.py\n", "declares one run"),
    ],
)
def test_bad_sweeps_name_file_key_and_fix(text: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message) as info:
        expand(text)
    assert str(info.value).startswith(WHERE)


def test_registry_expands_sweeps_into_normal_runs_with_targets(tmp_path: Path) -> None:
    reg = registry(
        tmp_path,
        """\
  e:
    description: E
    metric: test/loss
    runs:
      pre: {description: R, config: configs/digits_mlp.py, jobs: [fit]}
    sweep:
      config: configs/digits_mlp.py
      description: "lr {task_wrapper.lr}, seed {seed}"
      jobs: [fit, test]
      init_from: proj/e/pre
      grid: {task_wrapper.lr: [0.01, 0.1]}
      seeds: [3, 4]
""",
    )
    exp = reg.experiment("proj", "e")
    assert list(exp.runs) == ["pre", "lr0.01-s3", "lr0.01-s4", "lr0.1-s3", "lr0.1-s4"]
    assert exp.metric == "test/loss" and exp.metric_mode is None
    run = reg.run("proj", "e", "lr0.1-s4")
    assert run.description == "lr 0.1, seed 4" and run.jobs == ("fit", "test")
    assert run.folder == "results/proj/e/lr0.1-s4" and run.init_from == "proj/e/pre"
    targets = all_targets(reg)
    assert "results/proj/e/lr0.1-s4/test.done" in targets
    assert "results/proj/e/lr0.1-s4/predict.done" not in targets
    assert {"results/proj/e/summary.csv", "results/proj/summary.csv"} <= set(targets)
    assert init_from_done(run) == ["results/proj/e/pre/fit.done"]
    assert job_spec(run, 42).as_params()["init_from"] == "results/proj/e/pre/fit.done"
    assert "init_from" not in job_spec(reg.run("proj", "e", "pre"), 42).as_params()


@pytest.mark.parametrize(
    ("experiments", "message"),
    [
        (
            "  e:\n    description: E\n    runs: {lr0.1: {description: R, config: c.py}}\n"
            "    sweep: {config: c.py, grid: {task_wrapper.lr: [0.1]}}\n",
            r"at experiments.e.sweep.name: the sweep's run 'lr0.1' is also declared at experiments.e.runs.lr0.1",
        ),
        (
            "  e:\n    description: E\n    sweep: {config: c.py, grid: {task_wrapper.lr: 0.1}}\n",
            r"at experiments.e.sweep.grid.task_wrapper.lr: 0.1 is not of type 'array'",
        ),
        (
            "  e:\n    description: E\n    sweep: {config: c.py, seeds: 2, gird: {}}\n",
            r"at experiments.e.sweep: .*'gird'.*allowed keys: config, description, folds, grid",
        ),
        (
            "  e:\n    description: E\n    runs: {r: {description: R, config: c.py, init_from: e/r}}\n",
            r"at experiments.e.runs.r.init_from: 'e/r' is not <proj>/<exp>/<run>",
        ),
        (
            "  e:\n    description: E\n    runs: {r: {description: R, config: c.py, init_from: proj/e/nope}}\n",
            r"run proj/e/r has init_from 'proj/e/nope', which is not a declared run",
        ),
        (
            "  e:\n    description: E\n    runs:\n      a: {description: R, config: c.py, init_from: proj/e/b}\n"
            "      b: {description: R, config: c.py, init_from: proj/e/a}\n",
            r"init_from runs in a loop: proj/e/a -> proj/e/b -> proj/e/a",
        ),
        (
            "  e:\n    description: E\n    runs:\n      a: {description: R, config: c.py, jobs: [test]}\n"
            "      b: {description: R, config: c.py, init_from: proj/e/a}\n",
            r"has init_from proj/e/a, which has no fit job",
        ),
        (
            "  e:\n    description: E\n    metric_mode: biggest\n",
            r"at experiments.e.metric_mode: 'biggest' is not one of \['min', 'max'\]",
        ),
    ],
)
def test_registry_errors_for_sweeps_and_init_from(
    tmp_path: Path, experiments: str, message: str
) -> None:
    with pytest.raises(RegistryError, match=message) as info:
        registry(tmp_path, experiments)
    assert "proj.yaml" in str(info.value)


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
PATHS = st.one_of(st.sampled_from(["task_wrapper.lr", "seed", "a.b", ""]), st.text(max_size=8))
SWEEPS = st.fixed_dictionaries(
    {"config": st.just("c.py")},
    optional={
        "name": st.one_of(
            st.sampled_from(["r{task_wrapper.lr}-s{seed}", "x{a.b:.2f}", "{", "n"]),
            st.text(max_size=12),
        ),
        "description": st.one_of(st.just("lr {task_wrapper.lr}"), st.text(max_size=12)),
        "grid": st.dictionaries(PATHS, st.lists(VALUES, max_size=3), max_size=2),
        "list": st.lists(st.dictionaries(PATHS, VALUES, max_size=2), max_size=3),
        "random": st.fixed_dictionaries(
            {
                "n": st.integers(-1, 4),
                "params": st.dictionaries(
                    PATHS,
                    st.one_of(
                        st.lists(VALUES, max_size=3),
                        st.dictionaries(
                            st.sampled_from(["low", "high", "log", "digits", "choices", "x"]),
                            VALUES,
                            max_size=4,
                        ),
                    ),
                    max_size=2,
                ),
            },
            optional={"seed": st.integers()},
        ),
        "seeds": st.one_of(st.integers(-1, 3), st.lists(st.integers(), max_size=3)),
        "overrides": st.dictionaries(PATHS, VALUES, max_size=2),
        "init_from": st.one_of(st.just("p/e/r"), st.text(max_size=8)),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SWEEPS)
def test_any_sweep_expands_or_gives_one_clear_line(sweep: dict) -> None:
    with tempfile.TemporaryDirectory() as folder:
        text = yaml.safe_dump(
            {"description": "P", "experiments": {"e": {"description": "E", "sweep": sweep}}}
        )
        (Path(folder) / "proj.yaml").write_text(text)
        try:
            load_registry(folder)
        except RegistryError as exc:
            assert "proj.yaml" in str(exc) and "\n" not in str(exc).strip()


def test_reordering_grid_keys_keeps_each_runs_job_params(tmp_path: Path) -> None:
    """Snakemake compares params by repr: the order of the YAML keys must not rerun a run."""
    grid = "{task_wrapper.lr: [0.1], data_wrapper.batch_size: [8]}"
    swapped = "{data_wrapper.batch_size: [8], task_wrapper.lr: [0.1]}"
    runs = {}
    for name, text in (("a", grid), ("b", swapped)):
        sweep = f"    sweep: {{config: c.py, name: run, overrides: {{trainer.max_epochs: 2}}, grid: {text}}}\n"
        (tmp_path / name).mkdir()
        reg = registry(tmp_path / name, f"  e:\n    description: E\n{sweep}")
        runs[name] = reg.run("proj", "e", "run")
    assert list(runs["a"].overrides) != list(runs["b"].overrides)  # as declared
    params = [job_spec(runs[n], 1).as_params() for n in "ab"]
    assert repr(params[0]["overrides"]) == repr(params[1]["overrides"])


def test_config_digests_are_reused_for_seconds_while_a_dag_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dltemplate.registry.model import Run
    from dltemplate.workflow import targets

    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs/exp.py").write_text("LR = 1\n")
    run = Run(proj="p", exp="e", name="r", description="R", config="configs/exp.py")
    clock = [1000.0]
    monkeypatch.setattr(targets.time, "monotonic", lambda: clock[0])
    first = targets.source_digests(run)
    (tmp_path / "configs/exp.py").write_text("LR = 22\n")
    clock[0] += 1.0  # the same DAG build: the same answer, without looking at the files
    assert targets.source_digests(run) == first
    clock[0] += targets.DIGESTS_FRESH_SECONDS  # later: the edit shows
    assert targets.source_digests(run)["configs/exp.py"] != first["configs/exp.py"]


def test_sweep_resources_apply_to_every_run_over_the_experiments(tmp_path: Path) -> None:
    reg = registry(
        tmp_path,
        """\
  e:
    description: E
    resources: {mem_mb: 4000, gpus: 1}
    sweep:
      config: c.py
      resources: {gpus: 2, fit: {runtime: 2h}}
      grid: {task_wrapper.lr: [0.1, 0.2]}
""",
    )
    for run in reg.experiment("proj", "e").runs.values():
        assert run.resources["fit"] == {"mem_mb": 4000, "gpus": 2, "runtime": 120}
        assert run.resources["test"] == {"mem_mb": 4000, "gpus": 1}  # evaluation takes 1 GPU
