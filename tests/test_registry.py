"""Objects named "package.module:name", and registries of them."""

from __future__ import annotations

import math

import pytest

from sgdconv.registry import import_object, resolve


def test_import_object_and_resolve():
    assert import_object("math:sqrt") is math.sqrt
    registry = {"root": "math:sqrt", "direct": abs}
    assert resolve(registry, "root", "thing") is math.sqrt
    assert resolve(registry, "direct", "thing") is abs
    assert resolve(registry, "math:floor", "thing") is math.floor  # no entry needed


def test_unknown_names_say_what_is_known():
    with pytest.raises(KeyError, match="unknown thing 'nope'; known: \\['a'\\]"):
        resolve({"a": abs}, "nope", "thing")
    with pytest.raises(ValueError, match=r"package\.module:name"):
        import_object("math.sqrt")
