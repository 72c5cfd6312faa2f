"""The language-model engine (sgdconv.train.lm_engine): a hand-written loop of the official
Transformer-XL training (Adam, clipping, cosine, memory carried and reset each epoch), resume
after kill -9 (bit-identical), a changed spec, divergence, and DDP with gloo against one
process."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from lm_runs import lm_spec_for

from sgdconv.train.checkpoint import list_checkpoints, load_checkpoint
from sgdconv.train.lm_engine import build_streams, init_lm, optimizer_path, train_lm
from sgdconv.train.lm_launch import launch_lm
from sgdconv.train.lm_spec import LMRunSpec, lm_checkpoint_steps

pytestmark = pytest.mark.usefixtures("one_thread")


def test_checkpoint_steps_and_spec_checks(tmp_path):
    spec = lm_spec_for(tmp_path, max_steps=20, checkpoint_every=8)
    assert lm_checkpoint_steps(spec) == [0, 8, 16, 20]
    with pytest.raises(ValueError, match="must not set"):
        lm_spec_for(tmp_path, model={"name": "transformer_xl", "tgt_len": 4})
    with pytest.raises(ValueError, match="schedule"):
        lm_spec_for(tmp_path, schedule={"name": "step"})
    with pytest.raises(ValueError, match="unknown"):
        LMRunSpec.from_dict({**spec.to_dict(), "momentum": 0.9})
    assert spec.training_hash() == lm_spec_for(tmp_path, max_steps=20, nproc=2).training_hash()


def test_engine_matches_a_hand_written_loop(tmp_path):
    """The official loop by hand: memory carried from segment to segment and emptied at each
    epoch, mean NLL, clip_grad_norm_(0.25), Adam, lr η/2 (1 + cos(π k / K)) for update k + 1."""
    spec = lm_spec_for(tmp_path, max_steps=40, clip=0.25)
    manifest = train_lm(spec, tmp_path / "run", progress=False)
    log = pd.read_parquet(tmp_path / "run" / "train_log.parquet")
    streams = build_streams(spec)
    spe = streams.n_segments
    assert manifest["steps_per_epoch"] == spe < 40  # the run crosses an epoch boundary
    assert log["step"].tolist() == list(range(1, 41))
    assert log["epoch"].tolist() == [k // spe for k in range(40)]

    model = init_lm(spec, streams.n_token, torch.device("cpu"))
    adam = torch.optim.Adam(model.parameters(), lr=spec.lr)
    mems, losses, lrs = None, [], []
    for k in range(40):
        t = k % spe
        mems = None if t == 0 else mems
        lr = spec.lr * 0.5 * (1 + math.cos(math.pi * k / 40))
        for group in adam.param_groups:
            group["lr"] = lr
        nll, mems = model(*streams.batch(t), mems)
        loss = nll.mean()
        losses.append(float(loss.detach()))
        lrs.append(lr)
        adam.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        adam.step()
    np.testing.assert_allclose(log["lr"], lrs, rtol=1e-12)
    np.testing.assert_allclose(log["minibatch_loss"], losses, rtol=1e-5)
    final = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_40.pt")
    for name, p in model.state_dict().items():
        torch.testing.assert_close(final["model"][name], p, rtol=1e-4, atol=1e-6)
    # the checkpoint holds the memory the next segment would read: every layer's input
    assert len(final["mems"]) == spec.model["n_layer"] + 1
    for saved, live in zip(final["mems"], mems, strict=True):
        assert saved.shape == (spec.mem_len, spec.batch_size, 16)
        torch.testing.assert_close(saved, live, rtol=1e-4, atol=1e-6)


def test_only_the_last_optimizer_states_are_kept(tmp_path):
    spec = lm_spec_for(tmp_path, max_steps=24, keep_optimizer=2)
    train_lm(spec, tmp_path / "run", progress=False)
    assert sorted(p.name for p in (tmp_path / "run" / "optimizer").iterdir()) == [
        "step_16.pt",
        "step_16.pt.sha256",
        "step_24.pt",
        "step_24.pt.sha256",
    ]
    assert [s for s, _ in list_checkpoints(tmp_path / "run")] == [0, 8, 16, 24]


# --- kill -9 and resume ---------------------------------------------------------------------


def _start(spec: LMRunSpec, run_dir: Path) -> subprocess.Popen:
    spec_file = run_dir.parent / f"{run_dir.name}.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    command = [sys.executable, "-m", "sgdconv.train.lm_launch", str(spec_file), str(run_dir)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_after_checkpoint(proc: subprocess.Popen, run_dir: Path, min_step: int, delay: float):
    deadline = time.time() + 120
    while time.time() < deadline:
        steps = [s for s, _ in list_checkpoints(run_dir)]
        if steps and max(steps) >= min_step:
            break
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.002)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "manifest.json").exists(), "killed too late: the run had finished"


def test_resume_after_kill_is_bit_identical(tmp_path):
    spec = lm_spec_for(tmp_path, max_steps=96, checkpoint_every=8)
    reference = tmp_path / "reference"
    train_lm(spec, reference, progress=False)

    killed = tmp_path / "killed"  # killed twice (once at a checkpoint, once between), resumed
    _kill_after_checkpoint(_start(spec, killed), killed, min_step=8, delay=0.0)
    _kill_after_checkpoint(_start(spec, killed), killed, min_step=32, delay=0.03)
    manifest = train_lm(spec, killed, progress=False)
    assert manifest["resumed_from_step"] >= 32
    pd.testing.assert_frame_equal(
        pd.read_parquet(reference / "train_log.parquet"),
        pd.read_parquet(killed / "train_log.parquet"),
    )
    steps = [s for s, _ in list_checkpoints(reference)]
    assert steps == [s for s, _ in list_checkpoints(killed)] == lm_checkpoint_steps(spec)
    for step in steps:  # every checkpoint, memory included, equals the reference's
        a, b = (load_checkpoint(d / "checkpoints" / f"step_{step}.pt") for d in (reference, killed))
        for name in a["model"]:
            assert torch.equal(a["model"][name], b["model"][name]), (step, name)
        assert (a["mems"] is None) == (b["mems"] is None)
        for ma, mb in zip(a["mems"] or [], b["mems"] or [], strict=True):
            assert torch.equal(ma, mb), step
    a, b = (load_checkpoint(optimizer_path(d, 96))["optimizer"] for d in (reference, killed))
    for key, state in a["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[name], b["state"][key][name])


def test_changed_spec_starts_afresh_and_a_finished_run_is_not_recomputed(tmp_path):
    spec = lm_spec_for(tmp_path, max_steps=16)
    train_lm(spec, tmp_path / "run", progress=False)
    other = lm_spec_for(tmp_path, max_steps=16, lr=1e-3)
    manifest = train_lm(other, tmp_path / "run", progress=False)
    assert manifest["resumed_from_step"] == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_16.pt")
    assert state["spec_hash"] == other.training_hash()
    again = train_lm(other, tmp_path / "run", progress=False)
    assert again["resumed_from_step"] == 16


# --- divergence -----------------------------------------------------------------------------


class _Poisoned(torch.nn.Module):
    """A Transformer-XL whose loss becomes NaN from its 13th forward pass on."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        from sgdconv.models.transformer_xl import transformer_xl

        self.lm = transformer_xl(**kwargs)
        self.calls = 0

    def forward(self, tokens, targets, mems=None):
        self.calls += 1
        nll, mems = self.lm(tokens, targets, mems)
        return (nll * math.nan if self.calls >= 13 else nll), mems


