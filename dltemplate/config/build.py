"""Build a run's objects from its config, overrides and seed, recording every hyperparameter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltemplate.config.capture import Capture
from dltemplate.config.getters import Build, call_root_getter
from dltemplate.config.loader import load_root_config
from dltemplate.config.trainer_args import apply_trainer_overrides, settable_paths
from dltemplate.config.values import check_value
from dltemplate.contracts import check_wrappers
from dltemplate.errors import ConfigError, OverrideError, UserError
from dltemplate.records import portable_path


@dataclass
class BuiltRun:
    """The three parts of a job, and the hyperparameters that shaped them."""

    task_wrapper: Any
    data_wrapper: Any
    trainer_kwargs: dict[str, Any]
    hparams: dict[str, Any]
    build: Build


def resolve_seed(overrides: Mapping[str, Any], default_seed: int, source: str) -> int:
    if "seed" not in overrides:
        return default_seed
    seed = check_value(overrides["seed"], int, "seed", f"override seed from {source}")
    if not 0 <= seed < 2**32:
        raise OverrideError(
            f"Override seed={seed} from {source} is out of range: seeds run from 0 to "
            f"{2**32 - 1} (NumPy's)"
        )
    return seed


def build_run(
    config_file: str | Path,
    *,
    job: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    source: str = "overrides",
) -> BuiltRun:
    """Load `config_file`, seed everything, and call its root getters for `job`.

    The wrappers are checked against their contract (dltemplate.contracts): their Lightning
    classes, the kinds of their optional members and, for a `job`, the hooks it runs.

    `hparams` holds the seed, the resolved getter tree (every getter's keyword arguments, by
    dotted path) and, under `objects`, the constructor arguments of what the getters built
    (see `dltemplate.config.capture`). It is plain YAML-safe data.
    The config's own overrides (an archived config's) apply first; `overrides` win. Origins of
    values that come from the config's overrides read "archived".
    Raises a UserError (ConfigError, ContractError, OverrideError) for anything the user must fix.
    """
    root = load_root_config(config_file)  # a missing or broken file fails before torch loads
    import lightning

    archived = set(root.overrides) - set(overrides or {})
    overrides = {**root.overrides, **(overrides or {})}
    getters = root.getters()
    build = Build(overrides=overrides, source=source)
    seed = resolve_seed(overrides, seed, source)
    build.origins["seed"] = "override" if "seed" in overrides else "default"
    lightning.seed_everything(seed, workers=True, verbose=False)
    parts: dict[str, Any] = {}
    with Capture() as capture:
        for path, getter in getters.items():
            try:
                parts[path] = call_root_getter(build, path, getter)
            except UserError:
                raise
            except Exception as exc:
                raise ConfigError(_getter_failure(path, config_file, exc)) from exc
    trainer_path = next(p for p in getters if p.endswith("trainer"))
    trainer_kwargs = parts[trainer_path]
    if not isinstance(trainer_kwargs, Mapping):
        raise ConfigError(
            f"Config {config_file}: the {trainer_path} getter returned "
            f"{type(trainer_kwargs).__name__}; return a dict of lightning.Trainer arguments"
        )
    trainer_kwargs = apply_trainer_overrides(build, trainer_path, trainer_kwargs)
    parts[trainer_path] = trainer_kwargs  # the objects record shows what the Trainer gets
    build.check_consumed(config_file, also=settable_paths(trainer_path))
    for key in archived & set(build.origins):
        build.origins[key] = "archived"
    check_wrappers(config_file, parts["task_wrapper"], parts["data_wrapper"], job)
    hparams = {"seed": seed, **build.tree, "objects": capture.describe_results(parts)}
    return BuiltRun(
        task_wrapper=parts["task_wrapper"],
        data_wrapper=parts["data_wrapper"],
        trainer_kwargs=trainer_kwargs,
        hparams=hparams,
        build=build,
    )


def _getter_failure(path: str, config_file: str | Path, exc: BaseException) -> str:
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    here = str(Path(__file__).parent)
    user = [f for f in frames if not f.filename.startswith(here)]
    where = f" at {portable_path(user[-1].filename)}:{user[-1].lineno}" if user else ""
    return f"Config {config_file}: the {path} getter raised {type(exc).__name__}{where}: {exc}"


__all__ = ["BuiltRun", "OverrideError", "build_run", "resolve_seed"]
