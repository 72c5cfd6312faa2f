"""Where a run restarts: which of its planned checkpoints can be trusted, which must be rewritten.

A planned checkpoint k is *good* when its file matches the sha256 recorded when it was written
(:mod:`sgdconv.train.checkpoint`) and, for k > 0, the train-log part written with it holds the
rows of the steps since the previous planned checkpoint. Training continues from the latest good
checkpoint; a corrupt checkpoint after it (the file a crash or a full disk damaged last) is
skipped with a warning and written again as training passes its step.

A missing or corrupt checkpoint *before* the latest good one would never be passed again, so it
is rewritten first: training replays from the last good checkpoint before it (or from the
initialization), writes the missing files and leaves the good ones as they are, then continues
from the latest good checkpoint. The data order, augmentations and RNG states are restored from
the checkpoints, so on CPU the rewritten checkpoints hold, bit for bit, the states that were lost
(on GPUs, up to their non-determinism).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sgdconv.train.checkpoint import (
    CorruptCheckpointError,
    checkpoint_path,
    log_part_problem,
    verify_checkpoint,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePlan:
    """``good``: planned steps whose checkpoint and log part verify; ``latest``: the latest of
    them, where training continues (None: from the initialization); ``rewrite``: the steps whose
    files are rewritten first by replaying from ``restart`` (a good step; None: from the
    initialization); ``problems``: what is wrong with each planned step that is not good."""

    good: tuple[int, ...]
    latest: int | None
    rewrite: tuple[int, ...] = ()
    restart: int | None = None
    problems: dict[int, str] = field(default_factory=dict)


def checkpoint_problem(run_dir: str | os.PathLike, step: int, previous: int) -> str | None:
    """Why planned checkpoint ``step`` (the one before it: ``previous``) cannot be resumed
    from, or None when it can."""
    path = checkpoint_path(run_dir, step)
    if not path.is_file():
        return f"{path} is missing"
    try:
        verify_checkpoint(path)
    except CorruptCheckpointError as error:
        return str(error)
    if step > 0:
        return log_part_problem(run_dir, step, previous)
    return None


def plan_resume(
    run_dir: str | os.PathLike, planned: Sequence[int], wanted: Sequence[int] | None = None
) -> ResumePlan:
    """The plan for a run directory whose spec plans checkpoints at ``planned`` steps.

    ``wanted``: the steps whose checkpoints must exist (a finished run's, to repair it);
    default: the planned steps before the latest good one. Logs a warning for each checkpoint
    that exists but cannot be used and for each one that will be rewritten.
    """
    planned = sorted(int(k) for k in planned)
    problems: dict[int, str] = {}
    previous = 0
    for step in planned:
        problem = checkpoint_problem(run_dir, step, previous)
        if problem is not None:
            problems[step] = problem
        previous = step
    good = tuple(k for k in planned if k not in problems)
    latest = max(good, default=None)
    if wanted is None:
        rewrite = tuple(k for k in planned if latest is not None and k < latest and k in problems)
    else:
        rewrite = tuple(sorted(int(k) for k in wanted if int(k) not in good))
    restart = max((k for k in good if rewrite and k < rewrite[0]), default=None)
    plan = ResumePlan(good, latest, rewrite, restart, problems)
    _log(run_dir, plan)
    return plan


def _log(run_dir: str | os.PathLike, plan: ResumePlan) -> None:
    def name(step: int | None) -> str:
        return "the initialization" if step is None else checkpoint_path(run_dir, step).name

    for step in plan.rewrite:
        logger.warning(
            "%s; rewriting it: replaying the steps from %s",
            plan.problems.get(step, f"{checkpoint_path(run_dir, step)} is missing"),
            name(plan.restart),
        )
    for step, problem in plan.problems.items():
        later = plan.latest is None or step > plan.latest
        if later and step not in plan.rewrite and Path(checkpoint_path(run_dir, step)).exists():
            logger.warning("skipping %s; training resumes from %s", problem, name(plan.latest))
