"""Derived quantities of the vision runs (Zhang et al. Sections 2-5), as pure functions of the
tidy tables ``runs/<id>/stats.parquet`` and ``runs/<id>/train_log.parquet``.

* :func:`phase_stability`: eq. (2) at the end of each constant-lr phase vs 10% of the phase
  earlier (Fig. 1: "within each period where the step size is held constant, the change in loss
  converges to 0");
* :func:`smoothness`: epoch-to-epoch changes of eq. (2) against eq. (3) (Fig. 5);
* :func:`time_average_change`: E_{μ_n}[L(θ) − L(F(θ))] of Thm. 4.3 along a run, and
  :func:`loglog_slope`;
* :func:`eq10_terms`: both sides of eq. (10), |∇L|² and η · sharpness · G².
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd


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


def phase_stability(
    train_log: pd.DataFrame, phases: Sequence[tuple[int, int]], window: float = 0.1
) -> pd.DataFrame:
    """Relative change of eq. (2) over the last ``window`` fraction of each phase.

    ``phases`` are half-open epoch ranges [start, end) of constant lr. For each: eq. (2) of its
    last epoch (end − 1) against eq. (2) of epoch end − 1 − w, w = max(1, round(window ·
    length)) epochs; ``rel_change`` = |difference| / the earlier value. ``epoch_sd`` is the
    standard deviation of the epoch-to-epoch differences of eq. (2) over the phase's last
    quarter: the noise level against which the change is judged.
    """
    eq2 = epoch_losses(train_log).set_index("epoch")
    rows = []
    for index, (start, end) in enumerate(phases):
        w = max(1, round(window * (end - start)))
        last, before = end - 1, end - 1 - w
        if before < start or last not in eq2.index or before not in eq2.index:
            rows.append((index, start, end, math.nan, w, math.nan, math.nan, math.nan, math.nan))
            continue
        value_end = float(eq2.loc[last, "loss_moving_avg"])
        value_before = float(eq2.loc[before, "loss_moving_avg"])
        tail = eq2.loc[max(start, end - max(2, (end - start) // 4)) : last, "loss_moving_avg"]
        sd = float(np.diff(tail.to_numpy()).std(ddof=1)) if len(tail) > 2 else math.nan
        rows.append(
            (
                index,
                start,
                end,
                float(eq2.loc[last, "lr"]),
                w,
                value_before,
                value_end,
                abs(value_end - value_before) / abs(value_before),
                sd / abs(value_before),
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "phase",
            "start",
            "end",
            "lr",
            "window",
            "eq2_before",
            "eq2_end",
            "rel_change",
            "rel_epoch_sd",
        ],
    )


def smoothness(stats: pd.DataFrame, after_epoch: float) -> dict[str, float]:
    """Mean |change| between consecutive checkpoints of eq. (2) (``loss_moving_avg``) and of
    eq. (3) (``loss_last``), over the checkpoints after epoch ``after_epoch`` where both exist
    (Fig. 5: the time average is smoother than the last iterate)."""
    rows = stats[(stats["epoch"] > after_epoch)].dropna(subset=["loss_moving_avg", "loss_last"])
    rows = rows.sort_values("epoch")
    d2 = np.abs(np.diff(rows["loss_moving_avg"].to_numpy()))
    d3 = np.abs(np.diff(rows["loss_last"].to_numpy()))
    if len(d2) == 0:
        return {"eq2": math.nan, "eq3": math.nan, "ratio": math.nan, "pairs": 0}
    eq2, eq3 = float(d2.mean()), float(d3.mean())
    return {"eq2": eq2, "eq3": eq3, "ratio": eq2 / eq3 if eq3 > 0 else math.inf, "pairs": len(d2)}


def time_average_change(stats: pd.DataFrame) -> pd.DataFrame:
    """E_{μ_n}[L_S(θ) − L_S(F(θ))] of Thm. 4.3 at every checkpoint n of a run.

    ``realized``: with F the update SGD actually took, the average telescopes to
    (L_S(θ_0) − L_S(θ_n)) / n (L_S the loss on the run's fixed sample, column ``loss``); it
    differs from the average over independent updates by a martingale average of order
    n^{-1/2} (proof of Thm. B.1). ``independent``: the running mean over the checkpoints
    0 < t <= n of the one-step change D(θ_t) = L_S(θ_t) − E_F L_S(F(θ_t)) estimated with
    independent updates (column ``one_step_change``), i.e. μ_n subsampled at the checkpoints.
    """
    rows = stats.sort_values("step")
    first = rows[rows["step"] == 0]
    if first.empty:
        raise ValueError("the stats table has no step-0 row")
    l0 = float(first["loss"].iloc[0])
    later = rows[rows["step"] > 0]
    realized = (l0 - later["loss"].to_numpy()) / later["step"].to_numpy()
    d = later["one_step_change"].to_numpy(dtype=float)
    finite = np.isfinite(d)
    counts = np.cumsum(finite)
    sums = np.cumsum(np.where(finite, d, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        independent = np.where(counts > 0, sums / counts, np.nan)
    return pd.DataFrame(
        {
            "n": later["step"].to_numpy(),
            "epoch": later["epoch"].to_numpy(),
            "realized": realized,
            "independent": independent,
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


def eq10_terms(stats: pd.DataFrame) -> pd.DataFrame:
    """Both sides of eq. (10), (∇)² = η 𝓛 G², at every checkpoint.

    |∇L|² is the unbiased ``grad_norm_sq``; G² = E|g|² = |∇L|² + σ²/b is the second moment of
    a stochastic gradient of the training batch b (σ² = ``noise_norm_sq`` in per-sample units,
    b = ``microbatch_size``); 𝓛 the sharpness; η the checkpoint's learning rate.
    """
    g2 = stats["grad_norm_sq"] + stats["noise_norm_sq"] / stats["microbatch_size"]
    out = pd.DataFrame(
        {
            "step": stats["step"],
            "epoch": stats["epoch"],
            "lr": stats["lr"],
            "grad_norm_sq": stats["grad_norm_sq"],
            "second_moment": g2,
            "sharpness": stats["sharpness"],
        }
    )
    out["rhs"] = out["lr"] * out["sharpness"] * out["second_moment"]
    out["ratio"] = out["grad_norm_sq"] / out["rhs"]
    return out


def eq10_ratio(terms: pd.DataFrame, from_fraction: float = 0.5) -> dict[str, float]:
    """Eq. (10) "in expectation" over the run's later part (epochs >= ``from_fraction`` of
    the last): mean |∇L|² / mean(η 𝓛 G²)."""
    late = terms[terms["epoch"] >= from_fraction * terms["epoch"].max()]
    lhs, rhs = float(late["grad_norm_sq"].mean()), float(late["rhs"].mean())
    return {"lhs": lhs, "rhs": rhs, "ratio": lhs / rhs if rhs > 0 else math.nan, "n": len(late)}
