"""Which points An & Lu's rate fits use: shared by the simulations that compute the fits
(:mod:`~sgdconv.anlu.thm31`, :mod:`~sgdconv.anlu.bounded`) and the claims that re-fit their
tables (:mod:`~sgdconv.anlu.claims`). Kept free of torch and scipy because the workflow's rule
files import the claims when Snakemake parses them, once in every cluster job."""

from __future__ import annotations

#: E[F 1_E] below RATE_FIT_FLOOR · F(θ0) is left out of Theorem 3.1's rate fit: far above float64
#: round-off of F (~1e-32 F(θ0)), far below where the decay is measured.
RATE_FIT_FLOOR = 1e-14


def fit_window(n0: float, fit_from_n0: float) -> float:
    """First k of Lemma 4.2's slope fit: k >= fit_from_n0 · n0.

    Why: E F(θ_k) ≈ K (k + n0)^(−q), whose log-log slope against k is −q k/(k + n0); from
    k = 10 n0 on it is within 10% of −q (less on average over the window), and the transient
    from F(θ0), which decays like (n0/k)^{αγ} (q = 1) or faster (q < 1), is long gone.
    """
    return fit_from_n0 * float(n0)
