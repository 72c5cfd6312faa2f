"""Statistics of a saved language-model checkpoint (sgdconv.stats.lm_checkpoint) against direct
computations: eq. (1) on the sample of segments, the official evaluation loop, Fig. 8's sweep
with the authors' estimator, and eq. (2) of the aggregated table from the train log."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from lm_runs import lm_spec_for

from sgdconv.stats.lm_checkpoint import (
    aggregate_lm_statistics,
    lm_checkpoint_statistics,
    lm_sample_size_sweep,
    open_lm_checkpoints,
)
from sgdconv.stats.segments import authors_lm_stats, segment_nll
from sgdconv.train.lm_engine import train_lm

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = {
    "sample_size": 24,
    "microbatch": 4,
    "sharpness_sample_size": 8,
    "sharpness_max_hvp": 10,
    "val_max_steps": 3,
    "seed": 7,
    "sweep_sizes": [8, 16, 24],
    "sweep_sharpness_sizes": [8],
    "authors_batches": [2, 3],
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lm")
    spec = lm_spec_for(tmp, max_steps=16)
    train_lm(spec, tmp / "run", progress=False)
    return tmp / "run"


def contexts(run, steps):
    paths = [run / "checkpoints" / f"step_{k}.pt" for k in steps]
    return list(open_lm_checkpoints(run / "manifest.json", paths, SETTINGS))


def test_row_against_direct_computations(run):
    (ctx,) = contexts(run, [16])
    row = lm_checkpoint_statistics(ctx)
    assert row["step"] == 16 and row["n_samples"] == 24 and row["n_tokens"] == 24 * 8
    # eq. (1): the mean segment loss and the plug-in |ḡ| of the sample, directly
    params = list(ctx.model.parameters())
    losses, total = [], 0
    for segments, target in ctx.sample():
        loss = segment_nll(ctx.wrapper.train()(segments), target)
        losses.append(float(loss.detach()))
        grads = torch.autograd.grad(loss, params)
        total = total + torch.cat([g.reshape(-1) for g in grads]) / 6
    assert row["loss"] == pytest.approx(np.mean(losses), rel=1e-5)
    assert row["grad_norm_plugin"] == pytest.approx(float(total.norm()), rel=1e-4)
    assert row["noise_norm_minibatch"] == pytest.approx(row["noise_norm"] / 2)  # B = 4
    assert math.isfinite(row["sharpness"]) and row["sharpness_n_hvp"] <= 10
    # the official evaluate(): eval mode, streams in order, memory carried, 3 segments
    model, val = ctx.model.eval(), ctx.streams.validation()
    mems, nll_sum, count = None, 0.0, 0
    with torch.no_grad():
        for i, (x, y) in enumerate(val):
            if i == 3:
                break
            nll, mems = model(x, y, mems)
            nll_sum, count = nll_sum + float(nll.sum()), count + nll.numel()
    assert row["val_loss"] == pytest.approx(nll_sum / count, rel=1e-6)


def test_sweep_rows_and_the_authors_estimator(run):
    (ctx,) = contexts(run, [16])
    sweep = lm_sample_size_sweep(ctx)
    row = lm_checkpoint_statistics(contexts(run, [16])[0])
    plugin = sweep[(sweep.quantity == "loss") & (sweep.estimator == "plugin")]
    assert plugin["n_samples"].tolist() == [8, 16, 24]
    assert plugin["value"].iloc[-1] == pytest.approx(row["loss"], rel=1e-6)  # nested samples
    authors = authors_lm_stats(ctx.model.train(), ctx.streams, [2, 3])
    got = sweep[(sweep.estimator == "authors") & (sweep.quantity == "grad_norm")]
    assert got["n_tokens"].tolist() == [2 * 4 * 8, 3 * 4 * 8]
    np.testing.assert_allclose(got["value"], [authors[2].grad_norm, authors[3].grad_norm])
    assert set(sweep[sweep.quantity == "sharpness"]["n_samples"]) == {8}


def test_aggregate_adds_eq2_over_each_checkpoint_interval(run):
    rows = [pd.DataFrame([lm_checkpoint_statistics(c)]) for c in contexts(run, [0, 8, 16])]
    rows.append(pd.DataFrame({"step": pd.Series(dtype="int64")}))  # a diverged part: no rows
    log = pd.read_parquet(run / "train_log.parquet")
    manifest = json.loads((run / "manifest.json").read_text())
    table = aggregate_lm_statistics(rows, log, manifest)
    assert table["step"].tolist() == [0, 8, 16]
    assert math.isnan(table["loss_moving_avg"].iloc[0])
    expected = [log["minibatch_loss"].iloc[0:8].mean(), log["minibatch_loss"].iloc[8:16].mean()]
    np.testing.assert_allclose(table["loss_moving_avg"].iloc[1:], expected)
    assert (table["run_id"] == "lm_toy").all() and (table["status"] == "completed").all()


def test_a_checkpoint_a_diverged_run_never_wrote_is_skipped(run, tmp_path):
    manifest = json.loads((run / "manifest.json").read_text())
    missing = tmp_path / "checkpoints" / "step_99.pt"
    with pytest.raises(FileNotFoundError, match="completed"):
        list(open_lm_checkpoints(run / "manifest.json", [missing], SETTINGS))
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "status": "diverged"}))
    assert list(open_lm_checkpoints(tmp_path / "manifest.json", [missing], SETTINGS)) == []
