"""Claim of ``anlu_noise`` (ARTIFACTS.md): machine-learning noise in the interpolating run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from sgdconv.anlu.noise import MAX_SPREAD, MIN_LOSS_FALL, spread_while_falling
from sgdconv.claims import Claim


def claims_anlu_noise(tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> list[Claim]:
    """``anlu_ml_noise_scales_with_loss``: in the interpolating run, σ²/F stays within a factor
    10 (max/min over the checkpoints) while F falls by >= 1e4. If F does not fall that far the
    claim does not hold (the metric is then NaN and the note gives the fall)."""
    spread, fall = spread_while_falling(tables["interpolating"])
    other_spread, other_fall = spread_while_falling(tables["non_interpolating"])
    enough = math.isfinite(fall) and fall >= MIN_LOSS_FALL
    note = (
        f"F fell by {fall:.3g} (needs >= {MIN_LOSS_FALL:g}); non-interpolating run: F fell by "
        f"{other_fall:.3g}, σ²/F spread {other_spread:.3g}"
    )
    if not enough:
        note = "does not hold: F did not fall by 1e4 in the interpolating run; " + note
    for name, stats in tables.items():
        if "status" in stats and (stats["status"] == "diverged").any():
            note = f"the {name.replace('_', '-')} run diverged (NaN/inf loss); " + note
    return [
        Claim(
            "anlu_ml_noise_scales_with_loss",
            "anlu",
            "anlu_noise",
            "In the interpolating run (d >= n, Chatterjee initialization), the per-sample "
            "noise σ² of eq. (1) over the loss F stays within a factor 10 while F falls by "
            ">= 1e4 (An & Lu, Assumption 4).",
            "max/min of σ²/F along the interpolating run",
            spread if enough else float("nan"),
            "<=",
            MAX_SPREAD,
            note=note,
        )
    ]
