"""Archive the config a run ran with, so that the run folder alone can reproduce it.

The archive holds the root config and every local module it uses: the config's package
(`configs`, its `components`) and the project's own code that those import (`models`,
`wrappers`, `dataset_classes`, any module that is neither the standard library, an installed
package nor `dltemplate` itself). The modules are found by following the import statements of
each module's source from the root config, plus every module of the config's package that the
build imported. Formats (`archive_format` in configs/workflow.yaml):

- `py` (default): one `archived_config.py` that embeds every module's source under its original
  name (see `dltemplate.config.embedded`). It is a config on its own: a run declared with
  `config: results/<proj>/<exp>/<run>/archived_config.py` runs without the original files.
  It also carries the archived run's overrides and seed, applied before the new run's own.
- `zip`: `archived_config.zip`, the modules in their folder layout plus `archive.json`.
- `folder`: `archived_config/`, the same layout and `archive.json` as plain files.

All three load as configs (`dltemplate.config.loader`), and archiving a run whose config was an
archive copies that archive's modules again.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import pprint
import shutil
import site
import sys
import sysconfig
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltemplate.config.embedded import EmbeddedLoader, ModuleSource
from dltemplate.errors import ConfigError, UserError
from dltemplate.layout import ARCHIVE_NAMES
from dltemplate.workflow import sources

ARCHIVE_FORMATS = tuple(ARCHIVE_NAMES)
MANIFEST = "archive.json"
TABLE_NAME = "MODULES"  # the module table of an archived_config.py
ROOT_NAME = "ROOT"
OVERRIDES_NAME = "OVERRIDES"


@dataclass
class Archive:
    """A root config module and the sources of every module it needs, by dotted name."""

    root: str
    modules: dict[str, ModuleSource] = field(default_factory=dict)
    origin: str = ""  # the config file it was made from, for the header
    overrides: dict[str, Any] = field(default_factory=dict)  # the run's, seed included

    def sorted_modules(self) -> list[ModuleSource]:
        return [self.modules[name] for name in sorted(self.modules)]


# --- finding the modules ----------------------------------------------------------------------


def _library_dirs() -> list[Path]:
    """Folders whose modules are not the project's: the standard library, site-packages, and
    the dltemplate engine."""
    import dltemplate

    paths = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        paths.add(site.getusersitepackages())
    paths.add(str(Path(dltemplate.__file__).parent))
    return [Path(p).resolve() for p in paths if p]


def _read_source(path: Path) -> str:
    with tokenize.open(path) as f:  # honours a coding cookie
        text = f.read()
    return text if text.endswith("\n") or not text else text + "\n"


class _Collector:
    def __init__(self, config_file: Path) -> None:
        self.import_root, parts = sources.package_root(config_file)
        self.root = ".".join(parts)
        self.top = self.root.split(".")[0]
        self.library = _library_dirs()
        self.modules: dict[str, ModuleSource] = {}
        self.outside: set[str] = set()  # names known not to be local

    def locate(self, name: str) -> ModuleSource | None:
        """The local module called `name`, or None when it is not local or not a module."""
        if name in self.modules:
            return self.modules[name]
        if name in self.outside or name.split(".")[0] in self.outside:
            return None
        if name.split(".")[0] == self.top:
            module = self._in_config_package(name)
        else:
            if "." in name and self.locate(name.split(".")[0]) is None:
                return None  # never look inside torch & co. (find_spec would import parents)
            module = self._found(name)
        if module is None:
            self.outside.add(name)
        return module

    def _in_config_package(self, name: str) -> ModuleSource | None:
        base = self.import_root.joinpath(*name.split("."))
        for path, is_package in ((base / "__init__.py", True), (base.with_suffix(".py"), False)):
            if path.is_file():
                return ModuleSource(name, is_package, _read_source(path), str(path))
        return None

    def _found(self, name: str) -> ModuleSource | None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError, AttributeError):
            return None
        if spec is None:
            return None
        if isinstance(spec.loader, EmbeddedLoader):  # loaded from an archive: that is its code
            return spec.loader.module
        if not spec.origin or not spec.origin.endswith(".py"):
            return None
        origin = Path(spec.origin).resolve()
        if any(origin.is_relative_to(lib) for lib in self.library):
            return None
        is_package = spec.submodule_search_locations is not None
        return ModuleSource(name, is_package, _read_source(origin), str(origin))

    def add(self, name: str) -> None:
        """Add module `name` with its parent packages and everything local that it imports."""
        pending = [name]
        while pending:
            current = pending.pop()
            if current in self.modules:
                continue
            module = self.locate(current)
            if module is None:
                continue
            self.modules[current] = module
            parts = current.split(".")
            pending += [".".join(parts[:i]) for i in range(1, len(parts))]
            pending += _imported_names(module)


def _imported_names(module: ModuleSource) -> list[str]:
    """Every module name that `module`'s import statements may refer to (anywhere in it,
    function bodies included); names that are attributes, not modules, are filtered later."""
    try:
        tree = ast.parse(module.source)
    except SyntaxError:
        return []
    importer = module.name.split(".")
    names: list[str] = []
    for imported, level, attributes in sources.import_statements(tree):
        base = sources.absolute_name(imported, level, importer, module.is_package)
        if base is None:
            continue
        names.append(base)
        names += [f"{base}.{name}" if base else name for name in attributes]
    return [n for n in names if n]


def collect(config_file: str | Path) -> Archive:
    """The archive of a config file: the file's modules, or, for an archive, its own (and its
    overrides)."""
    path = Path(config_file)
    if is_archive(path):
        return read_archive(path)
    path = path.resolve()
    collector = _Collector(path)
    collector.add(collector.root)
    # Modules of the config's package that the build imported dynamically (importlib calls).
    for name in list(sys.modules):
        if name.split(".")[0] == collector.top:
            file = getattr(sys.modules.get(name), "__file__", None)
            if file and Path(file).resolve().is_relative_to(collector.import_root):
                collector.add(name)
    return Archive(root=collector.root, modules=collector.modules, origin=str(config_file))


# --- writing ----------------------------------------------------------------------------------


def _literal(source: str) -> str | None:
    """`source` as a raw triple-quoted literal that starts on a new line, if one reads back
    exactly; None when the text holds both kinds of triple quotes."""
    for quote in ("'''", '"""'):
        if quote in source:
            continue
        literal = f"r{quote}\n{source}{quote}"
        try:
            if ast.literal_eval(literal) == "\n" + source:
                return literal
        except (SyntaxError, ValueError):
            continue
    return None


