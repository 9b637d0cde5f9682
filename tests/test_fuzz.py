"""Fuzzing the parsers users feed by hand: any input loads or gives the clear error, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dltemplate.config.values import check_value, parse_assignment
from dltemplate.errors import OverrideError, RegistryError
from dltemplate.registry.model import load_registry

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["description", "experiments", "runs", "config", "jobs", "overrides", "created", "x", "e", "r"]
)
TREES = st.recursive(SCALARS, lambda inner: st.dictionaries(KEYS, inner, max_size=4), max_leaves=20)
HINTS = [
    int,
    float,
    bool,
    str,
    int | None,
    list[int],
    tuple[int, int],
    Literal["a", "b"],
    list[str],
]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "proj.yaml").write_text(text)
        try:
            load_registry(folder)
        except RegistryError as exc:
            assert "proj.yaml" in str(exc)
            assert "\n" not in str(exc).strip()


@FUZZ
@given(st.text(max_size=300))
def test_registry_any_text(text: str) -> None:
    load_text(text)


@FUZZ
@given(TREES)
def test_registry_any_yaml_tree(tree) -> None:
    load_text(yaml.safe_dump(tree))


@FUZZ
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.fixed_dictionaries(
            {"description": SCALARS},
            optional={"runs": st.dictionaries(st.text(max_size=8), TREES, max_size=3)},
        ),
        max_size=3,
    )
)
def test_registry_near_valid_trees(experiments) -> None:
    load_text(yaml.safe_dump({"description": "P", "experiments": experiments}))


@FUZZ
@given(st.text(max_size=80))
def test_override_assignment_any_text(text: str) -> None:
    try:
        path, _ = parse_assignment(text)
    except OverrideError as exc:
        assert "path=value" in str(exc)
    else:
        assert path and "=" in text


@FUZZ
@given(VALUES, st.sampled_from(HINTS))
def test_override_values_any_type(value, hint) -> None:
    try:
        check_value(value, hint, "task_wrapper.x", "override from fuzz")
    except OverrideError as exc:
        assert "task_wrapper.x" in str(exc) and "expected" in str(exc)
