"""The vision claims and derived quantities on synthetic tables with known answers; each claim
both holds and fails when it should, and a diverged run never holds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sgdconv.zhang.analysis import (
    eq10_ratio,
    eq10_terms,
    loglog_slope,
    phase_stability,
    smoothness,
    time_average_change,
)
from sgdconv.zhang.claims import (
    claims_eq10,
    claims_fig1,
    claims_fig2,
    claims_fig5,
    claims_fig6,
    claims_fig7,
    claims_thm43,
    final_level,
)
from sgdconv.zhang.tables import eq10_table, thm43_table


def train_log(epoch_losses, steps_per_epoch=4, lrs=None):
    rows, step = [], 0
    for epoch, value in enumerate(epoch_losses):
        for _ in range(steps_per_epoch):
            step += 1
            lr = 0.1 if lrs is None else lrs[epoch]
            rows.append((step, epoch, lr, value))
    return pd.DataFrame(rows, columns=["step", "epoch", "lr", "minibatch_loss"])


def stats_table(epochs, **columns):
    frame = pd.DataFrame({"step": np.arange(len(epochs)) * 10, "epoch": epochs, **columns})
    frame["status"] = "completed"
    return frame


# --- analysis -------------------------------------------------------------------------------


def test_phase_stability_by_hand():
    losses = [2.0] * 10 + [1.0] * 8 + [1.05, 1.1]  # phase 2 rises 10% in its last epoch
    log = train_log(losses)
    table = phase_stability(log, [(0, 10), (10, 20)])
    assert table["window"].tolist() == [1, 1]
    assert table["rel_change"].iloc[0] == pytest.approx(0.0)
    assert table["rel_change"].iloc[1] == pytest.approx(abs(1.1 - 1.05) / 1.05)


def test_smoothness_by_hand():
    stats = stats_table(
        [0, 1, 2, 3, 4], loss_moving_avg=[np.nan, 1.0, 1.1, 1.0, 1.1], loss_last=[2, 1, 1.4, 1, 1.4]
    )
    s = smoothness(stats, after_epoch=0)
    assert s["eq2"] == pytest.approx(0.1) and s["eq3"] == pytest.approx(0.4)
    assert s["ratio"] == pytest.approx(0.25) and s["pairs"] == 3


def test_time_average_change_telescopes():
    steps = np.array([0, 10, 20, 40, 80])
    loss = np.array([3.0, 2.0, 1.5, 1.2, 1.0])
    stats = pd.DataFrame(
        {
            "step": steps,
            "epoch": steps / 10,
            "loss": loss,
            "one_step_change": [0.2, 0.1, np.nan, -0.1, np.nan],
        }
    )
    curve = time_average_change(stats)
    np.testing.assert_allclose(curve["realized"], (3.0 - loss[1:]) / steps[1:])
    np.testing.assert_allclose(curve["independent"], [0.1, 0.1, 0.0, 0.0])


def test_loglog_slope_recovers_a_power_law():
    n = np.array([10.0, 100.0, 1000.0])
    slope, intercept = loglog_slope(n, -3.0 * n**-0.5)
    assert slope == pytest.approx(-0.5) and math.exp(intercept) == pytest.approx(3.0)
    assert math.isnan(loglog_slope(n, [0.0, 0.0, 1.0])[0])


def test_eq10_terms_by_hand():
    stats = stats_table(
        [0, 1],
        lr=[0.1, 0.1],
        grad_norm_sq=[0.04, 0.09],
        noise_norm_sq=[32.0, 64.0],
        microbatch_size=[32, 32],
        sharpness=[2.0, 4.0],
    )
    terms = eq10_terms(stats)
    np.testing.assert_allclose(terms["second_moment"], [1.04, 2.09])
    np.testing.assert_allclose(terms["rhs"], [0.1 * 2.0 * 1.04, 0.1 * 4.0 * 2.09])
    r = eq10_ratio(terms, from_fraction=0.0)
    assert r["ratio"] == pytest.approx(0.065 / np.mean([0.208, 0.836]))


# --- claims ---------------------------------------------------------------------------------


def fig1_tables(noise_end=6.0, late_rise=0.0):
    epochs = np.arange(0, 21, 2.0)
    noise = np.full(len(epochs), 5.0)
    noise[-2:] = noise_end  # the last 10% of training: epochs 18 and 20
    stats = stats_table(epochs, noise_norm=noise)
    losses = [1.0] * 10 + [0.5] * 9 + [0.5 * (1 + late_rise)]
    return {"stats": stats, "train_log": train_log(losses)}


def test_fig1_claims_hold_and_fail():
    params = {"epochs": 20, "milestones": [10]}
    rows = {c.claim_id: c for c in claims_fig1(fig1_tables(), params)}
    assert rows["zhang_noise_grows"].holds and rows["zhang_noise_grows"].value == pytest.approx(1.2)
    assert rows["zhang_loss_stabilizes"].holds
    rows = {c.claim_id: c for c in claims_fig1(fig1_tables(noise_end=4.0, late_rise=0.05), params)}
    assert rows["zhang_noise_grows"].holds is False
    assert rows["zhang_loss_stabilizes"].value == pytest.approx(0.05)
    assert rows["zhang_loss_stabilizes"].holds is False
    assert "still drifting" in rows["zhang_loss_stabilizes"].note
    diverged = fig1_tables()
    diverged["stats"]["status"] = "diverged"
    assert all(c.holds is False and "diverged" in c.note for c in claims_fig1(diverged, params))


def fig2_tables(finals):
    tables, views = {}, []
    for i, (lr, final) in enumerate(finals.items()):
        epochs = np.arange(0, 11.0)
        grad = np.full(len(epochs), 0.5)
        grad[0] = 1.0
        grad[-2:] = final  # the last 10% of training: epochs 9 and 10
        tables[f"run{i}"] = stats_table(epochs, grad_norm=grad)
        views.append({"table": f"run{i}", "lr": lr, "epochs": 10, "long": False})
    return tables, {"views": views}


def test_fig2_claims_hold_and_fail():
    tables, params = fig2_tables({0.1: 0.3, 0.03: 0.4, 0.01: 0.6})
    rows = {c.claim_id: c for c in claims_fig2(tables, params)}
    persists = rows["zhang_grad_norm_persists"]
    assert persists.holds and persists.value == pytest.approx(0.3)  # median of 0.5, 0.3, 0.3
    assert rows["zhang_smaller_lr_larger_grad"].holds
    assert rows["zhang_smaller_lr_larger_grad"].value == pytest.approx(max(0.4 / 0.6, 0.3 / 0.4))
    tables, params = fig2_tables({0.1: 0.5, 0.01: 0.05})
    for table in tables.values():  # vanishes in the last quarter (before the final value)
        table.loc[(table["epoch"] >= 8) & (table["epoch"] < 10), "grad_norm"] = 0.05
    rows = {c.claim_id: c for c in claims_fig2(tables, params)}
    assert rows["zhang_grad_norm_persists"].holds is False
    assert rows["zhang_smaller_lr_larger_grad"].holds is False


def test_final_level_is_the_mean_over_the_last_tenth():
    stats = stats_table(np.arange(0, 101, 5.0), grad_norm=np.arange(21.0))
    level, count = final_level(stats, "grad_norm", 100)
    assert count == 3 and level == pytest.approx(19.0)  # epochs 90, 95, 100


def test_fig2_a_single_last_checkpoint_does_not_decide():
    # The last checkpoints invert the order, the final 10% (two checkpoints) does not.
    tables, params = fig2_tables({0.1: 0.3, 0.01: 0.6})
    tables["run0"].loc[10, "grad_norm"] = 0.5
    tables["run1"].loc[10, "grad_norm"] = 0.4
    (monotone,) = [c for c in claims_fig2(tables, params) if "smaller_lr" in c.claim_id]
    assert monotone.holds and monotone.value == pytest.approx(0.4 / 0.5)
    assert "last checkpoint alone: lr 0.01: 0.4, lr 0.1: 0.5" in monotone.note


def test_fig5_fig6_fig7_claims():
    stats = stats_table(
        [0, 1, 2, 3, 4], loss_moving_avg=[np.nan, 1.0, 1.1, 1.0, 1.1], loss_last=[2, 1, 1.4, 1, 1.4]
    )
    assert claims_fig5({"stats": stats}, {"first_milestone": 0})[0].holds
    stats["loss_last"] = stats["loss_moving_avg"]
    assert claims_fig5({"stats": stats}, {"first_milestone": 0})[0].holds is False
    # Far below the edge of stability 2(1 + β)/η = 38 the last iterate barely moves: the note
    # says so.
    stats["lr"], stats["sharpness"] = 0.1, 2.0
    (smoother,) = claims_fig5({"stats": stats}, {"first_milestone": 0, "momentum": 0.9})
    assert smoother.holds is False and "stability edge 2(1+β)/η = 38" in smoother.note

    interp = stats_table([0, 1, 2], grad_norm=[1.0, 2.0, 0.01], loss=[2.0, 0.1, 0.001])
    assert claims_fig6({"stats": interp}, {})[0].value == pytest.approx(0.005)
    interp.loc[2, "grad_norm"] = 0.1
    assert claims_fig6({"stats": interp}, {})[0].holds is False

    sweep = pd.DataFrame(
        [
            (m, q, e, v)
            for m, scale in ((100, 1.2), (200, 1.03), (400, 1.0))
            for q, e, v in (
                ("loss", "paper", 1.0),
                ("grad_norm", "paper", scale),
                ("grad_norm", "unbiased", 1.0),
            )
        ],
        columns=["n_samples", "quantity", "estimator", "value"],
    )
    claim = claims_fig7({"sweep": sweep}, {})[0]
    assert claim.value == pytest.approx(0.03) and claim.holds
    sweep.loc[(sweep["n_samples"] == 200) & (sweep["quantity"] == "loss"), "value"] = 1.2
    assert claims_fig7({"sweep": sweep}, {})[0].holds is False


def test_thm43_and_eq10_claims():
    steps = np.array([0, 10, 20, 40, 80, 160])
    plateau = pd.DataFrame(
        {
            "step": steps,
            "epoch": steps / 10.0,
            "loss": [3.0, 1.0, 1.0, 1.0, 1.0, 1.0],
            "one_step_change": np.nan,
            "status": "completed",
        }
    )
    rising = plateau.copy()
    rising["loss"] = 3.0 - 0.01 * steps  # a loss that keeps falling: the change does not vanish
    table = thm43_table({"a": plateau, "b": rising}, {"a": 0.1, "b": 0.01})
    by_run = table.groupby("run_id")["slope_realized"].first()
    assert by_run["a"] == pytest.approx(-1.0) and by_run["b"] == pytest.approx(0.0, abs=1e-9)
    claim = claims_thm43({"thm43": table}, {})[0]
    assert claim.holds is False and claim.value == pytest.approx(0.0, abs=1e-9)
    assert claims_thm43({"thm43": table[table["run_id"] == "a"]}, {})[0].holds

    stats = stats_table(
        [0, 1, 2, 3],
        lr=0.1,
        grad_norm_sq=[1.0, 0.04, 0.04, 0.04],
        noise_norm_sq=[32.0] * 4,
        microbatch_size=[32] * 4,
        sharpness=[1.0, 2.0, 2.0, 2.0],
    )
    eq10 = eq10_table({"r": stats}, {"r": 0.1})
    rows = claims_eq10({"eq10": eq10}, {"momentum": 0.9})
    assert len(rows) == 1 and rows[0].op == "report" and rows[0].holds is None
    assert rows[0].value == pytest.approx(0.04 / (0.1 * 2.0 * 1.04))
