"""Micro-batches of the fixed sample S_m: unpacking, device placement, sizes and progress.

A micro-batch is a pair ``(inputs, targets)``; ``inputs`` is a tensor or a tuple/list of
tensors passed to the model as ``model(*inputs)``. All estimators of this package take the
sample as a re-iterable sequence of such pairs (a list, or a ``DataLoader`` without shuffling).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

Batch = tuple[Any, Any]
Progress = bool | Callable[[int], None]
LossFn = Callable[[Any, Any], Tensor]


def _to(x: Any, device: torch.device) -> Any:
    return x.to(device, non_blocking=True) if isinstance(x, Tensor) else x


def unpack(batch: Batch, device: torch.device) -> tuple[tuple[Any, ...], Any]:
    """``(inputs, targets)`` -> (tuple of model arguments, targets), moved to ``device``."""
    try:
        inputs, targets = batch
    except (TypeError, ValueError) as err:
        raise TypeError("each micro-batch must be a pair (inputs, targets)") from err
    args = tuple(inputs) if isinstance(inputs, tuple | list) else (inputs,)
    return tuple(_to(x, device) for x in args), _to(targets, device)


def batch_size(args: tuple[Any, ...], targets: Any) -> int:
    """Number of samples in a micro-batch: the leading dimension of the targets (else of the
    first input)."""
    for x in (targets, *args):
        if isinstance(x, Tensor) and x.dim() > 0:
            return int(x.shape[0])
    raise ValueError("cannot infer the micro-batch size: no tensor with a batch dimension")


def mean_loss(model: nn.Module, loss_fn: LossFn, args: tuple[Any, ...], targets: Any) -> Tensor:
    """``loss_fn(model(*args), targets)``, checked to be the scalar mean loss of the batch."""
    loss = loss_fn(model(*args), targets)
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        raise ValueError("loss_fn(output, target) must return the mean loss as a scalar tensor")
    return loss


def model_device(params: list[nn.Parameter]) -> torch.device:
    """The device of the model's (trainable) parameters; batches are moved there."""
    devices = {p.device for p in params}
    if len(devices) != 1:
        raise ValueError(f"parameters must live on one device, found {sorted(map(str, devices))}")
    return devices.pop()


def with_progress(
    items: Iterable[Any], progress: Progress, desc: str, total: int | None = None
) -> Iterator[Any]:
    """Iterate ``items``, reporting progress: ``True`` -> a tqdm bar on stderr (the rule log);
    a callable -> called with the number of items done after each one; ``False`` -> silent."""
    if progress is True:
        from tqdm.auto import tqdm

        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        yield from tqdm(items, desc=desc, total=total, file=sys.stderr, leave=False)
    elif callable(progress):
        for done, item in enumerate(items, start=1):
            yield item
            progress(done)
    else:
        yield from items
