"""Differences of Monte-Carlo stay probabilities and their standard errors, for the claims of
``anlu_thm31`` (:mod:`sgdconv.anlu.claims`).

Every condition of :func:`sgdconv.anlu.thm31.simulate_thm31` runs the same noise streams
(trajectory i of each condition draws the same Z_k), so the outcomes of two conditions are
paired by trajectory and the standard error of a difference of probabilities is that of the
mean of the per-trajectory differences (smaller than for independent samples when the outcomes
are positively correlated, as common random numbers intend). A noiseless condition is one
deterministic outcome, the same for every trajectory. Without the ``trajectories`` table the
two probabilities are treated as independent binomial estimates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The outcome whose probability the claims compare: stayed in B(θ0, R − 1) and converged.
OUTCOME = "p_stay_converge"


@dataclass(frozen=True)
class Difference:
    """p(a) − p(b) and its standard error over ``n`` paired trajectories."""

    value: float
    se: float
    n: int

    def z(self) -> float:
        """value / se with the standard error floored at 1/n, the resolution of n trajectories
        (all n outcomes flipping the same way has a sample SE of 0)."""
        return self.value / max(self.se, 1.0 / max(self.n, 1))


def _outcomes(trajectories: pd.DataFrame | None, row: pd.Series) -> np.ndarray | None:
    """Per-trajectory stay-and-converge outcomes of one condition, or None if unavailable."""
    if bool(row.get("deterministic", False)):
        return None
    if trajectories is None or trajectories.empty:
        return None
    mine = trajectories[
        (trajectories["part"] == row["part"])
        & (trajectories["noise"] == row["noise"])
        & (trajectories["f0"] == row["f0"])
        & (trajectories["sigma"] == row["sigma"])
    ].sort_values("trajectory")
    if mine.empty:
        return None
    return (mine["stay"] & mine["converge"]).to_numpy(float)


def difference(a: pd.Series, b: pd.Series, trajectories: pd.DataFrame | None) -> Difference:
    """p(a) − p(b) of two rows of the ``conditions`` table, paired by trajectory where the
    ``trajectories`` table has both (a deterministic condition pairs as a constant)."""
    pa, pb = float(a[OUTCOME]), float(b[OUTCOME])
    xa, xb = _outcomes(trajectories, a), _outcomes(trajectories, b)
    if xa is not None or xb is not None:
        n = len(xa) if xa is not None else len(xb)
        da = xa if xa is not None else np.full(n, pa)
        db = xb if xb is not None else np.full(n, pb)
        if len(da) == len(db):
            d = da - db
            se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
            return Difference(float(d.mean()), se, n)
    n_a, n_b = int(a["n_trajectories"]), int(b["n_trajectories"])
    var = pa * (1 - pa) / n_a + pb * (1 - pb) / n_b
    noisy = [n for n, row in ((n_a, a), (n_b, b)) if not bool(row.get("deterministic", False))]
    return Difference(pa - pb, math.sqrt(var), min(noisy, default=1))


@dataclass(frozen=True)
class StayCurve:
    """P(stay ∧ converge) against F(θ0) for one σ, read in the order of decreasing F(θ0)."""

    sigma: float
    largest: float
    #: F(θ0) values with a probability strictly between 0 and 1 (the resolved crossover).
    between: int
    #: The largest decrease as F(θ0) decreases, in units of its standard error (0 if none).
    worst_z: float
    #: The F(θ0) where that decrease ends, and the decrease itself.
    worst_f0: float
    worst_drop: float

    @property
    def resolved_decrease(self) -> bool:
        """A decrease counts only beyond twice its standard error (ARTIFACTS.md)."""
        return self.worst_z > 2.0


def stay_curve(rows: pd.DataFrame, trajectories: pd.DataFrame | None) -> StayCurve:
    """The curve of one σ (``rows``: its conditions), with its worst step-to-step decrease."""
    ordered = rows.sort_values("f0", ascending=False).reset_index(drop=True)
    p = ordered[OUTCOME].to_numpy(float)
    worst = (0.0, math.nan, 0.0)
    for i in range(1, len(ordered)):
        diff = difference(ordered.iloc[i - 1], ordered.iloc[i], trajectories)
        # diff > 0: p at the smaller F(θ0) is lower, a decrease along the curve.
        if diff.value > 0 and diff.z() > worst[0]:
            worst = (diff.z(), float(ordered["f0"].iloc[i]), diff.value)
    return StayCurve(
        sigma=float(ordered["sigma"].iloc[0]),
        largest=float(p.max()),
        between=int(((p > 0) & (p < 1)).sum()),
        worst_z=worst[0],
        worst_f0=worst[1],
        worst_drop=worst[2],
    )
