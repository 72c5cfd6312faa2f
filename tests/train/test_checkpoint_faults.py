"""Damaged checkpoints: recorded sha256s, errors that name the file, resume past a corrupt
latest checkpoint, rewriting a missing or corrupt earlier one, and the repair command that the
statistics jobs' error message gives, each bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import logging
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from runs import spec_for
from sgdconv.stats.checkpoint_context import open_checkpoint
from sgdconv.train.checkpoint import (
    CorruptCheckpointError,
    checkpoint_path,
    file_sha256,
    load_checkpoint,
    sidecar_path,
)
from sgdconv.train.engine import train_run
from sgdconv.train.repair import repair_run

pytestmark = pytest.mark.usefixtures("one_thread")

# spec_for: 256 examples in batches of 16, 3 epochs: checkpoints at steps 0, 16, 32, 48.
STEPS = [0, 16, 32, 48]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple:
    """An uninterrupted run (its spec reads data from the same folder)."""
    folder = tmp_path_factory.mktemp("reference")
    spec = spec_for(folder, epochs=3)
    torch.set_num_threads(1)
    train_run(spec, folder / "run", progress=False)
    return spec, folder / "run"


@pytest.fixture
def run(reference, tmp_path) -> Path:
    """A copy of the reference run to damage (modification times kept)."""
    return Path(shutil.copytree(reference[1], tmp_path / "run"))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def forget_the_end(run: Path) -> None:
    """The run as a kill before its end leaves it: no manifest, no train log."""
    (run / "manifest.json").unlink()
    (run / "train_log.parquet").unlink()


def assert_same_state(a: object, b: object, where: str = "") -> None:
    """Equal checkpoint contents, every tensor bit for bit. (The files themselves differ:
    torch.save writes a fresh serialization id into each.)"""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, where
        assert torch.equal(a, b), where
    else:
        assert a == b, where


def assert_same_run(run: Path, reference: Path) -> None:
    """Every checkpoint and the train log as the uninterrupted run's."""
    for step in STEPS:
        a, b = checkpoint_path(run, step), checkpoint_path(reference, step)
        assert_same_state(load_checkpoint(a), load_checkpoint(b), a.name)
    pd.testing.assert_frame_equal(
        pd.read_parquet(run / "train_log.parquet"),
        pd.read_parquet(reference / "train_log.parquet"),
    )


# --- written and verified ---------------------------------------------------------------------


def test_checkpoints_record_their_sha256(reference):
    _, run = reference
    manifest = json.loads((run / "manifest.json").read_text())
    assert [c["step"] for c in manifest["checkpoints"]] == STEPS
    for entry in manifest["checkpoints"]:
        path = run / entry["path"]
        digest = file_sha256(path)
        # `sha256sum -c step_k.pt.sha256` works in the checkpoints folder.
        assert sidecar_path(path).read_text() == f"{digest}  {path.name}\n"
        assert entry["sha256"] == digest
    assert not list((run / "checkpoints").glob(".*")), "temporary files left behind"


