"""Checkpoints and the train-log parts of a run directory, written atomically.

Layout of ``runs/<run_id>/`` (DESIGN.md):

* ``checkpoints/step_<k>.pt``: the state after k optimizer steps: model, optimizer (momentum
  buffers), scheduler, RNG states and the data position (epoch, batch), plus the spec's hash;
* ``log_parts/upto_<k>.npy``: the train-log rows of the steps since the previous checkpoint,
  written just before checkpoint k, so the log of a resumed run is exactly the log of an
  uninterrupted one;
* ``train_log.parquet`` and ``manifest.json``: the run's declared outputs, written at the end.

Every file is written to a temporary name in the same folder and renamed (``os.replace`` is
atomic on POSIX), so a job killed at any moment leaves either the old or the new file, never a
torn one. Checkpoints are read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

FORMAT = 1
LOG_COLUMNS = ["step", "epoch", "lr", "minibatch_loss"]
_CKPT = re.compile(r"^step_(\d+)\.pt$")
_PART = re.compile(r"^upto_(\d+)\.npy$")


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


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{int(step)}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints present, by increasing step."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m[1]), folder / m[0]) for m in map(_CKPT.match, os.listdir(folder)) if m]
    return sorted(found)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save({"format": FORMAT, **state}, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code from the file)."""
    state = torch.load(path, map_location=map_location, weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown checkpoint format {state.get('format')!r}")
    return state


def rng_state() -> dict[str, Any]:
    """Python's and torch's RNG states (numpy's global RNG is not used by the engine)."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        # One int64 tensor rather than 625 Python ints: far cheaper to pickle.
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- train-log parts -----------------------------------------------------------------------


def write_log_part(run_dir: str | os.PathLike, upto: int, rows: list[tuple]) -> None:
    """Rows ``(step, epoch, lr, minibatch_loss)`` of the steps up to ``upto`` since the
    previous part."""
    array = np.asarray(rows, dtype=np.float64).reshape(-1, len(LOG_COLUMNS))
    path = Path(run_dir) / "log_parts" / f"upto_{int(upto)}.npy"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.save would append ".npy" to a name
            np.save(fh, array)

    atomic_write(path, write)


def _parts(run_dir: str | os.PathLike) -> Iterator[tuple[int, Path]]:
    folder = Path(run_dir) / "log_parts"
    if folder.is_dir():
        for m in map(_PART.match, os.listdir(folder)):
            if m:
                yield int(m[1]), folder / m[0]


def read_log_parts(run_dir: str | os.PathLike, upto: int) -> list[tuple]:
    """The logged rows of steps 1..``upto``; parts written after ``upto`` are deleted.

    Raises ``ValueError`` when the parts do not cover steps 1..upto exactly.
    """
    rows: list[tuple] = []
    for end, path in sorted(_parts(run_dir)):
        if end > upto:
            path.unlink()
            continue
        rows.extend(tuple(r) for r in np.load(path).tolist())
    steps = [int(r[0]) for r in rows]
    if steps != list(range(1, upto + 1)):
        raise ValueError(f"train-log parts of {run_dir} do not cover steps 1..{upto}")
    return rows


def log_frame(rows: list[tuple]) -> pd.DataFrame:
    """The train log (DESIGN.md): one row per optimizer step."""
    frame = pd.DataFrame(rows, columns=LOG_COLUMNS)
    return frame.astype({"step": "int64", "epoch": "int64", "lr": "float64"})


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def write_json(path: str | os.PathLike, data: dict[str, Any]) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")

    atomic_write(path, write)


def clear_run(run_dir: str | os.PathLike) -> None:
    """Remove the checkpoints and log parts of a run (when its spec changed)."""
    for _, path in list_checkpoints(run_dir):
        path.unlink()
    for _, path in list(_parts(run_dir)):
        path.unlink()
