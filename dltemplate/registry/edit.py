"""Edits of the registry by the command line: comments kept, atomic, and locked.

The commands (`init`, `add-exp`, `add-run`, `exec`, `rm`) change `configs/projects/<proj>.yaml`
through this module only. Each edit holds an exclusive lock on `<registry>/.registry.lock` for
its read-modify-write, so two commands at once never lose an edit; reads the YAML with a
round-trip parser (ruamel.yaml), so the user's comments, order, quoting and indentation stay;
checks the result against the registry schema; and replaces the file atomically (temp file,
then rename), so Snakemake reading it meanwhile sees the old file or the new one, never half.

Cheap to import: no torch, and ruamel.yaml only when an edit happens.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from dltemplate.config.root import JOB_TYPES
from dltemplate.errors import RegistryError, UserError
from dltemplate.layout import DEFAULT_JOBS
from dltemplate.records import now, unwritable
from dltemplate.registry import ids
from dltemplate.registry.names import check_name
from dltemplate.registry.yaml12 import error_where

LOCK_NAME = ".registry.lock"

NEW_PROJECT_HEADER = """\
# Project {proj}, made by `main.py init`. Add experiments with `main.py add-exp`, runs with
# `main.py add-run`, or edit this file by hand: the commands keep your comments.
"""


def check_writable(paths: Sequence[Path]) -> None:
    """Refuse, before anything changes, a registry file or folder that this user cannot write
    (read-only, or immutable: `chattr +i` stops root too)."""
    refused = unwritable(paths)
    if refused:
        raise RegistryError(
            f"Registry {refused[0]} cannot be written: it is read-only or immutable; make it "
            f"writable (chmod u+w {refused[0]}, or chattr -i as root) and run the command "
            "again; nothing was changed"
        )


@contextlib.contextmanager
def registry_lock(folder: str | Path) -> Iterator[None]:
    """Hold the registry folder's exclusive lock (POSIX `lockf`, which NFS honours too)."""
    folder = Path(folder)
    check_writable([folder / LOCK_NAME, folder / ids.COUNTER_FILE])
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN)


def _yaml(text: str = ""):
    """A round-trip YAML instance that writes with the indentation `text` uses."""
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a user's long line
    indent, offset = 2, 0
    if text.strip():
        _, guessed, block_seq_indent = load_yaml_guess_indent(text)
        indent, offset = guessed or 2, block_seq_indent or 0
    yaml.indent(mapping=indent, sequence=indent + offset, offset=offset)
    return yaml


def _block_map(items: Mapping[str, Any] | None = None):
    from ruamel.yaml.comments import CommentedMap

    mapping = CommentedMap(items or {})
    mapping.fa.set_block_style()
    return mapping


def _flow_list(value: Any) -> Any:
    """Lists as `[1, 2]`: an override is one value, and reads best on one line."""
    from ruamel.yaml.comments import CommentedSeq

    if not isinstance(value, list | tuple):
        return value
    seq = CommentedSeq(_flow_list(v) for v in value)
    seq.fa.set_flow_style()
    return seq


def _quoted(text: str):
    # ISO timestamps must stay strings: PyYAML would read an unquoted one as a datetime.
    from ruamel.yaml.scalarstring import SingleQuotedScalarString

    return SingleQuotedScalarString(text)


def project_path(folder: str | Path, proj: str) -> Path:
    return Path(folder) / f"{proj}.yaml"


def _clash(kind: str, name: str, existing: Sequence[str], where: str) -> None:
    """Refuse `name` when `existing` holds it, or a name that differs only in case."""
    for other in existing:
        if other == name:
            raise RegistryError(f"The {kind} {where}{name} already exists; choose another name")
        if other.lower() == name.lower():
            raise RegistryError(
                f"The {kind} name {name!r} clashes with the existing {kind} {where}{other} "
                "(names must differ in more than case, for case-insensitive file systems); "
                "choose another name"
            )


def _existing_project(folder: Path, proj: str) -> Path:
    path = project_path(folder, proj)
    if path.is_file():
        return path
    known = sorted(p.stem for p in folder.glob("*.yaml"))
    close = [k for k in known if k.lower() == proj.lower()]
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(known) or 'none'}"
    raise RegistryError(f"No project {proj!r} in the registry {folder}{hint}")


def _mapping_child(parent, key: str, kind: str, where: str):
    if key in parent:
        return parent[key]
    close = [k for k in parent if str(k).lower() == key.lower()]
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(parent) or 'none'}"
    raise RegistryError(f"No {kind} {where}{key}{hint}")


