"""The training engine: schedules against hand-computed learning rates, a hand-written SGD loop,
resume after kill -9 (bit-identical), divergence, and DDP with gloo against one process."""

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

from runs import spec_for
from sgdconv.data.base import batch_seed, build_data, epoch_permutation
from sgdconv.train.checkpoint import list_checkpoints, load_checkpoint
from sgdconv.train.engine import checkpoint_steps, init_model, train_run
from sgdconv.train.launch import launch
from sgdconv.train.schedules import lr_at, phases
from sgdconv.train.spec import RunSpec

# --- schedules -------------------------------------------------------------------------------


def test_step_schedule_by_hand():
    # 3 steps per epoch, ÷10 at epochs 2 and 4: steps 0-5 at 0.1, 6-11 at 0.01, 12-17 at 0.001.
    schedule = {"name": "step", "milestones": [2, 4], "gamma": 0.1}
    lrs = [lr_at(schedule, 0.1, 3, 18, k) for k in range(18)]
    expected = [0.1] * 6 + [0.01] * 6 + [0.001] * 6
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)


def test_cosine_and_constant_by_hand():
    cosine = {"name": "cosine", "eta_min": 0.0}
    total = 8
    for k, expected in enumerate(
        [1.0, 0.9619397663, 0.8535533906, 0.6913417162, 0.5, 0.3086582838, 0.1464466094]
    ):
        assert lr_at(cosine, 2.5e-4, 2, total, k) == pytest.approx(2.5e-4 * expected, rel=1e-9)
    assert lr_at({"name": "cosine", "eta_min": 1e-5}, 1e-4, 2, total, total) == pytest.approx(1e-5)
    assert {lr_at({"name": "constant"}, 0.01, 5, 50, k) for k in range(50)} == {0.01}


def test_phases_of_schedules():
    assert phases({"name": "step", "milestones": [30, 60]}, 90) == [(0, 30), (30, 60), (60, 90)]
    assert phases({"name": "constant"}, 90) == [(0, 90)]
    assert phases({"name": "cosine"}, 90) == []


# --- a small run ----------------------------------------------------------------------------


def test_checkpoint_cadence_includes_zero_and_last():
    spec = RunSpec(
        run_id="x", model={"name": "mlp"}, data={"name": "d"}, epochs=5, checkpoint_every=2
    )
    assert checkpoint_steps(spec, 10) == [0, 20, 40, 50]
    spec = RunSpec(
        run_id="x", model={"name": "mlp"}, data={"name": "d"}, epochs=2, checkpoint_every=0.5
    )
    assert checkpoint_steps(spec, 3) == [0, 2, 4, 6]


def test_engine_matches_a_hand_written_sgd_loop(tmp_path):
    """The textbook update v ← μ v + g + λ θ, θ ← θ − η v (PyTorch's SGD), by hand."""
    torch.set_num_threads(1)
    spec = spec_for(
        tmp_path,
        model={"name": "mlp", "in_features": 36, "hidden": [8], "out_features": 4},
        epochs=2,
    )
    manifest = train_run(spec, tmp_path / "run", progress=False)
    log = pd.read_parquet(tmp_path / "run" / "train_log.parquet")
    assert list(log.columns) == ["step", "epoch", "lr", "minibatch_loss"]
    spe = manifest["steps_per_epoch"]
    assert spe == 256 // 16 and len(log) == 2 * spe
    assert log["step"].tolist() == list(range(1, 2 * spe + 1))

    source = build_data(spec.data)
    model = init_model(spec, torch.device("cpu"))
    params = list(model.parameters())
    velocity = [torch.zeros_like(p) for p in params]
    losses = []
    for epoch in range(2):
        order = epoch_permutation(source.num_train, spec.seed, epoch)
        plan = [(order[j * 16 : (j + 1) * 16], batch_seed(spec.seed, epoch, j)) for j in range(spe)]
        for x, y in source.train_batches(plan):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            losses.append(float(loss.detach()))
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g, v in zip(params, grads, velocity, strict=True):
                    v.mul_(0.9).add_(g + 5e-4 * p)
                    p.sub_(0.05 * v)  # milestone at epoch 2: no decay within these 2 epochs
    np.testing.assert_allclose(log["minibatch_loss"], losses, rtol=1e-5)
    final = load_checkpoint(tmp_path / "run" / "checkpoints" / f"step_{2 * spe}.pt")
    for name, p in model.state_dict().items():
        torch.testing.assert_close(final["model"][name], p, rtol=1e-4, atol=1e-6)


