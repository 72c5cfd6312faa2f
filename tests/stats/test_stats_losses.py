"""Eq. (2) (moving average of minibatch losses over an epoch) and eq. (3) (the loss at a fixed
iterate) of Zhang et al., against hand computations on a toy log and a toy model."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from sgdconv.stats import estimate_gradient_stats, loss_last, loss_moving_avg

DT = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def toy_log() -> pd.DataFrame:
    # epoch 0: steps 0-2, epoch 1: steps 3-5, epoch 2 (partial): step 6; rows shuffled
    rows = [
        (0, 0, 0.1, 3.0),
        (1, 0, 0.1, 2.0),
        (2, 0, 0.1, 1.0),
        (3, 1, 0.1, 1.5),
        (4, 1, 0.05, 0.5),
        (5, 1, 0.05, 1.0),
        (6, 2, 0.05, 0.25),
    ]
    log = pd.DataFrame(rows, columns=["step", "epoch", "lr", "minibatch_loss"])
    return log.sample(frac=1.0, random_state=0)


def test_loss_moving_avg_by_hand():
    out = loss_moving_avg(toy_log())
    assert list(out.columns) == ["epoch", "loss_moving_avg", "n_steps", "first_step", "last_step"]
    assert out["epoch"].tolist() == [0, 1, 2]
    assert out["loss_moving_avg"].tolist() == pytest.approx([2.0, 1.0, 0.25])
    assert out["n_steps"].tolist() == [3, 3, 1]
    assert out["first_step"].tolist() == [0, 3, 6]
    assert out["last_step"].tolist() == [2, 5, 6]


def test_loss_moving_avg_rejects_bad_logs():
    with pytest.raises(ValueError, match="minibatch_loss"):
        loss_moving_avg(toy_log().drop(columns="minibatch_loss"))
    with pytest.raises(ValueError, match="empty"):
        loss_moving_avg(toy_log().iloc[:0])


def toy_model() -> nn.Module:
    model = nn.Linear(1, 1).to(DT)
    with torch.no_grad():
        model.weight.fill_(2.0)
        model.bias.fill_(1.0)
    return model


def test_loss_last_by_hand():
    # predictions 1, 3, 5, 7 against targets 1: squared errors 0, 4, 16, 36 -> mean 14
    x = torch.arange(4, dtype=DT)[:, None]
    y = torch.ones(4, 1, dtype=DT)
    model = toy_model()
    loss = nn.MSELoss()
    assert loss_last(model, loss, [(x[:2], y[:2]), (x[2:], y[2:])]) == pytest.approx(14.0)
    # unequal sizes are weighted by size: still the mean per-sample loss
    assert loss_last(model, loss, [(x[:1], y[:1]), (x[1:], y[1:])]) == pytest.approx(14.0)
    assert all(p.grad is None for p in model.parameters())
    stats = estimate_gradient_stats(model, loss, [(x[:2], y[:2]), (x[2:], y[2:])])
    assert stats.loss == pytest.approx(14.0)


def test_loss_last_restores_batchnorm_buffers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)).to(DT).train()
    x, y = torch.randn(8, 2, dtype=DT), torch.randn(8, 1, dtype=DT)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    value = loss_last(model, nn.MSELoss(), batches)
    for k, v in model.state_dict().items():
        assert torch.equal(before[k], v), k
    assert model.training
    with torch.no_grad():  # by hand: train-mode forward of each micro-batch
        expected = sum(float(nn.MSELoss()(model(a), b)) for a, b in batches) / 2
    assert value == pytest.approx(expected, rel=1e-12)
