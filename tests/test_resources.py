"""Per-run resources: the registry's `resources:` (experiment, run, job type) and the workflow's
defaults reach Snakemake's threads and resources, which a cluster executor turns into
--cpus-per-task, --mem, --time and --gpus."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dltemplate.errors import RegistryError, UserError
from dltemplate.registry import resources
from dltemplate.registry.model import load_registry
from tests.conftest import Project

CONFIG = {
    "threads": {"fit": 2, "test": 1, "predict": 1},
    "resources": {
        "fit": {"mem_mb": 4000, "runtime": 120},
        "test": {"mem_mb": 2000, "runtime": "20m"},
        "predict": {"mem_mb": 2000, "runtime": 20},
    },
}

REGISTRY = """\
description: P
experiments:
  e:
    description: E
    resources: {gpus: 2, mem_mb: 8000, fit: {runtime: 12h}}
    runs:
      plain: {description: R, config: configs/digits_mlp.py}
      big:
        description: R
        config: configs/digits_mlp.py
        resources: {cpus: 4, runtime: 90, fit: {gpus: 4}, test: {gpus: 2, runtime: 2d}}
  other:
    description: no resources anywhere
    runs:
      r: {description: R, config: configs/digits_mlp.py}
"""


def registry(tmp_path: Path, text: str = REGISTRY):
    folder = tmp_path / "projects"
    folder.mkdir(exist_ok=True)
    (folder / "p.yaml").write_text(text)
    return load_registry(folder)


def test_run_wins_over_experiment_and_job_type_over_both(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    plain = reg.run("p", "e", "plain").resources
    # The experiment's fit runtime (12h) is its job-type key; test and predict take 1 GPU.
    assert plain["fit"] == {"gpus": 2, "mem_mb": 8000, "runtime": 720}
    assert plain["test"] == {"gpus": 1, "mem_mb": 8000}
    big = reg.run("p", "e", "big").resources
    # The run's general runtime (90) beats the experiment's fit runtime; its fit key, its gpus.
    assert big["fit"] == {"gpus": 4, "mem_mb": 8000, "runtime": 90, "cpus": 4}
    # A job-type key may ask test for more than one GPU; 2d is 2880 minutes.
    assert big["test"] == {"gpus": 2, "mem_mb": 8000, "runtime": 2880, "cpus": 4}
    assert big["predict"] == {"gpus": 1, "mem_mb": 8000, "runtime": 90, "cpus": 4}
    assert big["export"] == {"mem_mb": 8000, "runtime": 90, "cpus": 4}  # on the CPU
    assert reg.run("p", "other", "r").resources == {
        "fit": {},
        "validate": {},
        "test": {},
        "predict": {},
        "export": {},
    }


def test_workflow_defaults_fill_what_the_registry_leaves_out(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    plain = reg.run("p", "e", "plain").resources
    assert resources.job_threads(plain, "fit", CONFIG) == 2  # workflow threads
    assert resources.job_threads(reg.run("p", "e", "big").resources, "fit", CONFIG) == 4
    assert resources.job_resource(plain, "fit", "gpu", CONFIG) == 2
    assert resources.job_resource(plain, "test", "runtime", CONFIG) == 20  # "20m" from defaults
    bare = reg.run("p", "other", "r").resources
    assert resources.job_resource(bare, "fit", "gpu", CONFIG) is None  # nobody asked: no gpu
    assert resources.job_resource(bare, "fit", "mem_mb", CONFIG) == 4000
    assert resources.job_resource(bare, "predict", "mem_mb", {}) is None


def test_rules_get_constants_when_every_run_asks_the_same(tmp_path: Path) -> None:
    reg = registry(tmp_path)
    others = [run.resources for run in reg.runs() if run.exp == "other"]
    assert resources.shared_by_all(others, "fit", CONFIG) == {
        "threads": 2,
        "resources": {"mem_mb": 4000, "runtime": 120},  # no gpu: nobody asked for one
    }
    assert resources.shared_by_all([], "test", CONFIG)["resources"]["runtime"] == 20
    everyone = [run.resources for run in reg.runs()]  # `big` asks for more than `plain`
    assert resources.shared_by_all(everyone, "fit", CONFIG) is None


@pytest.mark.parametrize(
    ("value", "minutes"), [(45, 45), ("45", None), ("45m", 45), ("3h", 180), ("1d", 1440)]
)
def test_runtime_units(value: object, minutes: int | None) -> None:
    if minutes is None:
        with pytest.raises(UserError, match="not minutes"):
            resources.runtime_minutes(value)
    else:
        assert resources.runtime_minutes(value) == minutes


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{gpu: 1}",
            r"at experiments\.e\.runs\.r\.resources: .*'gpu' was unexpected.*allowed keys: cpus, export, fit, gpus, mem_mb, nodes, predict, runtime, tasks_per_node, test",
        ),
        ("{gpus: -1}", r"resources\.gpus: -1 is less than the minimum of 0"),
        ("{cpus: 0}", r"resources\.cpus: 0 is less than the minimum of 1"),
        ("{mem_mb: 2GB}", r"resources\.mem_mb: '2GB' is not of type 'integer'"),
        ("{gpus: true}", r"resources\.gpus: True is not of type 'number'"),
        (
            "{gpus: 1.5}",
            r"resources\.gpus: 1\.5 is neither a share of one GPU \(below 1, e\.g\. 0\.25 or 0\.5\) "
            r"nor a whole number of GPUs \(1, 2 \.\.\.\)$",
        ),
        ("{fit: {gpus: 2.5}}", r"resources\.fit\.gpus: 2\.5 is neither a share of one GPU"),
        ("{runtime: 2 hours}", r"resources\.runtime: '2 hours' is not valid under any"),
        ("{fit: {gpus: 1, fit: {}}}", r"resources\.fit: .*'fit' was unexpected"),
    ],
)
def test_bad_resources_name_file_and_key(tmp_path: Path, entry: str, message: str) -> None:
    text = (
        "description: P\nexperiments:\n  e:\n    description: E\n    runs:\n"
        f"      r: {{description: R, config: c.py, resources: {entry}}}\n"
    )
    with pytest.raises(RegistryError, match=message):
        registry(tmp_path, text)


def test_bad_workflow_default_names_the_key() -> None:
    with pytest.raises(UserError, match=r"resources\.fit: 'lots' is not of type 'integer'"):
        resources.workflow_defaults({"resources": {"fit": {"mem_mb": "lots"}}}, "fit")


def _dry_run_jobs(output: str) -> dict[tuple[str, str], dict[str, str]]:
    """(rule, run) -> the threads and resources that a dry run prints for that job."""
    jobs = {}
    for block in re.split(r"\n\s*rule ", output)[1:]:
        rule = block.split(":", 1)[0]
        run = re.search(r"wildcards: .*run=([\w.-]+)", block)
        if run is None:
            continue
        values = dict(
            re.findall(r"(\w+)=([^,\s]+)", block.split("resources:", 1)[1].split("\n")[0])
        )
        threads = re.search(r"threads: (\d+)", block)
        values["threads"] = threads.group(1) if threads else "1"
        jobs[(rule, run.group(1))] = values
    return jobs


def test_dry_run_shows_each_runs_resources(project: Project) -> None:
    project.write(
        "configs/projects/tiny.yaml",
        """\
        description: P
        experiments:
          exp:
            description: E
            resources: {mem_mb: 1500, runtime: 30}
            runs:
              small: {description: R, config: configs/digits_mlp.py}
              large:
                description: R
                config: configs/digits_mlp.py
                resources: {gpus: 2, cpus: 3, fit: {runtime: 6h, mem_mb: 9000}}
        """,
    )
    out = project.snakemake("-n", "--cores", "4", "--resources", "gpu=2").stdout
    jobs = _dry_run_jobs(out)
    assert jobs[("fit", "small")]["mem_mb"] == "1500"
    assert jobs[("fit", "small")]["runtime"] == "30"
    assert jobs[("fit", "small")]["threads"] == "1"  # configs/workflow.yaml
    assert "gpu" not in jobs[("fit", "small")]
    large = jobs[("fit", "large")]
    assert (large["gpu"], large["mem_mb"], large["runtime"], large["threads"]) == (
        "2",
        "9000",
        "360",
        "3",
    )
    assert jobs[("test", "large")]["gpu"] == "1"  # test takes at most one of the run's GPUs
    assert jobs[("predict", "large")]["mem_mb"] == "1500"


SPANNING = """\
description: P
experiments:
  e:
    description: E
    runs:
      gpus: {description: R, config: c.py, resources: {nodes: 4, gpus: 8, cpus: 6}}
      cpus: {description: R, config: c.py, resources: {nodes: 2, tasks_per_node: 3}}
      one: {description: R, config: c.py, resources: {nodes: 2, gpus: 1}}
      plain: {description: R, config: c.py, resources: {gpus: 2}}
