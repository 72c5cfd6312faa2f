"""Statistics at checkpoints on a toy run: eq. (2) and eq. (3) against hand computation, the
aggregated stats table, a diverged run, the one-step loss change and the sample-size sweep."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from runs import spec_for
from sgdconv.data.base import batch_seed, build_data, epoch_permutation
from sgdconv.stats.aggregate import STATS_COLUMNS, aggregate_statistics
from sgdconv.stats.checkpoint_context import CheckpointContext, StatsSettings, open_checkpoint
from sgdconv.stats.checkpoint_stats import checkpoint_statistics
from sgdconv.stats.sweep import sample_size_sweep
from sgdconv.train.checkpoint import load_checkpoint
from sgdconv.train.engine import init_model, train_run

MLP = {"name": "mlp", "in_features": 36, "hidden": [8], "out_features": 4}


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("toy")
    spec = spec_for(tmp, model=MLP, epochs=3, checkpoint_every=1)
    manifest = train_run(spec, tmp / "run", progress=False)
    settings = StatsSettings(
        sample_size=128,
        microbatch=16,
        sharpness_tol=1e-4,
        sharpness_max_hvp=60,
        one_step_draws=3,
        curvature_directions=2,
    )
    rows = [
        pd.DataFrame(
            [checkpoint_statistics(CheckpointContext(spec, tmp / "run" / c["path"], settings))]
        )
        for c in manifest["checkpoints"]
    ]
    log = pd.read_parquet(tmp / "run" / "train_log.parquet")
    return spec, manifest, settings, rows, log, tmp / "run"


def test_eq2_is_the_epoch_mean_of_minibatch_losses_by_hand(toy_run):
    spec, manifest, _, rows, log, _ = toy_run
    table = aggregate_statistics(rows, log, manifest)
    assert list(table.columns[: len(STATS_COLUMNS)]) == STATS_COLUMNS
    spe = manifest["steps_per_epoch"]
    # Replay epoch 1 by hand: the loss of each minibatch at the iterate before its step.
    source = build_data(spec.data)
    state = load_checkpoint(toy_run[5] / "checkpoints" / f"step_{spe}.pt")
    model = init_model(spec, torch.device("cpu"))
    model.load_state_dict(state["model"])
    optimizer = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=0.9, weight_decay=5e-4)
    optimizer.load_state_dict(state["optimizer"])
    order = epoch_permutation(source.num_train, spec.seed, 1)
    plan = [(order[j * 16 : (j + 1) * 16], batch_seed(spec.seed, 1, j)) for j in range(spe)]
    losses = []
    for x, y in source.train_batches(plan):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    row = table[table["step"] == 2 * spe].iloc[0]
    assert row["loss_moving_avg"] == pytest.approx(np.mean(losses), rel=1e-5)
    assert math.isnan(table[table["step"] == 0]["loss_moving_avg"].iloc[0])
    # Eq. (3): the same minibatches at the epoch's last iterate, by hand.
    model.eval()  # an MLP: no BatchNorm, modes agree
    with torch.no_grad():
        last = np.mean(
            [
                float(torch.nn.functional.cross_entropy(model(x), y))
                for x, y in source.train_batches(plan)
            ]
        )
    assert row["loss_last"] == pytest.approx(last, rel=1e-5)


def test_gradient_statistics_match_a_per_sample_loop(toy_run):
    spec, manifest, settings, rows, _, run_dir = toy_run
    ctx = CheckpointContext(spec, run_dir / manifest["checkpoints"][-1]["path"], settings)
    x = torch.cat([b[0] for b in ctx.sample()])
    y = torch.cat([b[1] for b in ctx.sample()])
    params = list(ctx.model.parameters())
    grads, losses = [], []
    for i in range(len(y)):
        loss = torch.nn.functional.cross_entropy(ctx.model(x[i : i + 1]), y[i : i + 1])
        losses.append(float(loss.detach()))
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]))
    grads = torch.stack(grads).double()
    row = rows[-1].iloc[0]
    assert row["loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    assert row["grad_norm_plugin"] == pytest.approx(float(grads.mean(0).norm()), rel=1e-4)
    # augmented data: the population is infinite, so noise is the sample's s (divisor m - 1),
    # estimated from the micro-batch spread: check it is within a few standard errors.
    sigma = float(((grads - grads.mean(0)) ** 2).sum(1).mean().sqrt())
    assert abs(row["noise_norm"] - sigma) < 4 * row["noise_norm_se"] + 0.05 * sigma
    # The sharpness is the top eigenvalue of the dense Hessian of the sample loss.
    flat = torch.cat([p.detach().flatten() for p in params])

    def sample_loss(theta):
        out, offset = x, 0
        weights = []
        for p in params:
            weights.append(theta[offset : offset + p.numel()].view_as(p))
            offset += p.numel()
        out = torch.relu(out.flatten(1) @ weights[0].T + weights[1])
        return torch.nn.functional.cross_entropy(out @ weights[2].T + weights[3], y)

    hessian = torch.autograd.functional.hessian(sample_loss, flat.double().float())
    top = float(torch.linalg.eigvalsh(hessian.double())[-1])
    assert row["sharpness"] == pytest.approx(top, rel=1e-3)
    # eq. (10)'s curvature terms; the bounds of |∇L| from the squared estimate and its SE.
    assert row["sgd_curvature"] == pytest.approx(row["mean_curvature"] + row["noise_curvature"])
    assert row["batch_size"] == spec.batch_size and row["momentum"] == spec.momentum
    assert row["grad_norm_sq_se"] > 0
    assert row["grad_norm_lcb"] <= row["grad_norm"] <= row["grad_norm_ucb"]


def test_one_step_change_by_hand(toy_run):
    spec, manifest, settings, rows, _, run_dir = toy_run
    ctx = CheckpointContext(spec, run_dir / manifest["checkpoints"][1]["path"], settings)
    row = rows[1].iloc[0]
    assert np.isfinite(row["one_step_change"]) and row["one_step_change_se"] >= 0
    # Draws leave the checkpoint's state untouched (a second estimate is identical).
    from sgdconv.stats.checkpoint_stats import one_step_loss_change

    again = one_step_loss_change(ctx, ctx.sample())
    assert again["one_step_change"] == pytest.approx(row["one_step_change"], rel=1e-9)
    assert math.isnan(rows[-1].iloc[0]["one_step_change"])  # no step after the last one


def test_diverged_run_is_marked_in_its_stats(tmp_path):
    spec = spec_for(tmp_path, model=MLP, lr=50.0, epochs=10, checkpoint_every=0.25)
    manifest = train_run(spec, tmp_path / "run", progress=False)
    assert manifest["status"] == "diverged"
    settings = StatsSettings(sample_size=64, microbatch=16, sharpness=False)
    rows = [
        pd.DataFrame(
            [checkpoint_statistics(CheckpointContext(spec, tmp_path / "run" / c["path"], settings))]
        )
        for c in manifest["checkpoints"]
    ]
    table = aggregate_statistics(
        rows, pd.read_parquet(tmp_path / "run" / "train_log.parquet"), manifest
    )
    assert (table["status"] == "diverged").all()
    assert len(table) == len(manifest["checkpoints"])


def test_sample_size_sweep_is_nested_and_exact_at_the_population(tmp_path):
    spec = spec_for(
        tmp_path,
        model=MLP,
        data={"name": "tensors", "path": str(tmp_path / "data.npz")},
        epochs=1,
    )
    manifest = train_run(spec, tmp_path / "run", progress=False)
    settings = StatsSettings(sample_size=256, microbatch=16, sharpness_max_hvp=40)
    ctx = CheckpointContext(spec, tmp_path / "run" / manifest["checkpoints"][-1]["path"], settings)
    sweep = sample_size_sweep(ctx, [64, 128, 256])
    assert set(sweep["n_samples"]) == {64, 128, 256}
    wide = sweep.pivot_table(index="n_samples", columns=["quantity", "estimator"], values="value")
    # m = N = 256: the unbiased estimate is the exact |∇L_S| (= the plug-in).
    assert wide.loc[256, ("grad_norm", "unbiased")] == pytest.approx(
        wide.loc[256, ("grad_norm", "plugin")]
    )
    assert (wide[("grad_norm", "plugin")] >= wide[("grad_norm", "unbiased")] - 1e-12).all()
    # The authors' |ḡ| is the plug-in on the same micro-batches; their noise is on the
    # micro-batch scale (σ/√b), biased upward by the reference mean.
    np.testing.assert_allclose(wide[("grad_norm", "authors")], wide[("grad_norm", "plugin")])
    assert (wide[("noise_norm", "authors")] < wide[("noise_norm", "plugin")]).all()
    assert set(sweep["estimator"]) == {"plugin", "unbiased", "authors"}
    se = sweep.pivot_table(index="n_samples", columns=["quantity", "estimator"], values="se")
    np.testing.assert_allclose(se[("grad_norm", "authors")], se[("grad_norm", "plugin")])
    assert np.isfinite(wide[("sharpness", "authors")]).all()


def test_stats_settings_reject_unknown_keys():
    with pytest.raises(ValueError, match="unknown stats settings"):
        StatsSettings.from_dict({"sample_size": 10, "typo": 1})
    assert (
        StatsSettings.from_dict(json.loads(json.dumps(StatsSettings().to_dict())))
        == StatsSettings()
    )


def test_open_checkpoint_missing_only_after_a_divergence(tmp_path):
    manifest = {"run_id": "r", "status": "completed", "spec": {}}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    with pytest.raises(FileNotFoundError, match="completed"):
        open_checkpoint(path, tmp_path / "step_5.pt", {})
    path.write_text(json.dumps({**manifest, "status": "diverged"}))
    loaded, ctx = open_checkpoint(path, tmp_path / "step_5.pt", {})
    assert ctx is None and loaded["status"] == "diverged"