def render_py(archive: Archive) -> str:
    """The text of an `archived_config.py` (a valid config) for `archive`."""
    count = len(archive.modules)
    overrides = pprint.pformat(archive.overrides, sort_dicts=False, width=96)
    lines = [
        f'"""Archived config: {archive.origin} and the {count - 1} local modules it uses, as they',
        "were when the run was fitted, with the run's overrides and seed. Written by dltemplate.",
        "",
        "A config on its own: a run declared with `config: <this file>` reproduces the archived",
        "run (its own overrides still win); `python main.py hparams -c <this file>` shows it.",
        "The modules below are imported under their original names (configs..., models...,",
        "wrappers...) in place of the project's current files; line numbers in error messages",
        "are lines of this file.",
        '"""',
        "",
        "from dltemplate.config.embedded import archived_root_getter, install_table",
        "",
        f"{ROOT_NAME} = {archive.root!r}",
        "# applied before a new run's own overrides",
        f"{OVERRIDES_NAME} = {overrides}",
        "# module name: (is a package, line of this file where its source starts, source)",
        f"{TABLE_NAME} = {{",
    ]
    for module in archive.sorted_modules():
        literal = _literal(module.source)
        lines.append(f"    # {module.path}")
        if literal is None:  # both kinds of triple quotes: an escaped one-line literal
            lines.append(f"    {module.name!r}: ({module.is_package}, 0, {module.source!r}),")
            continue
        first_line = len(lines) + 2  # the source starts on the line after this one
        body = literal.split("\n")
        lines.append(f"    {module.name!r}: ({module.is_package}, {first_line}, {body[0]}")
        lines += body[1:-1]
        lines.append(f"{body[-1]}),")
    lines += [
        "}",
        "",
        "get_root_config_instance = archived_root_getter(",
        f"    install_table({ROOT_NAME}, {TABLE_NAME}, __file__), {OVERRIDES_NAME}",
        ")",
        "",
    ]
    return "\n".join(lines)


