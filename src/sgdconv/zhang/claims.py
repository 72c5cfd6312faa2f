"""Claims of the vision artifacts of Zhang et al. (ARTIFACTS.md), from their tidy tables.

Which claim belongs to which artifact:

* ``zhang_fig1``: ``zhang_noise_grows`` and ``zhang_loss_stabilizes`` (the phases of the step
  schedule are Fig. 1's "periods where the step size is held constant");
* ``zhang_fig2``: ``zhang_grad_norm_persists`` (every constant-lr run, the long one included)
  and ``zhang_smaller_lr_larger_grad`` (the runs of equal length);
* ``zhang_fig5``: ``zhang_moving_average_smoother``; ``zhang_fig6``:
  ``zhang_grad_norm_vanishes_when_interpolating``; ``zhang_fig7``: ``zhang_estimators_converge``;
  ``zhang_thm43``: ``zhang_time_average_rate``; ``zhang_eq10``: ``zhang_eq10_ratio`` (one
  reported row per constant-lr run).

A run that diverged is reported with ``holds=False`` (its tables hold only its finite
checkpoints) and a note. Thresholds are the constants of ARTIFACTS.md below.
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
from sgdconv.zhang.analysis import eq10_ratio, loglog_slope, phase_stability, smoothness

NOISE_GROWTH = 1.0  # noise(end) / noise(10%) >= 1
LOSS_STABLE = 0.02  # relative change of eq. (2) over a phase's last 10% < 2%
PERSIST = 0.2  # median grad norm over the last quarter >= 0.2 x max
SMOOTHER = 0.5  # mean |change| of eq. (2) <= 0.5 x that of eq. (3)
VANISH = 0.01  # final grad norm <= 0.01 x max (interpolating)
CONVERGE = 0.05  # estimates change < 5% between the two largest sample sizes
RATE = -0.4  # log-log slope of |E_{μ_n}[L(θ) − L(F(θ))]| vs n <= -0.4

PAPER = "zhang"


def _status_note(frame: pd.DataFrame, name: str = "the run") -> str:
    if "status" in frame and (frame["status"] == "diverged").any():
        return f"{name} diverged (NaN/inf loss); only its finite checkpoints are used"
    return ""


def _diverged(frame: pd.DataFrame) -> bool:
    return "status" in frame and bool((frame["status"] == "diverged").any())


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


#: "Final" and "at the end" mean the mean over the checkpoints of the last 10% of training.
FINAL_WINDOW = 0.1


def final_level(stats: pd.DataFrame, column: str, horizon: float) -> tuple[float, int]:
    """The level a statistic ends at: its mean over the checkpoints with epoch >= (1 − 10%) of
    ``horizon``, and how many checkpoints that is.

    Offline, the gradient norm of a run fluctuates by tens of percent from one checkpoint to the
    next (Fig. 2), far more than its standard error: one checkpoint is a single draw of that
    fluctuation, not the level at which the paper's (smooth, ImageNet-scale) curves end.
    """
    tail = stats[stats["epoch"] >= (1.0 - FINAL_WINDOW) * float(horizon) - 1e-9]
    return float(tail[column].mean()), len(tail)


def _at_epoch(stats: pd.DataFrame, epoch: float) -> pd.Series:
    """The checkpoint closest to ``epoch`` (the later one on a tie)."""
    rows = stats.sort_values("epoch")
    index = (rows["epoch"] - epoch).abs().to_numpy()
    return rows.iloc[int(np.flatnonzero(index == index.min())[-1])]


# --- Fig. 1 ---------------------------------------------------------------------------------


def claims_fig1(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``params``: ``epochs`` and ``milestones`` of the step schedule."""
    stats, log = tables["stats"].sort_values("step"), tables["train_log"]
    epochs = int(params["epochs"])
    diverged = _diverged(stats)
    status = _status_note(stats)

    early = _at_epoch(stats, 0.1 * epochs)
    end, n_end = final_level(stats, "noise_norm", epochs)
    growth = end / float(early["noise_norm"])
    noise = Claim(
        "zhang_noise_grows",
        PAPER,
        "zhang_fig1",
        "With the step schedule, the noise norm σ at the end of training (mean over the last "
        "10% of training) is at least its value at 10% of training.",
        f"σ(end) / σ(epoch {early['epoch']:g})",
        math.nan if diverged else growth,
        ">=",
        NOISE_GROWTH,
        note=_join(
            status,
            f"σ = {early['noise_norm']:.4g} -> {end:.4g} (mean of the last {n_end} "
            f"checkpoints; last checkpoint {stats['noise_norm'].iloc[-1]:.4g})",
        ),
    )

    schedule = {"name": "step", "milestones": list(params["milestones"])}
    table = phase_stability(log, phases(schedule, epochs))
    worst = float(table["rel_change"].max()) if table["rel_change"].notna().all() else math.nan
    why = ""
    if worst >= LOSS_STABLE:
        # Is the change a drift or the sampling noise of eq. (2)? An epoch of few draws makes
        # eq. (2) fluctuate from epoch to epoch by more than the 2% the claim resolves.
        failing = table[table["rel_change"] >= LOSS_STABLE]
        noisy = failing[failing["rel_epoch_sd"] >= LOSS_STABLE]
        steps = int(log.groupby("epoch")["step"].count().median())
        if len(noisy) == len(failing):
            why = (
                "does not hold because eq. (2) cannot resolve a 2% change here: in the failing "
                f"phase(s) its epoch-to-epoch sd ({noisy['rel_epoch_sd'].max():.1%}) exceeds "
                f"2%, the sampling noise of an epoch of {steps} minibatches (ImageNet: ~5000)"
            )
        else:
            why = "does not hold: the moving-average loss is still drifting at a phase's end"
    detail = ", ".join(
        f"phase {int(r.phase) + 1} (lr {r.lr:g}, epochs {int(r.start)}-{int(r.end)}): "
        f"{r.rel_change:.3%} over {int(r.window)} epoch(s), epoch-to-epoch sd {r.rel_epoch_sd:.2%}"
        for r in table.itertuples()
    )
    stable = Claim(
        "zhang_loss_stabilizes",
        PAPER,
        "zhang_fig1",
        "Within each constant-lr phase of the step schedule, the moving-average loss (eq. 2) "
        "changes by < 2% over the phase's last 10% of epochs.",
        "max over phases of |Δ eq. (2)| / eq. (2) over the last 10% of the phase",
        math.nan if diverged else worst,
        "<",
        LOSS_STABLE,
        note=_join(status, why, detail),
    )
    return [noise, stable]


