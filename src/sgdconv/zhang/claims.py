"""Claims of the vision artifacts of Zhang et al. (ARTIFACTS.md), from their tidy tables.

Which claim belongs to which artifact:

* ``zhang_fig1``: ``zhang_noise_grows``, ``zhang_loss_stabilizes``,
  ``zhang_grad_norm_persists_step`` and the reported ``zhang_plugin_bias`` of its run;
* ``zhang_fig2``: ``zhang_grad_norm_persists`` (every constant-lr run, the long one included),
  ``zhang_smaller_lr_larger_{grad,noise,sharpness}`` (the runs of equal length) and
  ``zhang_plugin_bias`` per run;
* ``zhang_fig5``: ``zhang_moving_average_smoother``; ``zhang_fig6``:
  ``zhang_grad_norm_vanishes_when_interpolating``;
* ``zhang_fig7``, ``zhang_thm43``, ``zhang_eq10``: in :mod:`sgdconv.zhang.claims_more`
  (re-exported here).

Every ordering or change follows the 2-SE rule of :mod:`sgdconv.zhang.windows`: the metric is
the ratio at the 2-SE bound, so a claim holds only where the data resolve it, and the note says
"unresolved" (with the numbers) where they do not, or "does not hold" where the opposite is
resolved. A run that diverged is reported with ``holds=False`` and a note. Thresholds are the
constants of ARTIFACTS.md below.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sgdconv.claims import Claim
from sgdconv.train.schedules import phases
from sgdconv.zhang.analysis import (
    phase_stability,
    phase_windows,
    plugin_bias,
    smoothness,
    upper_ratio,
    view_stats,
)
from sgdconv.zhang.claims_more import claims_eq10, claims_fig7, claims_thm43
from sgdconv.zhang.common import PAPER, diverged, join, status_note
from sgdconv.zhang.windows import (
    Z,
    below_decision,
    centred_window,
    combine,
    diff_se,
    final_window,
    order_decision,
    verdict,
    window,
    window_length,
)

__all__ = [
    "claims_eq10",
    "claims_fig1",
    "claims_fig2",
    "claims_fig5",
    "claims_fig6",
    "claims_fig7",
    "claims_thm43",
]

NOISE_GROWTH = 1.0  # noise(end) / noise(10%) >= 1
LOSS_STABLE = 0.02  # relative change of eq. (2) over a phase's last 10% < 2%
PERSIST = 0.2  # median grad norm over the last quarter >= 0.2 x max
PERSIST_STEP = 0.3  # last-phase median grad norm >= 0.3 x first-phase median
SMOOTHER = 0.5  # mean |change| of eq. (2) <= 0.5 x that of eq. (3)
VANISH = 0.01  # final grad norm <= 0.01 x max (interpolating)
FINAL = 0.1  # "final": the last 10% of training


# --- Fig. 1 ---------------------------------------------------------------------------------


def claims_fig1(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``params``: ``epochs`` and ``milestones`` of the step schedule."""
    stats, log = tables["stats"].sort_values("step"), tables["train_log"]
    epochs, milestones = float(params["epochs"]), list(params["milestones"])
    return [
        _noise_grows(stats, epochs),
        _loss_stabilizes(stats, log, epochs, milestones),
        _persists_step(stats, epochs, milestones),
        _plugin_bias(stats, epochs, "zhang_fig1", "the step-schedule run"),
    ]


def _noise_grows(stats: pd.DataFrame, epochs: float) -> Claim:
    end = final_window(stats, "noise_norm", epochs, FINAL, se_column="noise_norm_se")
    early = centred_window(
        stats, "noise_norm", FINAL * epochs, end.hi - end.lo, se_column="noise_norm_se"
    )
    se = diff_se(end.se, early.se)
    decision = order_decision(end.value - early.value, se)
    why = verdict(
        decision,
        "the noise norm falls by more than twice its SE",
        f"σ changes by {end.value - early.value:+.3g}, within 2 SE = {Z * se:.2g}",
    )
    return Claim(
        "zhang_noise_grows",
        PAPER,
        "zhang_fig1",
        "With the step schedule, the noise norm σ over the last 10% of training exceeds, by "
        "more than twice the SE of the difference, its value over the window of the same "
        "length around 10% of training.",
        "(σ_end − 2 SE) / σ_early (ratio at the 2-SE lower bound)",
        math.nan if diverged(stats) else (end.value - Z * se) / early.value,
        ">=",
        NOISE_GROWTH,
        note=join(
            status_note(stats),
            why,
            f"σ_end {end.describe()}, σ_early {early.describe()}, "
            f"ratio {end.value / early.value:.4g}",
        ),
    )