def poisoned(**kwargs) -> torch.nn.Module:
    return _Poisoned(**kwargs)


def test_divergence_stops_and_marks_the_run(tmp_path):
    spec = lm_spec_for(tmp_path, max_steps=24)
    spec = LMRunSpec.from_dict(
        {**spec.to_dict(), "model": {**spec.model, "name": "test_lm_engine:poisoned"}}
    )
    manifest = train_lm(spec, tmp_path / "run", progress=False)
    assert manifest["status"] == "diverged" and manifest["diverged_at_step"] == 13
    log = pd.read_parquet(tmp_path / "run" / "train_log.parquet")
    assert log["step"].tolist() == list(range(1, 14))
    assert not math.isfinite(log["minibatch_loss"].iloc[-1])
    assert [c["step"] for c in manifest["checkpoints"]] == [0, 8]


# --- DDP ------------------------------------------------------------------------------------


def test_ddp_two_processes_match_one(tmp_path):
    """2 processes (gloo), 2 streams and their memory each, reproduce 1 process with 4."""
    spec = lm_spec_for(tmp_path, max_steps=40)
    single = train_lm(spec, tmp_path / "one", progress=False)
    double = launch_lm(spec, tmp_path / "two", nproc=2)
    assert double["world_size"] == 2 and single["world_size"] == 1
    a = pd.read_parquet(tmp_path / "one" / "train_log.parquet")
    b = pd.read_parquet(tmp_path / "two" / "train_log.parquet")
    pd.testing.assert_frame_equal(
        a.drop(columns="minibatch_loss"), b.drop(columns="minibatch_loss")
    )
    np.testing.assert_allclose(a["minibatch_loss"], b["minibatch_loss"], rtol=1e-5)
    p1, p2 = (
        load_checkpoint(d / "checkpoints" / "step_40.pt")
        for d in (tmp_path / "one", tmp_path / "two")
    )
    for name in p1["model"]:
        torch.testing.assert_close(p1["model"][name], p2["model"][name], rtol=1e-4, atol=1e-6)
    # the memory of all four streams, gathered from both processes
    for m1, m2 in zip(p1["mems"], p2["mems"], strict=True):
        torch.testing.assert_close(m1, m2, rtol=1e-4, atol=1e-5)
    assert len(p2["rng"]) == 2


def test_a_run_whose_checkpoints_are_all_damaged_starts_afresh(tmp_path):
    spec = lm_spec_for(tmp_path, max_steps=24)
    reference = train_lm(spec, tmp_path / "ref", progress=False)
    train_lm(spec, tmp_path / "run", progress=False)
    for path in (tmp_path / "run" / "checkpoints").glob("step_*.pt"):
        path.write_bytes(b"damaged")
    manifest = train_lm(spec, tmp_path / "run", progress=False)
    assert manifest["resumed_from_step"] == 0
    assert sorted(p.name for p in (tmp_path / "run" / "optimizer").glob("*.pt")) == [
        "step_16.pt",
        "step_24.pt",
    ]
    a, b = (
        load_checkpoint(d / "checkpoints" / "step_24.pt")
        for d in (tmp_path / "ref", tmp_path / "run")
    )
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert reference["total_steps"] == manifest["total_steps"]
