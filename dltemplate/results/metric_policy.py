"""Which way a metric is better, and which metric stands for a run: the one policy that the
summaries, the plots and `main.py ls` share.

A declared mode always wins: the registry's `metric_mode` for an experiment's metric, the trainer
config's `monitor_mode` for the metric that picks the best checkpoint (the fit records it in
fit.done). Without one, the metric's last name part decides: errors, losses, distances and
costs are minimised, everything else (accuracy, F1, AUROC, R2, BLEU ...) is maximised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MIN, MAX = "min", "max"
MODES = (MIN, MAX)

# Words that mark a metric whose lower values are better, matched against the words of the
# metric's last name part (`test/top1_err` -> top1, err; `val/error_rate` -> error, rate).
LOWER_IS_BETTER = frozenset(
    {
        "loss",
        "nll",
        "err",
        "error",
        "mse",
        "mae",
        "rmse",
        "msle",
        "mape",
        "smape",
        "perplexity",
        "ppl",
        "wer",
        "cer",
        "mer",
        "ter",
        "distance",
        "fid",
        "kid",
        "time",
        "seconds",
        "latency",
        "regret",
        "brier",
        "ece",
    }
)
# Words that mark a metric whose higher values are better beyond doubt (`known_direction`).
HIGHER_IS_BETTER = frozenset(
    {
        "acc",
        "accuracy",
        "auroc",
        "auc",
        "f1",
        "fbeta",
        "precision",
        "recall",
        "iou",
        "jaccard",
        "dice",
        "r2",
        "bleu",
        "rouge",
        "map",
        "psnr",
        "ssim",
        "top1",
        "top5",
        "kappa",
        "mcc",
        "spearman",
        "pearson",
        "explained",
    }
)
_WORDS = re.compile(r"[a-z]+[0-9]*")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def _words(metric: str) -> tuple[str, set[str]]:
    """The metric's last name part in lower case, and its words (`MeanSquaredError` -> mean,
    squared, error; `top1_err` -> top1, err)."""
    last = metric.rsplit("/", 1)[-1]
    last = _CAMEL.sub(r"\1_\2", last).lower()
    return last, set(_WORDS.findall(last))


def direction(metric: str, declared_mode: str | None = None) -> str:
    """ "min" or "max" for `metric`: `declared_mode` when given, else from the metric's name."""
    if declared_mode:
        if declared_mode not in MODES:
            raise ValueError(f"metric mode {declared_mode!r} is not one of {MODES}")
        return declared_mode
    last, words = _words(metric)
    return MIN if words & LOWER_IS_BETTER or last.endswith("loss") else MAX


def known_direction(metric: str) -> str | None:
    """ "min" or "max" when the metric's name leaves no doubt (a loss, an error, an accuracy, an
    F1 ...), else None: what a declared mode may be checked against."""
    last, words = _words(metric)
    lower, higher = (
        bool(words & LOWER_IS_BETTER or last.endswith("loss")),
        bool(words & HIGHER_IS_BETTER),
    )
    if lower == higher:
        return None
    return MIN if lower else MAX


def lower_is_better(metric: str, declared_mode: str | None = None) -> bool:
    return direction(metric, declared_mode) == MIN


def best(values: Iterable[float], metric: str, declared_mode: str | None = None) -> float | None:
    """The best of `values` for `metric` (None when there are none)."""
    present = list(values)
    if not present:
        return None
    return (min if lower_is_better(metric, declared_mode) else max)(present)


def default_metric(names: Iterable[str], stage: str = "test") -> str | None:
    """The metric that stands for a run when none is declared: the first `<stage>/` metric in
    name order other than the loss, else the loss, else None."""
    ours = sorted(n for n in names if n.startswith(f"{stage}/"))
    others = [n for n in ours if n != f"{stage}/loss"]
    return (others or ours or [None])[0]
