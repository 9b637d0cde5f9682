"""Shared fixtures: a scratch copy of the project to run real workflows in."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from dltemplate.scaffold import EXAMPLES, write_project
from tests.forks import Forks

REPO = Path(__file__).resolve().parents[1]


def _fixture_project() -> Path:
    """The project that `dltemplate new` writes with both examples, once per test session (its
    xdist workers share the controller's), in a temporary folder removed at the end."""
    made = os.environ.get("DLT_TEST_FIXTURE")
    if made and Path(made).is_dir():
        return Path(made)
    folder = Path(tempfile.mkdtemp(prefix="dlt-fixture-"))
    write_project(folder / "project", EXAMPLES)
    os.environ["DLT_TEST_FIXTURE"] = str(folder / "project")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder / "project"


# The engine's tests run on projects that `dltemplate new` writes with both examples, so that a
# user who deletes this repository's examples keeps a green suite; FIXTURE is one, for the tests
# that read its configs in place. Its packages (models, dataset_classes) come after the repo's
# on the path, here and in every process the tests start: while the examples are here, their
# tests import their own.
FIXTURE = _fixture_project()
sys.path.append(str(FIXTURE))
_PATH = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
os.environ["PYTHONPATH"] = os.pathsep.join(
    [*_PATH, *([] if str(FIXTURE) in _PATH else [str(FIXTURE)])]
)
WORKFLOW_SETTINGS = "configs/workflow.yaml"
# The example project (configs/*.py, models/, dataset_classes/, its registry): tests marked
# `examples` check it, and skip when a user has deleted it.
EXAMPLE_FILES = (REPO / "configs/digits_mlp.py", REPO / "models", REPO / "dataset_classes")
HAS_EXAMPLES = all(path.exists() for path in EXAMPLE_FILES)
# Jobs start warm, as on a user's machine: a scratch project's first job starts its warm
# server and every job runs in a fork of it (docs/warm-jobs.md), so the suite imports torch and
# Lightning once per project rather than once per job. But the `project` of a test not marked
# slow runs its one or two jobs cold, cheaper than a server. `DLT_WARM=0 make test` runs every
# job cold; tests/test_warm_differential.py trains a corpus both ways and compares bit for bit.
os.environ.setdefault("DLT_WARM", "1")
BIN = Path(sys.executable).parent
# The plots that a run's record job draws (the engine's rules/records.smk), under the run's plots/.
RUN_PLOTS = ("learning_curves.png", "epochs.html", "confusion_matrix.png", "regression.png")


# The modules whose tests take longest (measured: the slowest tests of `make test`), started
# right after the SLURM tests, so that none of them is left running alone at the end.
LONGEST = ("test_warm_differential", "test_bench", "test_search", "test_records_workflow")
# Session fixtures that are cheap to build on each worker: they group no tests.
UNSHARED = ("warm_dir", "forks")


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make test`: `-n 2 --dist loadgroup`) tests that share a module or
    session fixture of ours (a trained run, a finished workflow) run on one worker, which builds
    it once; the SLURM tests share one worker too (the cluster has 2 CPUs), and start first:
    they wait for the cluster most of their time, while the other workers run the rest. Every
    other test goes to whichever worker is free. Modules with slow tests start next, the
    LONGEST first, so no long one is left for last."""
    # By module, in their order: a module's tests may build on each other's changes to its
    # shared fixture (tests/test_reruns.py).
    slow = {item.module for item in items if item.get_closest_marker("slow")}

    def order(item: pytest.Item) -> tuple:
        module = item.module.__name__.rsplit(".", 1)[-1]
        longest = LONGEST.index(module) if module in LONGEST else len(LONGEST)
        return (not item.get_closest_marker("slurm"), item.module not in slow, longest)

    items.sort(key=order)
    if not HAS_EXAMPLES:
        skip = pytest.mark.skip(
            reason="the example project was deleted (configs/*.py, models/ ...)"
        )
        for item in items:
            if item.get_closest_marker("examples"):
                item.add_marker(skip)
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))
            continue
        info = getattr(item, "_fixtureinfo", None)
        shared = {
            (defs[-1].scope, name if defs[-1].scope == "session" else defs[-1].baseid)
            for name, defs in (info.name2fixturedefs.items() if info else ())
            if defs and defs[-1].baseid and defs[-1].scope != "function" and name not in UNSHARED
        }
        if shared:
            item.add_marker(pytest.mark.xdist_group(max(shared)[1]))  # a session one first


class Project:
    """A scratch project folder: the repo's workflow and configs, its own registry and results."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env: dict[str, str] = {}  # added to every command's environment
        self.forks: Forks | None = None  # set by tests that fit in forks (tests/forks.py)

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def snakemake(
        self, *args: str, check: bool = True, timeout: int = 600, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        """Run Snakemake here; `env` adds variables (the test hooks' DLT_TEST_*)."""
        result = subprocess.run(
            [str(BIN / "snakemake"), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env, **(env or {})},
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def main(
        self, *args: str, check: bool = True, timeout: int = 600
    ) -> subprocess.CompletedProcess:
        # In a fork of a process that imported torch and Lightning (tests/forks.py): a command
        # that builds a config or loads a checkpoint skips seconds of imports. `timeout` is
        # pytest-timeout's now (a hung command fails its test at the suite's limit).
        env = {**os.environ, **self.env}
        result = main_forks().call(list(args), self.root, env, script=str(self.root / "main.py"))
        if check and result.returncode != 0:
            raise AssertionError(
                f"main.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def path(self, relative: str) -> Path:
        return self.root / relative

    def add_fit_hooks(self) -> str:
        """Copy tests/fit_hooks.py into configs/ and write configs/hooked_mlp.py, the digits
        MLP with those hooks in its trainer. Returns that config's path."""
        shutil.copy2(REPO / "tests" / "fit_hooks.py", self.root / "configs" / "fit_hooks.py")
        self.write("configs/hooked_mlp.py", HOOKED_MLP)
        return "configs/hooked_mlp.py"


HOOKED_MLP = '''\
"""The digits MLP with the test hooks of tests/fit_hooks.py in its trainer."""
from dltemplate import RootConfig

from .components.data_wrappers.digits import get_data_wrapper
from .components.trainers.default import get_trainer as default_trainer
from .digits_mlp import get_task_wrapper
from .fit_hooks import fit_hooks


def get_trainer(
    *, max_epochs: int = 20, monitor: str = "val/loss", monitor_mode: str = "min"
) -> dict:
    settings = default_trainer(max_epochs=max_epochs, monitor=monitor, monitor_mode=monitor_mode)
    return {**settings, "callbacks": [*settings["callbacks"], *fit_hooks()]}


def get_root_config_instance() -> RootConfig:
    return RootConfig(
        task_wrapper=get_task_wrapper, data_wrapper=get_data_wrapper, trainer=get_trainer
    )
'''

TINY_REGISTRY = """\
description: A tiny project for tests
experiments:
  exp:
    description: Two quick runs
    runs:
      mlp:
        description: a two-epoch MLP
        config: configs/digits_mlp.py
        overrides:
          trainer.max_epochs: 2
          task_wrapper.model.hidden_dim: 32
"""


def make_project(root: Path, registry: str = TINY_REGISTRY) -> Project:
    """A project that `dltemplate new` writes into `root`, with both examples' configs; its
    registry holds only project `tiny`."""
    write_project(root, EXAMPLES)
    for example in EXAMPLES:
        (root / "configs" / "projects" / f"{example}.yaml").unlink()
    shutil.rmtree(root / "results")  # its .gitkeep: tests check that nothing else was written
    project = Project(root)
    project.write("configs/projects/tiny.yaml", registry)
    return project


_MAIN_FORKS: list[Forks] = []


def main_forks() -> Forks:
    """The fork parent that runs `Project.main` (started on first use; one per xdist worker)."""
    if not _MAIN_FORKS:
        _MAIN_FORKS.append(Forks(Path(tempfile.mkdtemp(prefix="dlt-main-forks-"))))
    return _MAIN_FORKS[0]


@pytest.fixture(scope="session", autouse=True)
def warm_dir(tmp_path_factory: pytest.TempPathFactory):
    """The warm servers of this session (one per warm project) keep their sockets, state and
    logs in a folder of the session's temporary folder, which the first server creates (private
    to the user, as a server requires). At the end their socket files are removed, and each
    server stops on seeing its socket gone."""
    folder = tmp_path_factory.getbasetemp() / "warm"
    os.environ["DLT_WARM_DIR"] = str(folder)
    os.environ.setdefault("DLT_WARM_IDLE", "60")  # a module's or session's project: its tests
    yield folder
    for socket in folder.glob("*.sock"):
        socket.unlink(missing_ok=True)
    for parent in _MAIN_FORKS:
        parent.close()
        shutil.rmtree(parent.scratch, ignore_errors=True)


@pytest.fixture(autouse=True)
def restore_sys_path():
    """A command run in this process (main.py's `main`) puts its project first on `sys.path`
    (dltemplate.project.enter); the next test starts with the path as it was."""
    saved = list(sys.path)
    yield
    sys.path[:] = saved


@pytest.fixture(scope="session")
def forks(tmp_path_factory: pytest.TempPathFactory):
    """Fits in forks of one process that imported torch and Lightning (tests/forks.py)."""
    parent = Forks(tmp_path_factory.mktemp("forks"))
    yield parent
    parent.close()


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest):
    """A scratch project; its jobs run cold unless the test is marked slow (a slow test's
    project runs many), and its warm servers stop when the test ends."""
    project = make_project(tmp_path / "proj")
    if not request.node.get_closest_marker("slow"):
        project.env["DLT_WARM"] = "0"
    yield project
    stop_warm_servers(project.root)


def stop_warm_servers(root: Path) -> None:
    """Ask the warm servers of project folder `root` to stop (they would idle on for
    DLT_WARM_IDLE seconds, each holding torch and Lightning in memory)."""
    from dltemplate.warm.client import ask, servers_of

    for where in servers_of(root):
        ask(where, "stop")


SMALL = (
    "trainer.max_epochs: 1, trainer.limit_train_batches: 4, trainer.limit_val_batches: 2, "
    "task_wrapper.model.hidden_dim: 32"
)
FINISHED_REGISTRY = f"""\
description: Two finished runs to compare
experiments:
  exp:
    description: a, then b on the next commit with other overrides and seed
    runs:
      a: {{description: the first run, config: configs/digits_mlp.py, jobs: [fit, test],
          overrides: {{{SMALL}}}}}
      b: {{description: the second run, config: configs/digits_mlp.py, jobs: [fit, test],
          overrides: {{{SMALL.replace("32", "16")}, seed: 7}}}}
"""
UNCOMMITTED = "# an uncommitted edit, made before run a\n"


def git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """tiny/exp/a and tiny/exp/b, fitted and tested by Snakemake in a git tree: a with an
    uncommitted edit of configs/digits_mlp.py; then that edit and a change of the model getter's
    file are committed, and b runs on the clean tree, with another hidden_dim and seed 7.
    Shared by the environment, diff and reproduce tests: read a and b, never change them."""
    project = make_project(tmp_path_factory.mktemp("finished") / "proj", FINISHED_REGISTRY)
    project.write(".gitignore", "results/\n.snakemake/\n__pycache__/\n")
    git(project.root, "init", "-q")
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "the project")
    config = project.path("configs/digits_mlp.py")
    config.write_text(config.read_text() + UNCOMMITTED)
    project.snakemake("--cores", "2", "results/tiny/exp/a/test.done")
    model = project.path("configs/components/models/mlp.py")
    model.write_text(model.read_text().replace("# 8x8 digits", "# 8x8 digits, flattened"))
    git(project.root, "commit", "-qam", "a comment")
    project.snakemake("--cores", "2", "results/tiny/exp/b/test.done")
    return project
