"""`dltemplate new`: a project folder of the user's own, written from project/ (what every
project holds) and examples/ (the examples' configs, models and datasets, as this repository's
root holds them). Files named *.tmpl are filled in (@name@ ...); the rest are copied as they are.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import dltemplate
from dltemplate.errors import UserError

HERE = Path(__file__).parent
PROJECT = HERE / "project"
EXAMPLES_TREE = HERE / "examples"
# The files of examples/ that belong to one example. Every other file there (the packages'
# __init__.py, the trainer, callback and task-wrapper getters) goes into every project.
EXAMPLES = {
    "digits": (
        "configs/digits_mlp.py",
        "configs/digits_cnn.py",
        "configs/exp_on_oracle_mnist.py",
        "configs/projects/digits.yaml",
        "configs/components/data_wrappers/digits.py",
        "configs/components/data_wrappers/mnist_idx.py",
        "configs/components/models/mlp.py",
        "configs/components/models/small_cnn.py",
        "configs/components/task_wrappers/classifier.py",
        "models/mlp.py",
        "models/small_cnn.py",
        "dataset_classes/digits.py",
        "dataset_classes/mnist_idx.py",
    ),
    "diabetes": (
        "configs/diabetes_mlp.py",
        "configs/projects/diabetes.yaml",
        "configs/components/data_wrappers/diabetes.py",
        "configs/components/models/sequential_mlp.py",
        "configs/components/task_wrappers/regressor.py",
        "dataset_classes/diabetes.py",
    ),
}
# What `make demo` builds for each example.
DEMO = {
    "digits": "results/digits/baseline/summary.csv results/digits/baseline/plots/comparison.png",
    "diabetes": "results/diabetes/baseline/summary.csv",
}
NO_EXAMPLE = "none"
TEMPLATE = ".tmpl"
# Names a package's data cannot carry (a leading dot), restored on writing.
RENAMED = {"gitignore": ".gitignore"}


def write_project(folder: Path, examples: Iterable[str] = ("digits",)) -> list[Path]:
    """Write a new project into `folder` (absent or empty) with the `examples` named (none for
    `("none",)`); the files written, relative to it."""
    examples = _checked_examples(examples)
    _check_target(folder)
    values = _values(folder, examples)
    written = [_copy(source, folder, PROJECT, values) for source in _files(PROJECT)]
    owned = {path for files in EXAMPLES.values() for path in files}
    chosen = {path for name in examples for path in EXAMPLES[name]}
    for source in _files(EXAMPLES_TREE):
        relative = source.relative_to(EXAMPLES_TREE).as_posix()
        if relative not in owned or relative in chosen:
            written.append(_copy(source, folder, EXAMPLES_TREE, values))
    keep = folder / "results" / ".gitkeep"
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.touch()
    return sorted([*written, keep.relative_to(folder)])


def engine_requirement() -> str:
    """The engine as pip installs it again: from the folder, archive or repository it was
    installed from (pip's direct_url.json), else by its version."""
    name = "dltemplate[search]"
    try:
        text = metadata.distribution("dltemplate").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        text = None
    if not text:
        return f"{name}=={dltemplate.__version__}"
    origin = json.loads(text)
    vcs = origin.get("vcs_info")
    if vcs:
        return f"{name} @ {vcs['vcs']}+{origin['url']}@{vcs['commit_id']}"
    return f"{name} @ {origin['url']}"


def _checked_examples(examples: Iterable[str]) -> tuple[str, ...]:
    examples = tuple(dict.fromkeys(examples))
    if examples == (NO_EXAMPLE,):
        return ()
    unknown = [name for name in examples if name not in EXAMPLES]
    if unknown or not examples:
        raise UserError(
            f"Unknown example {', '.join(unknown) or '(none given)'}: give --example "
            f"{'|'.join((*EXAMPLES, NO_EXAMPLE))} (repeat it for several)"
        )
    return examples


def _check_target(folder: Path) -> None:
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UserError(f"{folder} exists and is not a folder: give the path of a new folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise UserError(f"{folder} is not empty: give a new folder (nothing was written)")


def _values(folder: Path, examples: tuple[str, ...]) -> dict[str, str]:
    major, minor = (int(part) for part in dltemplate.__version__.split(".")[:2])
    high = f"{major + 1}.0" if major else f"0.{minor + 1}"
    engine = engine_requirement()
    return {
        "name": re.sub(r"[^A-Za-z0-9._-]+", "-", folder.resolve().name).strip("-._") or "project",
        "version": dltemplate.__version__,
        "range_low": f"{major}.{minor}",
        "range_high": high,
        "engine": engine,
        "engine_source": engine.split(" @ ", 1)[-1],
        "demo": " ".join(DEMO[name] for name in examples),
    }


def _files(tree: Path) -> list[Path]:
    return sorted(
        path for path in tree.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    )


def _copy(source: Path, folder: Path, tree: Path, values: dict[str, str]) -> Path:
    relative = source.relative_to(tree)
    name = RENAMED.get(relative.name, relative.name)
    if name.endswith(TEMPLATE):
        name = name[: -len(TEMPLATE)]
    target = folder / relative.parent / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.name.endswith(TEMPLATE):
        text = source.read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace(f"@{key}@", value)
        target.write_text(text, encoding="utf-8")
    else:
        shutil.copy2(source, target)
    return target.relative_to(folder)
