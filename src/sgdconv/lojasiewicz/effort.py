"""How hard the searches of this package look: typed settings for
:func:`sgdconv.lojasiewicz.certificate.search_alpha` (the α̂ of (2.1)) and
:func:`sgdconv.lojasiewicz.smoothness.estimate_smoothness` (the Ĉ_L of (2.3)). Torch-free, so
experiment settings that hold them can be built while Snakemake builds the DAG."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SearchEffort:
    """Random points of the ball, descent starts and descent steps of the α search."""

    n_random: int
    n_starts: int
    n_steps: int

    def __post_init__(self) -> None:
        if min(self.n_random, self.n_starts, self.n_steps) < 0:
            raise ValueError(f"search effort must be >= 0, got {self}")

    def kwargs(self) -> dict[str, int]:
        """The keyword arguments of ``search_alpha``."""
        return asdict(self)


@dataclass(frozen=True)
class SmoothnessEffort:
    """Sampled points, Lanczos steps, ascent starts and ascent steps of the C_L estimate."""

    n_points: int
    n_iter: int
    n_starts: int
    n_steps: int

    def __post_init__(self) -> None:
        if self.n_iter < 1 or min(self.n_points, self.n_starts, self.n_steps) < 0:
            raise ValueError(f"smoothness effort out of range: {self}")

    def kwargs(self) -> dict[str, int]:
        """The keyword arguments of ``estimate_smoothness``."""
        return asdict(self)
