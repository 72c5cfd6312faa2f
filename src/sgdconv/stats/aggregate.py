"""``runs/<id>/stats.parquet``: the per-checkpoint rows of a run joined into one table, with the
loss curves of eq. (2) and eq. (3) (Zhang et al. Fig. 5)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


STATS_COLUMNS = [
    "step",
    "epoch",
    "loss_last",
    "loss_moving_avg",
    "grad_norm",
    "grad_norm_se",
    "noise_norm",
    "noise_norm_se",
    "sharpness",
    "sharpness_residual",
    "sharpness_converged",
    "n_samples",
    "val_acc",
    "val_loss",
]


def aggregate_statistics(
    rows: Sequence[pd.DataFrame], train_log: pd.DataFrame, manifest: Mapping[str, Any]
) -> pd.DataFrame:
    """The run's ``stats.parquet``: one row per checkpoint, by step.

    ``loss_moving_avg`` is eq. (2) (:func:`sgdconv.stats.loss_moving_avg`) of the epoch that
    ends at the checkpoint, over that epoch's steps (NaN at step 0 and at checkpoints inside an
    epoch); ``loss_last`` is eq. (3) at the checkpoint, on the fixed sample. Adds ``run_id``,
    ``status`` (completed/diverged: a diverged run has the rows of its finite checkpoints) and
    the per-checkpoint extras (lr, the paper's plug-in gradient norm, squared estimates, the
    one-step loss change of Thm. 4.3). ``sharpness_converged`` says whether the sharpness
    reached its tolerance (``sharpness_residual <= sharpness_tol``) within its budget of
    Hessian-vector products: where it did not, ``sharpness`` is a lower estimate of λ_max.
    """
    from sgdconv.stats import loss_moving_avg

    # Empty tables (checkpoints after a divergence) add no rows, only dtype ambiguity.
    tables = [r for r in rows if len(r)] or list(rows)
    frame = pd.concat(tables, ignore_index=True).sort_values("step").reset_index(drop=True)
    finite_log = train_log[np.isfinite(train_log["minibatch_loss"])]
    moving = loss_moving_avg(finite_log) if len(finite_log) else None
    frame["loss_moving_avg"] = math.nan
    if moving is not None:
        complete = moving[moving["n_steps"] == int(manifest["steps_per_epoch"])]
        by_last = dict(zip(complete["last_step"], complete["loss_moving_avg"], strict=True))
        frame["loss_moving_avg"] = frame["step"].map(by_last).astype(float)
    frame["run_id"] = manifest["run_id"]
    frame["status"] = manifest["status"]
    extras = [c for c in frame.columns if c not in STATS_COLUMNS]
    for column in STATS_COLUMNS:
        if column not in frame:
            frame[column] = math.nan
    # A flag, never missing: a sharpness that was not computed did not converge either.
    frame["sharpness_converged"] = frame["sharpness_converged"].eq(True)
    return frame[STATS_COLUMNS + extras]
