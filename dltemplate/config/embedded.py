"""Import the modules of an archived config under their original names.

An archive (see `dltemplate.config.archive`) holds a root config and every local module it used --
`configs.components...`, `models...`, `wrappers...` -- as source text. `install` puts a finder
first on `sys.meta_path` that serves exactly those modules, under the names they had, so that
relative imports (`from .components.models.small_cnn import get_model`) and absolute ones
(`from models import SmallCNN`) resolve to the archived code, never to the project's current
files of the same name. importlib compiles and runs each module (`InspectLoader.exec_module`);
getters of the config's own package are wrapped as the ordinary loader does.

Code is compiled with the file name and line numbers it has inside the archive (an
`archived_config.py`'s own lines), so errors and tracebacks point at text a person can open.
One archive is installed at a time: installing another one, or loading an ordinary config,
first removes the earlier archive's modules (`uninstall`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from dltemplate.config.getters import wrap_module_getters


@dataclass(frozen=True)
class ModuleSource:
    """One archived module: its source, and where that source sits for messages."""

    name: str  # the module's original dotted name, e.g. "configs.components.models.mlp"
    is_package: bool
    source: str
    filename: str = ""  # what tracebacks show; a path inside the archive
    first_line: int = 1  # line of `filename` where the source's first line is

    @property
    def path(self) -> str:
        """The module's file under an import root: `a/b/__init__.py` or `a/b.py`."""
        parts = self.name.split(".")
        return "/".join(parts) + "/__init__.py" if self.is_package else "/".join(parts) + ".py"


class EmbeddedLoader(importlib.abc.InspectLoader):
    def __init__(self, finder: EmbeddedFinder, module: ModuleSource) -> None:
        self.finder = finder
        self.module = module

    def is_package(self, fullname: str) -> bool:
        return self.module.is_package

    def get_source(self, fullname: str) -> str:
        return self.module.source

    def get_code(self, fullname: str):
        # Blank lines in front keep the line numbers of the file that holds the source.
        padding = "\n" * (self.module.first_line - 1)
        return compile(
            padding + self.module.source, self.module.filename, "exec", dont_inherit=True
        )

    def exec_module(self, module: ModuleType) -> None:
        super().exec_module(module)
        if self.module.name.split(".")[0] in self.finder.getter_packages:
            wrap_module_getters(module)


class EmbeddedFinder(importlib.abc.MetaPathFinder):
    """Serves the modules of one archive, and nothing else."""

    def __init__(self, modules: Mapping[str, ModuleSource], getter_packages: set[str]) -> None:
        self.modules = dict(modules)
        self.getter_packages = getter_packages

    def find_spec(self, fullname, path=None, target=None):
        module = self.modules.get(fullname)
        if module is None:
            return None
        spec = importlib.machinery.ModuleSpec(
            fullname,
            EmbeddedLoader(self, module),
            origin=module.filename,
            is_package=module.is_package,
        )
        spec.has_location = True  # sets __file__, so tracebacks and inspect find the text
        return spec


def uninstall() -> None:
    """Remove any installed archive: its finder and the modules it served."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, EmbeddedFinder)]
    for name, module in list(sys.modules.items()):
        if isinstance(getattr(module, "__loader__", None), EmbeddedLoader):
            del sys.modules[name]


def install(root: str, modules: Mapping[str, ModuleSource]) -> ModuleType:
    """Make `modules` importable under their names, in place of any same-named ones, and
    import the root config module `root`."""
    uninstall()
    for name in modules:
        sys.modules.pop(name, None)  # the project's current module of that name, if loaded
    getter_packages = {root.split(".")[0]}
    sys.meta_path.insert(0, EmbeddedFinder(modules, getter_packages))
    importlib.invalidate_caches()
    return importlib.import_module(root)


def archived_root_getter(module: ModuleType, overrides: Mapping[str, Any]) -> Callable:
    """The archive's `get_root_config_instance`: the root config's own, carrying the overrides
    (seed included) of the run that was archived; a new run's overrides still win."""
    original = module.get_root_config_instance

    def get_root_config_instance():
        root = original()
        return dataclasses.replace(root, overrides={**root.overrides, **overrides})

    return get_root_config_instance


def install_table(root: str, table: Mapping[str, tuple], filename: str) -> ModuleType:
    """`install` for the table of an `archived_config.py`: name -> (is_package, first_line,
    source), with every source inside `filename` from `first_line` on."""
    modules = {
        name: ModuleSource(
            name=name,
            is_package=is_package,
            source=source.removeprefix("\n"),  # the text starts on the line after r'''
            filename=filename,
            first_line=first_line,
        )
        for name, (is_package, first_line, source) in table.items()
    }
    return install(root, modules)
