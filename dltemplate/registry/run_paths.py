"""The files a run names (its config, its `ckpt:`) must lie inside the project and exist.

Checked when Snakemake or a command needs the run, so one broken run never stops the others.
Torch-free: it runs while Snakemake parses the workflow.
"""

from __future__ import annotations

import functools
import os
import posixpath

from dltemplate.errors import RegistryError
from dltemplate.layout import results_root
from dltemplate.registry.model import Run

# A config lies under configs/, or is the archived config of an earlier run (under the results
# root); a `ckpt:` lies under the results root or data/. The results root may lie elsewhere
# (`output_dir`, absolute on a scratch file system).
RESULTS_ROOT = "<results>"
CONFIG_FOLDERS = ("configs", RESULTS_ROOT)
CKPT_FOLDERS = (RESULTS_ROOT, "data")


def _under_results(path: str) -> bool:
    return _realpath(path).startswith(_realpath(results_root()) + os.sep)


def _realpath(path: str) -> str:
    """os.path.realpath, looked up once per path and working folder (a DAG of 1,000 runs
    asks for the same few folders and configs thousands of times)."""
    return _realpath_in(path, os.getcwd())


@functools.lru_cache(maxsize=4096)
def _realpath_in(path: str, cwd: str) -> str:
    return os.path.realpath(os.path.join(cwd, path))


@functools.lru_cache(maxsize=4096)
def _exists(path: str) -> bool:
    return os.path.exists(path)


def _inside(path: str, folders: tuple[str, ...]) -> bool:
    """Whether `path` stays under one of `folders` of the project root (relative paths only),
    or under the results root when `folders` names it."""
    if "\\" in path:
        return False
    if RESULTS_ROOT in folders and _under_results(path):
        return True
    if os.path.isabs(path):
        return False
    normal = posixpath.normpath(path)
    top = normal.split("/")[0]
    if top not in folders or normal == top:
        return False
    # A link inside data/ may point anywhere (datasets are linked in); configs and results
    # must really be the project's.
    return top == "data" or _realpath(normal).startswith(_realpath(top) + os.sep)


def check_config_path(config: str, where: str) -> str:
    """`config` as the registry stores it, or a RegistryError when it lies outside the
    project's configs/ (or an earlier run's archive): checked before anything is imported."""
    if not _inside(config, CONFIG_FOLDERS):
        raise RegistryError(
            f"{where}: config {config!r} must be a relative path under configs/ (or the "
            f"archived config of a run under {results_root()}/); copy or link the file into "
            "configs/ (a link must point inside the project)"
        )
    return config


def check_run_paths(run: Run) -> Run:
    """Return `run`, or raise a RegistryError naming the run, the key and what to do."""
    where = f"Registry {run.source}: run {run.key}"
    check_config_path(run.config, where)
    produced = _under_results(run.config)  # made by the declared run's fit
    if not produced and not _exists(run.config):
        raise RegistryError(
            f"{where}: config {run.config} does not exist; fix `config:` or create the file"
        )
    if run.ckpt is not None:
        check_ckpt_path(run.ckpt, where, "fix `ckpt:`")
    return run


def check_ckpt_path(ckpt: str, where: str, fix: str) -> str:
    """Return `ckpt`, a checkpoint that a run may test: under the results root or data/, and
    there; else a RegistryError that starts with `where` and ends with `fix`."""
    if not _inside(ckpt, CKPT_FOLDERS):
        raise RegistryError(
            f"{where}: ckpt {ckpt!r} must lie under {results_root()}/ or data/ "
            "(link an outside checkpoint into data/)"
        )
    if not _exists(ckpt):
        raise RegistryError(f"{where}: ckpt {ckpt} does not exist; {fix}")
    return ckpt