def _manifest(archive: Archive) -> str:
    data = {
        "root": archive.root,
        "config": archive.origin,
        "overrides": archive.overrides,
        "modules": {m.name: m.path for m in archive.sorted_modules()},
    }
    return json.dumps(data, indent=2, default=str) + "\n"


def _write_folder(archive: Archive, dest: Path) -> None:
    for module in archive.sorted_modules():
        target = dest / module.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(module.source)
    (dest / MANIFEST).write_text(_manifest(archive))


def _write_zip(archive: Archive, dest: Path) -> None:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for module in archive.sorted_modules():
            info = zipfile.ZipInfo(module.path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, module.source)
        zf.writestr(MANIFEST, _manifest(archive))


def archive_config(
    config_file: str | Path,
    run_dir: str | Path,
    archive_format: str = "py",
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Write the archive of `config_file` into `run_dir` in `archive_format`; return its path.

    `overrides` are the run's (as the build resolved them: an archived config's own, then the
    run's, and the seed); a run declared with the archive as its config applies them first.

    Archives of the other formats left there by an earlier fit are removed, so the folder
    holds one archive, the one of the last fit. Writing goes through a temporary name.
    """
    if archive_format not in ARCHIVE_FORMATS:
        raise UserError(
            f"archive_format {archive_format!r} (configs/workflow.yaml) is not one of "
            f"{', '.join(ARCHIVE_FORMATS)}"
        )
    archive = collect(config_file)
    if overrides is not None:
        archive.overrides = {str(k): v for k, v in overrides.items()}
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    dest = run_dir / ARCHIVE_NAMES[archive_format]
    tmp = dest.with_name(f".{dest.name}.tmp")
    _remove(tmp)
    if archive_format == "py":
        tmp.write_text(render_py(archive))
    elif archive_format == "zip":
        _write_zip(archive, tmp)
    else:
        _write_folder(archive, tmp)
    for name in ARCHIVE_NAMES.values():
        _remove(run_dir / name)
    tmp.rename(dest)
    return dest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# --- reading ----------------------------------------------------------------------------------


def is_archive(path: str | Path) -> bool:
    """Whether `path` is an archived config (any format) rather than an ordinary config file."""
    path = Path(path)
    if path.suffix == ".zip" or (path.is_dir() and (path / MANIFEST).is_file()):
        return True
    if path.suffix == ".py" and path.is_file():
        return _py_table(path) is not None
    return False


def _py_table(path: Path) -> tuple[str, dict, dict] | None:
    """ROOT, MODULES and OVERRIDES of an archived_config.py, read without running it."""
    try:
        tree = ast.parse(path.read_text())
    except (SyntaxError, UnicodeDecodeError):
        return None
    values = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in (ROOT_NAME, TABLE_NAME, OVERRIDES_NAME)
        ):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                return None
    if not {ROOT_NAME, TABLE_NAME} <= set(values):
        return None
    return values[ROOT_NAME], values[TABLE_NAME], values.get(OVERRIDES_NAME, {})


def read_archive(path: str | Path) -> Archive:
    """Read an archive of any format back (sources only; nothing is imported)."""
    path = Path(path)
    if path.suffix == ".py":
        table = _py_table(path)
        if table is None:
            raise ConfigError(f"{path} is not an archived config (no {ROOT_NAME}/{TABLE_NAME})")
        root, entries, overrides = table
        modules = {
            name: ModuleSource(name, is_pkg, src.removeprefix("\n"), str(path), first or 1)
            for name, (is_pkg, first, src) in entries.items()
        }
        return Archive(root=root, modules=modules, origin=str(path), overrides=overrides)
    if not path.exists():
        raise ConfigError(f"Archived config {path} does not exist")
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                manifest = json.loads(zf.read(MANIFEST))
                texts = {name: zf.read(file).decode() for name, file in manifest["modules"].items()}
        else:
            manifest = json.loads((path / MANIFEST).read_text())
            texts = {name: (path / file).read_text() for name, file in manifest["modules"].items()}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"Archived config {path} cannot be read: {exc}") from exc
    modules = {}
    for name, file in manifest["modules"].items():
        modules[name] = ModuleSource(
            name, file.endswith("__init__.py"), texts[name], str(path / file), 1
        )
    return Archive(
        root=manifest["root"],
        modules=modules,
        origin=str(path),
        overrides=manifest.get("overrides", {}),
    )
