"""Load a config file as an ordinary module, with its getters made addressable.

A config is a package module under `configs/` (relative imports work), a standalone file, or
an archived config of an earlier run: an `archived_config.py` (an ordinary file that installs
its embedded modules), an `archived_config.zip` or an `archived_config/` folder (see
`dltemplate.config.archive` and `dltemplate.config.embedded`). Every module-level function named
`get_*` in a module loaded from the config's package is wrapped so that, while a run is being
built, calls to it apply overrides and record their arguments (see `dltemplate.config.build`).
Outside a build the wrapper calls straight through.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import sys
import traceback
from pathlib import Path
from types import ModuleType

from dltemplate.config import embedded
from dltemplate.config.getters import wrap_module_getters
from dltemplate.config.root import RootConfig
from dltemplate.errors import ConfigError
from dltemplate.records import portable_path
from dltemplate.workflow import sources

ROOT_GETTER = "get_root_config_instance"


def package_root(config_file: Path) -> tuple[Path, str]:
    """The folder to import from and the dotted module name of `config_file`:
    `configs/digits_cnn.py` is `configs.digits_cnn` imported from the project root, and a lone
    file is a top-level module (dltemplate.workflow.sources finds them the same way)."""
    folder, parts = sources.package_root(config_file)
    return folder, ".".join(parts)


class _GetterLoader(importlib.machinery.SourceFileLoader):
    """A source loader that wraps the module's `get_*` functions after running it."""

    def exec_module(self, module: ModuleType) -> None:
        super().exec_module(module)
        wrap_module_getters(module)


class _ConfigFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of one config package under its import root, with `_GetterLoader`."""

    def __init__(self, import_root: Path, top_package: str) -> None:
        self.import_root = import_root
        self.top_package = top_package

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] != self.top_package:
            return None
        base = self.import_root.joinpath(*fullname.split("."))
        if (base / "__init__.py").is_file():
            origin = base / "__init__.py"
            return importlib.util.spec_from_file_location(
                fullname,
                origin,
                loader=_GetterLoader(fullname, str(origin)),
                submodule_search_locations=[str(base)],
            )
        origin = base.with_suffix(".py")
        if origin.is_file():
            return importlib.util.spec_from_file_location(
                fullname, origin, loader=_GetterLoader(fullname, str(origin))
            )
        return None


def _forget_package(top_package: str) -> None:
    """Drop earlier loads of the config package so that edited files are read again, and any
    archived config's modules, so that the project's own files are imported again."""
    embedded.uninstall()
    for name in [n for n in sys.modules if n == top_package or n.startswith(top_package + ".")]:
        del sys.modules[name]
    sys.meta_path[:] = [
        f
        for f in sys.meta_path
        if not (isinstance(f, _ConfigFinder) and f.top_package == top_package)
    ]


def _where(exc: BaseException, config_file: Path) -> str:
    """`file:line` of the deepest frame in the config's folder tree, else of the config file."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{portable_path(exc.filename)}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    root = str(config_file.parent)
    inside = [f for f in frames if f.filename.startswith(root)]
    frame = (inside or frames or [None])[-1]
    return f"{portable_path(frame.filename)}:{frame.lineno}" if frame else str(config_file)


def load_config_module(config_file: str | Path) -> ModuleType:
    """Import a config file by path, freshly, with its getters wrapped."""
    path = Path(config_file).resolve()
    archive = path.suffix == ".zip" or path.is_dir()
    if not (path.is_file() or (archive and path.exists())):
        raise ConfigError(
            f"Config file {config_file} does not exist; give the path of a .py file under configs/ "
            "(or an archived_config.py of an earlier run)"
        )
    try:
        return _import_archive(path) if archive else _import_file(path)
    except ConfigError:
        raise
    except ImportError as exc:
        raise ConfigError(
            f"Config {config_file} failed to import at {_where(exc, path)}: {exc}; "
            "check the import (configs import their components relatively: `from .components...`)"
        ) from exc
    except SyntaxError as exc:
        raise ConfigError(
            f"Config {config_file} has a syntax error at {_where(exc, path)}: {exc.msg}"
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"Config {config_file} raised {type(exc).__name__} at {_where(exc, path)} while "
            f"loading: {exc}"
        ) from exc


def _import_file(path: Path) -> ModuleType:
    import_root, module_name = package_root(path)
    top_package = module_name.split(".")[0]
    _forget_package(top_package)
    sys.meta_path.insert(0, _ConfigFinder(import_root, top_package))
    return importlib.import_module(module_name)


def _import_archive(path: Path) -> ModuleType:
    """An archived config as a zip file or a folder: its modules from there, by name, and a
    module like an archived_config.py's, whose root getter carries the run's overrides."""
    from dltemplate.config.archive import read_archive

    archive = read_archive(path)
    _forget_package(archive.root.split(".")[0])
    root = embedded.install(archive.root, archive.modules)
    module = ModuleType(path.stem, f"The archived config {path}")
    module.__file__ = str(path)
    module.get_root_config_instance = embedded.archived_root_getter(root, archive.overrides)
    return module


def load_root_config(config_file: str | Path) -> RootConfig:
    """Load a config file and call its `get_root_config_instance()`."""
    module = load_config_module(config_file)
    root_getter = getattr(module, ROOT_GETTER, None)
    if not callable(root_getter):
        raise ConfigError(
            f"Config {config_file} has no function {ROOT_GETTER}(); define it and return a "
            "dltemplate.RootConfig(task_wrapper=..., data_wrapper=..., trainer=...)"
        )
    try:
        root = root_getter()
    except Exception as exc:
        line = inspect.getsourcelines(root_getter)[1]
        raise ConfigError(
            f"Config {config_file}:{line} {ROOT_GETTER}() raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(root, RootConfig):
        raise ConfigError(
            f"Config {config_file}: {ROOT_GETTER}() returned {type(root).__name__}; "
            "return a dltemplate.RootConfig"
        )
    return root
