"""PyYAML's safe loader with YAML 1.2 floats, so `1e-3` is a number, as researchers write it.

PyYAML follows YAML 1.1, where a float needs a dot (`1.0e-3`) and `1e-3` is text; ruamel.yaml
(used to edit the registry) follows 1.2. Reading both the same way keeps the registry, `--set`
and the records in agreement.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# libyaml's parser when PyYAML has it (the same documents, errors at the same line and column
# in libyaml's words): ~6x faster, and Snakemake reads the registry at every start.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SafeLoader12(_SAFE_LOADER):
    """yaml.SafeLoader that also reads `1e-3`, `2E5`, `-1.5e+2` as floats, and refuses a
    mapping that repeats a key (plain YAML keeps the last one: a second run of the same name
    would silently replace the first)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep)


SafeLoader12.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def safe_load(text: str) -> Any:
    return yaml.load(text, Loader=SafeLoader12)


def error_where(exc: Exception, text: str) -> tuple[str, str]:
    """Where a YAML error is: `:LINE:COL`, and ` (look at lines A-B)` when the parser notices a
    mistake later than where it is.

    A repeated key or an unknown tag (a constructor error) is exactly where the mark says. A
    wrong indentation or a missing colon surfaces on the line after the mistake (line 7
    indented wrongly is reported at 8:8), and an unclosed quote at the end of what it
    swallowed: name the span from the culprit's candidate line to the reported one. PyYAML's
    errors and ruamel.yaml's carry the same marks.
    """
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return "", ""
    where = f":{mark.line + 1}:{mark.column + 1}"
    if isinstance(exc, yaml.constructor.ConstructorError):
        return where, ""
    context = getattr(exc, "context_mark", None)
    if context is not None and "scanning" in str(getattr(exc, "context", "")):
        first = context.line  # the token that never ended: a quote, a flow bracket
    else:
        lines = text.splitlines()
        first = mark.line - 1  # the last line before it with content
        while first > 0 and lines[first].strip()[:1] in ("", "#"):
            first -= 1
    first = max(0, min(first, mark.line))
    return where, f" (look at lines {first + 1}-{mark.line + 1})" if first < mark.line else ""
