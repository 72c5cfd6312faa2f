"""Cluster time requests of the anlu Monte-Carlo rules (anlu_thm31, anlu_thm41, anlu_lem42),
from their work: trajectories × steps × parameters. Torch-free, so building the DAG stays fast."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Seconds per trajectory · step · parameter of the batched engine (measured ~60 ns on one
#: shared CPU core for p = 81 in batches of a few hundred trajectories, rounded up).
SECONDS_PER_UNIT = 1e-7


def depth2_size(net: Mapping[str, Any]) -> int:
    """p = d_1 (d + 1) + (d_1 + 1) for the depth-2 networks of the experiments (eq. (4.1))."""
    width = int(net["widths"][0])
    return width * (int(net["d"]) + 1) + width + 1


def conditions(artifact: str, settings: Mapping[str, Any]) -> int:
    """Number of batched conditions: F(θ0) × σ for anlu_thm31, q × (rotated, unrotated) for
    anlu_thm41, q for anlu_lem42."""
    if artifact == "anlu_thm31":
        return len(settings["f0"]) * len(settings["sigma"])
    if artifact == "anlu_thm41":
        return 2 * len(settings["q"])
    if artifact == "anlu_lem42":
        return len(settings["q"])
    raise ValueError(f"unknown artifact {artifact!r}")


def cluster_minutes(artifact: str, settings: Mapping[str, Any]) -> int:
    """Runtime request in minutes: the work at :data:`SECONDS_PER_UNIT`, doubled, at least 10
    and at most a day."""
    work = (
        conditions(artifact, settings)
        * int(settings["n_trajectories"])
        * int(settings["n_steps"])
        * depth2_size(settings["net"])
    )
    return min(24 * 60, max(10, int(2 * work * SECONDS_PER_UNIT / 60) + 1))
