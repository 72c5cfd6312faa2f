"""estimate_gradient_stats against brute force: per-sample gradient loops (one backward per
sample, on a copy of the model), micro-batch loops, and leave-one-group-out re-runs."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from nets import BNNet
from sgdconv.stats import GradientStats, estimate_gradient_stats

DT = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def mlp(seed: int = 0, d_in: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, 6), nn.Tanh(), nn.Linear(6, 2)).to(DT)


def data(m: int, d_in: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(m, d_in, generator=gen, dtype=DT), torch.randn(m, 2, generator=gen, dtype=DT)


def split(x: torch.Tensor, y: torch.Tensor, b: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i : i + b], y[i : i + b]) for i in range(0, len(x), b)]


def brute_grads(model, loss_fn, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """(one flat gradient per batch, one loss per batch) by .backward() on a deep copy."""
    twin = copy.deepcopy(model)
    params = [p for p in twin.parameters() if p.requires_grad]
    grads, losses = [], []
    for x, y in batches:
        for p in params:
            p.grad = None
        loss = loss_fn(twin(*x) if isinstance(x, tuple) else twin(x), y)
        loss.backward()
        grads.append(
            torch.cat(
                [(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params]
            )
        )
        losses.append(loss.detach())
    return torch.stack(grads), torch.stack(losses)


def brute_eq1(model, loss_fn, x, y) -> tuple[float, float, float]:
    """Zhang eq. (1) by a per-sample loop: (L_S, |∇L_S|, σ)."""
    g, losses = brute_grads(model, loss_fn, split(x, y, 1))
    mean = g.mean(0)
    return (
        float(losses.mean()),
        float(mean.norm()),
        float(((g - mean) ** 2).sum(1).mean().sqrt()),
    )


def assert_eq1(stats: GradientStats, expected: tuple[float, float, float], rtol=1e-10) -> None:
    loss, grad, noise = expected
    assert stats.loss == pytest.approx(loss, rel=rtol)
    assert stats.grad_norm == pytest.approx(grad, rel=rtol)
    assert stats.noise_norm == pytest.approx(noise, rel=rtol)


LOSS = nn.MSELoss()


# --- exact values ----------------------------------------------------------------------------


def test_b1_is_exact_eq1():
    model, (x, y) = mlp(), data(12)
    stats = estimate_gradient_stats(model, LOSS, split(x, y, 1))
    assert_eq1(stats, brute_eq1(model, LOSS, x, y))
    assert stats.grad_norm_plugin == pytest.approx(stats.grad_norm, rel=1e-12)
    assert (stats.n_samples, stats.microbatch_size, stats.n_microbatches) == (12, 1, 12)


def test_per_sample_mode_is_exact_eq1():
    model, (x, y) = mlp(), data(12)
    stats = estimate_gradient_stats(model, LOSS, split(x, y, 4), per_sample=True)
    assert_eq1(stats, brute_eq1(model, LOSS, x, y))
    assert (stats.n_samples, stats.microbatch_size) == (12, 4)


def test_microbatch_estimator_formula():
    """Loss and |∇L_S| exact; σ̂² = b (m−1)/(m−b) · (1/K) Σ_k |g_k − ḡ|² from brute-force g_k."""
    model, (x, y) = mlp(), data(12)
    b, m = 4, 12
    batches = split(x, y, b)
    g, _ = brute_grads(model, LOSS, batches)
    mean = g.mean(0)
    noise_sq = b * (m - 1) / (m - b) * float(((g - mean) ** 2).sum(1).mean())
    stats = estimate_gradient_stats(model, LOSS, batches)
    loss, grad, _ = brute_eq1(model, LOSS, x, y)
    assert stats.loss == pytest.approx(loss, rel=1e-12)
    assert stats.grad_norm == pytest.approx(grad, rel=1e-12)
    assert stats.noise_norm_sq == pytest.approx(noise_sq, rel=1e-10)
    assert stats.noise_norm == pytest.approx(math.sqrt(noise_sq), rel=1e-10)


def test_population_mode_formulas():
    """With exact per-sample gradients: |ḡ|² − (1 − m/N) s²/m and (N−1)/N s²."""
    model, (x, y) = mlp(), data(12)
    g, _ = brute_grads(model, LOSS, split(x, y, 1))
    mean = g.mean(0)
    s2 = float(((g - mean) ** 2).sum(1).sum()) / 11
    batches = split(x, y, 3)
    for big_n in (12, 40, math.inf):
        stats = estimate_gradient_stats(
            model, LOSS, batches, per_sample=True, population_size=big_n
        )
        fpc = 0.0 if big_n == 12 else 1 - 12 / big_n
        assert stats.grad_norm_sq == pytest.approx(float(mean @ mean) - fpc * s2 / 12, rel=1e-10)
        expected_noise = s2 if math.isinf(big_n) else (big_n - 1) / big_n * s2
        assert stats.noise_norm_sq == pytest.approx(expected_noise, rel=1e-10)
        assert stats.grad_norm_plugin == pytest.approx(float(mean.norm()), rel=1e-12)
    # N = m is the sample itself: the same numbers as population_size=None, but no sampling error.
    none = estimate_gradient_stats(model, LOSS, batches, per_sample=True)
    same = estimate_gradient_stats(model, LOSS, batches, per_sample=True, population_size=12)
    assert same.grad_norm == pytest.approx(none.grad_norm, rel=1e-12)
    assert same.noise_norm == pytest.approx(none.noise_norm, rel=1e-12)
    assert same.grad_norm_se == 0.0 and none.grad_norm_se > 0


def test_grad_norm_clipped_at_zero():
    """At a minimiser of L_P the unbiased |∇L|² is negative in expectation: clipped to 0."""
    torch.manual_seed(0)
    x = torch.randn(12, 3, dtype=DT)
    y = torch.randn(12, 2, dtype=DT)
    model = nn.Linear(3, 2).to(DT)
    with torch.no_grad():  # least squares on the sample: ḡ = 0
        sol = torch.linalg.lstsq(torch.cat([x, torch.ones(12, 1, dtype=DT)], 1), y).solution
        model.weight.copy_(sol[:3].T)
        model.bias.copy_(sol[3])
    stats = estimate_gradient_stats(model, LOSS, split(x, y, 3), population_size=100)
    assert stats.grad_norm_sq < 0
    assert stats.grad_norm == 0.0
    assert stats.grad_norm_plugin < 1e-10


# --- standard errors ---------------------------------------------------------------------------


def _replicates(model, batches, groups, **kw) -> dict[str, np.ndarray]:
    reps = [
        estimate_gradient_stats(
            model, LOSS, [bt for k, bt in enumerate(batches) if k not in g], **kw
        )
        for g in groups
    ]
    return {f: np.array([getattr(r, f) for r in reps]) for f in ("loss", "grad_norm", "noise_norm")}


@pytest.mark.parametrize("population_size", [None, 60])
def test_jackknife_equal_groups_matches_leave_one_out_runs(population_size):
    """One micro-batch per group: SE² = fpc · (G−1)/G Σ_j (θ̂_(−j) − θ̄)², θ̂_(−j) from re-runs."""
    model, (x, y) = mlp(), data(12)
    batches = split(x, y, 2)
    kw = {"population_size": population_size}
    stats = estimate_gradient_stats(model, LOSS, batches, n_groups=6, **kw)
    reps = _replicates(model, batches, [{j} for j in range(6)], **kw)
    fpc = 1.0 if population_size is None else 1 - 12 / population_size
    for field, values in reps.items():
        expected = math.sqrt(fpc * 5 / 6 * np.sum((values - values.mean()) ** 2))
        assert getattr(stats, f"{field}_se" if field != "loss" else "loss_se") == pytest.approx(
            expected, rel=1e-8
        ), field


def test_jackknife_unequal_groups_matches_leave_one_out_runs():
    """K = 7 micro-batches dealt round-robin into 3 groups of 3, 2, 2: the delete-m_j jackknife
    (pseudo-values h_j θ̂ − (h_j − 1) θ̂_(−j), h_j = m/m_j) on re-run replicates."""
    model, (x, y) = mlp(), data(14)
    batches = split(x, y, 2)
    groups = [{k for k in range(7) if k % 3 == j} for j in range(3)]
    stats = estimate_gradient_stats(model, LOSS, batches, n_groups=3)
    reps = _replicates(model, batches, groups)
    h = np.array([7 / len(g) for g in groups])
    for field, values in reps.items():
        full = getattr(stats, field)
        pseudo = h * full - (h - 1) * values
        theta_j = 3 * full - np.sum((1 - 1 / h) * values)
        expected = math.sqrt(np.mean((pseudo - theta_j) ** 2 / (h - 1)))
        se = getattr(stats, "loss_se" if field == "loss" else f"{field}_se")
        assert se == pytest.approx(expected, rel=1e-8), field


def test_noise_se_undefined_with_two_microbatches():
    model, (x, y) = mlp(), data(8)
    stats = estimate_gradient_stats(model, LOSS, split(x, y, 4))
    assert math.isnan(stats.noise_norm_se)
    assert np.isfinite(stats.grad_norm_se) and np.isfinite(stats.noise_norm)


# --- numerical stability -------------------------------------------------------------------------


def test_float32_noise_when_mean_gradient_dominates():
    """|ḡ|² / (σ²/b) ≈ 1e6: Σ|g_k|² − K|ḡ|² would cancel to garbage in float32."""
    gen = torch.Generator().manual_seed(3)
    x = torch.ones(64, 1) + 1e-3 * torch.randn(64, 1, generator=gen)
    y = 100.0 + 1e-2 * torch.randn(64, 1, generator=gen)
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(0.5)
        model.bias.fill_(0.0)
    s32 = estimate_gradient_stats(model, LOSS, split(x, y, 8))
    m64 = model.to(DT)
    s64 = estimate_gradient_stats(m64, LOSS, split(x.to(DT), y.to(DT), 8))
    assert s64.grad_norm**2 / (s64.noise_norm**2 / 8) > 1e5
    assert s32.noise_norm == pytest.approx(s64.noise_norm, rel=1e-3)


# --- model left unchanged, BatchNorm, dropout, odd parameters ------------------------------------


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_batchnorm_train_mode_unchanged_and_microbatch_semantics():
    model = BNNet().to(DT).train()
    _, (x, y) = None, data(12)
    with torch.no_grad():  # non-trivial running statistics before the call
        model(x)
    before = snapshot(model)
    sentinel = torch.full_like(model.fc1.weight, 7.0)
    model.fc1.weight.grad = sentinel
    rng = torch.get_rng_state()
    batches = split(x, y, 4)
    stats = estimate_gradient_stats(model, LOSS, batches)
    after = snapshot(model)
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert model.training and all(m.training for m in model.modules())
    assert model.fc1.weight.grad is sentinel and torch.all(sentinel == 7.0)
    assert model.fc2.weight.grad is None
    assert torch.equal(torch.get_rng_state(), rng)
    # The micro-batch loss as SGD sees it (BN with batch statistics), by brute force.
    g, losses = brute_grads(model, LOSS, batches)
    assert stats.loss == pytest.approx(float(losses.mean()), rel=1e-12)
    assert stats.grad_norm == pytest.approx(float(g.mean(0).norm()), rel=1e-12)
    b, m = 4, 12
    noise_sq = b * (m - 1) / (m - b) * float(((g - g.mean(0)) ** 2).sum(1).mean())
    assert stats.noise_norm_sq == pytest.approx(noise_sq, rel=1e-10)
    with pytest.raises(ValueError, match="BatchNorm"):
        estimate_gradient_stats(model, LOSS, batches, per_sample=True)


def test_batchnorm_eval_mode_is_per_sample():
    model = BNNet().to(DT)
    x, y = data(12)
    with torch.no_grad():
        model(x)
    model.eval()
    before = snapshot(model)
    expected = brute_eq1(model, LOSS, x, y)
    assert_eq1(estimate_gradient_stats(model, LOSS, split(x, y, 1)), expected)
    assert_eq1(estimate_gradient_stats(model, LOSS, split(x, y, 4), per_sample=True), expected)
    assert not model.training
    for k, v in snapshot(model).items():
        assert torch.equal(before[k], v), k


class RawParam(nn.Module):
    """A parameter no layer type knows, used directly in forward, plus a shared layer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.scale = nn.Parameter(torch.randn(3))
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(torch.sin(x * self.scale)) * self.scale[:2]


