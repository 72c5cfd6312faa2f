"""Summaries of Monte-Carlo samples for the tidy tables: quantiles over trajectories and the
Wilson confidence interval of an estimated probability."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def quantiles(values: Tensor, levels: Sequence[float]) -> Tensor:
    """Quantiles over the last dimension (trajectories), one row per level: shape
    (len(levels), *values.shape[:-1]). NaNs (diverged trajectories) sort last, as +inf."""
    clean = torch.nan_to_num(values.to(torch.float64), nan=math.inf)
    q = torch.tensor(list(levels), dtype=torch.float64)
    return torch.quantile(clean, q, dim=-1)


def binomial_interval(
    successes: int, trials: int, z: float = 1.959963984540054
) -> tuple[float, float]:
    """Wilson score interval (95% for the default z) for a probability estimated as
    successes / trials; (nan, nan) without trials."""
    if trials <= 0:
        return math.nan, math.nan
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
