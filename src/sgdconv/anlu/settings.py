"""Typed settings of the An & Lu Monte-Carlo experiments (``anlu_thm31``, ``anlu_thm41``,
``anlu_lem42``), read once from the config by :func:`~sgdconv.chatterjee.settings.from_mapping`
(unknown or missing keys raise, every value is converted to its field's type). The shared
network and the effort of the constants' searches (config keys ``anlu.net``,
``anlu.certificate``, ``anlu.smoothness``) come in the same mapping as the experiment's own keys.
Torch-free, like the workload estimates that read them while Snakemake builds the DAG."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sgdconv.chatterjee.settings import from_mapping
from sgdconv.lojasiewicz.effort import SearchEffort, SmoothnessEffort


def _check(where: str, problems: list[tuple[bool, str]]) -> None:
    bad = [message for ok, message in problems if not ok]
    if bad:
        raise ValueError(f"{where}: " + "; ".join(bad))


@dataclass(frozen=True)
class NetSettings:
    """The depth-2 Chatterjee-initialized network and its data (:mod:`sgdconv.anlu.setup`)."""

    d: int
    n: int
    widths: tuple[int, ...]
    activation: str
    leaky_slope: float
    output_weight: float
    inputs: str

    @property
    def p(self) -> int:
        """Number of parameters of the depth-2 net, eq. (4.1) of Chatterjee."""
        width = self.widths[0]
        return width * (self.d + 1) + width + 1


@dataclass(frozen=True)
class Seeds:
    """The random streams of one experiment: the data, the constants' searches, the noise."""

    data: int
    constants: int
    noise: int

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | Seeds) -> Seeds:
        return from_mapping(cls, values, "seeds")


@dataclass(frozen=True)
class Thm31Settings:
    """``anlu_thm31``: SGD with machine-learning noise √(σF) Z (Assumption 4), constant step.

    ``f0`` is the coarse F(θ0) grid and ``sigma`` the noise levels run on it, inside Theorem
    3.1's step bound (η is set by the largest of them). ``refine_points`` values of F(θ0) in
    F0* · (1 + [refine_low, refine_high]) resolve the crossover, F0* the F(θ0) at which the
    noiseless path just reaches R − 1. At F(θ0) = ``sweep_f0_fraction`` · F0* the noise levels
    ``sweep_sigma`` (beyond the bound, at the same η) show how the stay probability falls with
    σ, and, with ``bounded``, bounded noise of the same size c = √(σ F(θ0)) at the same step
    (An & Lu Section 4) is the contrast.
    """

    net: NetSettings
    certificate: SearchEffort
    smoothness: SmoothnessEffort
    radius: float
    f0: tuple[float, ...]
    sigma: tuple[float, ...]
    refine_points: int
    refine_low: float
    refine_high: float
    sweep_f0_fraction: float
    sweep_sigma: tuple[float, ...]
    bounded: bool
    eta_factor: float
    n_trajectories: int
    n_steps: int
    n_records: int
    converge_tol: float

    def __post_init__(self) -> None:
        _check(
            "anlu.thm31",
            [
                (self.radius > 1.0, f"Theorem 3.1 needs R > 1, got {self.radius}"),
                (len(self.f0) >= 2 and min(self.f0) > 0, "need two or more F(θ0) > 0"),
                (len(self.sigma) >= 1 and min(self.sigma) >= 0, "sigma must be >= 0"),
                (self.refine_points >= 0, "refine_points must be >= 0"),
                (-1.0 < self.refine_low <= self.refine_high, "need -1 < refine_low <= high"),
                (0.0 < self.sweep_f0_fraction, "sweep_f0_fraction must be > 0"),
                (min(self.sweep_sigma, default=0.0) >= 0, "sweep_sigma must be >= 0"),
                (0.0 < self.eta_factor, "eta_factor must be > 0"),
                (min(self.n_trajectories, self.n_steps) >= 1, "counts must be >= 1"),
                (self.n_records >= 2, "n_records must be >= 2"),
                (0.0 < self.converge_tol < 1.0, "converge_tol must lie in (0, 1)"),
            ],
        )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | Thm31Settings) -> Thm31Settings:
        return from_mapping(cls, values, "anlu.thm31")


@dataclass(frozen=True)
class Thm41Settings:
    """``anlu_thm41``: bounded noise c Z, rotated onto one direction (Theorem 4.1) and unrotated
    (the reference), with Robbins–Monro steps γ/(k + n0)^q, γ = gamma_alpha / α̂ and n0 =
    ⌈n0_factor · (2 Ĉ_L² γ / α̂)^{1/q}⌉ (4.10), from θ0 with F(θ0) = ``f0``; the ball is
    B(θ0, ``radius``)."""

    net: NetSettings
    certificate: SearchEffort
    smoothness: SmoothnessEffort
    f0: float
    radius: float
    noise_c: float
    gamma_alpha: float
    n0_factor: float
    q: tuple[float, ...]
    n_trajectories: int
    n_steps: int
    n_records: int

    def __post_init__(self) -> None:
        _check(
            "anlu bounded-noise settings",
            [
                (self.f0 > 0 and self.radius > 0 and self.noise_c > 0, "need f0, radius, c > 0"),
                (self.gamma_alpha > 2.0, "Theorem 4.1 / (4.13) need γ > 2/α: gamma_alpha > 2"),
                (self.n0_factor > 0, "n0_factor must be > 0"),
                (len(self.q) >= 1 and all(0.5 < q <= 1 for q in self.q), "(4.1): q in (1/2, 1]"),
                (min(self.n_trajectories, self.n_steps) >= 1, "counts must be >= 1"),
                (self.n_records >= 2, "n_records must be >= 2"),
            ],
        )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | Thm41Settings) -> Thm41Settings:
        return from_mapping(cls, values, "anlu.thm41")


@dataclass(frozen=True)
class Lem42Settings(Thm41Settings):
    """``anlu_lem42``: the unrotated bounded noise of :class:`Thm41Settings`; the slope of
    log E F(θ_k) against log k is fitted from k = ``fit_from_n0`` · n0 on."""

    fit_from_n0: float

    def __post_init__(self) -> None:
        super().__post_init__()
        _check("anlu.lem42", [(self.fit_from_n0 > 0, "fit_from_n0 must be > 0")])

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | Lem42Settings) -> Lem42Settings:
        return from_mapping(cls, values, "anlu.lem42")
