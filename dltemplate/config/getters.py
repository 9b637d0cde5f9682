"""Getters: the config functions whose keyword arguments are a run's hyperparameters.

While a run is built (`build_context` is active), a wrapped getter finds its dotted path (the
root getters are `task_wrapper`, `data_wrapper` and `trainer`; a getter called inside another
adds its name without `get_`, so `get_model` inside the task-wrapper getter is
`task_wrapper.model`), applies the overrides aimed at its parameters, and records every
argument it ran with. Outside a build it is the plain function.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import inspect
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from dltemplate.config.values import check_value, to_record, type_name
from dltemplate.errors import ConfigError, OverrideError
from dltemplate.records import portable_path

ROOT_GETTER = "get_root_config_instance"


@dataclass
class Build:
    """What one build of a run resolves: overrides in, the recorded tree out."""

    overrides: Mapping[str, Any]
    source: str = "overrides"  # where the overrides came from, for messages
    tree: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(
        default_factory=dict
    )  # path -> "default" | "override" | "argument"
    types: dict[str, str] = field(default_factory=dict)
    getters: dict[str, str] = field(default_factory=dict)  # path -> "file:line name()"
    consumed: set[str] = field(default_factory=set)
    _stack: list[tuple[str, dict[str, Any], dict[str, int]]] = field(default_factory=list)

    def call(self, fn, args: tuple, kwargs: dict, root_path: str | None = None):
        if args:
            raise ConfigError(
                f"{_where(fn)} {fn.__name__}() was called with positional arguments; "
                "call getters with keyword arguments"
            )
        if root_path is not None:
            path, node = root_path, self.tree.setdefault(root_path, {})
        else:
            if not self._stack:
                return fn(**kwargs)
            parent_path, parent_node, counts = self._stack[-1]
            segment = fn.__name__.removeprefix("get_")
            counts[segment] = counts.get(segment, 0) + 1
            if counts[segment] > 1:
                segment = f"{segment}_{counts[segment]}"
            path = f"{parent_path}.{segment}"
            node = parent_node.setdefault(segment, {})
        self.getters[path] = f"{_where(fn)} {fn.__name__}()"
        hints = _type_hints(fn)
        bound = dict(kwargs)
        for name, param in inspect.signature(fn).parameters.items():
            key = f"{path}.{name}"
            hint = hints.get(name, param.annotation)
            self.types[key] = type_name(hint)
            if hint is inspect.Parameter.empty and param.default not in (
                inspect.Parameter.empty,
                None,
            ):  # no type hint: the default's type, so `--set` cannot pass text for a number
                hint = type(param.default)
                self.types[key] = f"{type_name(hint)} (from its default)"
            if key in self.overrides:
                bound[name] = check_value(self.overrides[key], hint, key, self._origin_text(key))
                self.consumed.add(key)
                self.origins[key] = "override"
            elif name in kwargs:
                self.origins[key] = "argument"
            elif param.default is not inspect.Parameter.empty:
                bound[name] = param.default
                self.origins[key] = "default"
            if name in bound:
                node[name] = to_record(bound[name])
        self._stack.append((path, node, {}))
        try:
            return fn(**bound)
        finally:
            self._stack.pop()

    def _origin_text(self, key: str) -> str:
        return f"override {key} from {self.source}"

    def check_consumed(self, config_file: str | Path, also: Iterable[str] = ()) -> None:
        """Fail on overrides that no getter of this build took, with the closest valid paths
        (among the getters' parameters and `also`)."""
        for key in self.overrides:
            if key in self.consumed or key == "seed":
                continue
            candidates = list(dict.fromkeys([*self.types, *also]))
            close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise OverrideError(
                f"Unknown override path {key!r} (from {self.source}) for config "
                f"{config_file}{hint}; "
                "`main.py hparams -c CONFIG` lists the valid paths"
            )


_CURRENT: contextvars.ContextVar[Build | None] = contextvars.ContextVar("dlt_build", default=None)


@contextlib.contextmanager
def build_context(build: Build) -> Iterator[Build]:
    """Make getter calls inside the block resolve overrides and record into `build`."""
    token = _CURRENT.set(build)
    try:
        yield build
    finally:
        _CURRENT.reset(token)


def call_root_getter(build: Build, path: str, getter):
    """Call a root getter (from RootConfig) at its fixed path inside `build`."""
    target = getattr(getter, "__wrapped__", getter)
    _check_keyword_only(target)
    with build_context(build):
        return build.call(target, (), {}, root_path=path)


def _where(fn) -> str:
    try:
        return f"{portable_path(inspect.getsourcefile(fn))}:{inspect.getsourcelines(fn)[1]}"
    except (OSError, TypeError):
        return fn.__qualname__


def _type_hints(fn) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=False)
    except Exception as exc:  # an annotation that names something undefined
        raise ConfigError(
            f"{_where(fn)} {fn.__name__}(): cannot resolve its type hints: {exc}"
        ) from exc


def _check_keyword_only(fn) -> None:
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD, param.VAR_POSITIONAL):
            raise ConfigError(
                f"{_where(fn)} getter {fn.__name__}() has positional parameter {name!r}; "
                "make getter parameters keyword-only by starting the list with `*,`"
            )


def wrap_getter(fn):
    """Wrap one getter so that calls inside a build resolve overrides and record arguments."""
    _check_keyword_only(fn)

    @functools.wraps(fn)
    def getter(*args, **kwargs):
        build = _CURRENT.get()
        if build is None:
            return fn(*args, **kwargs)
        return build.call(fn, args, kwargs)

    getter.__dlt_getter__ = True
    return getter


def wrap_module_getters(module: ModuleType) -> None:
    """Wrap the `get_*` functions defined in `module` (not those it imported)."""
    for name, value in list(vars(module).items()):
        if (
            name.startswith("get_")
            and name != ROOT_GETTER
            and inspect.isfunction(value)
            and value.__module__ == module.__name__
            and not getattr(value, "__dlt_getter__", False)
        ):
            setattr(module, name, wrap_getter(value))
