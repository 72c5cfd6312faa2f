"""Claims of the language track of Zhang et al. (2022): ``zhang_fig3`` (Transformer-XL, Sec. 3.2)
and ``zhang_fig8`` (estimates against sample size, App. A.2), from their tidy tables
(ARTIFACTS.md; the claim ids are shared with the vision artifacts, each row names its artifact).

* ``zhang_grad_norm_persists`` (fig3): in every constant-lr run the median |∇L| over the last
  quarter of the steps, at its 2-SE lower bound, is >= 0.2 x its maximum;
* ``zhang_loss_stabilizes`` (fig3): in every constant-lr run (the cosine run has no constant-lr
  phase) eq. (2) over the last 10% of the steps moves by < 2% against the 10% before, at the
  2-SE upper bound (the windows are whole epochs where an epoch is short enough, so both read the
  same text: the text's difficulty varies along a stream and would otherwise move eq. (2)); a loss
  still falling steadily (a resolved fall of >= 1% per window, at least half the previous
  window's) reads "unresolved" whatever the threshold says;
* ``zhang_plugin_bias`` (fig3, reported per run): the share of the plug-in |ḡ|² that is
  estimator bias, (1 − m/N) σ²/m ÷ |ḡ|², over the last 10% of the steps;
* ``zhang_estimators_converge`` (fig8): every estimate changes by < 5% between the size the
  per-checkpoint statistics use and the largest of the sweep, at both swept checkpoints.

The 2-SE rule (ARTIFACTS.md): a change or ordering counts only beyond twice its standard error,
else the row reads "unresolved" (holds = False) with the numbers; windows are equal in length
and named in the row. The SE of a window's median or mean includes the spread between its
checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sgdconv.claims import Claim

PAPER = "zhang"
Z = 2.0  # the 2-SE rule
PERSIST = 0.2  # median |∇L| over the last quarter >= 0.2 x max
LOSS_STABLE = 0.02  # |Δ eq. (2)| over the last 10% < 2%
FINAL = 0.1  # the last 10% of the steps
BLOCKS = 10  # block means per window (the SE of a mean of autocorrelated minibatch losses)
CONVERGE = 0.05  # estimates change < 5% from the per-checkpoint size to the largest
CONVERGE_ROWS = (
    ("loss", "plugin"),
    ("loss", "authors"),
    ("grad_norm", "plugin"),
    ("grad_norm", "unbiased"),
    ("grad_norm", "authors"),
    ("noise_norm", "plugin"),
    ("noise_norm", "unbiased"),
    ("noise_norm_minibatch", "authors"),
    ("sharpness", "plugin"),
)


@dataclass(frozen=True)
class Level:
    """A statistic over the checkpoints with ``lo < step <= hi``: its mean or median and SE."""

    value: float
    se: float
    n: int
    lo: int
    hi: int
    how: str

    def describe(self) -> str:
        return (
            f"{self.value:.4g} ± {self.se:.2g} ({self.how} of {self.n} checkpoints, "
            f"steps {self.lo}–{self.hi}]"
        )


def level(stats: pd.DataFrame, column: str, lo: float, hi: float, how: str = "mean") -> Level:
    """``column`` over ``lo < step <= hi``; SE: the between-checkpoint spread / √n (× √(π/2)
    for a median), or the RMS of ``<column>_se`` / √n where that is larger; NaN for n < 2."""
    rows = stats[(stats["step"] > lo) & (stats["step"] <= hi)]
    values = rows[column].to_numpy(dtype=float)
    keep = np.isfinite(values)
    values, n = values[keep], int(keep.sum())
    if n == 0:
        return Level(math.nan, math.nan, 0, int(lo), int(hi), how)
    value = float(np.mean(values) if how == "mean" else np.median(values))
    se = math.nan
    if n >= 2:
        se = float(np.std(values, ddof=1) / math.sqrt(n)) * (
            1.0 if how == "mean" else math.sqrt(math.pi / 2)
        )
        if f"{column}_se" in rows:
            within = rows[f"{column}_se"].to_numpy(dtype=float)[keep]
            within = within[np.isfinite(within)]
            if len(within):
                se = max(se, float(np.sqrt(np.mean(within**2)) / math.sqrt(n)))
    return Level(value, se, n, int(lo), int(hi), how)


def _diverged(frame: pd.DataFrame) -> bool:
    return "status" in frame and bool((frame["status"] == "diverged").any())


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _constant_runs(params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in params["runs"] if r["schedule"] == "constant"]


# --- Fig. 3 ---------------------------------------------------------------------------------


def claims_fig3(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``tables``: ``<name>`` (a run's ``stats.parquet``) and ``<name>_log`` (its train log)
    for every run of ``params["runs"]`` (``{"name", "schedule", "lr", "max_steps"}``)."""
    rows = [grad_norm_persists(tables, params), loss_stabilizes(tables, params)]
    for run in params["runs"]:
        rows.append(plugin_bias(tables[run["name"]], run))
    return rows


