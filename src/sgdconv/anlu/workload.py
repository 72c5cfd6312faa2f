"""Cluster time requests of the anlu Monte-Carlo rules (anlu_thm31, anlu_thm41, anlu_lem42),
from their work: trajectories × steps × parameters. Torch-free, so building the DAG stays fast."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sgdconv.anlu.settings import Lem42Settings, Thm31Settings, Thm41Settings

#: Seconds per trajectory · step · parameter of the batched engine (measured ~60 ns on one
#: shared CPU core for p = 81 in batches of a few hundred trajectories, rounded up).
SECONDS_PER_UNIT = 1e-7


def trajectories(artifact: str, settings: Mapping[str, Any]) -> int:
    """Rows of the batched run: for anlu_thm31 the noisy conditions (F(θ0) grid × σ > 0, the σ
    sweep, the bounded-noise contrast) × trajectories plus one row per noiseless condition; for
    anlu_thm41 q × (rotated, unrotated) × trajectories; for anlu_lem42 q × trajectories."""
    if artifact == "anlu_thm31":
        s = Thm31Settings.from_dict(settings)
        grid = len(s.f0) + s.refine_points
        noisy = sum(1 for v in s.sigma if v > 0) * grid + sum(1 for v in s.sweep_sigma if v > 0)
        quiet = sum(1 for v in s.sigma if v == 0) * grid + sum(1 for v in s.sweep_sigma if v == 0)
        if s.bounded:
            noisy += sum(1 for v in s.sweep_sigma if v > 0)
        return noisy * s.n_trajectories + quiet
    if artifact == "anlu_thm41":
        s41 = Thm41Settings.from_dict(settings)
        return 2 * len(s41.q) * s41.n_trajectories
    if artifact == "anlu_lem42":
        s42 = Lem42Settings.from_dict(settings)
        return len(s42.q) * s42.n_trajectories
    raise ValueError(f"unknown artifact {artifact!r}")


def cluster_minutes(artifact: str, settings: Mapping[str, Any]) -> int:
    """Runtime request in minutes: the work at :data:`SECONDS_PER_UNIT`, doubled, at least 10
    and at most a day."""
    s = (
        Thm41Settings.from_dict(
            {k: v for k, v in settings.items() if k in Thm41Settings.__dataclass_fields__}
        )
        if artifact != "anlu_thm31"
        else Thm31Settings.from_dict(settings)
    )
    work = trajectories(artifact, settings) * s.n_steps * s.net.p
    return min(24 * 60, max(10, int(2 * work * SECONDS_PER_UNIT / 60) + 1))
