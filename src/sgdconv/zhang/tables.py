"""Derived tidy tables of the vision track, built from the runs' ``stats.parquet`` by the rules
``zhang_thm43_table`` and ``zhang_eq10_table`` (so that the notebooks only read and plot).

Each function takes ``{run_id: stats frame}`` and ``{run_id: lr}`` of the constant-lr runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from sgdconv.zhang.eq10 import eq10_terms
from sgdconv.zhang.thm43 import loglog_slope, slope_interval, time_average_change

THM43_COLUMNS = [
    "run_id",
    "lr",
    "status",
    "n",
    "epoch",
    "change",
    "change_se",
    "between_sd",
    "independent",
    "independent_se",
    "realized",
    "slope",
    "intercept",
    "slope_lo",
    "slope_hi",
    "points",
    "slope_realized",
    "intercept_realized",
]


def _status(frame: pd.DataFrame) -> str:
    return str(frame["status"].iloc[0]) if "status" in frame else "completed"


def thm43_table(stats: Mapping[str, pd.DataFrame], lrs: Mapping[str, float]) -> pd.DataFrame:
    """A_n = E_{μ_n}[L(θ) − L(F(θ))] against n for each run (Thm. 4.3;
    :func:`sgdconv.zhang.thm43.time_average_change`), with the log-log fit of |A_n| and its
    bootstrap interval (:func:`sgdconv.zhang.thm43.slope_interval`) and the fit of the
    telescoping reference ``realized``, repeated on every row of the run."""
    frames = []
    for run_id, frame in stats.items():
        curve = time_average_change(frame)
        curve.insert(0, "run_id", run_id)
        curve.insert(1, "lr", float(lrs[run_id]))
        curve.insert(2, "status", _status(frame))
        fit = slope_interval(curve)
        curve["slope"], curve["intercept"] = fit.slope, fit.intercept
        curve["slope_lo"], curve["slope_hi"], curve["points"] = fit.lo, fit.hi, fit.points
        slope, intercept = loglog_slope(curve["n"], curve["realized"])
        curve["slope_realized"], curve["intercept_realized"] = slope, intercept
        frames.append(curve)
    return pd.concat(frames, ignore_index=True)[THM43_COLUMNS]


def eq10_table(stats: Mapping[str, pd.DataFrame], lrs: Mapping[str, float]) -> pd.DataFrame:
    """Both sides of eq. (10) at every checkpoint of each run
    (:func:`sgdconv.zhang.eq10.eq10_terms`), with ``run_id``, the run's ``run_lr`` and
    ``status``."""
    frames = []
    for run_id, frame in stats.items():
        terms = eq10_terms(frame)
        terms.insert(0, "run_id", run_id)
        terms.insert(1, "run_lr", float(lrs[run_id]))
        terms.insert(2, "status", _status(frame))
        frames.append(terms)
    return pd.concat(frames, ignore_index=True)
