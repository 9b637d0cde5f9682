"""Override values: parsing `path=value`, checking against type hints, and recording."""

from __future__ import annotations

import collections.abc
import enum
import functools
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from dltemplate.errors import OverrideError


def parse_assignment(text: str, source: str = "the command line") -> tuple[str, Any]:
    """`'task_wrapper.lr=0.01'` -> `('task_wrapper.lr', 0.01)`; the value is read as YAML."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise OverrideError(
            f"Override {text!r} from {source} has no '='; write it as path=value, "
            "e.g. --set task_wrapper.lr=0.01"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not YAML: keep the text; the type check decides
    return path, value


def type_name(hint: Any) -> str:
    if hint is typing.Any or hint is inspect.Parameter.empty:
        return "any"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _is_optional(hint) -> tuple[bool, tuple]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return True, typing.get_args(hint)
    return False, ()


def check_value(value: Any, hint: Any, path: str, origin: str) -> Any:
    """Return `value` converted to `hint`, or raise an OverrideError naming the expected type."""
    try:
        return _convert(value, hint)
    except (TypeError, ValueError) as exc:
        raise OverrideError(
            f"Override {path}={value!r} ({origin}): expected {type_name(hint)}, "
            f"got {type(value).__name__}{f' ({exc})' if str(exc) else ''}"
        ) from None


def _convert(value: Any, hint: Any) -> Any:
    if hint is inspect.Parameter.empty or hint is typing.Any:
        return value
    is_union, members = _is_optional(hint)
    if is_union:
        if value is None and type(None) in members:
            return None
        for member in members:
            if member is type(None):
                continue
            try:
                return _convert(value, member)
            except (TypeError, ValueError):
                continue
        raise TypeError("")
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value in choices:
            return value
        raise ValueError(f"one of {list(choices)}")
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, list | tuple):
            raise TypeError("")
        args = typing.get_args(hint)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ValueError(f"{len(args)} items")
            items = [_convert(v, a) for v, a in zip(value, args, strict=True)]
        else:
            items = [_convert(v, args[0]) if args else v for v in value]
        return tuple(items) if origin is tuple else items
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError("")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError("")
    if hint is float:
        if isinstance(value, bool):
            raise TypeError("")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value)  # YAML 1.1 reads '1e-3' as text
        raise TypeError("")
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError("")
    if hint is Path:
        if isinstance(value, str):
            return Path(value)
        raise TypeError("")
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    raise TypeError(f"{type_name(hint)} cannot be set from the command line or registry")


def to_record(value: Any) -> Any:
    """A YAML-safe description of a value: scalars stay, objects become their type's name."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return to_record(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_record(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_record(v) for k, v in value.items()}
    if isinstance(value, functools.partial):
        target = f"{value.func.__module__}.{value.func.__qualname__}"
        return {"_target_": target, **{k: to_record(v) for k, v in value.keywords.items()}}
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
    return f"<{type(value).__module__}.{type(value).__qualname__}>"
