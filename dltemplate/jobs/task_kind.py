"""What kind of task a run is: it picks the columns of `predictions.csv` and the test's plots.

In this order, the first that answers decides:

1. the task wrapper's `task_kind` attribute, when a getter sets one (`"classification"`,
   `"multilabel"` or `"regression"`: dltemplate.contracts checks it when the run is built);
2. the task wrapper's loss: `CrossEntropyLoss`/`NLLLoss` is classification,
   `BCEWithLogitsLoss`/`MultiLabelSoftMarginLoss` multi-label classification (the outputs are
   logits: a sigmoid per label), `MSELoss`/`L1Loss`/`HuberLoss`/`SmoothL1Loss` regression;
3. the data: class scores `[N, C]` (float, C > 1) with integer targets `[N]` are
   classification, integer targets of the outputs' shape multi-label, float targets of the
   outputs' shape regression; without targets, class scores are classification.

A kind whose shapes do not fit the batch (targets of another shape than a regression's
outputs, say) counts as none: the outputs are written as they are, and no task plot is drawn.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dltemplate.contracts import (
    CLASSIFICATION,
    MULTILABEL,
    REGRESSION,
    loss_function_of,
    split_batch_of,
    task_kind_of,
)

_LOSS_KINDS = (
    ((nn.CrossEntropyLoss, nn.NLLLoss), CLASSIFICATION),
    ((nn.BCEWithLogitsLoss, nn.MultiLabelSoftMarginLoss), MULTILABEL),
    ((nn.MSELoss, nn.L1Loss, nn.HuberLoss, nn.SmoothL1Loss), REGRESSION),
)


def batch_target(batch: Any, module: Any = None) -> torch.Tensor | None:
    """The targets of a batch, as the task wrapper splits it (its `split_batch`: tuples, dicts
    with a labels key, or the user's function; by default `(x, y, ...)`); None without one."""
    _, target = split_batch_of(module)(batch)
    return target if isinstance(target, torch.Tensor) else None


def declared_kind(module: Any) -> str | None:
    """The kind the task wrapper declares (`task_kind`) or its loss implies, else None."""
    declared = task_kind_of(module)
    if declared is not None:
        return declared
    loss = loss_function_of(module)
    for types, kind in _LOSS_KINDS:
        if isinstance(loss, types):
            return kind
    return None


def _scores(output: torch.Tensor) -> bool:
    return output.ndim == 2 and output.shape[1] > 1 and output.is_floating_point()


def _inferred(output: torch.Tensor, target: torch.Tensor | None) -> str | None:
    if target is None:
        return CLASSIFICATION if _scores(output) else None
    if target.ndim == 1 and not target.is_floating_point() and _scores(output):
        return CLASSIFICATION
    if target.shape == output.shape:
        return REGRESSION if target.is_floating_point() else MULTILABEL
    return None


def fits(kind: str | None, output: Any, target: torch.Tensor | None) -> bool:
    """Whether a batch's outputs (and targets, when given) have the shapes of `kind`."""
    if kind is None or not isinstance(output, torch.Tensor) or not output.is_floating_point():
        return False
    if output.ndim < 1 or (target is not None and len(target) != len(output)):
        return False
    if kind == CLASSIFICATION:
        labels_fit = target is None or (target.ndim == 1 and not target.is_floating_point())
        return _scores(output) and labels_fit
    if kind == MULTILABEL:
        return output.ndim == 2 and (target is None or target.shape == output.shape)
    return target is None or target.shape == output.shape  # regression


def task_kind(module: Any, output: Any, target: torch.Tensor | None) -> str | None:
    """The batch's kind (see the module's docstring), or None when none fits its shapes."""
    if not isinstance(output, torch.Tensor):
        return None
    kind = declared_kind(module) or _inferred(output, target)
    return kind if fits(kind, output, target) else None