# --- Fig. 2 ---------------------------------------------------------------------------------


def _views(tables, params):
    for view in params["views"]:
        stats = tables[view["table"]].sort_values("step")
        yield view, stats[stats["epoch"] <= float(view["epochs"]) + 1e-9]


def claims_fig2(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``params["views"]``: ``{"table", "lr", "epochs", "long"}`` per column of Fig. 2; a view
    may be the first ``epochs`` epochs of a longer run."""
    ratios, notes, diverged = [], [], []
    finals, lasts, medians = {}, {}, {}
    for view, stats in _views(tables, params):
        name = f"lr {view['lr']:g}, {view['epochs']} epochs"
        if _diverged(stats):
            diverged.append(name)
        last_quarter = stats[stats["epoch"] >= 0.75 * float(view["epochs"])]
        ratio = float(last_quarter["grad_norm"].median() / stats["grad_norm"].max())
        ratios.append(ratio)
        notes.append(f"{name}: {ratio:.3g}")
        if not view.get("long", False):
            finals[float(view["lr"])], _ = final_level(stats, "grad_norm", view["epochs"])
            lasts[float(view["lr"])] = float(stats["grad_norm"].iloc[-1])
            medians[float(view["lr"])] = float(last_quarter["grad_norm"].median())
    div_note = f"diverged: {', '.join(diverged)}" if diverged else ""
    persists = Claim(
        "zhang_grad_norm_persists",
        PAPER,
        "zhang_fig2",
        "In every non-interpolating constant-lr run, the median gradient norm over the last "
        "quarter of training is >= 0.2 x its maximum.",
        "min over runs of median |∇L| (last quarter) / max |∇L|",
        math.nan if diverged else min(ratios),
        ">=",
        PERSIST,
        note=_join(div_note, "; ".join(notes)),
    )
    lrs = sorted(finals)
    pairs = [finals[b] / finals[a] for a, b in itertools.pairwise(lrs)]
    monotone = Claim(
        "zhang_smaller_lr_larger_grad",
        PAPER,
        "zhang_fig2",
        "The final gradient norm (mean over the last 10% of training) is non-increasing in "
        "the constant learning rate (runs of equal length).",
        "max over consecutive lrs of |∇L|_final(larger lr) / |∇L|_final(smaller lr)",
        math.nan if diverged or not pairs else max(pairs),
        "<=",
        1.0,
        note=_join(
            div_note,
            "final (last 10%): " + ", ".join(f"lr {lr:g}: {finals[lr]:.4g}" for lr in lrs),
            "last checkpoint alone: " + ", ".join(f"lr {lr:g}: {lasts[lr]:.4g}" for lr in lrs),
            "median over the last quarter: "
            + ", ".join(f"lr {lr:g}: {medians[lr]:.4g}" for lr in lrs),
        ),
    )
    return [persists, monotone]


# --- Fig. 5, Fig. 6, Fig. 7 -----------------------------------------------------------------


def claims_fig5(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``params``: ``first_milestone`` (the end of the first phase, in epochs)."""
    stats = tables["stats"]
    first = float(params["first_milestone"])
    s = smoothness(stats, first)
    why = ""
    if not s["ratio"] <= SMOOTHER and {"lr", "sharpness"} <= set(stats.columns):
        # The last iterate fluctuates when SGD runs near the edge of stability, where the
        # sharpness reaches 2(1 + β)/η (heavy-ball momentum β); far below it, it barely moves.
        later = stats[stats["epoch"] > first]
        beta = float(params.get("momentum", 0.0))
        edge = (2 * (1 + beta) / later["lr"]).median()
        sharpness = later["sharpness"].median()
        why = (
            "does not hold: eq. (3) fluctuates no more than eq. (2) because after the first "
            f"phase the last iterate hardly moves: median sharpness {sharpness:.3g} against "
            f"the stability edge 2(1+β)/η = {edge:.3g}, and both curves carry the same "
            "sampling noise of the epoch's draws"
        )
    return [
        Claim(
            "zhang_moving_average_smoother",
            PAPER,
            "zhang_fig5",
            "After the first phase, the mean |change| between consecutive checkpoints of the "
            "moving-average loss (eq. 2) is <= 0.5 x that of the last-iterate loss (eq. 3).",
            "mean |Δ eq. (2)| / mean |Δ eq. (3)|",
            s["ratio"],
            "<=",
            SMOOTHER,
            note=_join(
                _status_note(stats),
                why,
                f"{s['pairs']} checkpoint pairs; mean |Δ| eq. (2) {s['eq2']:.4g}, "
                f"eq. (3) {s['eq3']:.4g}",
            ),
        )
    ]


def claims_fig6(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    stats = tables["stats"].sort_values("step")
    final, n_final = final_level(stats, "grad_norm", float(stats["epoch"].iloc[-1]))
    peak = float(stats["grad_norm"].max())
    return [
        Claim(
            "zhang_grad_norm_vanishes_when_interpolating",
            PAPER,
            "zhang_fig6",
            "When the model interpolates, the final gradient norm (mean over the last 10% of "
            "training) is <= 0.01 x its maximum.",
            "|∇L|_final / max |∇L|",
            math.nan if _diverged(stats) else final / peak,
            "<=",
            VANISH,
            note=_join(
                _status_note(stats),
                f"|∇L| {peak:.4g} (max) -> {final:.4g} (mean of the last {n_final} "
                f"checkpoints; at epoch {stats['epoch'].iloc[-1]:g}: "
                f"{stats['grad_norm'].iloc[-1]:.4g}); final loss {stats['loss'].iloc[-1]:.3g}",
            ),
        )
    ]


def claims_fig7(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    sweep = tables["sweep"]
    sizes = sorted(sweep["n_samples"].unique())
    changes, notes = [], []
    for (quantity, estimator), group in sweep.groupby(["quantity", "estimator"], sort=True):
        values = group.set_index("n_samples")["value"]
        a, b = float(values.loc[sizes[-2]]), float(values.loc[sizes[-1]])
        change = abs(b - a) / abs(b) if b != 0 else math.inf
        changes.append(change)
        notes.append(f"{quantity} ({estimator}): {change:.2%}")
    return [
        Claim(
            "zhang_estimators_converge",
            PAPER,
            "zhang_fig7",
            "Each estimated statistic (loss, gradient norm, noise norm, sharpness; the paper's "
            "and the unbiased estimator) changes by < 5% between the two largest sample sizes.",
            f"max relative change between m = {sizes[-2]} and m = {sizes[-1]}",
            max(changes),
            "<",
            CONVERGE,
            note=_join(_status_note(sweep), "; ".join(notes)),
        )
    ]


# --- Thm. 4.3 and eq. (10) ------------------------------------------------------------------


def claims_thm43(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    table = tables["thm43"]
    slopes, notes = [], []
    for (_run_id, lr), curve in table.groupby(["run_id", "lr"], sort=False):
        slope, _ = loglog_slope(curve["n"], curve["realized"])
        independent, _ = loglog_slope(curve["n"], curve["independent"])
        slopes.append(slope)
        notes.append(f"lr {lr:g}: {slope:.3g} (independent-update estimate {independent:.3g})")
    diverged = _diverged(table)
    return [
        Claim(
            "zhang_time_average_rate",
            PAPER,
            "zhang_thm43",
            "Along every constant-lr run, the fitted log-log slope of the time-averaged one-step "
            "loss change |E_{μ_n}[L(θ) − L(F(θ))]| against n is <= -0.4 (Thm. 4.3: O(n^-1/2)).",
            "max over runs of the log-log slope",
            math.nan if diverged else max(slopes),
            "<=",
            RATE,
            note=_join(_status_note(table, "a run"), "; ".join(notes)),
        )
    ]


def claims_eq10(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """One reported row per constant-lr run: mean |∇L|² / mean(η 𝓛 G²) over the run's second
    half. ``params["momentum"]`` β: with heavy-ball momentum the effective step is η/(1 − β)."""
    table = tables["eq10"]
    beta = float(params.get("momentum", 0.0))
    rows = []
    for (_run_id, lr), terms in table.groupby(["run_id", "run_lr"], sort=False):
        r = eq10_ratio(terms)
        rows.append(
            Claim(
                "zhang_eq10_ratio",
                PAPER,
                "zhang_eq10",
                "Eq. (10), (∇)² = η 𝓛 G², in expectation: |∇L|² against η · sharpness · G² "
                "(reported, one row per constant-lr run).",
                f"mean |∇L|² / mean(η·λ·G²), lr {lr:g}, second half ({r['n']} checkpoints)",
                r["ratio"],
                "report",
                None,
                note=_join(
                    _status_note(terms),
                    f"|∇L|² {r['lhs']:.4g}, η·λ·G² {r['rhs']:.4g}; with the momentum step "
                    f"η/(1−β) (β = {beta:g}) the ratio is {r['ratio'] * (1 - beta):.4g}",
                ),
            )
        )
    return rows
