"""Lightning's learning-rate finder on a run's config (`main.py lr-find`).

Trains for `steps` batches while the learning rate grows from `min_lr` to `max_lr`
(`lightning.pytorch.tuner.Tuner.lr_find`), then keeps the loss against the learning rate in
`debug/lr_find.png`, and the rates, losses and suggestion in `debug/lr_find.json`, beside the
run's own files and never in them (see dltemplate.jobs.debug). The suggestion is the rate where
the loss falls fastest; the getter parameter that sets the rate is the one named `lr` or
`learning_rate` (LR_NAMES) where the config sets its value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dltemplate.config.build import BuiltRun
from dltemplate.errors import ShapeError
from dltemplate.jobs.debug import debug_build, debug_trainer, in_debug_folder
from dltemplate.layout import RunLayout
from dltemplate.workflow.job_spec import JobSpec

LR_NAMES = ("lr", "learning_rate")


def learning_rate_path(built: BuiltRun) -> tuple[str, Any] | None:
    """The dotted path of the parameter that sets the learning rate, and its value; None when
    no getter parameter is named like one. A value passed on by the calling getter
    (`task_wrapper.classifier.lr`, origin `argument`) is set where it comes from
    (`task_wrapper.lr`): the shallowest path whose value is not passed on wins."""
    build = built.build
    paths = [p for p in build.types if p.rpartition(".")[2] in LR_NAMES]
    if not paths:
        return None
    own = [p for p in paths if build.origins.get(p) != "argument"] or paths
    path = min(own, key=lambda p: p.count("."))
    node: Any = build.tree
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return path, node


def _finite(values: list[float]) -> list[float | None]:
    """Plain floats for JSON; a diverged (NaN, infinite) loss becomes null."""
    return [float(v) if math.isfinite(float(v)) else None for v in values]


def draw(finder: Any, suggestion: float | None, lr: tuple[str, Any] | None, title: str, png: str):
    """The loss against the learning rate, with the suggestion and the config's rate marked."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    figure = finder.plot(suggest=suggestion is not None)
    axes = figure.axes[0]
    if suggestion is not None:
        axes.axvline(suggestion, color="red", linestyle=":", label=f"suggestion {suggestion:.3g}")
    if lr is not None and isinstance(lr[1], int | float) and lr[1] > 0:
        axes.axvline(lr[1], color="gray", linestyle="--", label=f"{lr[0]} = {lr[1]:g} now")
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    axes.set_title(title)
    figure.savefig(png, dpi=100, bbox_inches="tight")
    plt.close(figure)


def find_lr(built: BuiltRun, layout: RunLayout, config_file: str, search: Mapping[str, Any]):
    from lightning.pytorch.tuner import Tuner

    from dltemplate.jobs.checkpointing import safe_checkpoint_loading

    steps = int(search["num_training"])
    # At least one batch per epoch, so the search never runs out of epochs before its steps.
    trainer = debug_trainer(built, layout.debug_mode("lr_find"), {"max_epochs": steps})
    try:
        with safe_checkpoint_loading():  # Lightning reloads the weights it started from
            finder = Tuner(trainer).lr_find(
                built.task_wrapper, datamodule=built.data_wrapper, update_attr=False, **search
            )
    except ShapeError as exc:
        raise ShapeError(f"{config_file}: {exc}") from None
    suggestion = finder.suggestion() if finder is not None else None
    lr = learning_rate_path(built)
    title = f"{'/'.join(layout.names)}: loss against learning rate"
    draw(finder, suggestion, lr, title, layout.lr_find_plot)
    value = float(f"{suggestion:.3g}") if suggestion is not None else None
    return {
        "lrs": _finite(finder.results.get("lr", [])),
        "losses": _finite(finder.results.get("loss", [])),
        "suggestion": suggestion,
        "parameter": lr[0] if lr else None,
        "current": lr[1] if lr else None,
        "set": f"{lr[0]}={value!r}" if lr and value is not None else None,
        "search": dict(search),
        "plot": layout.lr_find_plot,
    }


def lr_find_run(
    spec: JobSpec, threads: int, *, min_lr: float = 1e-8, max_lr: float = 1.0, steps: int = 100
) -> dict[str, Any]:
    """Run the learning-rate finder on the run that `spec` describes (what its fit gets, with
    any --set overrides); returns what lr_find.json keeps."""
    layout = RunLayout.at(spec.run_dir)
    built = debug_build(("fit",), spec, threads)["fit"]
    for old in (layout.lr_find_plot, layout.lr_find_json):
        Path(old).unlink(missing_ok=True)
    search = {"min_lr": min_lr, "max_lr": max_lr, "num_training": steps}
    return in_debug_folder(
        layout,
        "lr_find",
        lambda: find_lr(built, layout, spec.config, search),
        summary_file=layout.lr_find_json,
    )
