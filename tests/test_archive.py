"""Layer 1: archived configs (py, zip, folder) load as configs and rebuild the same run."""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from dltemplate.config.archive import ARCHIVE_NAMES, archive_config, collect, read_archive
from dltemplate.config.build import build_run
from dltemplate.config.loader import load_config_module
from dltemplate.errors import ConfigError, UserError
from tests.conftest import FIXTURE

CONFIG = """\
from dltemplate import RootConfig

from .parts import get_data, get_net


def get_task(*, width: int = 3) -> object:
    return get_net(width=width)


def get_trainer(*, max_epochs: int = 1) -> dict:
    return {"max_epochs": max_epochs}


def get_root_config_instance() -> RootConfig:
    return RootConfig(task_wrapper=get_task, data_wrapper=get_data, trainer=get_trainer)
"""
PARTS = """\
from toynets import Data, Net


def get_net(*, width: int = 1, scale: float = 2.0) -> Net:
    return Net(width=width, scale=scale)


def get_data(*, n: int = 1) -> Data:
    return Data()
"""
TOYNETS = '''\
"""A local model package, outside the config package (like models/)."""

import lightning as L
from torch import nn

from .layers import SCALE_NOTE


class Data(L.LightningDataModule):
    pass


class Net(L.LightningModule):
    def __init__(self, *, width: int, scale: float) -> None:
        super().__init__()
        self.layer = nn.Linear(width, 2)
        self.scale = scale
        self.note = SCALE_NOTE

    def forward(self, x):
        return self.layer(x) * self.scale
'''
LAYERS = """SCALE_NOTE = 'original'\n"""


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config package `toycfg` and a local package `toynets` that it imports absolutely."""
    code = tmp_path / "code"
    for relative, text in {
        "toycfg/__init__.py": "",
        "toycfg/main.py": CONFIG,
        "toycfg/parts.py": PARTS,
        "toynets/__init__.py": TOYNETS,
        "toynets/layers.py": LAYERS,
    }.items():
        (code / relative).parent.mkdir(parents=True, exist_ok=True)
        (code / relative).write_text(text)
    monkeypatch.syspath_prepend(str(code))
    yield code / "toycfg" / "main.py"
    for name in [n for n in sys.modules if n.split(".")[0] in ("toycfg", "toynets")]:
        del sys.modules[name]


def test_collect_follows_imports_to_local_code_only(toy: Path) -> None:
    archive = collect(toy)
    assert archive.root == "toycfg.main"
    assert set(archive.modules) == {
        "toycfg",
        "toycfg.main",
        "toycfg.parts",
        "toynets",
        "toynets.layers",
    }
    example = collect(FIXTURE / "configs/digits_mlp.py").modules
    assert {"models.mlp", "wrappers", "dataset_classes.digits"} <= set(example)
    assert "configs.components.models.small_cnn" not in example  # not imported by digits_mlp
    assert not any(n.split(".")[0] in ("dltemplate", "torch", "lightning") for n in example)


@pytest.mark.parametrize("fmt", ["py", "zip", "folder"])
def test_archive_runs_without_the_original_files(toy: Path, tmp_path: Path, fmt: str) -> None:
    original = build_run(toy, overrides={"task_wrapper.width": 4}, seed=3)
    path = archive_config(toy, tmp_path / "run", fmt)
    assert path.name == ARCHIVE_NAMES[fmt]
    shutil.rmtree(tmp_path / "code")  # the original files are gone
    for name in [n for n in sys.modules if n.split(".")[0] in ("toycfg", "toynets")]:
        del sys.modules[name]
    again = build_run(path, overrides={"task_wrapper.width": 4}, seed=3)
    assert again.hparams == original.hparams
    assert again.task_wrapper.note == "original"
    state, state_again = original.task_wrapper.state_dict(), again.task_wrapper.state_dict()
    assert all(torch.equal(state[k], state_again[k]) for k in state)


def test_archive_wins_over_changed_project_files(toy: Path, tmp_path: Path) -> None:
    path = archive_config(toy, tmp_path / "run", "py")
    (toy.parent.parent / "toynets/layers.py").write_text("SCALE_NOTE = 'edited'\n")
    assert build_run(path).task_wrapper.note == "original"
    assert build_run(toy).task_wrapper.note == "edited"  # the project's files once more
    assert build_run(path).task_wrapper.note == "original"


@pytest.mark.parametrize("fmt", ["py", "zip", "folder"])
def test_archiving_an_archive_keeps_its_modules(toy: Path, tmp_path: Path, fmt: str) -> None:
    first = archive_config(toy, tmp_path / "a", "py")
    build_run(first)  # loaded, as the fit of a run declared with it would
    second = archive_config(first, tmp_path / "b", fmt)
    one, two = read_archive(first), read_archive(second)
    assert two.root == one.root
    assert {n: m.source for n, m in two.modules.items()} == {
        n: m.source for n, m in one.modules.items()
    }


def test_archive_carries_the_runs_overrides_and_seed(toy: Path, tmp_path: Path) -> None:
    original = build_run(toy, overrides={"task_wrapper.width": 5, "seed": 8}, seed=42)
    overrides = {**original.build.overrides, "seed": original.hparams["seed"]}
    path = archive_config(toy, tmp_path / "a", "py", overrides)
    again = build_run(path, seed=42)  # nothing declared: the archive's values
    assert again.hparams == original.hparams
    assert again.build.origins["task_wrapper.width"] == "archived"
    assert again.build.origins["seed"] == "archived"
    assert again.build.origins["task_wrapper.net.scale"] == "default"
    changed = build_run(path, overrides={"task_wrapper.width": 6}, seed=42)  # the run's win
    assert changed.hparams["task_wrapper"]["width"] == 6 and changed.hparams["seed"] == 8
    assert changed.build.origins["task_wrapper.width"] == "override"
    # Archiving a run of the archive keeps both: the archive's, then the run's.
    merged = {**changed.build.overrides, "seed": changed.hparams["seed"]}
    second = archive_config(path, tmp_path / "b", "zip", merged)
    assert read_archive(second).overrides == {"task_wrapper.width": 6, "seed": 8}
    assert build_run(second, seed=0).hparams == changed.hparams


def test_example_config_round_trip_and_loggers_hparams(tmp_path: Path) -> None:
    config = FIXTURE / "configs/digits_cnn.py"
    original = build_run(config, seed=11)
    path = archive_config(config, tmp_path, "py")
    again = build_run(path, seed=11)
    assert again.hparams == original.hparams
    assert yaml.safe_load(yaml.safe_dump(again.hparams)) == original.hparams
    assert type(again.task_wrapper.model).__module__ == "models.small_cnn"
    assert sys.modules["models.small_cnn"].__file__ == str(path)  # served from the archive
    build_run(config)
    # the module of a project's package again, not the archive's
    assert sys.modules["models.small_cnn"].__file__.endswith("/models/small_cnn.py")


def test_errors_in_an_archive_point_at_its_own_lines(toy: Path, tmp_path: Path) -> None:
    (toy.parent / "parts.py").write_text(
        PARTS.replace("return Net(", "raise RuntimeError('bad width')\n    return Net(")
    )
    path = archive_config(toy, tmp_path, "py")
    with pytest.raises(ConfigError) as info:
        build_run(path)
    message = str(info.value)
    assert f"{path}:" in message and "bad width" in message
    line = int(re.search(rf"{re.escape(str(path))}:(\d+)", message).group(1))
    assert "raise RuntimeError('bad width')" in path.read_text().splitlines()[line - 1]


def test_sources_with_both_triple_quotes_still_embed(toy: Path, tmp_path: Path) -> None:
    (toy.parent.parent / "toynets/layers.py").write_text(
        "A = '''x'''\nB = \"\"\"y\"\"\"\nSCALE_NOTE = 'original'\n"
    )
    path = archive_config(toy, tmp_path, "py")
    assert build_run(path).task_wrapper.note == "original"


def test_other_formats_of_an_earlier_fit_are_removed(toy: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    archive_config(toy, run, "folder")
    archive_config(toy, run, "zip")
    assert sorted(p.name for p in run.iterdir()) == ["archived_config.zip"]
    with pytest.raises(UserError, match=r"archive_format 'tar' .* py, zip, folder"):
        archive_config(toy, tmp_path, "tar")


def test_ordinary_config_is_not_an_archive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an archived config"):
        read_archive(FIXTURE / "configs/digits_mlp.py")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_module(tmp_path / "archived_config.zip")
    broken = tmp_path / "archived_config.zip"
    broken.write_text("not a zip")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config_module(broken)


def test_archived_single_file_is_readable(toy: Path, tmp_path: Path) -> None:
    text = archive_config(toy, tmp_path, "py").read_text()
    assert "ROOT = 'toycfg.main'" in text
    assert "    # toynets/layers.py" in text
    assert textwrap.dedent(PARTS) in text  # sources verbatim, line for line


def test_fit_waits_for_the_declared_run_whose_archive_is_its_config(tmp_path: Path) -> None:
    from dltemplate.registry.model import load_registry
    from dltemplate.workflow.targets import fit_inputs

    (tmp_path / "p.yaml").write_text(
        textwrap.dedent("""\
        description: P
        experiments:
          e:
            description: E
            runs:
              a: {description: A, config: configs/digits_mlp.py}
              b: {description: B, config: results/p/e/a/archived_config.py}
              c: {description: C, config: ./results/p/e/a/archived_config.zip}
              d: {description: D, config: results/p/e/gone/archived_config.py}
        """)
    )
    registry = load_registry(tmp_path)
    runs = registry.projects["p"].experiments["e"].runs
    assert fit_inputs(registry, runs["a"]) == []
    assert fit_inputs(registry, runs["b"]) == ["results/p/e/a/fit.done"]
    assert fit_inputs(registry, runs["c"]) == ["results/p/e/a/fit.done"]
    assert fit_inputs(registry, runs["d"]) == []  # not declared: its archive is used as it lies
