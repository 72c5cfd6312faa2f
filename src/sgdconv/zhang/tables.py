"""Derived tidy tables of the vision track, built from the runs' ``stats.parquet`` by the rules
``zhang_thm43_table`` and ``zhang_eq10_table`` (so that the notebooks only read and plot).

Each function takes ``{run_id: stats frame}`` and ``{run_id: lr}`` of the constant-lr runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from sgdconv.zhang.analysis import eq10_terms, loglog_slope, time_average_change

THM43_COLUMNS = [
    "run_id",
    "lr",
    "status",
    "n",
    "epoch",
    "realized",
    "independent",
    "slope_realized",
    "intercept_realized",
    "slope_independent",
    "intercept_independent",
]


def thm43_table(stats: Mapping[str, pd.DataFrame], lrs: Mapping[str, float]) -> pd.DataFrame:
    """E_{μ_n}[L(θ) − L(F(θ))] against n for each run (Thm. 4.3), with the least-squares
    log-log fits of |·| against n of both estimates (see
    :func:`sgdconv.zhang.analysis.time_average_change`)."""
    frames = []
    for run_id, frame in stats.items():
        curve = time_average_change(frame)
        curve.insert(0, "run_id", run_id)
        curve.insert(1, "lr", float(lrs[run_id]))
        curve.insert(2, "status", frame["status"].iloc[0] if "status" in frame else "completed")
        for column in ("realized", "independent"):
            slope, intercept = loglog_slope(curve["n"], curve[column])
            curve[f"slope_{column}"] = slope
            curve[f"intercept_{column}"] = intercept
        frames.append(curve)
    return pd.concat(frames, ignore_index=True)[THM43_COLUMNS]


def eq10_table(stats: Mapping[str, pd.DataFrame], lrs: Mapping[str, float]) -> pd.DataFrame:
    """Both sides of eq. (10) at every checkpoint of each run
    (:func:`sgdconv.zhang.analysis.eq10_terms`), with ``run_id``, the run's ``run_lr`` and
    ``status``."""
    frames = []
    for run_id, frame in stats.items():
        terms = eq10_terms(frame)
        terms.insert(0, "run_id", run_id)
        terms.insert(1, "run_lr", float(lrs[run_id]))
        terms.insert(2, "status", frame["status"].iloc[0] if "status" in frame else "completed")
        frames.append(terms)
    return pd.concat(frames, ignore_index=True)
