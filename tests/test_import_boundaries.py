"""Layer 1: the package tree shows where code runs, and these checks keep it so.

- What Snakemake imports while it parses the workflow (registry/, workflow/, results/, and the
  leaves layout, records, errors) loads no torch, Lightning, matplotlib, pandas or Optuna.
- What a job's script imports before it hands its job to a warm server (dltemplate.jobs.steps,
  dltemplate.warm's client) loads none of those either: each costs every job's start.
- The engine never imports the example project (configs/, models/, dataset_classes/,
  wrappers/): the example imports the engine, and a user who deletes it keeps a working engine.
- No import cycles between dltemplate's modules.

Broken on purpose: `import torch` at the top of dltemplate/results/summary.py, or
`from wrappers import BasicTaskWrapper` in dltemplate/jobs/fit.py, fails these tests.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "dltemplate"
TORCH_FREE = ("registry", "workflow", "results")
TORCH_FREE_LEAVES = ("layout", "records", "errors")
HEAVY = ("torch", "lightning", "matplotlib", "pandas", "optuna")
EXAMPLE = ("configs", "models", "dataset_classes", "wrappers")
# What `dltemplate new` copies into a project (its files, the examples) is data, not the engine.
SCAFFOLD_DATA = (PACKAGE / "scaffold" / "project", PACKAGE / "scaffold" / "examples")
STEP_SCRIPTS = PACKAGE / "workflow" / "scripts"  # run by Snakemake, never imported


def engine_files(*, scripts: bool = True) -> list[Path]:
    """The engine's Python files: the package without the scaffold's data (and the step scripts
    unless `scripts`)."""
    skip = (*SCAFFOLD_DATA, *(() if scripts else (STEP_SCRIPTS,)))
    return sorted(p for p in PACKAGE.rglob("*.py") if not any(p.is_relative_to(s) for s in skip))


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(*folders: str) -> list[str]:
    files = engine_files(scripts=False)
    return sorted(module_name(p) for p in files if p.relative_to(PACKAGE).parts[0] in folders)


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of `path` names, anywhere in the file (also inside
    functions), resolved to absolute names."""
    found: set[str] = set()
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and package:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def heavy_imports_of(names: list[str]) -> str:
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_parse_time_modules_load_nothing_heavy() -> None:
    names = [*modules_of(*TORCH_FREE), *(f"dltemplate.{leaf}" for leaf in TORCH_FREE_LEAVES)]
    heavy = heavy_imports_of(names)
    assert heavy == "", f"imported at parse time: {heavy}"


def test_a_job_script_loads_nothing_heavy_before_its_hand_over() -> None:
    heavy = heavy_imports_of(["dltemplate.jobs.steps", *modules_of("warm")])
    assert heavy == "", f"a job's script imports {heavy} before its hand-over"


@pytest.mark.parametrize("path", engine_files(), ids=lambda p: module_name(p))
def test_the_engine_never_imports_the_example(path: Path) -> None:
    example = {m for m in imported_modules(path) if m.split(".")[0] in EXAMPLE}
    assert not example, f"{module_name(path)} imports the example project: {sorted(example)}"


def test_no_import_cycles_between_modules() -> None:
    modules = {module_name(p): p for p in engine_files(scripts=False)}
    edges = {
        name: {m for m in imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # packages import their modules' names only in docstrings: drop package -> own child edges
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(edges[name]):
            if state.get(other) == 1:
                cycle = [*trail[trail.index(other) :], other] if other in trail else [name, other]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if other not in state:
                visit(other, [*trail, other])
        state[name] = 2

    for name in sorted(modules):
        if name not in state:
            visit(name, [name])
