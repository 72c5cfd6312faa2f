"""Models by name, for run specs: ``build_model(name, **kwargs)``.

:data:`MODELS` maps names to ``"module:function"`` factories (imported on use, so naming a
small model never imports torchvision). Other modules extend it with :func:`register_model`;
a spec may also name any factory directly as ``"package.module:function"``, which works in
every process (a run launched by torchrun does not see in-process registrations).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

MODELS: dict[str, str | Callable[..., nn.Module]] = {
    "resnet101": "sgdconv.models.resnet:resnet101",
    "cifar_resnet18": "sgdconv.models.resnet:cifar_resnet18",
    "small_resnet": "sgdconv.models.resnet:small_resnet",
    "mlp": "sgdconv.models.resnet:mlp",
}


def register_model(name: str, factory: str | Callable[..., nn.Module]) -> None:
    """Add a model factory (a callable or ``"module:function"``) under ``name``."""
    if name in MODELS and MODELS[name] != factory:
        raise ValueError(f"model {name!r} is already registered")
    MODELS[name] = factory


def model_factory(name: str) -> Callable[..., nn.Module]:
    target = MODELS.get(name, name if ":" in name else None)
    if target is None:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    if callable(target):
        return target
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate model ``name`` (a key of :data:`MODELS` or ``"module:function"``)."""
    return model_factory(name)(**kwargs)
