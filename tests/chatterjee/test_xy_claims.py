"""Claims of chatterjee_fig1, chatterjee_prop31 and chatterjee_thm22: they hold on the real
tables (small sizes) and fail, visibly, when a table contradicts the paper."""

from __future__ import annotations

import numpy as np
import pytest

from sgdconv.chatterjee.xy_claims import claims_fig1, claims_prop31, claims_thm22
from sgdconv.chatterjee.xy_tables import fig1_grid_table, prop31_table, thm22_tables
from sgdconv.claims import evaluate


@pytest.fixture(scope="module")
def fig1_grid():
    return fig1_grid_table(3.0, 15, 1e-10, 1_000_000)


@pytest.fixture(scope="module")
def prop31_starts():
    return prop31_table(3.0, 5, [1.0], [1e-3], t_max=30.0)


@pytest.fixture(scope="module")
def thm22():
    return thm22_tables([[1.5, 1.0], [1.2, 0.5], [3.0, -0.2]], 20_000, 1e-20)


def test_fig1_claim_holds_and_reports_the_worst_start(fig1_grid):
    (claim,) = claims_fig1({"grid": fig1_grid}, {"limit": 3.0, "f_tol": 1e-10})
    assert claim.claim_id == "chatterjee_region_gd_converges"
    assert claim.holds
    assert claim.value == fig1_grid.loc[fig1_grid["inside"], "f_final"].max()


def test_fig1_claim_fails_on_a_start_that_did_not_converge(fig1_grid):
    grid = fig1_grid.copy()
    grid.loc[grid.index[grid["inside"]][0], "f_final"] = 1e-3
    (claim,) = claims_fig1({"grid": grid}, {"limit": 3.0, "f_tol": 1e-10})
    assert claim.holds is False and claim.value == 1e-3


def test_fig1_claim_fails_when_the_step_exceeds_the_theorems(fig1_grid):
    grid = fig1_grid.copy()
    grid.loc[grid.index[grid["inside"]][0], "lr"] *= 1.01
    (claim,) = claims_fig1({"grid": grid}, {"limit": 3.0, "f_tol": 1e-10})
    assert claim.holds is False
    assert "larger than the theorem" in claim.note


def test_fig1_claim_fails_on_a_diverged_start(fig1_grid):
    grid = fig1_grid.copy()
    grid.loc[grid.index[grid["inside"]][0], "f_final"] = np.nan
    (claim,) = claims_fig1({"grid": grid}, {"limit": 3.0, "f_tol": 1e-10})
    assert claim.holds is False


def test_prop31_claim_holds(prop31_starts):
    frame = evaluate("chatterjee_prop31", claims_prop31, {"starts": prop31_starts}, {"t_max": 30.0})
    assert list(frame["holds"]) == [True]
    assert frame["value"].iloc[0] == 0


def test_prop31_claim_counts_a_start_that_did_not_enter(prop31_starts):
    starts = prop31_starts.copy()
    i = starts.index[~starts["on_antidiagonal"] & ~starts["inside_at_start"]][0]
    starts.loc[i, ["entered", "t_enter"]] = [False, np.nan]
    (claim,) = claims_prop31({"starts": starts}, {"t_max": 30.0})
    assert claim.holds is False and claim.value == 1


def test_prop31_claim_counts_a_line_start_away_from_the_saddle(prop31_starts):
    starts = prop31_starts.copy()
    i = starts.index[starts["on_antidiagonal"]][0]
    starts.loc[i, "norm_end"] = 0.1
    (claim,) = claims_prop31({"starts": starts}, {"t_max": 30.0})
    assert claim.holds is False and claim.value == 1
    # A run stopped before t_max has not shown convergence either.
    (claim,) = claims_prop31({"starts": prop31_starts}, {"t_max": 60.0})
    assert claim.holds is False and claim.value == (prop31_starts["on_antidiagonal"]).sum()


def test_thm22_claim_holds_with_the_worst_ratio_below_one(thm22):
    constants, trajectories = thm22
    (claim,) = claims_thm22({"constants": constants, "trajectories": trajectories}, {})
    assert claim.holds
    assert 0 < claim.value <= 1


def test_thm22_claim_fails_when_f_exceeds_the_bound(thm22):
    constants, trajectories = thm22
    traj = trajectories.copy()
    i = traj.index[(traj["start"] == 1) & (traj["step"] == 5)][0]
    traj.loc[i, "f"] = traj.loc[i, "bound"] * 1.5
    (claim,) = claims_thm22({"constants": constants, "trajectories": traj}, {})
    assert claim.holds is False and claim.value == pytest.approx(1.5)


def test_thm22_claim_fails_when_an_iterate_leaves_the_ball(thm22):
    constants, trajectories = thm22
    traj = trajectories.copy()
    i = traj.index[(traj["start"] == 2) & (traj["step"] == 3)][0]
    traj.loc[i, "x"] += 2 * constants.loc[2, "r"]
    (claim,) = claims_thm22({"constants": constants, "trajectories": traj}, {})
    assert claim.holds is False and claim.value > 1


def test_thm22_claim_fails_on_nan(thm22):
    constants, trajectories = thm22
    traj = trajectories.copy()
    traj.loc[traj.index[-1], "f"] = np.nan
    (claim,) = claims_thm22({"constants": constants, "trajectories": traj}, {})
    assert claim.holds is False
