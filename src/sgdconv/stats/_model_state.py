"""Leave the model exactly as the caller handed it over.

The estimators run forward (and backward) passes on the caller's module. What those passes can
change, and how each is put back:

- parameters: never written (gradients come from ``torch.autograd.grad``, not ``.backward()``);
- ``.grad`` of every parameter: re-attached as found (same tensor object, or ``None``);
- buffers (BatchNorm running mean/var and ``num_batches_tracked`` in train mode, or any other
  buffer a forward updates): copied back in place, or re-attached if a forward replaced them;
- train/eval mode of every submodule: restored;
- the global RNG (dropout masks draw from it): forked, so the caller's random stream is intact.

State a module keeps in plain attributes (not buffers) is outside this guarantee.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """θ: the parameters with ``requires_grad=True`` (shared ones once), in ``parameters()``
    order. Frozen parameters are constants of the loss and are ignored by every statistic."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter with requires_grad=True")
    return params


@contextmanager
def preserved_model_state(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Run the body, then restore buffers, ``.grad``, module modes and the RNG (see module doc)."""
    buffers = [
        (module, name, buf, buf.detach().clone())
        for module in model.modules()
        for name, buf in module._buffers.items()
        if buf is not None
    ]
    modes = [(module, module.training) for module in model.modules()]
    grads = [(p, p.grad) for p in model.parameters()]
    rng_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices):
        try:
            yield
        finally:
            with torch.no_grad():
                for module, name, buf, saved in buffers:
                    module._buffers[name] = buf
                    buf.copy_(saved)
            for module, training in modes:
                module.training = training
            for p, grad in grads:
                p.grad = grad