def test_raw_parameter_in_forward():
    model, (x, y) = RawParam().to(DT), data(12)
    expected = brute_eq1(model, LOSS, x, y)
    assert_eq1(estimate_gradient_stats(model, LOSS, split(x, y, 1)), expected)
    assert_eq1(estimate_gradient_stats(model, LOSS, split(x, y, 3), per_sample=True), expected)


def test_frozen_parameters_are_ignored():
    model, (x, y) = mlp(), data(12)
    model[0].weight.requires_grad_(False)
    expected = brute_eq1(model, LOSS, x, y)  # brute force differentiates trainable ones only
    assert_eq1(estimate_gradient_stats(model, LOSS, split(x, y, 1)), expected)
    assert_eq1(estimate_gradient_stats(model, LOSS, split(x, y, 4), per_sample=True), expected)
    assert model[0].weight.grad is None
    full = brute_eq1(mlp(), LOSS, x, y)
    assert full[1] != pytest.approx(expected[1], rel=1e-3)  # the frozen block does matter


class TwoInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(3, 2)
        self.b = nn.Linear(1, 2)

    def forward(self, x, z):
        return torch.tanh(self.a(x)) * self.b(z)


def test_tuple_inputs():
    model = TwoInputs().to(DT)
    x, y = data(8)
    z = torch.linspace(-1, 1, 8, dtype=DT)[:, None]
    batches = [((x[i : i + 1], z[i : i + 1]), y[i : i + 1]) for i in range(8)]
    g, losses = brute_grads(model, LOSS, batches)
    mean = g.mean(0)
    stats = estimate_gradient_stats(model, LOSS, batches)
    assert stats.loss == pytest.approx(float(losses.mean()), rel=1e-12)
    assert stats.grad_norm == pytest.approx(float(mean.norm()), rel=1e-12)
    assert stats.noise_norm == pytest.approx(
        float(((g - mean) ** 2).sum(1).mean().sqrt()), rel=1e-10
    )
    pairs = [((x[i : i + 4], z[i : i + 4]), y[i : i + 4]) for i in (0, 4)]
    assert estimate_gradient_stats(model, LOSS, pairs, per_sample=True).noise_norm == pytest.approx(
        stats.noise_norm, rel=1e-10
    )


