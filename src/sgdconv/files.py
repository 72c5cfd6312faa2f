"""Writing a file so that a job killed at any moment leaves the old file or the new one, never a
torn one: write to a temporary name in the same folder and rename (``os.replace`` is atomic on
POSIX). Used by the checkpoints (:mod:`sgdconv.train.checkpoint`) and the statistics tables
(:mod:`sgdconv.stats.jobs`); free of torch, so that the rule files can import what uses it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(tmp_path)`` and rename the result to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
