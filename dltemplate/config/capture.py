"""Record the constructor arguments of the objects that a run's getters build.

A getter's keyword arguments are only part of what shapes a run: the values written in its
body (`MulticlassAccuracy(num_classes=10, average="micro")`, `partial(ReduceLROnPlateau,
factor=0.5)`) and the defaults of the classes it calls count as much. While the root getters
run, `Capture` watches Python calls (`sys.setprofile`) and, for every object of a tracked kind
(torch `nn.Module` -- LightningModules and torchmetrics Metrics included --, `Dataset`,
`Optimizer`, `LRScheduler`, `LightningDataModule`, Lightning `Callback`), records the arguments
of its outermost `__init__` (the subclass's, whose frame holds every argument and default).
Objects built inside another tracked `__init__` (the layers of a model, the metric collection
of a task wrapper) are not recorded separately: the outer object's arguments determine them.

`Capture.describe(value)` turns a getter's result into YAML-safe data where each recorded
object is `{"_target_": "module.Class", <argument>: <value>, ...}`, nested as the objects were
passed to one another. Nothing in it is a module or a tensor.
"""

from __future__ import annotations

import copy
import inspect
import sys
from typing import Any

from dltemplate.config.values import to_record


def tracked_bases() -> tuple[type, ...]:
    """The kinds of objects whose constructor arguments are hyperparameters."""
    import torch
    from torch.utils.data import Dataset

    bases: list[type] = [
        torch.nn.Module,
        Dataset,
        torch.optim.Optimizer,
        torch.optim.lr_scheduler.LRScheduler,
    ]
    try:
        import lightning

        bases += [lightning.LightningDataModule, lightning.Callback]
    except ImportError:  # pragma: no cover - lightning is a dependency
        pass
    return tuple(bases)


class Capture:
    """While active (`with Capture() as capture:`), records tracked objects' `__init__` arguments.

    The previous profile function (a profiler, a debugger) is put back on exit; while the
    capture is active it is not called.
    """

    def __init__(self, bases: tuple[type, ...] | None = None) -> None:
        self.bases = bases if bases is not None else tracked_bases()
        self.records: dict[int, dict[str, Any]] = {}  # id(object) -> its record
        self.order: list[int] = []  # ids in the order the objects were built
        self._alive: list[Any] = []  # keeps recorded objects alive, so that ids stay unique
        self._active: list[Any] = []  # frames of tracked __init__ calls in progress
        self._nested: set[int] = set()  # ids of objects passed into another recorded object
        self._previous = None

    def __enter__(self) -> Capture:
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.setprofile(self._previous)
        self._active.clear()

    def _profile(self, frame, event: str, arg: Any) -> None:
        if event == "return":
            if self._active and frame is self._active[-1]:
                self._active.pop()
            return
        if event != "call" or self._active or frame.f_code.co_name != "__init__":
            return
        code = frame.f_code
        if code.co_argcount == 0:
            return
        try:  # an exception here would surface in the user's code
            obj = frame.f_locals.get(code.co_varnames[0])
            if obj is None or not isinstance(obj, self.bases) or id(obj) in self.records:
                return
        except Exception:
            return
        self._active.append(frame)
        try:
            record = self._arguments(type(obj), frame)
        except Exception as exc:  # describing must never break a build
            record = {"_target_": _qualified(type(obj)), "_error_": f"not recorded: {exc}"}
        self.records[id(obj)] = record
        self.order.append(id(obj))
        self._alive.append(obj)

    def _arguments(self, cls: type, frame) -> dict[str, Any]:
        """The arguments in an `__init__` frame at its start: exactly its parameters."""
        info = inspect.getargvalues(frame)
        record: dict[str, Any] = {"_target_": _qualified(cls)}
        for name in info.args[1:]:
            record[name] = self.describe(info.locals[name], self._nested)
        if info.varargs and info.locals.get(info.varargs):
            record["_args_"] = self.describe(list(info.locals[info.varargs]), self._nested)
        if info.keywords:
            for key, value in info.locals.get(info.keywords, {}).items():
                record[str(key)] = self.describe(value, self._nested)
        return record

    def describe(self, value: Any, _used: set[int] | None = None) -> Any:
        """`value` as YAML-safe data, recorded objects replaced by their records."""
        if id(value) in self.records:
            if _used is not None:
                _used.add(id(value))
            return copy.deepcopy(self.records[id(value)])  # no YAML aliases between copies
        if isinstance(value, dict):
            return {str(k): self.describe(v, _used) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.describe(v, _used) for v in value]
        return to_record(value)

    def describe_results(self, results: dict[str, Any]) -> dict[str, Any]:
        """Describe each root getter's result; objects that none of them holds go to `other`."""
        used: set[int] = set()
        described = {path: self.describe(value, used) for path, value in results.items()}
        other = [
            copy.deepcopy(self.records[i])
            for i in self.order
            if i not in used and i not in self._nested
        ]
        if other:
            described["other"] = other
        return described


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
