"""anlu_noise: the data and model factories and the claim, against hand-made ground truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from sgdconv.anlu.noise import (
    chatterjee_net,
    noise_to_loss,
    regression_source,
    spread_while_falling,
)
from sgdconv.anlu.noise_claims import claims_anlu_noise


def test_interpolating_source_has_independent_inputs():
    source = regression_source(n=8, d=16, seed=3)
    x = source.x_train
    assert x.shape == (8, 16) and x.dtype == torch.float64
    assert int(torch.linalg.matrix_rank(x)) == 8
    again = regression_source(n=8, d=16, seed=3)
    torch.testing.assert_close(again.y_train, source.y_train)


def test_non_interpolating_source_and_validation_split():
    source = regression_source(n=50, d=4, n_val=10, seed=0)
    assert source.x_train.shape == (50, 4) and source.x_val.shape == (10, 4)


def test_chatterjee_net_starts_at_zero_output_and_mean_square_loss():
    net = chatterjee_net(d=6, widths=(4, 3), output_weight=2.0, seed=1)
    source = regression_source(n=5, d=6, seed=2)
    with torch.no_grad():
        out = net(source.x_train)
    torch.testing.assert_close(out, torch.zeros(5, dtype=torch.float64))
    loss = torch.mean((out - source.y_train) ** 2)
    assert float(loss) == pytest.approx(float((source.y_train**2).mean()))


def stats_table(loss, noise):
    steps = np.arange(len(loss)) * 10
    return pd.DataFrame(
        {"step": steps, "epoch": steps // 10, "loss_last": loss, "noise_norm": noise}
    )


def test_spread_and_fall_by_hand():
    loss = np.array([1.0, 1e-2, 1e-5])
    noise = np.sqrt(np.array([2.0, 3e-2, 4e-5]))  # σ²/F = 2, 3, 4
    spread, fall = spread_while_falling(stats_table(loss, noise))
    assert spread == pytest.approx(2.0) and fall == pytest.approx(1e5)
    np.testing.assert_allclose(
        noise_to_loss(stats_table(loss, noise))["noise_sq_over_loss"], [2, 3, 4]
    )


def test_claim_holds_and_fails():
    falling = stats_table(np.array([1.0, 1e-3, 1e-5]), np.sqrt([1.0, 2e-3, 3e-5]))
    flat = stats_table(np.array([1.0, 0.6, 0.5]), np.sqrt([1.0, 1.0, 1.0]))
    (claim,) = claims_anlu_noise({"interpolating": falling, "non_interpolating": flat}, {})
    assert claim.holds and claim.value == pytest.approx(3.0)
    # Noise not tracking the loss: the spread exceeds 10.
    noisy = stats_table(np.array([1.0, 1e-3, 1e-5]), np.sqrt([1.0, 1.0, 1.0]))
    (claim,) = claims_anlu_noise({"interpolating": noisy, "non_interpolating": flat}, {})
    assert claim.holds is False
    # The loss not falling by 1e4: does not hold, whatever the spread.
    (claim,) = claims_anlu_noise({"interpolating": flat, "non_interpolating": flat}, {})
    assert claim.holds is False and math.isnan(claim.value) and "did not fall" in claim.note
