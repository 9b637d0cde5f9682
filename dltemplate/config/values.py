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
from dltemplate.registry.yaml12 import safe_load


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
        value = safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw  # not YAML: keep the text; the type check decides
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise OverrideError(
            f"Override {path} from {source} cannot be read ({str(exc).split(';')[0]}); give a "
            "shorter number"
        ) from None
    return path, value


def parse_assignments(texts: list[str] | tuple[str, ...], source: str) -> dict[str, Any]:
    """Several `path=value` texts as an overrides mapping; a path given twice is an error."""
    overrides: dict[str, Any] = {}
    for text in texts:
        path, value = parse_assignment(text, source)
        if path in overrides:
            raise OverrideError(
                f"Override {path} is given twice ({source}): {overrides[path]!r} and {value!r}; "
                "keep one"
            )
        overrides[path] = value
    return overrides


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
            f"got {type(value).__name__}{f' ({exc})' if str(exc) else ''}{_hint(value, hint, path)}"
        ) from None


def _hint(value: Any, hint: Any, path: str) -> str:
    """What to write instead, when a number was read where text is expected."""
    if hint is str and type(value) in (int, float):
        return f"; a value read as text is quoted: --set '{path}=\"{value}\"' (in YAML: '{value}')"
    return ""


def _convert(value: Any, hint: Any) -> Any:
    if hint is inspect.Parameter.empty or hint is typing.Any:
        return value
    is_union, members = _is_optional(hint)
    if is_union:
        if value is None and type(None) in members:
            return None
        if type(value) in members:  # `float | int` keeps an int an int
            return value
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
            return float(value)  # text such as '0.5' quoted in YAML
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
    """A YAML-safe description of a value: scalars stay, containers recurse, a
    `functools.partial` becomes `{"_target_": ..., <every keyword, defaults included>}`, a class
    or function its dotted name, a small tensor or array its values, other objects `<type>`."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return to_record(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_record(v) for v in items]
    if isinstance(value, dict):
        return {str(k): to_record(v) for k, v in value.items()}
    if isinstance(value, functools.partial):
        return partial_record(value)
    if isinstance(value, type) or inspect.isroutine(value):
        return qualified_name(value)
    if hasattr(value, "tolist") and hasattr(value, "shape"):  # a tensor, array or NumPy scalar
        return _array_record(value)
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def qualified_name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}.{getattr(obj, '__qualname__', repr(obj))}"


def partial_record(value: functools.partial) -> dict[str, Any]:
    """`partial(AdamW, lr=1e-3)` -> `{"_target_": "torch.optim.adamw.AdamW", "lr": 0.001,
    "betas": [0.9, 0.999], ...}`: the keywords given, then the target's other defaults, which
    shape the object as much (the positional parameters the caller fills in are left out)."""
    record: dict[str, Any] = {"_target_": qualified_name(value.func)}
    if value.args:
        record["_args_"] = to_record(list(value.args))
    record.update({k: to_record(v) for k, v in value.keywords.items()})
    try:
        parameters = inspect.signature(value.func).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return record
    for param in list(parameters)[len(value.args) :]:
        if param.name not in record and param.default is not inspect.Parameter.empty:
            record[param.name] = to_record(param.default)
    return record


def _array_record(value: Any) -> Any:
    size = getattr(value, "size", None)
    numel = value.numel() if hasattr(value, "numel") else size
    if isinstance(numel, int) and numel <= 64:
        return to_record(value.tolist())
    shape = [int(n) for n in value.shape]
    return f"<{type(value).__module__}.{type(value).__qualname__} shape={shape}>"
