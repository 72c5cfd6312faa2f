"""Objects named by strings: ``"package.module:function"``, imported on use.

Run specs, the data and model registries and the claims registry name their factories this
way, so that naming a small model never imports torchvision and checking the toy claims never
imports torch, and a process launched by torchrun can rebuild what the spec names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def import_object(target: str) -> Any:
    """The object ``"package.module:name"`` refers to."""
    module_name, sep, name = target.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"expected 'package.module:name', got {target!r}")
    return getattr(importlib.import_module(module_name), name)


def resolve(registry: Mapping[str, Any], name: str, kind: str) -> Callable[..., Any]:
    """Look ``name`` up in ``registry`` (an entry is a callable or a ``"module:function"``
    string); a name that is itself ``"module:function"`` needs no entry."""
    target = registry.get(name, name if ":" in name else None)
    if target is None:
        raise KeyError(f"unknown {kind} {name!r}; known: {sorted(registry)}")
    return target if callable(target) else import_object(target)
