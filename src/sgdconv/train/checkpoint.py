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

Checkpoints are verified. A checkpoint is fsynced before its rename, and the sha256 of the bytes
on disk is recorded beside it, in ``step_<k>.pt.sha256`` (``sha256sum -c`` format), before the
rename: a file that is later truncated or damaged (a full disk, a copy cut short, a bad sector)
no longer matches its record, and :func:`load_checkpoint` raises
:class:`CorruptCheckpointError` naming the file instead of whatever ``torch.load`` makes of the
bytes. (A checkpoint without a record, as older runs wrote them, is verified by reading it.)
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from sgdconv.files import atomic_write

FORMAT = 1
LOG_COLUMNS = ["step", "epoch", "lr", "minibatch_loss"]
_CKPT = re.compile(r"^step_(\d+)\.pt$")
_PART = re.compile(r"^upto_(\d+)\.npy$")


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{int(step)}.pt"


def list_checkpoints(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints present, by increasing step."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m[1]), folder / m[0]) for m in map(_CKPT.match, os.listdir(folder)) if m]
    return sorted(found)


class CorruptCheckpointError(OSError):
    """A checkpoint file that exists but cannot be trusted: truncated, damaged or unreadable."""

    def __init__(self, path: str | os.PathLike, reason: str, hint: str = "") -> None:
        self.path, self.reason, self.hint = Path(path), reason, hint
        message = f"{path}: checkpoint unreadable (corrupt or truncated): {reason}"
        super().__init__(f"{message}. {hint}" if hint else message)

    def __str__(self) -> str:  # OSError's own __str__ would show the args tuple
        return str(self.args[0])

    def with_hint(self, hint: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(self.path, self.reason, hint)


def sidecar_path(path: str | os.PathLike) -> Path:
    """The file holding the sha256 recorded when checkpoint ``path`` was written."""
    path = Path(path)
    return path.with_name(f"{path.name}.sha256")


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def recorded_sha256(path: str | os.PathLike) -> str | None:
    """The sha256 recorded for checkpoint ``path``, or None when there is no valid record."""
    try:
        words = sidecar_path(path).read_text().split()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    digest = words[0].lower() if words else ""
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> str:
    """Write a checkpoint, durably, and record its sha256; return the sha256.

    The bytes are fsynced under a temporary name and hashed as read back from the file; the
    record is written before the rename, so a kill in between leaves a checkpoint that fails
    verification (and is rewritten), never one that passes unverified.
    """
    path = Path(path)
    digest: list[str] = []

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            torch.save({"format": FORMAT, **state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        digest.append(file_sha256(tmp))
        record = f"{digest[0]}  {path.name}\n"
        atomic_write(sidecar_path(path), lambda side: side.write_text(record))

    atomic_write(path, write)
    _fsync_folder(path.parent)
    return digest[0]


def _fsync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (a power cut cannot undo them)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory file descriptors
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def verify_checkpoint(path: str | os.PathLike) -> None:
    """Raise ``FileNotFoundError`` if checkpoint ``path`` is missing and
    :class:`CorruptCheckpointError` if its bytes differ from the recorded sha256 (without a
    record: if it cannot be read)."""
    expected = recorded_sha256(path)
    if expected is None:
        load_checkpoint(path)
        return
    actual = file_sha256(path)
    if actual != expected:
        size = os.path.getsize(path)
        raise CorruptCheckpointError(
            path,
            f"its sha256 {actual[:12]}… ({size} bytes) differs from the {expected[:12]}… "
            f"recorded in {sidecar_path(path).name} when it was written",
        )


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code from the file), after
    checking it against its recorded sha256.

    Raises ``FileNotFoundError`` (missing) or :class:`CorruptCheckpointError` (the bytes do
    not match the record, or ``torch.load`` cannot read them).
    """
    if recorded_sha256(path) is not None:
        verify_checkpoint(path)
    elif not Path(path).is_file():
        raise FileNotFoundError(f"{path}: checkpoint missing")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch reports a torn zip as OSError, RuntimeError, ...
        raise CorruptCheckpointError(
            path, f"torch.load failed with {type(error).__name__}: {error}"
        ) from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CorruptCheckpointError(path, f"unknown checkpoint format {found!r}")
    return state


def repair_command(run_dir: str | os.PathLike) -> str:
    """The shell command that rewrites a run's missing or corrupt checkpoints."""
    return f"python -m sgdconv.train.repair {shlex.quote(str(run_dir))}"


def repair_hint(checkpoint: str | os.PathLike) -> str:
    """What a user does about a missing or corrupt checkpoint of a finished run."""
    run_dir = Path(checkpoint).parent.parent
    return (
        f"Rebuild it with `{repair_command(run_dir)}` (re-trains from the last good checkpoint "
        "before it, bit-identical on CPU, and leaves the run's other files as they are), then "
        "re-run snakemake"
    )


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


def log_part_problem(run_dir: str | os.PathLike, upto: int, after: int) -> str | None:
    """Why the log part written with checkpoint ``upto`` (the rows of steps after+1..upto)
    cannot be used, or None when it can."""
    path = Path(run_dir) / "log_parts" / f"upto_{int(upto)}.npy"
    try:
        steps = np.load(path).reshape(-1, len(LOG_COLUMNS))[:, 0]
    except FileNotFoundError:
        return f"{path} is missing"
    except Exception as error:  # a torn or damaged .npy
        return f"{path} is unreadable ({type(error).__name__}: {error})"
    if steps.tolist() != list(range(int(after) + 1, int(upto) + 1)):
        return f"{path} does not hold the rows of steps {after + 1}..{upto}"
    return None


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
    """Remove the checkpoints (with their sha256 records) and log parts of a run (when its
    spec changed)."""
    for _, path in list_checkpoints(run_dir):
        path.unlink()
    folder = Path(run_dir) / "checkpoints"
    for record in folder.glob("step_*.pt.sha256") if folder.is_dir() else ():
        record.unlink()
    for _, path in list(_parts(run_dir)):
        path.unlink()