"""


def test_a_fit_across_nodes_asks_slurm_for_one_task_per_device(tmp_path: Path) -> None:
    """What the slurm plugin turns into --nodes, --ntasks-per-node (or --ntasks), --gres per
    node; `mpi` starts the job without `srun -n1`. Every job of the run asks for the same
    `gres` (one submission holds them); only the fit spans nodes."""
    reg = registry(tmp_path, SPANNING)

    def asked(run: str, job: str) -> dict:
        runs = reg.run("p", "e", run).resources
        names = resources.resource_names({}, spans=True)
        found = {n: resources.job_resource(runs, job, n, {}) for n in names}
        return {k: v for k, v in found.items() if v is not None}

    assert asked("gpus", "fit") == {"gres": "gpu:8", "nodes": 4, "tasks_per_node": 8, "mpi": "srun"}
    assert asked("gpus", "test") == {"gres": "gpu:8"}
    assert asked("cpus", "fit") == {"nodes": 2, "tasks_per_node": 3, "mpi": "srun"}
    assert asked("cpus", "predict") == {}
    # One task per node: `tasks`, since the plugin refuses tasks_per_node 1 for mpi jobs.
    assert asked("one", "fit") == {"gres": "gpu:1", "nodes": 2, "tasks": 2, "mpi": "srun"}
    assert asked("plain", "fit") == {"gpu": 2}
    assert resources.any_spans([r.resources for r in reg.runs()], {})
    assert not resources.any_spans([reg.run("p", "e", "plain").resources], {})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{nodes: 2, gpus: 0.5}", r"a fit across nodes takes whole GPUs"),
        ("{test: {nodes: 2}}", r"resources: test: \{nodes: ...\}: only the fit spans nodes"),
    ],
)
def test_what_cannot_span_nodes_is_refused_in_one_line(
    tmp_path: Path, entry: str, message: str
) -> None:
    text = f"description: P\nexperiments:\n  e:\n    description: E\n    runs:\n      r: {{description: R, config: c.py, resources: {entry}}}\n"
    with pytest.raises(UserError, match=message):
        resources.any_spans([r.resources for r in registry(tmp_path, text).runs()], {})