@pytest.mark.parametrize("damage", [truncate, flip_byte])
def test_damaged_checkpoint_error_names_the_file(run, damage):
    path = checkpoint_path(run, 16)
    damage(path)
    with pytest.raises(CorruptCheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: checkpoint unreadable (corrupt or truncated)")
    assert "differs from the" in message and sidecar_path(path).name in message


def test_damaged_checkpoint_without_record_is_caught_by_reading_it(run):
    path = checkpoint_path(run, 16)
    sidecar_path(path).unlink()
    load_checkpoint(path)  # an older run's checkpoint, intact: read as before
    truncate(path)
    with pytest.raises(CorruptCheckpointError, match=r"unreadable .*torch\.load failed"):
        load_checkpoint(path)


# --- the train job: resume past a corrupt latest checkpoint, rewrite earlier ones --------------


def test_corrupt_latest_checkpoint_is_skipped(reference, run, caplog):
    spec, ref = reference
    forget_the_end(run)
    truncate(checkpoint_path(run, 48))
    with caplog.at_level(logging.WARNING):
        manifest = train_run(spec, run, progress=False)
    assert manifest["resumed_from_step"] == 32
    assert manifest["rewritten_checkpoints"] == []
    assert re.search(
        r"skipping .*step_48\.pt: checkpoint unreadable.*resumes from step_32", caplog.text
    )
    assert_same_run(run, ref)


def test_missing_or_corrupt_earlier_checkpoints_are_rewritten(reference, run, caplog):
    """Training would resume after them and never pass their steps again: they are rewritten
    first, by replaying from the last good checkpoint before them."""
    spec, ref = reference
    forget_the_end(run)
    truncate(checkpoint_path(run, 16))
    (run / "log_parts" / "upto_32.npy").unlink()  # a lost log part makes step 32 bad too
    last = checkpoint_path(run, 48)
    mtime = last.stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        manifest = train_run(spec, run, progress=False)
    assert manifest["rewritten_checkpoints"] == [16, 32]
    assert manifest["resumed_from_step"] == 48
    assert last.stat().st_mtime_ns == mtime, "a good checkpoint was rewritten"
    assert re.search(
        r"step_16\.pt: checkpoint unreadable.*rewriting it.*from step_0\.pt", caplog.text
    )
    assert_same_run(run, ref)


def test_every_checkpoint_lost_replays_from_the_initialization(reference, run):
    spec, ref = reference
    forget_the_end(run)
    for step in STEPS[:-1]:
        checkpoint_path(run, step).unlink()
    manifest = train_run(spec, run, progress=False)
    assert manifest["rewritten_checkpoints"] == [0, 16, 32]
    assert_same_run(run, ref)


# --- a finished run: the statistics job's message, and following it -----------------------------


def _hint_command(message: str) -> list[str]:
    """The command between backticks in an error message, run with this interpreter."""
    found = re.search(r"`(python -m sgdconv\.train\.repair [^`]+)`", message)
    assert found, message
    return [sys.executable, *shlex.split(found[1])[1:]]


@pytest.mark.parametrize("damage", [truncate, Path.unlink])
def test_statistics_job_message_and_its_command_recover(reference, run, damage):
    _, ref = reference
    manifest_file = run / "manifest.json"
    untouched = {p: p.stat().st_mtime_ns for p in [manifest_file, run / "train_log.parquet"]}
    untouched |= {
        checkpoint_path(run, k): checkpoint_path(run, k).stat().st_mtime_ns for k in (0, 16, 48)
    }
    path = checkpoint_path(run, 32)
    damage(path)
    with pytest.raises((CorruptCheckpointError, FileNotFoundError)) as info:
        open_checkpoint(manifest_file, path, {"sample_size": 32})
    message = str(info.value)
    assert message.startswith(str(path))
    assert ("unreadable (corrupt or truncated)" if damage is truncate else "missing") in message
    result = subprocess.run(_hint_command(message), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "rewrote step_32.pt" in result.stdout
    _, ctx = open_checkpoint(manifest_file, path, {"sample_size": 32})
    assert ctx is not None and ctx.step == 32
    assert_same_state(load_checkpoint(path), load_checkpoint(checkpoint_path(ref, 32)))
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched


def test_repair_of_the_final_checkpoint_and_of_a_sound_run(reference, run):
    _, ref = reference
    final = checkpoint_path(run, 48)
    final.unlink()
    sidecar_path(final).unlink()
    assert repair_run(run, progress=False) == {"run_id": "toy", "rewritten": [48], "restart": 32}
    assert_same_run(run, ref)
    assert repair_run(run, progress=False)["rewritten"] == []


def test_repair_needs_a_finished_run(reference, run):
    forget_the_end(run)
    with pytest.raises(FileNotFoundError, match="has not finished"):
        repair_run(run, progress=False)
