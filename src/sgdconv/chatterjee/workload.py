"""Cluster time requests of the ``chatterjee_thm41``/``chatterjee_thm45`` rules, from an upper
bound on their work. Torch-free, so building the DAG stays fast."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sgdconv.chatterjee.settings import Thm41Settings, Thm45Settings

#: Seconds per parameter · data point · run · GD step once batched (measured ~0.3 ns on one CPU
#: core for chatterjee_thm45, rounded up; the offline tiers' small nets are overhead-bound but
#: take about a minute).
SECONDS_PER_UNIT = 1e-9


def net_size(d: int, widths: Sequence[int]) -> int:
    """p = Σ_l d_l (d_{l−1} + 1) of Chatterjee's eq. (4.1), with d_L = 1."""
    dims = [int(d), *(int(w) for w in widths), 1]
    return sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))


def thm41_work(settings: Mapping[str, Any]) -> float:
    """Σ over configurations of p · n · max_steps (each configuration's GD, at most)."""
    s = Thm41Settings.from_dict(settings)
    sizes = sum(net_size(s.d, [width] * (depth - 1)) for depth, width, _ in s.configurations())
    return float(sizes * s.n * s.max_steps)


def thm45_work(settings: Mapping[str, Any]) -> float:
    """Σ over d/n and n of p · n · seeds · rungs · max_steps (the whole ladder runs as one
    batch, each rung at most max_steps)."""
    s = Thm45Settings.from_dict(settings)
    sizes = sum(
        net_size(s.input_dimension(n, ratio), s.widths) * n for ratio in s.d_over_n for n in s.ns
    )
    return float(sizes * s.seeds * s.eta_rungs * s.max_steps)


def cluster_minutes(work: float) -> int:
    """Runtime request in minutes: the work at :data:`SECONDS_PER_UNIT`, tripled, at least 10
    and at most a day."""
    return min(24 * 60, max(10, int(3 * work * SECONDS_PER_UNIT / 60) + 1))
