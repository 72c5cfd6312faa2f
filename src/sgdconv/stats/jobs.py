"""The statistics jobs of a run: which checkpoints each ``estimate_stats`` job takes, and a job
that computes them one by one and, when killed, resumes where it stopped.

Grain. A job costs its process start-up (importing torch and this package, a few seconds on a
CPU) plus its checkpoints' statistics. Offline, where a checkpoint's statistics take about as
long as the start-up, a job takes many checkpoints (``compute.checkpoints_per_job``); on a
cluster, one job per checkpoint lets the scheduler fan them out. :func:`plan_jobs` splits a
run's planned checkpoints (known from the config before anything trains) into contiguous jobs.

Outputs. Every checkpoint gets its own table ``stats/step_<k>.parquet``, written atomically as
soon as it is computed; the job's declared output is the concatenation of its tables. The
per-checkpoint tables are written by the job itself, not declared: Snakemake deletes the
declared outputs of a killed (incomplete) job before re-running it, and would delete them too.

Resuming. While it runs, the job keeps a journal beside its output (``.<output>.progress``):
a fingerprint of its inputs (checkpoints, settings, tables), then one line per table written.
A re-run reuses the tables the journal lists when the fingerprint matches, and removes the
journal once its output is written; so a killed job recomputes only what it had not written,
while a job re-run after it completed (forced, or its settings changed) recomputes everything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from sgdconv.files import atomic_write

logger = logging.getLogger(__name__)

#: ``compute.checkpoints_per_job`` value meaning one job per run.
ALL = "all"


def plan_jobs(steps: Sequence[int], per_job: int | str) -> list[list[int]]:
    """Split a run's checkpoint steps into contiguous jobs of at most ``per_job`` checkpoints
    (``"all"``: one job), balanced so that no job is much shorter than the others (10
    checkpoints at 4 a job: 4, 3, 3 rather than 4, 4, 2)."""
    steps = sorted(int(s) for s in steps)
    if per_job == ALL:
        per_job = max(len(steps), 1)
    if not isinstance(per_job, int) or isinstance(per_job, bool) or per_job < 1:
        raise ValueError(
            f"checkpoints_per_job must be a positive integer or 'all', got {per_job!r}"
        )
    n_jobs = math.ceil(len(steps) / per_job)
    size, extra = divmod(len(steps), n_jobs) if n_jobs else (0, 0)
    jobs, first = [], 0
    for j in range(n_jobs):
        last = first + size + (j < extra)
        jobs.append(steps[first:last])
        first = last
    return jobs


def empty_table() -> pd.DataFrame:
    """The table of a checkpoint the run never wrote (it diverged before it): no rows."""
    return pd.DataFrame({"step": pd.Series(dtype="int64")})


def checkpoint_table(
    manifest: str | Path, checkpoint: str | Path, settings: Mapping
) -> pd.DataFrame:
    """The one-row statistics table of a checkpoint (an empty one where the run diverged)."""
    from sgdconv.stats.checkpoint_context import open_checkpoint
    from sgdconv.stats.checkpoint_stats import checkpoint_statistics

    run, ctx = open_checkpoint(manifest, checkpoint, settings)
    if ctx is None:
        logger.info("%s diverged before %s: empty table", run["run_id"], checkpoint)
        return empty_table()
    table = pd.DataFrame([checkpoint_statistics(ctx)])
    logger.info("%s step %d: %s", run["run_id"], ctx.step, table.iloc[0].to_dict())
    return table


def journal_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.progress")


def fingerprint(
    checkpoints: Sequence[str | Path], tables: Sequence[str | Path], settings: Any
) -> str:
    """What the tables of a job depend on besides the code: the settings, and each checkpoint's
    path, size and modification time (a re-trained run rewrites its checkpoints)."""

    def identity(path: str | Path) -> list[Any]:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return [str(path), None]
        return [str(path), stat.st_size, stat.st_mtime_ns]

    blob = json.dumps(
        {
            "settings": settings,
            "checkpoints": [identity(c) for c in checkpoints],
            "tables": [str(t) for t in tables],
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def _journaled_steps(journal: Path, key: str) -> set[int]:
    """The steps a killed attempt with the same fingerprint finished (none otherwise)."""
    try:
        lines = journal.read_text().splitlines()
    except FileNotFoundError:
        return set()
    if not lines or lines[0] != key:
        return set()
    # A line cut short by the kill is not a step: the table is then recomputed.
    return {int(line) for line in lines[1:] if line.isdigit()}


def _read_table(path: str | Path, step: int) -> pd.DataFrame | None:
    """The table at ``path`` if it is a valid table of ``step`` (one row, or none)."""
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError):
        return None
    if "step" not in table or len(table) > 1 or (len(table) and int(table["step"][0]) != step):
        return None
    return table


def run_stats_job(
    steps: Sequence[int],
    checkpoints: Sequence[str | Path],
    tables: Sequence[str | Path],
    output: str | Path,
    compute: Callable[[str | Path], pd.DataFrame],
    settings: Any = None,
) -> pd.DataFrame:
    """Compute the table of each checkpoint with ``compute(checkpoint)``, write it to its path
    in ``tables`` (atomically, one by one), reuse those a killed attempt finished (see the
    module doc), and write their concatenation to ``output``; return it.

    settings: whatever besides the checkpoints determines the tables (for the fingerprint).
    """
    if not len(steps) == len(checkpoints) == len(tables):
        raise ValueError("steps, checkpoints and tables must have the same length")
    journal = journal_path(output)
    key = fingerprint(checkpoints, tables, settings)
    done = _journaled_steps(journal, key)
    if not done:
        atomic_write(journal, lambda tmp: tmp.write_text(key + "\n"))
    frames = []
    with open(journal, "a") as log:
        for step, checkpoint, path in zip(steps, checkpoints, tables, strict=True):
            table = _read_table(path, step) if step in done else None
            if table is not None:
                logger.info("step %d: reusing %s (written by a killed attempt)", step, path)
            else:
                start = time.perf_counter()
                table = compute(checkpoint)
                atomic_write(path, lambda tmp, t=table: t.to_parquet(tmp, index=False))
                log.write(f"{step}\n")
                log.flush()
                logger.info("step %d: %.2f s", step, time.perf_counter() - start)
            frames.append(table)
    rows = [f for f in frames if len(f)]
    batch = pd.concat(rows, ignore_index=True) if rows else empty_table()
    atomic_write(output, lambda tmp: batch.to_parquet(tmp, index=False))
    journal.unlink()
    return batch


def estimate_stats_job(
    manifest: str | Path,
    settings: Mapping[str, Any],
    steps: Sequence[int],
    checkpoints: Sequence[str | Path],
    tables: Sequence[str | Path],
    output: str | Path,
) -> pd.DataFrame:
    """The ``estimate_stats`` job: :func:`run_stats_job` with :func:`checkpoint_table`."""
    return run_stats_job(
        steps,
        checkpoints,
        tables,
        output,
        lambda checkpoint: checkpoint_table(manifest, checkpoint, settings),
        settings=dict(settings),
    )
