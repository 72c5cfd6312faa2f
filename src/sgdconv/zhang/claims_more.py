"""Claims of ``zhang_fig7`` (estimators vs sample size), ``zhang_thm43`` (Thm. 4.3) and
``zhang_eq10`` (eq. (10)); re-exported by :mod:`sgdconv.zhang.claims`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from sgdconv.claims import Claim
from sgdconv.zhang.common import PAPER, diverged, join, status_note
from sgdconv.zhang.eq10 import BALANCES, eq10_ratio
from sgdconv.zhang.windows import Z, below_decision, combine, verdict

CONVERGE = 0.05  # estimates change < 5% from the checkpoints' size to the largest
RATE = -0.4  # log-log slope of |E_{μ_n}[L(θ) − L(F(θ))]| vs n <= -0.4
#: The (quantity, estimator) pairs whose convergence Fig. 7 tests (|∇L|² is plotted only).
CONVERGE_QUANTITIES = ("loss", "grad_norm", "noise_norm", "sharpness")


# --- Fig. 7 ---------------------------------------------------------------------------------


def convergence_table(sweep: pd.DataFrame, chosen: int, sharpness_size: int) -> pd.DataFrame:
    """Per checkpoint and (quantity, estimator): the estimate at the size the per-checkpoint
    statistics use (the largest swept size <= ``chosen``, or <= ``sharpness_size`` for the
    sharpness) against the largest size of the sweep: ``change`` = |v_m − v_M| / |v_M| and
    ``se`` its standard error, √(se_m² − se_M²) / |v_M| (nested samples; 0 where the sweep has
    no SE), and the 2-SE ``decision`` on "change < 5%"."""
    rows = []
    keys = ["step", "quantity", "estimator"] if "step" in sweep else ["quantity", "estimator"]
    for key, group in sweep[sweep["quantity"].isin(CONVERGE_QUANTITIES)].groupby(keys):
        step = key[0] if len(keys) == 3 else math.nan
        quantity, estimator = key[-2], key[-1]
        group = group.sort_values("n_samples")
        size = sharpness_size if quantity == "sharpness" else chosen
        small = group[group["n_samples"] <= size]
        if small.empty:
            continue
        a, b = small.iloc[-1], group.iloc[-1]
        scale = abs(float(b["value"]))
        change = abs(float(a["value"]) - float(b["value"])) / scale if scale > 0 else math.inf
        var = np.nan_to_num(float(a["se"]) ** 2) - np.nan_to_num(float(b["se"]) ** 2)
        se = math.sqrt(max(var, 0.0)) / scale if scale > 0 else math.nan
        epoch = float(group["epoch"].iloc[0]) if "epoch" in group else math.nan
        sizes = (int(a["n_samples"]), int(b["n_samples"]))
        decision = below_decision(change, se, CONVERGE)
        rows.append((step, epoch, quantity, estimator, *sizes, change, se, decision))
    columns = ["step", "epoch", "quantity", "estimator", "m", "largest", "change", "se"]
    return pd.DataFrame(rows, columns=[*columns, "decision"])


def claims_fig7(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``tables``: the sweeps (every table whose name starts with ``sweep``: the sweep
    checkpoint and the final one); ``params``: ``chosen_size`` and ``sharpness_size`` (the
    per-checkpoint sample sizes). The sharpness has no standard error: its change is taken as
    exact, as the note says."""
    sweep = pd.concat([t for name, t in tables.items() if name.startswith("sweep")])
    chosen = int(params["chosen_size"])
    table = convergence_table(sweep, chosen, int(params.get("sharpness_size") or chosen))
    upper = table["change"] + Z * table["se"]
    decisions = set(table["decision"])
    decision = combine(list(decisions))
    failing = table[table["decision"] != "holds"]
    why = verdict(
        decision,
        "some estimates still change by more than 5% (beyond 2 SE): "
        + _list(failing[failing["decision"] == "fails"]),
        "some changes are within 2 SE of 5%: " + _list(failing),
    )
    return [
        Claim(
            "zhang_estimators_converge",
            PAPER,
            "zhang_fig7",
            "Each estimate (loss, gradient norm, noise norm, sharpness; plug-in, unbiased and "
            "the authors' estimator) changes by < 5% between the sample size the per-checkpoint "
            "statistics use and the largest size of the sweep, at the sweep checkpoint and at "
            "the final checkpoint (2-SE upper bound).",
            "max relative change + 2 SE, from the checkpoints' size to the largest",
            float(upper.max(skipna=False)) if len(table) else math.nan,
            "<",
            CONVERGE,
            note=join(status_note(sweep), why, "all (the sharpness has no SE): " + _list(table)),
        )
    ]