def _write_project(path: Path, text: str) -> None:
    """Check `text` as project `path` would load, then rename it over `path` atomically."""
    try:
        _replace_checked(path, text)
    except OSError as exc:  # checked before the edit (check_writable); a full disk remains
        raise RegistryError(
            f"Registry {path} cannot be written: {exc.strerror}; it was left as it was"
        ) from None


def _replace_checked(path: Path, text: str) -> None:
    from dltemplate.registry.model import load_project

    scratch = Path(tempfile.mkdtemp(dir=path.parent, prefix=".edit-"))
    try:
        tmp = scratch / path.name  # same stem, so the project name checks out
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            load_project(tmp)
        except RegistryError as exc:  # a bug of ours, not the user's: keep the old file
            raise RegistryError(str(exc).replace(str(tmp), str(path))) from None
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Ids:
    """The registry's project files, round-trip, with every missing id assigned in file order
    (dltemplate.registry.ids): an edit writes those ids along with its own change, and only
    when the change succeeds. Used under the registry lock."""

    def __init__(self, folder: Path) -> None:
        from dltemplate.registry.model import parse_project

        self.folder = folder
        self.docs: dict[Path, tuple[Any, Any]] = {}
        self.broken: dict[Path, str] = {}
        for path in sorted(folder.glob("*.yaml")):
            text = path.read_text()
            try:  # first as Snakemake reads it, so that both say the same line
                parse_project(path, text)
                yaml = _yaml(text)
                data = yaml.load(text)
            except RegistryError as exc:
                self.broken[path] = str(exc)
                continue
            except Exception as exc:  # what the round-trip parser alone refuses (a tab)
                problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
                where, near = error_where(exc, text)
                self.broken[path] = (
                    f"Registry {path}{where} cannot be edited by main.py: ruamel.yaml, which "
                    f"keeps your comments, refuses it: {problem}{near} (Snakemake reads it); "
                    "fix the file by hand"
                )
                continue
            if isinstance(data, Mapping) and isinstance(data.get("experiments"), Mapping):
                self.docs[path] = (yaml, data)
        projects = [data for _, data in self.docs.values()]
        self.next_project_id, changed = ids.assign_ids(projects, ids.read_counter(folder))
        self.changed = {list(self.docs)[i] for i in changed}

    def data(self, path: Path) -> Any:
        if path in self.broken:
            raise RegistryError(self.broken[path])
        if path not in self.docs:
            raise RegistryError(
                f"Registry {path} has no `experiments:` mapping; fix the file by hand first"
            )
        return self.docs[path][1]

    def new_project_id(self) -> int:
        self.next_project_id += 1
        return self.next_project_id - 1

    def write(
        self, edited: Path | None = None, removed: Path | None = None, others: bool = True
    ) -> None:
        """Write the edited file, every other file that got ids (unless `others` is false),
        and the project counter."""
        changed = self.changed if others else set()
        paths = [
            path
            for path in sorted(changed | ({edited} if edited else set()))
            if path != removed and path in self.docs
        ]
        check_writable([*paths, *([removed] if removed else [])])
        for path in paths:
            yaml, data = self.docs[path]
            buffer = io.StringIO()
            yaml.dump(data, buffer)
            _write_project(path, buffer.getvalue())
        if removed is not None:
            removed.unlink()
        ids.write_counter(self.folder, self.next_project_id)


@contextlib.contextmanager
def edit_project(folder: str | Path, proj: str, write: bool = True) -> Iterator[Any]:
    """Lock the registry, load project `proj` round-trip (with its ids), yield it, and write
    it back (unless `write` is false: a check that the edit would succeed)."""
    folder = Path(folder)
    with registry_lock(folder):
        path = _existing_project(folder, proj)
        check_writable([path])
        registry = _Ids(folder)
        yield registry.data(path)
        if write:
            registry.write(edited=path)