def test_dropout_train_mode_leaves_rng_and_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2)).to(DT).train()
    x, y = data(12)
    rng = torch.get_rng_state()
    stats = estimate_gradient_stats(model, LOSS, split(x, y, 3))
    assert torch.equal(torch.get_rng_state(), rng)
    assert model.training and np.isfinite(stats.noise_norm)
    deterministic = estimate_gradient_stats(model.eval(), LOSS, split(x, y, 3))
    assert deterministic.loss != pytest.approx(stats.loss, rel=1e-6)  # the masks were applied


def test_called_under_no_grad():
    model, (x, y) = mlp(), data(6)
    with torch.no_grad():
        stats = estimate_gradient_stats(model, LOSS, split(x, y, 1))
    assert_eq1(stats, brute_eq1(model, LOSS, x, y))


# --- errors ------------------------------------------------------------------------------------


def test_errors():
    model, (x, y) = mlp(), data(8)
    with pytest.raises(ValueError, match="K >= 2"):
        estimate_gradient_stats(model, LOSS, [(x, y)])
    with pytest.raises(ValueError, match="equal size"):
        estimate_gradient_stats(model, LOSS, [(x[:4], y[:4]), (x[4:7], y[4:7])])
    with pytest.raises(ValueError, match="population_size"):
        estimate_gradient_stats(model, LOSS, split(x, y, 2), population_size=5)
    with pytest.raises(ValueError, match="empty"):
        estimate_gradient_stats(model, LOSS, [])
    with pytest.raises(ValueError, match="scalar"):
        estimate_gradient_stats(model, nn.MSELoss(reduction="none"), split(x, y, 2))
    frozen = mlp().requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad"):
        estimate_gradient_stats(frozen, LOSS, split(x, y, 2))
    # one micro-batch is enough with exact per-sample gradients
    one = estimate_gradient_stats(model, LOSS, [(x, y)], per_sample=True)
    assert_eq1(one, brute_eq1(model, LOSS, x, y))


def test_progress_callback_counts_microbatches():
    model, (x, y) = mlp(), data(8)
    seen: list[int] = []
    estimate_gradient_stats(model, LOSS, split(x, y, 2), progress=seen.append)
    assert seen == [1, 2, 3, 4]
    estimate_gradient_stats(model, LOSS, split(x, y, 2), progress=True)  # a tqdm bar