def _list(table: pd.DataFrame) -> str:
    return ", ".join(
        f"{r.quantity} ({r.estimator}, epoch {r.epoch:g}, m {r.m} -> {r.largest}): "
        f"{r.change:.1%} ± {r.se:.1%}"
        for r in table.itertuples()
    )


# --- Thm. 4.3 -------------------------------------------------------------------------------


def claims_thm43(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``tables["thm43"]`` from :func:`sgdconv.zhang.tables.thm43_table` (one fit per run)."""
    table = tables["thm43"]
    fits = table.groupby(["run_id", "lr"], sort=False).first().reset_index()
    decisions, notes = [], []
    for fit in fits.itertuples():
        if not (math.isfinite(fit.slope_lo) and math.isfinite(fit.slope_hi)):
            decisions.append("unresolved")
        elif fit.slope_hi <= RATE:
            decisions.append("holds")
        elif fit.slope_lo > RATE:
            decisions.append("fails")
        else:
            decisions.append("unresolved")
        notes.append(
            f"lr {fit.lr:g}: slope {fit.slope:.2f} [{fit.slope_lo:.2f}, {fit.slope_hi:.2f}] "
            f"over {fit.points} checkpoints, one-step change varying by {fit.between_sd:.2g} "
            f"between checkpoints (telescoping term: {fit.slope_realized:.2f})"
        )
    decision = combine(decisions)
    why = verdict(
        decision,
        "in some run the whole 95% interval of the slope is above −0.4: the time-averaged "
        "one-step change under independent steps does not decay like n^-1/2",
        "in some run the 95% interval of the slope contains −0.4 (the one-step change varies "
        "from checkpoint to checkpoint far more than its time average, so the average over the "
        "checkpoints is known only to about that spread / √checkpoints)",
    )
    return [
        Claim(
            "zhang_time_average_rate",
            PAPER,
            "zhang_thm43",
            "Along every constant-lr run, the time average over the iterates of L(θ) − L(F(θ)), "
            "with F an independent SGD step from θ (Thm. 4.3's quantity), decays with a fitted "
            "log-log slope <= −0.4 against n: the upper end of the slope's 95% interval.",
            "max over runs of the upper end of the slope's 95% interval",
            math.nan if diverged(table) else float(fits["slope_hi"].max(skipna=False)),
            "<=",
            RATE,
            note=join(status_note(table, "a run"), why, "; ".join(notes)),
        )
    ]


# --- eq. (10) -------------------------------------------------------------------------------


def claims_eq10(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """Reported rows per constant-lr run: |∇L|² over each right-hand side of
    :data:`sgdconv.zhang.eq10.BALANCES` (the paper's eq. (10) with the directional sharpness,
    with λ_max, and the momentum-consistent balance), means over the run's second half."""
    table = tables["eq10"]
    rows = []
    for (_run_id, lr), terms in table.groupby(["run_id", "run_lr"], sort=False):
        r = eq10_ratio(terms)
        for name, (_, label) in BALANCES.items():
            rows.append(
                Claim(
                    "zhang_eq10_ratio",
                    PAPER,
                    "zhang_eq10",
                    "Eq. (10), (∇)² = η 𝓛 G², in expectation: |∇L|² against η 𝓛 G² with 𝓛 the "
                    "sharpness along the stochastic gradient (and with λ_max), and against the "
                    "momentum-consistent balance (reported, per constant-lr run).",
                    f"mean |∇L|² / mean rhs, {label}, lr {lr:g}, epochs >= {r['from_epoch']:g}",
                    r[f"ratio_{name}"],
                    "report",
                    None,
                    note=join(
                        status_note(terms),
                        f"|∇L|² {r['lhs']:.3g}, rhs {r[f'rhs_{name}']:.3g}; 𝓛 (directional) "
                        f"{r['directional_sharpness']:.3g}, λ_max {r['sharpness']:.3g}; "
                        f"{r['n']} checkpoints",
                    ),
                )
            )
    return rows
