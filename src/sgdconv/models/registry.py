"""Models by name, for run specs: ``build_model(name, **kwargs)``.

:data:`MODELS` maps names to ``"module:function"`` factories (imported on use, so naming a
small model never imports torchvision). Other modules extend it with :func:`register_model`;
a spec may also name any factory directly as ``"package.module:function"``, which works in
every process (a run launched by torchrun does not see in-process registrations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from sgdconv.registry import resolve

MODELS: dict[str, str | Callable[..., nn.Module]] = {
    "resnet101": "sgdconv.models.resnet:resnet101",
    "cifar_resnet18": "sgdconv.models.resnet:cifar_resnet18",
    "small_resnet": "sgdconv.models.resnet:small_resnet",
    "mlp": "sgdconv.models.resnet:mlp",
    "transformer_xl": "sgdconv.models.transformer_xl:transformer_xl",
}


def register_model(name: str, factory: str | Callable[..., nn.Module]) -> None:
    """Add a model factory (a callable or ``"module:function"``) under ``name``."""
    if name in MODELS and MODELS[name] != factory:
        raise ValueError(f"model {name!r} is already registered")
    MODELS[name] = factory


def model_factory(name: str) -> Callable[..., nn.Module]:
    return resolve(MODELS, name, "model")


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate model ``name`` (a key of :data:`MODELS` or ``"module:function"``)."""
    return model_factory(name)(**kwargs)
