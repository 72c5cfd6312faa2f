"""Derived quantities of the vision runs (Zhang et al. Sections 2-3, App. A.2), as pure functions
of the tidy tables ``runs/<id>/stats.parquet`` and ``runs/<id>/train_log.parquet``.

* :func:`epoch_losses`, :func:`phase_stability`: eq. (2) at the end of each constant-lr phase
  (Fig. 1: "within each period where the step size is held constant, the change in loss
  converges to 0");
* :func:`smoothness`: epoch-to-epoch changes of eq. (2) against eq. (3) (Fig. 5);
* :func:`phase_windows`: the checkpoints of each lr phase (Fig. 1: "the gradient norm stays
  roughly unchanged");
* :func:`plugin_bias`: the share of the paper's plug-in |ḡ|² that is estimator bias
  (Section 3, hypothesis 3);
* :func:`view_stats`: the columns of Fig. 2 as slices of the runs.

Thm. 4.3 is in :mod:`sgdconv.zhang.thm43`, eq. (10) in :mod:`sgdconv.zhang.eq10`; windows and
the 2-SE rule in :mod:`sgdconv.zhang.windows`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sgdconv.zhang.windows import Z, below_decision, final_window


def epoch_losses(train_log: pd.DataFrame) -> pd.DataFrame:
    """Eq. (2) for every complete epoch of a train log (:func:`sgdconv.stats.loss_moving_avg`),
    with the epoch's learning rate (the lr of its last step). Steps with a non-finite loss (a
    diverged run's last row) are left out, and so is an epoch they cut short."""
    from sgdconv.stats import loss_moving_avg

    finite = train_log[np.isfinite(train_log["minibatch_loss"])]
    if finite.empty:
        return pd.DataFrame(columns=["epoch", "loss_moving_avg", "lr"])
    moving = loss_moving_avg(finite)
    full = moving["n_steps"].max()
    moving = moving[moving["n_steps"] == full].copy()
    last_lr = finite.groupby("epoch")["lr"].last()
    moving["lr"] = moving["epoch"].map(last_lr)
    return moving[["epoch", "loss_moving_avg", "lr"]].reset_index(drop=True)


PHASE_COLUMNS = [
    "phase",
    "start",
    "end",
    "lr",
    "window",
    "eq2_before",
    "eq2_end",
    "rel_change",
    "rel_se",
    "decision",
]


def phase_stability(
    train_log: pd.DataFrame,
    phases: Sequence[tuple[int, int]],
    fraction: float = 0.1,
    threshold: float = 0.02,
) -> pd.DataFrame:
    """The change of eq. (2) over the last ``fraction`` of each constant-lr phase.

    ``phases`` are half-open epoch ranges [start, end). With w = max(2, round(fraction ·
    length)) epochs: ``eq2_end`` is the mean of eq. (2) over the phase's last w epochs and
    ``eq2_before`` over the w epochs before them; ``rel_change`` = (end − before) / before, and
    ``rel_se`` its standard error from the epoch-to-epoch spread within the two windows.
    ``decision`` applies the 2-SE rule to "|change| < ``threshold``"
    (:func:`sgdconv.zhang.windows.below_decision`).
    """
    eq2 = epoch_losses(train_log).set_index("epoch")["loss_moving_avg"]
    rows = []
    for index, (start, end) in enumerate(phases):
        w = max(2, round(fraction * (end - start)))
        last = eq2.reindex(range(end - w, end)).to_numpy(dtype=float)
        before = eq2.reindex(range(end - 2 * w, end - w)).to_numpy(dtype=float)
        if end - 2 * w < start or not (np.isfinite(last).all() and np.isfinite(before).all()):
            rows.append((index, start, end, math.nan, w, *[math.nan] * 4, "unresolved"))
            continue
        level = float(before.mean())
        change = (float(last.mean()) - level) / abs(level)
        se = math.sqrt(last.var(ddof=1) / w + before.var(ddof=1) / w) / abs(level)
        lr = float(train_log.loc[train_log["epoch"] == end - 1, "lr"].iloc[-1])
        decision = below_decision(abs(change), se, threshold)
        rows.append((index, start, end, lr, w, level, float(last.mean()), change, se, decision))
    return pd.DataFrame(rows, columns=PHASE_COLUMNS)


