"""Delete-a-group jackknife standard errors for groups of unequal size.

The sample is split into G groups of sizes m_1..m_G (m = Σ m_j); θ̂ is the estimate on the whole
sample and θ̂_(−j) the same estimator on the sample without group j. With h_j = m / m_j, the
delete-m_j jackknife (Busing, Meijer & van der Leeden 1999, *Statistics and Computing* 9:3-8)
uses the pseudo-values θ̃_j = h_j θ̂ − (h_j − 1) θ̂_(−j) and

    θ̂_J = G θ̂ − Σ_j (1 − m_j/m) θ̂_(−j),      v_J = (1/G) Σ_j (θ̃_j − θ̂_J)² / (h_j − 1),

which for equal groups is the textbook (G − 1)/G Σ_j (θ̂_(−j) − θ̄)². For a sample drawn without
replacement from a finite population of N, v_J is multiplied by the finite-population
correction 1 − m/N (Wolter, *Introduction to Variance Estimation*, 2nd ed., §4.5).
"""

from __future__ import annotations

import math

import numpy as np


def grouped_jackknife_se(
    full: float, replicates: np.ndarray, group_sizes: np.ndarray, fpc: float = 1.0
) -> float:
    """√(fpc · v_J) for the estimate ``full`` and its leave-one-group-out ``replicates``.

    NaN if there are fewer than two groups or a replicate is undefined (NaN).
    """
    reps = np.asarray(replicates, dtype=float)
    sizes = np.asarray(group_sizes, dtype=float)
    if reps.shape != sizes.shape or reps.ndim != 1:
        raise ValueError("replicates and group_sizes must be 1-D of the same length")
    n_groups = reps.size
    if n_groups < 2 or not np.isfinite(full) or not np.all(np.isfinite(reps)):
        return math.nan
    m = sizes.sum()
    h = m / sizes
    theta_j = n_groups * full - np.sum((1.0 - sizes / m) * reps)
    pseudo = h * full - (h - 1.0) * reps
    var = np.mean((pseudo - theta_j) ** 2 / (h - 1.0))
    return float(math.sqrt(max(fpc, 0.0) * var))
