"""Summaries of Monte-Carlo samples for the tidy tables: quantiles over trajectories (binomial
confidence intervals of estimated probabilities are
:func:`sgdconv.montecarlo.binomial.binomial_ci`)."""

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
