"""Names of projects, experiments and runs: safe in paths, shells and cluster submissions."""

from __future__ import annotations

import re

from dltemplate.layout import RESERVED_NAMES

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_NAME = re.compile(NAME_PATTERN)


def name_problem(name: object, kind: str = "") -> str | None:
    """Why `name` is not a valid name for a `kind` (project, experiment, run), or None."""
    if not isinstance(name, str):
        return (
            f"it must be a string, but YAML read an unquoted {type(name).__name__} "
            "(numbers, true/false, null): quote the key, e.g. '123': or 'true':"
        )
    if not name:
        return "it is empty"
    if len(name) > 64:
        return f"it has {len(name)} characters (at most 64)"
    if ".." in name:
        return "it contains '..'"
    if not _NAME.fullmatch(name):
        return (
            "it must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"
        )
    if name.lower() in {r.lower() for r in RESERVED_NAMES}:
        return f"{', '.join(RESERVED_NAMES)} are names of files that results/ keeps beside runs"
    return None


def check_name(kind: str, name: object, where: str = "") -> str:
    """Return `name` if valid, else raise a UserError that says what is allowed."""
    from dltemplate.errors import UserError

    problem = name_problem(name, kind)
    if not problem and kind in ("project", "experiment") and str(name).isdigit():
        problem = f"a plain number would read as an id (-p/-e take a {kind}'s id or name)"
    if problem:
        place = f" in {where}" if where else ""
        raise UserError(
            f"Invalid {kind} name {name!r}{place}: {problem}; names match {NAME_PATTERN} "
            "(no '/', '..', spaces, ',' or '=')"
        )
    return name
