"""The two training-loss curves of Zhang et al. Fig. 5: eq. (2) and eq. (3).

Over one epoch of N minibatches x_1..x_N with iterates θ_1..θ_N,

    eq. (2), moving average:  (1/N) Σ_i ℓ(θ_i, x_i)    — each minibatch at the iterate that saw it,
    eq. (3), last iterate:    (1/N) Σ_i ℓ(θ_N, x_i)    — every minibatch at one fixed iterate.

Both consume the whole data set once; the paper's point is that (2), a time average, is much
smoother than (3). Eq. (2) comes free from the train log; eq. (3) needs a forward pass over the
data at a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import torch
from torch import nn

from sgdconv.stats._batches import (
    Batch,
    LossFn,
    Progress,
    batch_size,
    mean_loss,
    model_device,
    unpack,
    with_progress,
)
from sgdconv.stats._model_state import preserved_model_state

TRAIN_LOG_COLUMNS = ("step", "epoch", "lr", "minibatch_loss")


def loss_moving_avg(train_log: pd.DataFrame) -> pd.DataFrame:
    """Eq. (2): the mean of the minibatch losses of each epoch, from a train log.

    Args:
        train_log: one row per optimizer step with the columns ``step, epoch, lr,
            minibatch_loss`` (the ``train_log.parquet`` contract of DESIGN.md); each
            ``minibatch_loss`` is the mean loss of that step's minibatch at the iterate
            before the step.

    Returns:
        One row per epoch (ascending): ``epoch``, ``loss_moving_avg``, ``n_steps`` (to spot a
        partial last epoch), ``first_step`` and ``last_step`` (to join checkpoints).
    """
    missing = [c for c in TRAIN_LOG_COLUMNS if c not in train_log.columns]
    if missing:
        raise ValueError(f"train log lacks columns {missing}; expected {list(TRAIN_LOG_COLUMNS)}")
    if train_log.empty:
        raise ValueError("train log is empty")
    grouped = train_log.sort_values("step").groupby("epoch", sort=True)
    out = grouped.agg(
        loss_moving_avg=("minibatch_loss", "mean"),
        n_steps=("step", "size"),
        first_step=("step", "min"),
        last_step=("step", "max"),
    )
    return out.reset_index()


def loss_last(
    model: nn.Module, loss_fn: LossFn, batches: Iterable[Batch], *, progress: Progress = False
) -> float:
    """Eq. (3): the loss at the current (fixed) iterate, averaged over ``batches``.

    Forward passes only, without gradients; the mean of the micro-batch mean losses weighted by
    their sizes (the plain mean of means for equal sizes), i.e. the mean per-sample loss. The
    model is used in the caller's mode and left unchanged (BatchNorm running statistics that a
    train-mode forward updates are restored; see :func:`estimate_gradient_stats` for what each
    mode means).
    """
    params = list(model.parameters())
    device = model_device(params) if params else torch.device("cpu")
    total, count = 0.0, 0
    with preserved_model_state(model, device), torch.no_grad():
        for batch in with_progress(batches, progress, "loss (eq. 3)"):
            args, targets = unpack(batch, device)
            size = batch_size(args, targets)
            total += float(mean_loss(model, loss_fn, args, targets)) * size
            count += size
    if count == 0:
        raise ValueError("batches is empty")
    return total / count
