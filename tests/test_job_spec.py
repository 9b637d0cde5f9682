"""Layer 1: a job's parameters round-trip through Snakemake's params as one typed record."""

from __future__ import annotations

from dltemplate.workflow.job_spec import JobSpec


def test_a_job_spec_round_trips_through_plain_params() -> None:
    spec = JobSpec(
        run_dir="results/p/e/r",
        config="configs/x.py",
        overrides={"b": 2, "a": 1},
        seed=42,
        source="configs/projects/p.yaml",
        init_from="results/p/e/parent/fit.done",
        sources={"configs/x.py": "abc"},
    )
    params = spec.as_params()
    assert list(params["overrides"]) == ["a", "b"]  # sorted: the YAML's order is no change
    assert JobSpec.from_params(params) == spec
    assert repr(params) == repr(JobSpec.from_params(params).as_params())


def test_params_without_init_from_keep_the_keys_runs_were_recorded_with() -> None:
    params = JobSpec(run_dir="results/p/e/r", config="c.py", seed=1).as_params()
    assert list(params) == ["run_dir", "config", "overrides", "seed", "source", "sources"]
    assert JobSpec.from_params(params).init_from is None