def _description(kind: str, text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise UserError(f"The {kind} needs a description: say in a few words what it is for")
    return text


def create_project(
    folder: str | Path, proj: str, description: str, exp: str, exp_description: str
) -> Path:
    """Write a new project file with its first experiment; refuse an existing name."""
    check_name("project", proj)
    check_name("experiment", exp)
    description = _description(f"project {proj}", description)
    exp_description = _description(f"experiment {proj}/{exp}", exp_description)
    folder = Path(folder)
    with registry_lock(folder):
        _clash("project", proj, [p.stem for p in folder.glob("*.yaml")], "")
        registry = _Ids(folder)
        created = now()
        data = _block_map(
            {
                ids.ID: registry.new_project_id(),
                ids.NEXT_EXPERIMENT_ID: 2,
                "description": description,
                "created": _quoted(created),
            }
        )
        experiment = _block_map(
            {ids.ID: 1, "description": exp_description, "created": _quoted(created)}
        )
        data["experiments"] = _block_map({exp: experiment})
        buffer = io.StringIO(NEW_PROJECT_HEADER.format(proj=proj))
        buffer.seek(0, io.SEEK_END)
        _yaml().dump(data, buffer)
        path = project_path(folder, proj)
        _write_project(path, buffer.getvalue())
        registry.write(others=False)  # a new project touches no other project's file
    return path


def add_experiment(folder: str | Path, proj: str, exp: str, description: str) -> int:
    """Add experiment `exp` to project `proj`; returns its id."""
    check_name("experiment", exp)
    description = _description(f"experiment {proj}/{exp}", description)
    with edit_project(folder, proj) as data:
        experiments = data["experiments"]
        _clash("experiment", exp, list(experiments), f"{proj}/")
        if not experiments:
            experiments.fa.set_block_style()
        number = ids.new_experiment_id(data)
        experiments[exp] = _block_map(
            {ids.ID: number, "description": description, "created": _quoted(now())}
        )
    return number


def run_entry(
    description: str,
    config: str,
    jobs: Sequence[str] = DEFAULT_JOBS,
    overrides: Mapping[str, Any] | None = None,
    ckpt: str | None = None,
) -> dict[str, Any]:
    """A run's registry entry, as plain data (what `add_run` writes, less `created`)."""
    entry: dict[str, Any] = {"description": description, "config": config}
    if ckpt:
        entry["ckpt"] = ckpt
    entry["jobs"] = [j for j in JOB_TYPES if j in jobs]
    if overrides:
        entry["overrides"] = dict(overrides)
    return entry


def add_run(
    folder: str | Path,
    proj: str,
    exp: str,
    run: str,
    entry: Mapping[str, Any],
    check_only: bool = False,
) -> None:
    """Declare run `proj/exp/run` with `entry` (see `run_entry`); refuse an existing name.
    With `check_only`, check that it could be declared and write nothing."""
    from ruamel.yaml.comments import CommentedSeq

    check_name("run", run)
    description = _description(f"run {proj}/{exp}/{run}", entry.get("description", ""))
    with edit_project(folder, proj, write=not check_only) as data:
        experiment = _mapping_child(data["experiments"], exp, "experiment", f"{proj}/")
        if experiment.get("runs") is None:
            experiment["runs"] = _block_map()
        runs = experiment["runs"]
        _clash("run", run, list(runs), f"{proj}/{exp}/")
        if not runs:
            runs.fa.set_block_style()
        new = _block_map({"description": description, "config": entry["config"]})
        if entry.get("ckpt"):
            new["ckpt"] = entry["ckpt"]
        jobs = CommentedSeq(entry.get("jobs", DEFAULT_JOBS))
        jobs.fa.set_flow_style()  # jobs: [fit, test, predict], as the example writes it
        new["jobs"] = jobs
        if entry.get("overrides"):
            new["overrides"] = _block_map({k: _flow_list(v) for k, v in entry["overrides"].items()})
        new["created"] = _quoted(now())
        runs[run] = new


def remove(
    folder: str | Path,
    proj: str,
    exp: str | None = None,
    run: str | None = None,
    *,
    write: bool = True,
) -> None:
    """Remove a run, an experiment, or (with neither) the whole project file.

    With `write` false, only raise the error that the removal would (`rm` asks after that).
    """
    folder = Path(folder)
    if run is not None and exp is None:
        raise UserError("Removing a run needs its experiment: -p PROJ -e EXP -n RUN")
    if exp is None:
        with registry_lock(folder):
            path = _existing_project(folder, proj)
            if write:
                _Ids(folder).write(removed=path)  # its id stays taken
        return
    with edit_project(folder, proj, write=write) as data:
        experiments = data["experiments"]
        _mapping_child(experiments, exp, "experiment", f"{proj}/")
        if run is None:
            del experiments[exp]
            return
        runs = experiments[exp].get("runs") or {}
        if run not in runs and "sweep" in experiments[exp]:
            _refuse_sweep_run(project_path(folder, proj), proj, exp, run)
        _mapping_child(runs, run, "run", f"{proj}/{exp}/")
        del runs[run]


def _refuse_sweep_run(path: Path, proj: str, exp: str, run: str) -> None:
    """A run that experiment `exp`'s `sweep:` generates has no entry of its own to remove."""
    from dltemplate.registry.model import load_project

    if run in load_project(path).experiments[exp].runs:
        raise UserError(
            f"Run {proj}/{exp}/{run} is generated by the sweep of experiment {exp} in {path}; "
            f"to drop it, edit the values of experiments.{exp}.sweep there (grid, list, random, "
            f"seeds), or remove the whole experiment: main.py rm -p {proj} -e {exp}"
        )