def _loss_stabilizes(stats, log, epochs, milestones) -> Claim:
    schedule = {"name": "step", "milestones": milestones}
    table = phase_stability(log, phases(schedule, int(epochs)), FINAL, LOSS_STABLE)
    upper = (table["rel_change"].abs() + Z * table["rel_se"]).max(skipna=False)
    decisions = set(table["decision"])
    decision = combine(list(decisions))
    why = verdict(
        decision,
        "eq. (2) is still drifting at a phase's end (the change minus 2 SE exceeds 2%)",
        "in some phase the change plus 2 SE reaches 2% (eq. (2) cannot resolve it)",
    )
    detail = ", ".join(
        f"phase {int(r.phase) + 1} (lr {r.lr:g}, epochs {int(r.start)}-{int(r.end)}): "
        f"{r.rel_change:+.2%} ± {r.rel_se:.2%} (last {int(r.window)} epochs vs the "
        f"{int(r.window)} before)"
        for r in table.itertuples()
    )
    return Claim(
        "zhang_loss_stabilizes",
        PAPER,
        "zhang_fig1",
        "Within each constant-lr phase of the step schedule, the moving-average loss (eq. 2) "
        "changes by < 2% over the phase's last 10% of epochs (mean over those epochs against "
        "the mean over the same number of epochs before them), at the 2-SE upper bound.",
        "max over phases of (|Δ eq. (2)| + 2 SE) / eq. (2)",
        math.nan if diverged(stats) else float(upper),
        "<",
        LOSS_STABLE,
        note=join(status_note(stats), why, detail),
    )


def _persists_step(stats: pd.DataFrame, epochs: float, milestones: list) -> Claim:
    (first_lo, first_hi), *_, (last_lo, last_hi) = phase_windows(milestones, epochs)
    first = window(stats, "grad_norm", first_lo, first_hi, how="median")
    last = window(stats, "grad_norm", last_lo, last_hi, how="median")
    sq = window(stats, "grad_norm_sq", last_lo, last_hi, how="median")
    sq_se = window(stats, "grad_norm_sq_se", last_lo, last_hi, how="median")
    resolved = sq.value > Z * sq_se.value  # the last phase's |∇L| is resolved from 0
    se = diff_se(last.se, PERSIST_STEP * first.se)
    lower = (last.value - Z * se) / first.value
    decision = order_decision(last.value - PERSIST_STEP * first.value, se)
    why = verdict(
        decision if resolved else "unresolved",
        f"the last phase's median is below {PERSIST_STEP} x the first's by more than 2 SE",
        f"last-phase median |∇L|² {sq.value:.3g} vs 2 x its median SE {Z * sq_se.value:.3g}"
        if not resolved
        else f"the difference to {PERSIST_STEP} x the first phase is within 2 SE ({Z * se:.2g})",
    )
    return Claim(
        "zhang_grad_norm_persists_step",
        PAPER,
        "zhang_fig1",
        "With the step schedule, the median unbiased gradient norm over the last lr phase is "
        ">= 0.3 x its median over the first phase (by more than 2 SE), and the last phase's "
        "median |∇L|² exceeds twice its standard error (it is resolved from 0).",
        "(median |∇L| last phase − 2 SE) / median first phase (0 if not resolved from 0)",
        math.nan if diverged(stats) else (lower if resolved else 0.0),
        ">=",
        PERSIST_STEP,
        note=join(
            status_note(stats),
            why,
            f"first phase {first.describe()}, last phase {last.describe()}, ratio "
            f"{last.value / first.value:.3g}; last phase median |∇L|² {sq.value:.3g}, median SE "
            f"{sq_se.value:.2g}",
        ),
    )


