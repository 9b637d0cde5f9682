"""The JSON schemas of what users write: the registry (`registry.yaml`) and the workflow
config (`workflow.yaml`), with the definitions they share (`common.yaml`).

Torch-free, read at parse time. `validator(name)` gives a jsonschema validator whose `$ref`s
between these files resolve by file name; messages name the key that is wrong.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

FOLDER = Path(__file__).parent


@functools.cache
def schema(name: str) -> dict[str, Any]:
    """The schema in `<name>.yaml` of this folder."""
    with open(FOLDER / f"{name}.yaml") as f:  # libyaml's loader when PyYAML has it: faster
        return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def validator(name: str, pointer: str = ""):
    """A Draft 2020-12 validator of `<name>.yaml` (or of the part at JSON `pointer` in it,
    e.g. "/$defs/resource_values")."""
    import jsonschema
    from referencing import Registry, Resource

    files = sorted(p.stem for p in FOLDER.glob("*.yaml"))
    registry = Registry().with_resources(
        (f"{stem}.yaml", Resource.from_contents(schema(stem))) for stem in files
    )
    root = {"$ref": f"{name}.yaml#{pointer}"} if pointer else schema(name)
    return jsonschema.Draft202012Validator(root, registry=registry)


def key_of(error) -> str:
    """The dotted key an error is about, as users write it (`experiments.e.runs.a.jobs`)."""
    parts = []
    for part in error.absolute_path:
        text = str(part)
        parts.append(text if text.isprintable() and text.strip() == text and text else repr(text))
    return ".".join(parts) or "(top level)"


def message_of(error) -> str:
    """The error's message, with what to do for unknown and missing keys; a schema's own
    `errorMessage` (what is wrong, after the value) replaces jsonschema's."""
    own = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
    if own:
        return f"{error.instance!r} {own}"
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"{error.message}; allowed keys: {allowed}"
    if error.validator == "required":
        return f"{error.message} (add it)"
    return error.message
