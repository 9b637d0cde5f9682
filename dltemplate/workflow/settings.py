"""The workflow config (configs/workflow.yaml, and `--config key=value` on the command line),
validated against dltemplate/schemas/workflow.yaml when Snakemake parses the workflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dltemplate import schemas
from dltemplate.errors import UserError

SOURCE = "Workflow config (configs/workflow.yaml or --config)"


def check_workflow_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return `config`, or raise a UserError naming the key that is wrong and what is allowed."""
    errors = sorted(
        schemas.validator("workflow").iter_errors(dict(config)),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    if errors:
        error = errors[0]
        raise UserError(f"{SOURCE}: at {schemas.key_of(error)}: {schemas.message_of(error)}")
    return config
