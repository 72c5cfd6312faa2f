"""Confidence intervals for a binomial proportion (the converging fraction of seeds in
``chatterjee_thm45``).

Clopper–Pearson ("exact"): the central interval obtained by inverting two one-sided binomial
tests, with Beta quantiles B(α/2; k, n − k + 1) and B(1 − α/2; k + 1, n − k); it never
undercovers, and stays informative at k = 0 or k = n, where the fractions of Theorem 4.5
typically sit. Wilson: the score interval, shorter and nearly exact on average.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

METHODS = ("clopper-pearson", "wilson")


def binomial_ci(
    successes: ArrayLike, trials: ArrayLike, *, level: float = 0.95, method: str = "clopper-pearson"
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided ``level`` confidence interval (low, high) for k successes out of n, vectorized."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n):
        raise ValueError("need 0 <= successes <= trials and trials >= 1")
    tail = (1.0 - level) / 2.0
    if method == "clopper-pearson":
        with np.errstate(invalid="ignore"):
            low = np.where(k > 0, stats.beta.ppf(tail, k, n - k + 1), 0.0)
            high = np.where(k < n, stats.beta.ppf(1.0 - tail, k + 1, n - k), 1.0)
        return low, high
    if method == "wilson":
        z = stats.norm.ppf(1.0 - tail)
        phat = k / n
        denom = 1.0 + z**2 / n
        centre = (phat + z**2 / (2 * n)) / denom
        half = z * np.sqrt(phat * (1 - phat) / n + z**2 / (4 * n**2)) / denom
        return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
