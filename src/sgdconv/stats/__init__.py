"""Statistics of a network at a checkpoint (Zhang et al. 2022, eq. (1)-(3), App. A.2).

- :func:`estimate_gradient_stats`: loss, gradient norm |∇L| and noise norm σ of eq. (1) on a
  sample, in one pass with O(p) memory, with jackknife standard errors; unbiased for a
  population when the sample is a subsample (:mod:`sgdconv.stats.gradient`).
- :func:`top_hessian_eigenvalue`: the sharpness λ_max(∇²L_S) by Lanczos or power iteration on
  Hessian-vector products (:mod:`sgdconv.stats.hessian`).
- :func:`loss_moving_avg` (eq. (2), from a train log) and :func:`loss_last` (eq. (3), at a
  checkpoint) (:mod:`sgdconv.stats.losses`).

The per-checkpoint pipeline of the workflow's statistics rules builds on these:
:mod:`~sgdconv.stats.checkpoint_context` (settings, loading a checkpoint with its model, data
and sample), :mod:`~sgdconv.stats.checkpoint_stats` (one row per checkpoint),
:mod:`~sgdconv.stats.sweep` (estimates vs sample size, Figs. 7-8) and
:mod:`~sgdconv.stats.aggregate` (a run's ``stats.parquet``). They import the training engine,
so they are not imported here.

Every function leaves the model as it found it: parameters, ``.grad``, buffers, modes, RNG.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sgdconv.stats.gradient import GradientStats, estimate_gradient_stats
    from sgdconv.stats.hessian import HessianEig, top_hessian_eigenvalue
    from sgdconv.stats.losses import loss_last, loss_moving_avg

#: Where each public name lives. They are imported on first use (PEP 562): the workflow's rule
#: files import light submodules such as :mod:`~sgdconv.stats.jobs` when Snakemake parses them,
#: once in every cluster job, and importing torch there would cost seconds a job.
_SOURCES = {
    "GradientStats": "sgdconv.stats.gradient",
    "estimate_gradient_stats": "sgdconv.stats.gradient",
    "HessianEig": "sgdconv.stats.hessian",
    "top_hessian_eigenvalue": "sgdconv.stats.hessian",
    "loss_last": "sgdconv.stats.losses",
    "loss_moving_avg": "sgdconv.stats.losses",
}

__all__ = [
    "GradientStats",
    "HessianEig",
    "estimate_gradient_stats",
    "loss_last",
    "loss_moving_avg",
    "top_hessian_eigenvalue",
]


def __getattr__(name: str) -> Any:
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCES[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))