def grad_norm_persists(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> Claim:
    ratios, notes, bad = [], [], []
    for run in _constant_runs(params):
        stats, total = tables[run["name"]], int(run["max_steps"])
        if _diverged(stats):
            bad.append(f"lr {run['lr']:g}")
        last = level(stats, "grad_norm", 0.75 * total, total, how="median")
        peak = float(stats["grad_norm"].max())
        ratios.append((last.value - Z * last.se) / peak)
        notes.append(f"lr {run['lr']:g}: median {last.describe()}, max {peak:.3g}")
    return Claim(
        "zhang_grad_norm_persists",
        PAPER,
        "zhang_fig3",
        "In every constant-lr Transformer-XL run, the median gradient norm over the last "
        "quarter of the steps, at its 2-SE lower bound, is >= 0.2 x its maximum.",
        "min over runs of (median |∇L| last quarter − 2 SE) / max |∇L|",
        math.nan if bad or not ratios else min(ratios),
        ">=",
        PERSIST,
        note=_join(f"diverged: {', '.join(bad)}" if bad else "", "; ".join(notes)),
    )


def window_length(total: int, steps_per_epoch: int | None) -> int:
    """The steps of the last-10% window: whole epochs (at least one) where an epoch is at most
    15% of the run, so that the two windows read the same text; else 10% of the steps."""
    if steps_per_epoch and steps_per_epoch <= 1.5 * FINAL * total:
        return max(1, round(FINAL * total / steps_per_epoch)) * steps_per_epoch
    return max(BLOCKS, round(FINAL * total))


def window_change(log: pd.DataFrame, end: int, length: int) -> tuple[float, float]:
    """Eq. (2) over steps (end − length, end] against the ``length`` steps before, as the
    relative change and its SE: the mean of the paired differences ℓ_k − ℓ_{k − length} (the
    same text when ``length`` is whole epochs), SE from ``BLOCKS`` block means of them."""
    loss = log.set_index("step")["minibatch_loss"]
    last = loss.reindex(range(end - length + 1, end + 1)).to_numpy(dtype=float)
    before = loss.reindex(range(end - 2 * length + 1, end - length + 1)).to_numpy(dtype=float)
    blocks = np.array([b.mean() for b in np.array_split(last - before, BLOCKS)])
    level = float(before.mean())
    return float((last - before).mean()) / level, float(blocks.std(ddof=1)) / math.sqrt(
        BLOCKS
    ) / abs(level)


def stability(log: pd.DataFrame, total: int, steps_per_epoch: int | None = None) -> dict[str, Any]:
    """The last window's change of eq. (2), the previous window's, and the decision on
    "|change| < 2%" with the steady-fall guard (module docstring)."""
    length = window_length(total, steps_per_epoch)
    if total < 3 * length or not np.isfinite(log["minibatch_loss"]).all():
        return {
            "decision": "unresolved",
            "why": "fewer than three finite windows",
            "upper": math.nan,
        }
    change, se = window_change(log, total, length)
    previous, se_prev = window_change(log, total - length, length)
    upper = abs(change) + Z * se
    decision = "holds" if upper < LOSS_STABLE else "unresolved"
    if abs(change) - Z * se >= LOSS_STABLE:
        decision = "fails"
    steady = (
        change < -Z * se
        and previous < -Z * se_prev
        and -change >= LOSS_STABLE / 2
        and change <= 0.5 * previous
    )
    why = ""
    if steady and decision == "holds":
        decision, why = "unresolved", "still falling steadily"
    epochs = (
        f", {length // steps_per_epoch} epoch(s)"
        if steps_per_epoch and not length % steps_per_epoch
        else ""
    )
    detail = (
        f"{change:+.2%} ± {se:.2%} over steps {total - length}–{total} vs the {length} before"
        f"{epochs} (previous window {previous:+.2%} ± {se_prev:.2%})"
    )
    return {"decision": decision, "why": why, "upper": upper, "detail": detail}


def loss_stabilizes(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> Claim:
    uppers, decisions, notes = [], [], []
    for run in _constant_runs(params):
        log = tables[f"{run['name']}_log"].sort_values("step")
        stats = tables[run["name"]]
        spe = int(stats["steps_per_epoch"].iloc[0]) if "steps_per_epoch" in stats else None
        s = stability(log, int(run["max_steps"]), spe)
        uppers.append(s["upper"])
        decisions.append(s["decision"])
        notes.append(f"lr {run['lr']:g}: {s.get('detail', '')} {s['why']}".strip())
    if "fails" in decisions:
        verdict = "does not hold: eq. (2) still changes by more than 2% beyond 2 SE"
    elif any(d != "holds" for d in decisions):
        verdict = "unresolved (counts as not holding): a change's 2-SE interval reaches 2%"
        if any("steadily" in n for n in notes):
            verdict = "unresolved (counts as not holding): the loss is still falling steadily"
    else:
        verdict = ""
    value = max(uppers) if uppers else math.nan
    if decisions and set(decisions) != {"holds"} and math.isfinite(value):
        value = max(value, LOSS_STABLE)  # a run still falling steadily never reads as holding
    return Claim(
        "zhang_loss_stabilizes",
        PAPER,
        "zhang_fig3",
        "In every constant-lr Transformer-XL run, the moving-average loss (eq. 2) over the last "
        "10% of the steps differs by < 2% from its mean over the 10% before (2-SE upper bound), "
        "and is not still falling steadily (a resolved fall of >= 1% per window that has not "
        "slowed to half the previous window's).",
        "max over constant-lr runs of (|Δ eq. (2)| + 2 SE) / eq. (2) (raised to 2% where a "
        "run is still falling steadily)",
        value,
        "<",
        LOSS_STABLE,
        note=_join(verdict, "; ".join(notes), "the cosine run has no constant-lr phase"),
    )


def plugin_bias(stats: pd.DataFrame, run: Mapping[str, Any]) -> Claim:
    """Reported: (1 − m/N) σ²/m over |ḡ|², means over the last 10% of the steps."""
    frame = stats.copy()
    m, big_n = frame["n_samples"].astype(float), frame["population_size"].astype(float)
    frame["bias"] = (1 - m / big_n) * frame["noise_norm_sq"] / m
    frame["plugin_sq"] = frame["grad_norm_plugin"] ** 2
    total = int(run["max_steps"])
    bias = level(frame, "bias", (1 - FINAL) * total, total)
    plugin = level(frame, "plugin_sq", (1 - FINAL) * total, total)
    label = f"{run['schedule']} lr {run['lr']:g}"
    return Claim(
        "zhang_plugin_bias",
        PAPER,
        "zhang_fig3",
        "Reported: at the end of each run, the share of the paper's plug-in |ḡ|² that is "
        "estimator bias, (1 − m/N) σ²/m ÷ |ḡ|², for the tier's sample of m segments.",
        f"bias share of |ḡ|², {label} (m = {m.iloc[-1]:.0f} segments)",
        bias.value / plugin.value if plugin.value > 0 else math.nan,
        "report",
        None,
        note=f"bias {bias.describe()} of |ḡ|² {plugin.describe()}",
    )


# --- Fig. 8 ---------------------------------------------------------------------------------


def convergence_table(sweep: pd.DataFrame, chosen: int, sharpness_chosen: int) -> pd.DataFrame:
    """Per swept checkpoint and (quantity, estimator) of :data:`CONVERGE_ROWS`: the estimate
    at the largest swept size <= the per-checkpoint size (tokens; ``sharpness_chosen`` for the
    sharpness) against the largest size: ``change`` = |v_m − v_M| / |v_M| and its SE,
    √(se_m² − se_M²) / |v_M| (nested samples; 0 where the sweep has none), and the decision on
    "change < 5%" by the 2-SE rule. A pair whose sweep does not reach past the per-checkpoint
    size tests nothing and is left out (the claim then needs the others)."""
    rows = []
    for (step, quantity, estimator), group in sweep.groupby(["step", "quantity", "estimator"]):
        if (quantity, estimator) not in CONVERGE_ROWS:
            continue
        group = group.sort_values("n_tokens")
        size = sharpness_chosen if quantity == "sharpness" else chosen
        small = group[group["n_tokens"] <= size]
        if small.empty:
            continue
        a, b = small.iloc[-1], group.iloc[-1]
        if int(a["n_tokens"]) == int(b["n_tokens"]):
            continue  # no larger size to compare with: nothing tested (the sweep must reach past)
        scale = abs(float(b["value"]))
        change = abs(float(a["value"]) - float(b["value"])) / scale if scale > 0 else math.inf
        var = np.nan_to_num(float(a["se"]) ** 2) - np.nan_to_num(float(b["se"]) ** 2)
        se = math.sqrt(max(var, 0.0)) / scale if scale > 0 else math.nan
        decision = "holds" if change + Z * se < CONVERGE else "unresolved"
        decision = "fails" if change - Z * se >= CONVERGE else decision
        sizes = (int(a["n_tokens"]), int(b["n_tokens"]))
        rows.append((int(step), quantity, estimator, *sizes, change, se, decision))
    columns = ["step", "quantity", "estimator", "tokens", "largest", "change", "se", "decision"]
    return pd.DataFrame(rows, columns=columns)


def claims_fig8(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``tables``: the sweeps (names starting with ``sweep``); ``params``: ``chosen_tokens``
    and ``sharpness_tokens`` (the per-checkpoint sample sizes, in tokens)."""
    sweep = pd.concat([t for name, t in tables.items() if name.startswith("sweep")])
    table = convergence_table(sweep, int(params["chosen_tokens"]), int(params["sharpness_tokens"]))
    upper = table["change"] + Z * table["se"]
    failing = table[table["decision"] != "holds"]
    if (table["decision"] == "fails").any():
        verdict = "does not hold: some estimates change by more than 5% beyond 2 SE: "
    elif len(failing) or table.empty:
        verdict = "unresolved (counts as not holding): some changes are within 2 SE of 5%: "
    else:
        verdict = ""
    return [
        Claim(
            "zhang_estimators_converge",
            PAPER,
            "zhang_fig8",
            "Each estimate (loss, gradient norm, noise norm, sharpness; plug-in, unbiased and "
            "the authors' estimator) changes by < 5% between the sample size (tokens) the "
            "per-checkpoint statistics use and the largest of the sweep, at the sweep checkpoint "
            "and at the final one (2-SE upper bound).",
            "max relative change + 2 SE, from the per-checkpoint size to the largest",
            float(upper.max()) if len(table) else math.nan,
            "<",
            CONVERGE,
            note=_join(
                "diverged run" if _diverged(sweep) else "",
                verdict + _list(failing) if verdict else "",
                "all: " + _list(table),
            ),
        )
    ]


def _list(table: pd.DataFrame) -> str:
    return ", ".join(
        f"{r.quantity} ({r.estimator}, step {r.step}, {r.tokens} -> {r.largest} tokens): "
        f"{r.change:.1%} ± {r.se:.1%}"
        for r in table.itertuples()
    )
