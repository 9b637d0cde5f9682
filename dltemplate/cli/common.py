"""What several commands share: `--set path=value` overrides and the workflow settings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from dltemplate.errors import UserError

WORKFLOW_CONFIG = "configs/workflow.yaml"
SET_SOURCE = "--set on the command line"


def add_set_option(parser: argparse.ArgumentParser) -> None:
    """`--set PATH=VALUE`, repeatable, into `args.sets` (read them with `set_overrides`)."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="sets",
        metavar="PATH=VALUE",
        help="override a config value by its dotted path (repeatable), e.g. "
        "--set task_wrapper.lr=0.01 --set trainer.max_epochs=5; the value is read as YAML",
    )


def set_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The `--set` options as an overrides mapping (a path given twice is an error)."""
    from dltemplate.config.values import parse_assignments

    return parse_assignments(args.sets, SET_SOURCE)


def workflow_settings(path: str | Path = WORKFLOW_CONFIG) -> dict[str, Any]:
    """configs/workflow.yaml (the global seed, threads, archive format); {} when missing."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must be a mapping of settings (registry, seed, threads, ...)")
    return data