def test_lr_column_follows_the_schedule(tmp_path):
    spec = spec_for(tmp_path, epochs=3)
    manifest = train_run(spec, tmp_path / "run", progress=False)
    log = pd.read_parquet(tmp_path / "run" / "train_log.parquet")
    spe = manifest["steps_per_epoch"]
    expected = [0.05] * (2 * spe) + [0.005] * spe
    np.testing.assert_allclose(log["lr"], expected, rtol=1e-12)
    assert log["epoch"].tolist() == [k // spe for k in range(3 * spe)]
    assert [c["step"] for c in manifest["checkpoints"]] == [0, spe, 2 * spe, 3 * spe]
    assert manifest["status"] == "completed" and manifest["diverged_at_step"] is None


# --- kill -9 and resume ---------------------------------------------------------------------


def _start(spec: RunSpec, run_dir: Path) -> subprocess.Popen:
    spec_file = run_dir.parent / f"{run_dir.name}.json"
    spec_file.write_text(json.dumps(spec.to_dict()))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sgdconv.train.worker",
            str(spec_file),
            str(run_dir),
            "--threads",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_after_checkpoint(proc: subprocess.Popen, run_dir: Path, min_step: int, delay: float):
    deadline = time.time() + 120
    while time.time() < deadline:
        steps = [s for s, _ in list_checkpoints(run_dir)]
        if steps and max(steps) >= min_step:
            break
        if proc.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.005)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "manifest.json").exists(), "killed too late: the run had finished"


def test_resume_after_kill_is_bit_identical(tmp_path):
    spec = spec_for(tmp_path, epochs=12, schedule={"name": "step", "milestones": [4, 8]})
    reference = tmp_path / "reference"
    assert _start(spec, reference).wait() == 0

    killed = tmp_path / "killed"
    _kill_after_checkpoint(_start(spec, killed), killed, min_step=16, delay=0.0)
    _kill_after_checkpoint(_start(spec, killed), killed, min_step=64, delay=0.037)
    assert _start(spec, killed).wait() == 0

    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["resumed_from_step"] >= 64
    pd.testing.assert_frame_equal(
        pd.read_parquet(reference / "train_log.parquet"),
        pd.read_parquet(killed / "train_log.parquet"),
    )
    last = manifest["total_steps"]
    a, b = (load_checkpoint(d / "checkpoints" / f"step_{last}.pt") for d in (reference, killed))
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for key, state in a["optimizer"]["state"].items():
        assert torch.equal(
            state["momentum_buffer"], b["optimizer"]["state"][key]["momentum_buffer"]
        )
    # Every checkpoint of the killed run equals the reference's.
    steps_ref = [s for s, _ in list_checkpoints(reference)]
    assert steps_ref == [s for s, _ in list_checkpoints(killed)]


def test_changed_spec_starts_afresh(tmp_path):
    spec = spec_for(tmp_path, epochs=1)
    train_run(spec, tmp_path / "run", progress=False)
    other = spec_for(tmp_path, epochs=1, lr=0.01)
    manifest = train_run(other, tmp_path / "run", progress=False)
    assert manifest["resumed_from_step"] == 0
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / f"step_{manifest['total_steps']}.pt")
    assert state["spec_hash"] == other.training_hash()
    # Re-running a finished run with the same spec resumes at the end: nothing is recomputed.
    again = train_run(other, tmp_path / "run", progress=False)
    assert again["resumed_from_step"] == manifest["total_steps"]


# --- divergence -----------------------------------------------------------------------------


def test_divergence_stops_and_marks_the_run(tmp_path):
    spec = spec_for(
        tmp_path,
        model={"name": "mlp", "in_features": 36, "hidden": [16], "out_features": 4},
        lr=50.0,
        momentum=0.9,
        weight_decay=0.0,
        epochs=20,
    )
    manifest = train_run(spec, tmp_path / "run", progress=False)
    assert manifest["status"] == "diverged"
    k = manifest["diverged_at_step"]
    log = pd.read_parquet(tmp_path / "run" / "train_log.parquet")
    assert log["step"].tolist() == list(range(1, k + 1))
    assert not math.isfinite(log["minibatch_loss"].iloc[-1])
    assert np.isfinite(log["minibatch_loss"].iloc[:-1]).all()
    steps = [c["step"] for c in manifest["checkpoints"]]
    assert steps and max(steps) < k
    for step in steps:
        state = load_checkpoint(tmp_path / "run" / "checkpoints" / f"step_{step}.pt")
        assert all(torch.isfinite(t).all() for t in state["model"].values())


# --- DDP ------------------------------------------------------------------------------------


def test_ddp_two_processes_match_one(tmp_path):
    """2 processes (gloo) with shards of 8 reproduce 1 process with the global batch of 16."""
    spec = spec_for(
        tmp_path,
        model={"name": "mlp", "in_features": 36, "hidden": [16], "out_features": 4},
        epochs=2,
    )
    single = train_run(spec, tmp_path / "one", progress=False)
    double = launch(spec, tmp_path / "two", nproc=2)
    assert double["world_size"] == 2 and single["world_size"] == 1
    a = pd.read_parquet(tmp_path / "one" / "train_log.parquet")
    b = pd.read_parquet(tmp_path / "two" / "train_log.parquet")
    pd.testing.assert_frame_equal(
        a.drop(columns="minibatch_loss"), b.drop(columns="minibatch_loss")
    )
    np.testing.assert_allclose(a["minibatch_loss"], b["minibatch_loss"], rtol=1e-5)
    last = single["total_steps"]
    p1 = load_checkpoint(tmp_path / "one" / "checkpoints" / f"step_{last}.pt")["model"]
    p2 = load_checkpoint(tmp_path / "two" / "checkpoints" / f"step_{last}.pt")["model"]
    for name in p1:
        torch.testing.assert_close(p1[name], p2[name], rtol=1e-5, atol=1e-6)
