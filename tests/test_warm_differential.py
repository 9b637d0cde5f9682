"""Warm and cold, differentially: a corpus of small configs is trained and tested in two copies
of one project, one with every job cold and one with a warm server, side by side, each in the
same order, and every run's weights and test metrics must be equal to the bit.

The corpus: the example's diabetes regression MLP, fitted and tested; a config importing a
library (outside the project) that makes float64 torch's default dtype when imported, trained
first (a float64 digits MLP, fitted only), so that a server that preloaded it would change every
later run; and a digits MLP whose width comes from a project module that the server preloads
(`warm_preload`), fitted and tested, then fitted again after that module was edited with its
size and modification time kept.

Broken on purpose: with the server learning every module jobs import (server.is_safe returning
True), the runs after `glob` train in float64 and this test fails; with fingerprint._content
returning the file's size, `layers2` trains the old width.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import make_project
from tests.warm_server import start_warm_server, warm_env

# bench/gpu_check.sh runs this corpus on a GPU: DLT_TEST_ACCELERATOR=gpu.
OVERRIDES = {
    "trainer.max_epochs": 1,
    **(
        {"trainer.accelerator": os.environ["DLT_TEST_ACCELERATOR"]}
        if os.environ.get("DLT_TEST_ACCELERATOR")
        else {}
    ),
}
CORPUS = {
    "glob": "configs/glob_mlp.py",
    "diabetes": "configs/diabetes_mlp.py",
    "layers": "configs/layers_mlp.py",
}
TESTED = ("diabetes", "layers")  # the others are fitted only
JOBS = {run: ["fit", "test"] if run in TESTED else ["fit"] for run in (*CORPUS, "layers2")}
F64_MLP = '''\
"""The digits MLP with float64 weights and sums."""
from torch import nn

from dltemplate import RootConfig

from .components.data_wrappers.digits import get_data_wrapper
from .components.models.mlp import get_model
from .components.task_wrappers.classifier import get_classifier
from .components.trainers.default import get_trainer


class Float64(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.double()

    def forward(self, x):
        return self.inner(x.double()).float()


def get_task_wrapper(*, lr: float = 1e-3):
    return get_classifier(model=Float64(get_model(hidden_dim=16)), lr=lr)


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer
    )
'''
GLOB_MLP = F64_MLP.replace(
    "from torch import nn\n", "import globlib  # noqa: F401\nfrom torch import nn\n"
)
LAYERS_MLP = F64_MLP.replace(
    "from torch import nn\n", "import mylayers\nfrom torch import nn\n"
).replace("Float64(get_model(hidden_dim=16))", "get_model(hidden_dim=mylayers.WIDTH)")
GLOBLIB = "import torch\n\ntorch.set_default_dtype(torch.float64)\n"


def _registry(runs: dict[str, str]) -> str:
    entries = {
        name: {"description": name, "config": config, "jobs": JOBS[name], "overrides": OVERRIDES}
        for name, config in runs.items()
    }
    return json.dumps(
        {
            "description": "warm against cold",
            "experiments": {"exp": {"description": "the corpus", "runs": entries}},
        }
    )


def _project(root: Path, libs: Path):
    project = make_project(root, _registry(CORPUS))
    project.write("configs/glob_mlp.py", GLOB_MLP)
    project.write("configs/layers_mlp.py", LAYERS_MLP)
    project.write("mylayers/__init__.py", "WIDTH = 16\n")
    settings = project.path("configs/workflow.yaml")
    settings.write_text(settings.read_text() + "\nwarm_preload: [mylayers]\n")
    return project


def _target(run: str) -> str:
    return f"results/tiny/exp/{run}/{JOBS[run][-1]}.done"


def _train_the_corpus(project, env: dict[str, str]) -> None:
    project.snakemake("--cores", "1", _target("glob"), env=env)  # first: its import stays its own
    later = ("diabetes", "layers")
    project.snakemake("--cores", "1", *(_target(run) for run in later), env=env)
    module = project.path("mylayers/__init__.py")
    before = module.stat()
    module.write_text("WIDTH = 32\n")  # the same size, and its time set back
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
    project.write("configs/projects/tiny.yaml", _registry({**CORPUS, "layers2": CORPUS["layers"]}))
    project.snakemake("--cores", "1", _target("layers2"), env=env)


def _first_line(project, run: str, job: str) -> str:
    return project.path(f"results/tiny/exp/{run}/logs/{job}.log").read_text().splitlines()[0]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_corpus_trains_the_same_warm_and_cold(tmp_path: Path) -> None:
    import torch

    libs = tmp_path / "libs"
    (libs / "globlib").mkdir(parents=True)
    (libs / "globlib" / "__init__.py").write_text(GLOBLIB)
    path = os.pathsep.join(p for p in (str(libs), os.environ.get("PYTHONPATH")) if p)
    cold, warm = _project(tmp_path / "cold", libs), _project(tmp_path / "warm", libs)
    env = {**warm_env(tmp_path / "state"), "PYTHONPATH": path}
    start_warm_server(warm.root, env, {"warm_preload": ["mylayers"]})
    with ThreadPoolExecutor(2) as both:  # each copy in its own order, side by side
        trained = [
            both.submit(_train_the_corpus, cold, {"DLT_WARM": "0", "PYTHONPATH": path}),
            both.submit(_train_the_corpus, warm, env),
        ]
        for copy in trained:
            copy.result()

    for run in (*CORPUS, "layers2"):
        for job in JOBS[run]:
            line = _first_line(warm, run, job)
            assert line.startswith("Warm start"), (run, job, line)
            if (run, job) == ("layers2", "fit"):  # refused by the server, it started a new one
                assert "(started for this job: the project's code changed" in line, line
        folder = f"results/tiny/exp/{run}"
        weights = [
            torch.load(p.path(f"{folder}/checkpoints/last.ckpt"), weights_only=False)["state_dict"]
            for p in (cold, warm)
        ]
        assert weights[0].keys() == weights[1].keys()
        for key in weights[0]:
            assert weights[0][key].dtype == weights[1][key].dtype, (run, key)
            assert torch.equal(weights[0][key], weights[1][key]), (run, key)
        if run in TESTED:
            metrics = [
                json.loads(p.path(f"{folder}/test.done").read_text())["metrics"]
                for p in (cold, warm)
            ]
            assert metrics[0] == metrics[1], run
    widths = {
        run: torch.load(
            warm.path(f"results/tiny/exp/{run}/checkpoints/last.ckpt"), weights_only=False
        )["state_dict"]
        for run in ("layers", "layers2")
    }
    assert [next(iter(w.values())).shape[0] for w in widths.values()] == [16, 32]
    dtypes = {
        next(
            iter(
                torch.load(
                    warm.path(f"results/tiny/exp/{r}/checkpoints/last.ckpt"), weights_only=False
                )["state_dict"].values()
            )
        ).dtype
        for r in ("diabetes", "layers")
    }
    assert dtypes == {torch.float32}  # the runs after glob are not float64
