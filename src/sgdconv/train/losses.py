"""Loss functions by name: the mean loss over a batch, ``loss_fn(output, target) -> scalar``.

``cross_entropy`` is the softmax cross-entropy of Zhang et al. eq. (9); ``mse`` the mean squared
error (1/n) Σ (f(x_i) − y_i)² of Chatterjee eq. (4.2) / An & Lu's F, with the output reshaped to
the target's shape (a network with one output and targets of shape (n,)).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

LossFn = Callable[[Tensor, Tensor], Tensor]


def mse_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean over examples of the squared error (summed over output dimensions)."""
    output = output.reshape(target.shape)
    diff = (output - target.to(output.dtype)) ** 2
    return diff.reshape(len(diff), -1).sum(dim=1).mean()


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(output, target)


LOSSES: dict[str, LossFn] = {"cross_entropy": cross_entropy, "mse": mse_loss}


def build_loss(name: str) -> LossFn:
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {sorted(LOSSES)}") from None


def accuracy(output: Tensor, target: Tensor) -> Tensor:
    """Fraction of correct top-1 predictions."""
    with torch.no_grad():
        return (output.argmax(dim=1) == target).float().mean()
