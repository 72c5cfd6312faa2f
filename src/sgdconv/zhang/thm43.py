"""Theorem 4.3 of Zhang et al.: the time-averaged one-step change of the loss along SGD,

    A_n = E_{θ∼μ_n}[L_S(θ) − L_S(F(θ))],     μ_n = (1/n) Σ_{t=1}^{n} δ_{θ_t},

with F a *fresh, independent* SGD step from θ, is O(log(1/δ)/√n) with probability 1 − δ.

What this module estimates, and what it does not. With F the update SGD actually took, the
average telescopes: (1/n) Σ_t [L(θ_t) − L(θ_{t+1})] = (L(θ_1) − L(θ_{n+1}))/n, which decays like
1/n for *any* bounded loss and so tests nothing (``realized``, kept as a reference only). The
theorem's content is the other term of its proof (App. B): the one-step change under an
independent step, D(θ) = L_S(θ) − E_F L_S(F(θ)). The statistics jobs estimate D at every
checkpoint from several independent SGD steps from the checkpoint's state (momentum buffers,
learning rate, weight decay; column ``one_step_change`` with its standard error over the draws),
and :func:`time_average_change` averages it over the checkpoints 0 < step <= n (μ_n sampled at
the checkpoints). :func:`slope_interval` fits log |A_n| against log n and gives a parametric
bootstrap interval of the slope over the estimation error of the D's; the claim decides "slope
<= −0.4" only when the whole interval is on one side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


def between_state_sd(change: np.ndarray, se: np.ndarray) -> float:
    """The spread of the one-step change D(θ_t) from one checkpoint's state to the next,
    beyond the draws' own error: √max(s² − mean se², 0) with s a robust scale of the successive
    differences, s² = mean of the smallest 90% of (D̂_{k+1} − D̂_k)² / 2 (a trimmed von
    Neumann estimate: an isolated transient, such as the first epochs' descent, does not inflate
    it; a slow trend cancels in the differences).

    The running mean over K checkpoints estimates the time average over *all* iterates with an
    error of about this spread / √K: a checkpoint is one draw of the iterate's state (for
    heavy-ball SGD, its oscillation phase), and D varies with it far more than the telescoping
    average over consecutive iterates does.
    """
    d = np.asarray(change, dtype=float)
    keep = np.isfinite(d)
    d, se = d[keep], np.nan_to_num(np.asarray(se, dtype=float)[keep])
    if len(d) < 3:
        return math.nan
    squares = np.sort(np.diff(d) ** 2)
    kept = squares[: max(1, math.ceil(0.9 * len(squares)))]
    return math.sqrt(max(float(kept.mean()) / 2 - float(np.mean(se**2)), 0.0))


def time_average_change(stats: pd.DataFrame) -> pd.DataFrame:
    """A_n at every checkpoint n of a run (module docstring).

    Columns: ``n`` (the checkpoint's step), ``epoch``, ``change`` and ``change_se`` (D̂ at
    the checkpoint and its standard error over the draws), ``between_sd`` (the run's
    :func:`between_state_sd`); ``independent`` = the mean of ``one_step_change`` over the
    checkpoints 0 < step <= n where it is finite, and ``independent_se`` = √(Σ (se² +
    between_sd²)) / count, its error as an estimate of the time average over all iterates;
    ``count``; ``realized`` = (L_S(θ_0) − L_S(θ_n)) / n (the telescoping reference, ``loss`` on
    the run's fixed sample).
    """
    rows = stats.sort_values("step")
    first = rows[rows["step"] == 0]
    if first.empty:
        raise ValueError("the stats table has no step-0 row")
    l0 = float(first["loss"].iloc[0])
    later = rows[rows["step"] > 0]
    d = later["one_step_change"].to_numpy(dtype=float)
    se = later.get("one_step_change_se", pd.Series(np.nan, index=later.index)).to_numpy(float)
    between = between_state_sd(d, se)
    finite = np.isfinite(d)
    counts = np.cumsum(finite)
    sums = np.cumsum(np.where(finite, d, 0.0))
    total = np.nan_to_num(se) ** 2 + np.nan_to_num(between) ** 2
    var = np.cumsum(np.where(finite, total, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        independent = np.where(counts > 0, sums / counts, np.nan)
        independent_se = np.where(counts > 0, np.sqrt(var) / counts, np.nan)
    return pd.DataFrame(
        {
            "n": later["step"].to_numpy(),
            "epoch": later["epoch"].to_numpy(),
            "change": d,
            "change_se": se,
            "between_sd": between,
            "independent": independent,
            "independent_se": independent_se,
            "count": counts,
            "realized": (l0 - later["loss"].to_numpy()) / later["step"].to_numpy(),
        }
    )


def loglog_slope(n: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of log|values| against log n (finite, nonzero)."""
    n, values = np.asarray(n, dtype=float), np.abs(np.asarray(values, dtype=float))
    keep = np.isfinite(values) & (values > 0) & (n > 0)
    if keep.sum() < 2:
        return math.nan, math.nan
    slope, intercept = np.polyfit(np.log(n[keep]), np.log(values[keep]), 1)
    return float(slope), float(intercept)


@dataclass(frozen=True)
class SlopeFit:
    """Fitted log-log slope of |A_n| with a (1 − alpha) bootstrap interval [lo, hi]."""

    slope: float
    intercept: float
    lo: float
    hi: float
    points: int
    n_min: float
    n_max: float


def slope_interval(
    curve: pd.DataFrame,
    *,
    n_boot: int = 2000,
    alpha: float = 0.05,
    seed: int = 0,
) -> SlopeFit:
    """The log-log slope of |A_n| (``independent``) against n over the checkpoints of
    ``curve`` (from :func:`time_average_change`), and its parametric bootstrap interval.

    Each replicate redraws every checkpoint's D as D̂ + s·ε (ε standard normal, independent
    across checkpoints; s² = se² + ``between_sd``², the draws' error and the checkpoint's
    state-to-state spread, so that the interval covers the error of the running mean as an
    estimate of the time average over all iterates), recomputes the running means and refits; the
    interval is the (alpha/2, 1 − alpha/2) quantiles of the replicate slopes. A replicate whose
    running mean crosses 0 yields a very steep or flat log |A_n|: the interval then widens,
    which is the honest answer when the estimates cannot resolve the decay. Checkpoints with
    no finite D (the last one) are skipped; a missing se counts as 0.
    """
    table = curve[np.isfinite(curve["change"])]
    n = table["n"].to_numpy(dtype=float)
    slope, intercept = loglog_slope(n, table["independent"].to_numpy())
    if len(table) < 3 or not math.isfinite(slope):
        return SlopeFit(slope, intercept, math.nan, math.nan, len(table), math.nan, math.nan)
    d = table["change"].to_numpy(dtype=float)
    between = float(np.nan_to_num(table["between_sd"].iloc[0])) if "between_sd" in table else 0.0
    se = np.sqrt(np.nan_to_num(table["change_se"].to_numpy(dtype=float)) ** 2 + between**2)
    count = np.arange(1, len(d) + 1, dtype=float)
    rng = np.random.default_rng(seed)
    draws = d + se * rng.standard_normal((n_boot, len(d)))
    running = np.abs(np.cumsum(draws, axis=1) / count)
    logs = np.log(np.maximum(running, np.finfo(float).tiny))
    x = np.log(n) - np.log(n).mean()
    slopes = (logs - logs.mean(axis=1, keepdims=True)) @ x / (x @ x)
    lo, hi = np.quantile(slopes, [alpha / 2, 1 - alpha / 2])
    return SlopeFit(slope, intercept, float(lo), float(hi), len(table), n.min(), n.max())