def _plugin_bias(stats: pd.DataFrame, horizon: float, artifact: str, name: str) -> Claim:
    b = plugin_bias(stats, horizon, FINAL)
    return Claim(
        "zhang_plugin_bias",
        PAPER,
        artifact,
        "Reported: at the end of each run, the share of the paper's plug-in |ḡ|² that is "
        "estimator bias, (1 − m/N) σ²/m ÷ |ḡ|², for the tier's sample size m.",
        f"bias share of |ḡ|², {name} (m = {b['m']:.0f})",
        b["share"],
        "report",
        None,
        note=join(
            status_note(stats),
            f"(1 − m/N) σ²/m = {b['bias']:.3g} of |ḡ|² = {b['plugin_sq']:.3g} (1 − m/N = "
            f"{b['f']:.3g}; mean of {b['n']} checkpoints, epochs {b['lo']:g}-{b['hi']:g}]",
        ),
    )


# --- Fig. 2 ---------------------------------------------------------------------------------


def claims_fig2(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``params["views"]``: ``{"table", "lr", "epochs", "long"}`` per column of Fig. 2; a view
    may be the first ``epochs`` epochs of a longer run."""
    views = [(v, view_stats(tables[v["table"]], v["epochs"])) for v in params["views"]]
    rows = [_persists(views)]
    regular = [(v, s) for v, s in views if not v.get("long", False)]
    for column, name, claim_id in (
        ("grad_norm", "|∇L|", "zhang_smaller_lr_larger_grad"),
        ("noise_norm", "σ", "zhang_smaller_lr_larger_noise"),
        ("sharpness", "sharpness", "zhang_smaller_lr_larger_sharpness"),
    ):
        rows.append(_monotone(regular, column, name, claim_id))
    for view, stats in views:
        if view.get("long", False) or not any(
            w["run_id"] == view.get("run_id") for w, _ in views if w.get("long", False)
        ):
            label = f"lr {view['lr']:g}, {view['epochs']} epochs"
            rows.append(_plugin_bias(stats, float(view["epochs"]), "zhang_fig2", label))
    return rows


def _persists(views) -> Claim:
    ratios, notes, bad = [], [], []
    for view, stats in views:
        name = f"lr {view['lr']:g}, {view['epochs']} epochs"
        if diverged(stats):
            bad.append(name)
        epochs = float(view["epochs"])
        length = window_length(stats, epochs, 0.25)
        last = window(stats, "grad_norm", epochs - length, epochs, how="median")
        peak = float(stats["grad_norm"].max())
        ratios.append((last.value - Z * last.se) / peak)
        notes.append(f"{name}: median {last.describe(3)}, max {peak:.3g}")
    return Claim(
        "zhang_grad_norm_persists",
        PAPER,
        "zhang_fig2",
        "In every non-interpolating constant-lr run, the median gradient norm over the last "
        "quarter of training, at its 2-SE lower bound, is >= 0.2 x its maximum.",
        "min over runs of (median |∇L| last quarter − 2 SE) / max |∇L|",
        math.nan if bad else float(np.min(ratios)),
        ">=",
        PERSIST,
        note=join(f"diverged: {', '.join(bad)}" if bad else "", "; ".join(notes)),
    )


def _monotone(views, column: str, name: str, claim_id: str) -> Claim:
    finals = {}
    for view, stats in views:
        se_column = f"{column}_se" if f"{column}_se" in stats else None
        finals[float(view["lr"])] = final_window(
            stats, column, float(view["epochs"]), FINAL, se_column=se_column
        )
    lrs = sorted(finals)
    bounds, decisions, pairs = [], [], []
    for small, large in itertools.pairwise(lrs):
        a, b = finals[small], finals[large]
        se = diff_se(a.se, b.se)
        bounds.append(upper_ratio(b.value, a.value, se))
        decisions.append(order_decision(a.value - b.value, se))
        pairs.append(
            f"lr {small:g} minus lr {large:g}: {a.value - b.value:+.3g} ± {se:.2g} "
            f"({decisions[-1]})"
        )
    decision = combine(decisions)
    why = verdict(
        decision,
        f"a larger lr ends with a larger {name}, by more than 2 SE",
        f"some consecutive lrs differ in final {name} by less than 2 SE",
    )
    bad = any(diverged(s) for _, s in views)
    return Claim(
        claim_id,
        PAPER,
        "zhang_fig2",
        f"The final {name} (mean over the last 10% of training) is non-increasing in the "
        "constant learning rate (runs of equal length), each consecutive pair resolved by "
        "more than 2 SE.",
        f"max over consecutive lrs of ({name}(larger lr) + 2 SE) / {name}(smaller lr)",
        math.nan if bad or not bounds else float(np.max(bounds)),
        "<=",
        1.0,
        note=join(
            "a run diverged" if bad else "",
            why,
            "; ".join(pairs),
            "final: " + "; ".join(f"lr {lr:g}: {finals[lr].describe()}" for lr in lrs),
        ),
    )


# --- Fig. 5, Fig. 6 -------------------------------------------------------------------------


def claims_fig5(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``params``: ``first_milestone`` (the end of the first phase, in epochs), ``momentum``."""
    stats = tables["stats"]
    first = float(params["first_milestone"])
    s = smoothness(stats, first)
    bounds = sorted(float(m) for m in params.get("milestones", [first]))
    per_phase = [
        (lo, hi, smoothness(stats[stats["epoch"] <= hi], lo))
        for lo, hi in itertools.pairwise([*bounds, float(stats["epoch"].max())])
    ]
    upper = s["ratio"] + Z * s["ratio_se"]
    decision = below_decision(s["ratio"], s["ratio_se"], SMOOTHER + 1e-12)
    why = verdict(
        decision,
        "eq. (3) fluctuates no more than twice as much as eq. (2) (resolved): the last "
        "iterate hardly moves between epochs" + _edge_note(stats, first, params),
        "the ratio's 2-SE interval contains 0.5",
    )
    return [
        Claim(
            "zhang_moving_average_smoother",
            PAPER,
            "zhang_fig5",
            "After the first phase, the mean |change| between consecutive checkpoints of the "
            "moving-average loss (eq. 2) is <= 0.5 x that of the last-iterate loss (eq. 3), "
            "at the ratio's 2-SE upper bound.",
            "mean |Δ eq. (2)| / mean |Δ eq. (3)| + 2 SE",
            upper,
            "<=",
            SMOOTHER,
            note=join(
                status_note(stats),
                why,
                f"ratio {s['ratio']:.3g} ± {s['ratio_se']:.2g} over {s['pairs']} checkpoint "
                f"pairs; mean |Δ| eq. (2) {s['eq2']:.4g}, eq. (3) {s['eq3']:.4g}",
                "by phase: "
                + "; ".join(
                    f"epochs {lo:g}-{hi:g}: eq. (2) {p['eq2']:.3g}, eq. (3) {p['eq3']:.3g}"
                    for lo, hi, p in per_phase
                ),
            ),
        )
    ]


def _edge_note(stats: pd.DataFrame, first: float, params: Mapping[str, Any]) -> str:
    if not {"lr", "sharpness"} <= set(stats.columns):
        return ""
    later = stats[stats["epoch"] > first]
    beta = float(params.get("momentum", 0.0))
    edge = (2 * (1 + beta) / later["lr"]).median()
    return (
        f" (median sharpness {later['sharpness'].median():.3g} against the stability edge "
        f"2(1+β)/η = {edge:.3g})"
    )


def claims_fig6(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    stats = tables["stats"].sort_values("step")
    horizon = float(stats["epoch"].iloc[-1])
    final = final_window(stats, "grad_norm", horizon, FINAL, se_column="grad_norm_se")
    peak = float(stats["grad_norm"].max())
    return [
        Claim(
            "zhang_grad_norm_vanishes_when_interpolating",
            PAPER,
            "zhang_fig6",
            "When the model interpolates, the final gradient norm (mean over the last 10% of "
            "training) is <= 0.01 x its maximum, at its 2-SE upper bound.",
            "(|∇L|_final + 2 SE) / max |∇L|",
            math.nan if diverged(stats) else upper_ratio(final.value, peak, final.se),
            "<=",
            VANISH,
            note=join(
                status_note(stats),
                f"|∇L| {peak:.4g} (max) -> {final.describe()}; final loss "
                f"{stats['loss'].iloc[-1]:.3g}",
            ),
        )
    ]