def smoothness(stats: pd.DataFrame, after_epoch: float) -> dict[str, float]:
    """Mean |change| between consecutive checkpoints of eq. (2) (``loss_moving_avg``) and of
    eq. (3) (``loss_last``), over the checkpoints after epoch ``after_epoch`` where both exist
    (Fig. 5: the time average is smoother than the last iterate), with the standard errors of
    the two means (spread of the |changes| / √pairs) and of their ratio (delta method)."""
    rows = stats[(stats["epoch"] > after_epoch)].dropna(subset=["loss_moving_avg", "loss_last"])
    rows = rows.sort_values("epoch")
    d2 = np.abs(np.diff(rows["loss_moving_avg"].to_numpy()))
    d3 = np.abs(np.diff(rows["loss_last"].to_numpy()))
    pairs = len(d2)
    if pairs < 2:
        nan = math.nan
        return {"eq2": nan, "eq3": nan, "ratio": nan, "ratio_se": nan, "pairs": pairs}
    eq2, eq3 = float(d2.mean()), float(d3.mean())
    se2, se3 = d2.std(ddof=1) / math.sqrt(pairs), d3.std(ddof=1) / math.sqrt(pairs)
    ratio = eq2 / eq3 if eq3 > 0 else math.inf
    ratio_se = ratio * math.hypot(se2 / eq2, se3 / eq3) if eq2 > 0 and eq3 > 0 else math.nan
    return {
        "eq2": eq2,
        "eq3": eq3,
        "eq2_se": float(se2),
        "eq3_se": float(se3),
        "ratio": ratio,
        "ratio_se": float(ratio_se),
        "pairs": pairs,
    }


def phase_windows(milestones: Sequence[float], epochs: float) -> list[tuple[float, float]]:
    """The lr phases of a step schedule as epoch windows (lo, hi] of checkpoints: a checkpoint
    at a milestone closes the phase before it (its iterate was trained at the old lr), and the
    initialization (epoch 0) belongs to none."""
    bounds = [0.0, *sorted(float(m) for m in milestones), float(epochs)]
    return list(itertools.pairwise(bounds))


def plugin_bias(stats: pd.DataFrame, horizon: float, fraction: float = 0.1) -> dict[str, float]:
    """The share of the paper's plug-in |ḡ|² that is estimator bias at the end of a run.

    For a simple random sample of m out of N, E|ḡ|² = |∇L|² + (1 − m/N) S²/m
    (:mod:`sgdconv.stats.gradient`), so the bias is f σ²/m with f = 1 − m/N (1 for a data
    distribution, 0 when the sample is the training set) and σ² the per-sample noise
    (``noise_norm_sq``). Returned: the means over the final window of the bias and of |ḡ|², and
    ``share`` = bias / |ḡ|².
    """
    frame = stats.copy()
    m = frame["n_samples"].astype(float)
    big_n = frame["population_size"].astype(float) if "population_size" in frame else np.inf
    f = np.where(np.isinf(big_n), 1.0, 1.0 - m / big_n)
    frame["plugin_bias"] = f * frame["noise_norm_sq"] / m
    frame["plugin_sq"] = frame["grad_norm_plugin"] ** 2
    bias = final_window(frame, "plugin_bias", horizon, fraction)
    plugin = final_window(frame, "plugin_sq", horizon, fraction)
    share = bias.value / plugin.value if plugin.value > 0 else math.nan
    return {
        "share": share,
        "bias": bias.value,
        "plugin_sq": plugin.value,
        "m": float(m.iloc[-1]),
        "f": float(f[-1]),
        "n": bias.n,
        "lo": bias.lo,
        "hi": bias.hi,
    }


def view_stats(stats: pd.DataFrame, epochs: float) -> pd.DataFrame:
    """A column of Fig. 2: the checkpoints of a run up to ``epochs`` (a view may be the first
    epochs of a longer run)."""
    return stats[stats["epoch"] <= float(epochs) + 1e-9].sort_values("step")


def upper_ratio(a: float, b: float, se: float) -> float:
    """(a + Z·se) / b: a ratio at the 2-SE upper bound of its numerator."""
    return (a + Z * se) / b if b > 0 else math.nan
