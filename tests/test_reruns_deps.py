"""Layer 1: which files a config depends on (an AST scan, no imports), and their digests."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dltemplate.registry.model import load_registry
from dltemplate.workflow import sources as config_deps
from dltemplate.workflow.targets import source_digests
from tests.conftest import FIXTURE, REPO


def write(root: Path, relative: str, text: str = "") -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project: a config package with components, a local package beside it, and imports of
    things that are not local (torch, the engine) that the scan must not follow."""
    monkeypatch.chdir(tmp_path)
    config_deps.clear_cache()
    write(tmp_path, "configs/__init__.py")
    write(tmp_path, "configs/components/__init__.py")
    write(tmp_path, "configs/components/models/__init__.py")
    write(
        tmp_path,
        "configs/components/models/net.py",
        """\
        from layerlib import Block

        def get_model(*, width: int = 4):
            return Block(width)
        """,
    )
    write(tmp_path, "configs/components/unused.py", "X = 1\n")
    write(
        tmp_path,
        "configs/exp.py",
        """\
        import torch
        from dltemplate import RootConfig

        from .components.models.net import get_model
        from .components import models


        def get_task_wrapper(*, lr: float = 0.1):
            from .helpers import tool  # imports inside functions count too
            return tool(get_model(), lr)
        """,
    )
    write(tmp_path, "configs/helpers.py", "def tool(*a):\n    return a\n")
    write(tmp_path, "layerlib/__init__.py", "from .blocks import Block\nfrom . import extra\n")
    write(tmp_path, "layerlib/blocks.py", "import numpy\n\nclass Block:\n    pass\n")
    write(tmp_path, "layerlib/extra.py", "Y = 2\n")
    write(tmp_path, "dltemplate/__init__.py", "RootConfig = object\n")  # the engine: never tracked
    return tmp_path


EXPECTED = {
    "configs/__init__.py",
    "configs/components/__init__.py",
    "configs/components/models/__init__.py",
    "configs/components/models/net.py",
    "configs/exp.py",
    "configs/helpers.py",
    "layerlib/__init__.py",
    "layerlib/blocks.py",
    "layerlib/extra.py",
}


def test_scan_follows_relative_and_local_package_imports_only(tree: Path) -> None:
    digests = config_deps.source_digests("configs/exp.py")
    assert set(digests) == EXPECTED  # not unused.py, not torch/numpy, not the engine
    assert list(digests) == sorted(digests)
    assert all(len(d) == config_deps.DIGEST_CHARS for d in digests.values())
    assert "layerlib" not in sys.modules  # read, never imported


def test_digest_changes_with_content_only(tree: Path) -> None:
    before = config_deps.source_digests("configs/exp.py")
    blocks = tree / "layerlib/blocks.py"
    text = blocks.read_text()
    blocks.write_text(text)  # saved without a change
    os.utime(blocks, ns=(blocks.stat().st_atime_ns, blocks.stat().st_mtime_ns + 10**9))
    assert config_deps.source_digests("configs/exp.py") == before
    blocks.write_text(text + "# tuned\n")
    after = config_deps.source_digests("configs/exp.py")
    assert config_deps.changed_sources(before, after) == ["layerlib/blocks.py"]


def test_new_import_is_followed_after_an_edit(tree: Path) -> None:
    config_deps.source_digests("configs/exp.py")
    with (tree / "configs/helpers.py").open("a") as f:
        f.write("from .components import unused\n")
    assert "configs/components/unused.py" in config_deps.source_digests("configs/exp.py")


def test_scans_are_cached_by_mtime_and_size(tree: Path) -> None:
    config_deps.source_digests("configs/exp.py")
    scan = config_deps._SCANS[(tree / "layerlib/extra.py").resolve()]
    config_deps.source_digests("configs/exp.py")
    assert config_deps._SCANS[(tree / "layerlib/extra.py").resolve()] is scan  # not re-read
    (tree / "layerlib/extra.py").write_text("Y = 3\n")
    config_deps.source_digests("configs/exp.py")
    assert config_deps._SCANS[(tree / "layerlib/extra.py").resolve()] is not scan


def test_broken_and_missing_files_never_fail_the_parse(tree: Path) -> None:
    write(tree, "configs/bad.py", "from .helpers import (\n")  # a syntax error
    write(tree, "configs/far.py", "from .... import nothing\n")  # beyond the top package
    assert set(config_deps.source_digests("configs/bad.py")) == {
        "configs/__init__.py",
        "configs/bad.py",
    }
    assert "configs/far.py" in config_deps.source_digests("configs/far.py")
    assert config_deps.source_digests("configs/nope.py") == {"configs/nope.py": "missing"}


@pytest.mark.examples
def test_repository_configs_track_their_models_and_wrappers() -> None:
    registry = load_registry(REPO / "configs/projects")
    cwd = Path.cwd()
    try:
        os.chdir(REPO)
        digests = source_digests(registry.run("digits", "baseline", "cnn"))
    finally:
        os.chdir(cwd)
    for path in ("configs/digits_cnn.py", "models/small_cnn.py", "wrappers/__init__.py"):
        assert path in digests
    assert not any(p.startswith("dltemplate/") for p in digests)


def test_the_scan_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from dltemplate.workflow.sources import source_digests\n"
        "assert 'configs/digits_mlp.py' in source_digests('configs/digits_mlp.py')\n"
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=FIXTURE, check=True)


def test_a_run_with_ckpt_tests_it_and_has_no_fit(tmp_path: Path) -> None:
    from dltemplate.errors import RegistryError
    from dltemplate.workflow.targets import fitted_input, run_targets

    folder = tmp_path / "projects"
    write(
        folder,
        "p.yaml",
        """\
        description: P
        experiments:
          e:
            description: E
            runs:
              old: {description: R, config: configs/digits_mlp.py, ckpt: data/w.ckpt}
              mine: {description: R, config: configs/digits_mlp.py}
        """,
    )
    registry = load_registry(folder)
    old, mine = registry.run("p", "e", "old"), registry.run("p", "e", "mine")
    assert old.jobs == ("test", "predict") and fitted_input(old) == "data/w.ckpt"
    assert run_targets(old) == ["results/p/e/old/test.done", "results/p/e/old/predict.done"]
    assert fitted_input(mine) == "results/p/e/mine/fit.done"

    write(
        folder,
        "p.yaml",
        """\
        description: P
        experiments:
          e:
            description: E
            runs:
              old: {description: R, config: c.py, ckpt: w.ckpt, jobs: [fit, test]}
        """,
    )
    with pytest.raises(RegistryError, match=r"at experiments.e.runs.old: a run with ckpt: .*"):
        load_registry(folder)
