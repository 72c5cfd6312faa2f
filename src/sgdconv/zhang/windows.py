"""Windows of checkpoints and the 2-SE rule shared by the vision claims (ARTIFACTS.md).

"Final", "end" and reference values are means (or medians) over windows of equal length in
epochs; an ordering or a change counts only where the difference exceeds twice its standard
error, and the SE of a window includes the spread *between* its checkpoints (which carries the
fluctuation of the iterates as well as each estimate's own sampling error). A decision is one of
``holds``, ``fails`` (the opposite is resolved) and ``unresolved``; only ``holds`` makes a claim
hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: z of the 2-SE rule.
Z = 2.0
#: SE of a median over that of a mean, for normal data (√(π/2)).
MEDIAN_SE_FACTOR = math.sqrt(math.pi / 2)
_EPS = 1e-9


@dataclass(frozen=True)
class Window:
    """A statistic summarised over the checkpoints with ``lo < epoch <= hi``."""

    column: str
    lo: float
    hi: float
    value: float
    se: float
    n: int
    how: str = "mean"

    def describe(self, digits: int = 4) -> str:
        return (
            f"{self.value:.{digits}g} ± {self.se:.2g} ({self.how} of {self.n} checkpoints, "
            f"epochs {self.lo:g}-{self.hi:g}]"
        ).replace("-", "–", 1)


def window(
    stats: pd.DataFrame,
    column: str,
    lo: float,
    hi: float,
    *,
    how: str = "mean",
    se_column: str | None = None,
) -> Window:
    """``column`` over the checkpoints with ``lo < epoch <= hi`` (finite values only).

    SE: the between-checkpoint standard deviation / √n (× √(π/2) for a median), or, where
    larger, the root mean square of the per-checkpoint standard errors ``se_column`` / √n (the
    estimation error alone); NaN for fewer than two checkpoints.
    """
    if how not in ("mean", "median"):
        raise ValueError(f"how must be 'mean' or 'median', got {how!r}")
    rows = stats[(stats["epoch"] > lo + _EPS) & (stats["epoch"] <= hi + _EPS)]
    values = rows[column].to_numpy(dtype=float)
    keep = np.isfinite(values)
    values = values[keep]
    n = len(values)
    if n == 0:
        return Window(column, lo, hi, math.nan, math.nan, 0, how)
    value = float(np.mean(values) if how == "mean" else np.median(values))
    se = math.nan
    if n >= 2:
        se = float(np.std(values, ddof=1) / math.sqrt(n))
        if how == "median":
            se *= MEDIAN_SE_FACTOR
        if se_column is not None and se_column in rows:
            within = rows[se_column].to_numpy(dtype=float)[keep]
            within = within[np.isfinite(within)]
            if len(within):
                se = max(se, float(np.sqrt(np.mean(within**2)) / math.sqrt(n)))
    return Window(column, lo, hi, value, se, n, how)


#: A window spans at least this many checkpoints, so that its spread can be estimated.
MIN_CHECKPOINTS = 2


def window_length(stats: pd.DataFrame, horizon: float, fraction: float) -> float:
    """``fraction`` of ``horizon`` epochs, or, where the checkpoints are sparser than that, the
    length that holds :data:`MIN_CHECKPOINTS` of them (1.5 checkpoint spacings)."""
    epochs = np.sort(stats["epoch"].to_numpy(dtype=float))
    spacing = float(np.median(np.diff(epochs))) if len(epochs) > 1 else 0.0
    return max(fraction * horizon, (MIN_CHECKPOINTS - 0.5) * spacing)


def final_window(
    stats: pd.DataFrame, column: str, horizon: float, fraction: float = 0.1, **kwargs
) -> Window:
    """The last ``fraction`` of training, epochs in (horizon − length, horizon] with the length
    of :func:`window_length` (at least two checkpoints)."""
    length = window_length(stats, horizon, fraction)
    return window(stats, column, horizon - length, horizon, **kwargs)


def centred_window(
    stats: pd.DataFrame, column: str, centre: float, length: float, **kwargs
) -> Window:
    """``length`` epochs centred at ``centre``: (centre − length/2, centre + length/2]."""
    return window(stats, column, centre - length / 2, centre + length / 2, **kwargs)


def diff_se(*ses: float) -> float:
    """SE of a sum or difference of independent estimates."""
    return float(math.sqrt(sum(s * s for s in ses)))


def order_decision(difference: float, se: float) -> str:
    """``holds`` if difference > Z·se, ``fails`` if difference < −Z·se, else ``unresolved``
    (also when either is NaN)."""
    if not (math.isfinite(difference) and math.isfinite(se)):
        return "unresolved"
    if difference > Z * se:
        return "holds"
    if difference < -Z * se:
        return "fails"
    return "unresolved"


def below_decision(value: float, se: float, threshold: float) -> str:
    """For "value < threshold": ``holds`` if value + Z·se < threshold, ``fails`` if
    value − Z·se >= threshold, else ``unresolved``."""
    if not (math.isfinite(value) and math.isfinite(se)):
        return "unresolved"
    if value + Z * se < threshold:
        return "holds"
    if value - Z * se >= threshold:
        return "fails"
    return "unresolved"


def combine(decisions: list[str]) -> str:
    """One decision for several: ``fails`` if any fails, ``holds`` if all hold, else
    ``unresolved``."""
    if "fails" in decisions:
        return "fails"
    return "holds" if decisions and set(decisions) == {"holds"} else "unresolved"


def verdict(decision: str, why_fails: str, why_unresolved: str) -> str:
    """The note's verdict phrase for a decision (empty when it holds)."""
    if decision == "holds":
        return ""
    if decision == "fails":
        return f"does not hold: {why_fails}"
    return f"unresolved (counts as not holding): {why_unresolved}"
