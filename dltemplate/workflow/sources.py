"""The local source files a config depends on, found by reading them (no import, no torch).

Snakemake calls `source_digests` for every job while it parses the workflow, so that an edit to
a run's config file, or to any local module the config imports, reruns that run's jobs (the
digests are a rule `params:` value; Snakemake reruns a job whose params changed). A digest is
of the file's content, so saving a file without changing it reruns nothing.

The scan follows `import x` and `from x import y` statements anywhere in a file (also inside
functions, which errs on the side of rerunning): relative imports, and absolute imports of a
package or module that lies in the project (beside `configs/`, e.g. `models/`, `wrappers/`,
`dataset_classes/`) or that Python finds outside the standard library and site-packages (an
editable install). The template's engine (`dltemplate`) and installed packages (torch, ...)
are not followed. Imports computed at run time (`importlib.import_module(name)`) are not seen.

Cost: sweeps parse thousands of jobs on every invocation, so each file is read and parsed once
per process and then only stat()ed: the cache is keyed by path, mtime and size.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# Top-level packages that are the template itself, not the experiment: never followed.
ENGINE_PACKAGES = frozenset({"dltemplate"})
DIGEST_CHARS = 12  # hex characters of sha256 kept per file: plenty to tell versions apart


@dataclass(frozen=True)
class _Scan:
    stamp: tuple[int, int]  # (mtime_ns, size) when scanned
    digest: str
    imports: tuple[tuple[str, int, tuple[str, ...]], ...]  # (module, level, imported names)


_SCANS: dict[Path, _Scan] = {}


def import_statements(tree: ast.AST) -> list[tuple[str, int, tuple[str, ...]]]:
    """(module, level, imported names) of every import statement anywhere in `tree` (function
    bodies included): the one scanner of what a config's files import (archives use it too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names if alias.name != "*")
            found.append((node.module or "", node.level, names))
    return found


def _scan(path: Path) -> _Scan:
    """Digest and imports of one file, from the cache while its mtime and size are unchanged."""
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _SCANS.get(path)
    if cached is not None and cached.stamp == stamp:
        return cached
    data = path.read_bytes()
    try:
        imports = tuple(import_statements(ast.parse(data, filename=str(path))))
    except (SyntaxError, ValueError):
        imports = ()  # the job reports the syntax error; the digest still tracks the content
    scan = _Scan(stamp, hashlib.sha256(data).hexdigest()[:DIGEST_CHARS], imports)
    _SCANS[path] = scan
    return scan


def package_root(path: Path) -> tuple[Path, list[str]]:
    """The import root of `path` and its dotted module name, as the config loader finds them."""
    parts = [] if path.name == "__init__.py" else [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, parts


_RESOLVED: dict[tuple[tuple[Path, ...], str], tuple[Path, ...]] = {}
_CLOSURES: dict[Path, tuple[tuple[tuple[Path, tuple[int, int]], ...], dict[str, str]]] = {}


def _installed_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(str(Path(p).resolve()) for p in found)


def _found_by_python(top: str) -> Path | None:
    """Where Python would import top-level package/module `top` from, when that is neither the
    standard library nor an installed distribution (an editable install of the project, say).
    Finding a top-level spec imports nothing."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.has_location:
        return None
    origin = Path(spec.origin).resolve()
    if str(origin).startswith(_installed_prefixes()) or origin.suffix != ".py":
        return None
    return origin.parent.parent if origin.name == "__init__.py" else origin.parent


def _walk(root: Path, parts: list[str]) -> list[Path]:
    files = []
    folder = root
    for i, part in enumerate(parts):
        package = folder / part / "__init__.py"
        if package.is_file():
            files.append(package)
            folder = folder / part
        elif i == len(parts) - 1 and (folder / f"{part}.py").is_file():
            files.append(folder / f"{part}.py")
        else:
            break
    return files


def _module_files(roots: tuple[Path, ...], dotted: str) -> tuple[Path, ...]:
    """The files that importing `dotted` executes when it is local: each package's __init__
    and the module itself; () for the engine and for standard or installed modules. Looks in
    the import roots first, then where Python finds the top-level name. Cached per process."""
    key = (roots, dotted)
    if key in _RESOLVED:
        return _RESOLVED[key]
    parts = dotted.split(".")
    files: list[Path] = []
    if parts[0] and parts[0] not in ENGINE_PACKAGES:
        for root in roots:
            files = _walk(root, parts)
            if files:
                break
        else:
            root = _found_by_python(parts[0])
            files = _walk(root, parts) if root is not None else []
    _RESOLVED[key] = tuple(files)
    return _RESOLVED[key]


def absolute_name(module: str, level: int, importer: list[str], is_package: bool) -> str | None:
    """The absolute name of a (possibly relative) import made by module `importer`."""
    if level == 0:
        return module
    package = importer if is_package else importer[:-1]
    if level - 1 > len(package):
        return None  # beyond the top package: Python raises ImportError, the job reports it
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _roots(start: Path) -> tuple[Path, ...]:
    root, _ = package_root(start)
    cwd = Path.cwd().resolve()
    return (root,) if cwd == root else (root, cwd)


def source_files(config_file: str | Path) -> list[Path]:
    """The config file and every local source file it imports, directly or not (resolved)."""
    start = Path(config_file).resolve()
    roots = _roots(start)
    root, name = package_root(start)
    seen: dict[Path, None] = {}
    todo = [start, *_walk(root, name[:-1])]  # importing a.b.c runs a/ and a/b/'s __init__
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen[path] = None
        _, name = package_root(path)
        is_package = path.name == "__init__.py"
        for module, level, names in _scan(path).imports:
            absolute = absolute_name(module, level, name, is_package)
            if absolute is None:
                continue
            todo += _module_files(roots, absolute)
            for imported in names:  # `from package import submodule`
                todo += _module_files(roots, f"{absolute}.{imported}" if absolute else imported)
    return sorted(seen)


def _display(path: Path) -> str:
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def source_digests(config_file: str | Path) -> dict[str, str]:
    """`{path: content digest}` of the config and the local modules it imports, sorted by path.

    Paths are relative to the working directory (the project root) when inside it. A config
    file that does not exist gives `{path: "missing"}`: the job then reports it. Within one
    process the result for a config is reused while none of its files changed mtime or size.
    """
    start = Path(config_file).resolve()
    if not start.is_file():
        return {str(config_file): "missing"}
    cached = _CLOSURES.get(start)
    if cached is not None and all(_stamp(p) == stamp for p, stamp in cached[0]):
        return dict(cached[1])
    files = source_files(start)
    digests = {_display(p): _scan(p).digest for p in files}
    _CLOSURES[start] = (tuple((p, _SCANS[p].stamp) for p in files), digests)
    return dict(digests)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def changed_sources(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """The paths whose digest differs between two `source_digests` results (added, removed,
    edited), for messages."""
    return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))


def clear_cache() -> None:
    """Forget every scan (tests; a long-lived process that wants to re-read everything)."""
    _SCANS.clear()
    _RESOLVED.clear()
    _CLOSURES.clear()


__all__ = ["ENGINE_PACKAGES", "changed_sources", "clear_cache", "source_digests", "source_files"]
