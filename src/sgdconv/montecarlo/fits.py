"""Least-squares rates of the An & Lu experiments: geometric (Theorem 3.1, (3.9)) and algebraic
(Lemma 4.2, (4.5)). Shared by the simulations (which store the fits) and the claims (which
recompute them from the stored step tables)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fit:
    """A straight-line fit ``log value = intercept + slope · t`` over the points with
    ``k_lo <= k <= k_hi`` (t = k for geometric fits, t = log k for algebraic ones).
    ``n_points`` < 3 means no fit (slope NaN)."""

    slope: float
    intercept: float
    k_lo: float
    k_hi: float
    n_points: int
    #: t = log k (algebraic) rather than t = k (geometric).
    log_time: bool = False

    @property
    def rate(self) -> float:
        """exp(slope): the fitted per-step factor of a geometric fit."""
        return math.exp(self.slope) if math.isfinite(self.slope) else math.nan

    def line(self, steps: np.ndarray) -> np.ndarray:
        """The fitted values at ``steps`` inside [k_lo, k_hi], NaN outside (for plotting)."""
        k = np.asarray(steps, dtype=float)
        inside = (k >= self.k_lo) & (k <= self.k_hi)
        t = np.log(np.where(k > 0, k, np.nan)) if self.log_time else k
        with np.errstate(invalid="ignore"):
            return np.where(inside, np.exp(self.intercept + self.slope * t), np.nan)


def _line(t: np.ndarray, v: np.ndarray, k: np.ndarray, log_time: bool) -> Fit:
    if len(t) < 3:
        return Fit(math.nan, math.nan, math.nan, math.nan, len(t), log_time)
    slope, intercept = (float(c) for c in np.polyfit(t, np.log(v), 1))
    return Fit(slope, intercept, float(k.min()), float(k.max()), len(t), log_time)


def geometric_fit(steps: np.ndarray, values: np.ndarray, floor: float = 0.0) -> Fit:
    """Fit values ≈ C r^k by least squares on log values, over the points with a finite value
    above ``floor`` (> 0): r = ``Fit.rate`` is the decay factor per step to compare with ρ of
    (3.2). Points where E[F 1_E] has dropped to 0 (every trajectory has left the ball) carry no
    rate and are left out."""
    k, v = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(v) & (v > max(floor, 0.0))
    return _line(k[keep], v[keep], k[keep], log_time=False)


def loglog_fit(steps: np.ndarray, values: np.ndarray, k_lo: float, k_hi: float = math.inf) -> Fit:
    """Fit values ≈ C k^slope by least squares of log values on log k over k_lo <= k <= k_hi
    (positive finite values only): the slope to compare with −q of Lemma 4.2."""
    k, v = np.asarray(steps, dtype=float), np.asarray(values, dtype=float)
    keep = (k >= max(k_lo, 1.0)) & (k <= k_hi) & np.isfinite(v) & (v > 0)
    return _line(np.log(k[keep]), v[keep], k[keep], log_time=True)
