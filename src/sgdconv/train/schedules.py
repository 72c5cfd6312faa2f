"""Learning-rate schedules as functions of the optimizer step.

Step k (0-based: the (k+1)-th update) belongs to epoch ``k // steps_per_epoch``. The schedules
of the papers: ``step`` (He et al. 2016, Zhang et al. Fig. 1: ÷10 every 30 epochs; Fig. 6: ÷10 at
epochs 100 and 150), ``constant`` (Fig. 2) and ``cosine`` (Fig. 3, Transformer-XL).
:class:`LRFactor` is the multiplier of the base lr that ``torch.optim.lr_scheduler.LambdaLR``
applies; it is a plain object so that the scheduler's state dict (saved in checkpoints and
loaded with ``weights_only=True``) holds only numbers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any


class LRFactor:
    """Multiplier of the base learning rate at step k (0-based)."""

    def __init__(
        self,
        name: str,
        steps_per_epoch: int,
        total_steps: int,
        milestones: Sequence[int] = (),
        gamma: float = 0.1,
        eta_min_factor: float = 0.0,
    ) -> None:
        if name not in ("constant", "step", "cosine"):
            raise ValueError(f"unknown schedule {name!r}")
        if steps_per_epoch < 1 or total_steps < 1:
            raise ValueError("steps_per_epoch and total_steps must be >= 1")
        self.name = name
        self.steps_per_epoch = int(steps_per_epoch)
        self.total_steps = int(total_steps)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        self.eta_min_factor = float(eta_min_factor)

    def __call__(self, k: int) -> float:
        if self.name == "constant":
            return 1.0
        if self.name == "step":
            epoch = k // self.steps_per_epoch
            return self.gamma ** sum(1 for m in self.milestones if epoch >= m)
        t = min(k, self.total_steps) / self.total_steps
        return self.eta_min_factor + (1 - self.eta_min_factor) * 0.5 * (1 + math.cos(math.pi * t))


def lr_factor(
    schedule: Mapping[str, Any], base_lr: float, steps_per_epoch: int, total_steps: int
) -> LRFactor:
    """The :class:`LRFactor` of a spec's ``schedule`` entry."""
    name = schedule["name"]
    return LRFactor(
        name,
        steps_per_epoch,
        total_steps,
        milestones=schedule.get("milestones", ()),
        gamma=schedule.get("gamma", 0.1),
        eta_min_factor=float(schedule.get("eta_min", 0.0)) / base_lr,
    )


def lr_at(
    schedule: Mapping[str, Any], base_lr: float, steps_per_epoch: int, total_steps: int, k: int
) -> float:
    """The learning rate of step k (0-based)."""
    return base_lr * lr_factor(schedule, base_lr, steps_per_epoch, total_steps)(k)


def phases(schedule: Mapping[str, Any], epochs: int) -> list[tuple[int, int]]:
    """The constant-lr phases of a schedule as half-open epoch ranges [start, end).

    ``step``: split at the milestones; ``constant``: one phase; ``cosine``: none is constant,
    so an empty list.
    """
    name = schedule["name"]
    if name == "constant":
        return [(0, epochs)]
    if name == "cosine":
        return []
    bounds = [0, *sorted(m for m in schedule.get("milestones", ()) if 0 < m < epochs), epochs]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
