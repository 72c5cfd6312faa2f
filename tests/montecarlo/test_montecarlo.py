"""The Monte-Carlo SGD engine and its parts against independent ground truth: Philox against the
Random123 known-answer vectors, per-trajectory streams, the batched engine against a plain
per-trajectory loop, Theorem 4.1's rotated noise, Robbins–Monro steps by hand, the C_L estimate
against dense Hessians and closed forms, the formulas (3.2), Theorem 3.1's step, (4.5), (4.10)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sgdconv.anlu.bounded import mean_norm_isotropic
from sgdconv.anlu.constants import (
    lemma42_constant,
    lemma42_n0,
    rho,
    theorem31_step_bound,
)
from sgdconv.lojasiewicz.smoothness import (
    estimate_smoothness,
    hessian_vector_product,
    lanczos_extremes,
)
from sgdconv.models.feedforward import FeedForward, chatterjee_init, independent_inputs
from sgdconv.montecarlo.fits import geometric_fit, loglog_fit
from sgdconv.montecarlo.philox import M32, TrajectoryStreams, philox4x32
from sgdconv.montecarlo.trajectories import (
    BoundedNoise,
    ConstantStep,
    MachineLearningNoise,
    RobbinsMonroStep,
    VarianceNoise,
    linear_steps,
    log_spaced_steps,
    rotated_noise_direction,
    run_sgd,
)

pytestmark = pytest.mark.usefixtures("float64")


# --- Philox and the per-trajectory streams --------------------------------------------------

# Random123's kat_vectors for philox4x32-10: (counter, key, output).
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((M32,) * 4, (M32, M32), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), PHILOX_KAT)
def test_philox_matches_random123_known_answers(counter, key, expected):
    words = philox4x32(tuple(torch.tensor(c) for c in counter), tuple(torch.tensor(k) for k in key))
    assert tuple(int(w) for w in words) == expected


def test_a_trajectory_draws_the_same_numbers_alone_in_a_batch_and_in_blocks():
    streams = TrajectoryStreams(seed=2**40 + 7, ids=torch.tensor([5, 0, 17, 3]))
    batch = streams.normal(10, 9, n_steps=6)  # (steps, B, p)
    for row in range(4):
        alone = streams.subset([row])
        for t in range(6):
            assert torch.equal(alone.normal(10 + t, 9)[0, 0], batch[t, row])
    # A different id, seed or step gives different numbers.
    assert not torch.equal(batch[0, 0], batch[0, 1])
    other_seed = TrajectoryStreams(seed=2**40 + 8, ids=torch.tensor([5]))
    assert not torch.equal(other_seed.normal(10, 9)[0, 0], batch[0, 0])


def test_stream_normals_have_standard_moments():
    z = TrajectoryStreams.range(1, 500).normal(0, 200, n_steps=2).reshape(-1)  # 2e5 draws
    assert abs(float(z.mean())) < 0.01  # 4.5 standard errors
    assert abs(float(z.var()) - 1.0) < 0.015
    # Gaussian tails: P(|Z| > 2) = 0.0455.
    assert abs(float((z.abs() > 2).double().mean()) - 0.0455) < 0.003


def test_bad_stream_arguments_are_rejected():
    with pytest.raises(ValueError, match="ids"):
        TrajectoryStreams(0, torch.tensor([-1]))
    with pytest.raises(ValueError, match="step"):
        TrajectoryStreams.range(0, 2).words(-1, 1, 1)


# --- step sizes -------------------------------------------------------------------------------


def test_robbins_monro_steps_by_hand():
    step = RobbinsMonroStep(gamma=0.5, n0=10, q=1.0)
    assert step(0) == pytest.approx(0.05)
    assert step(5) == pytest.approx(0.5 / 15)
    # (6 + 10)^0.75 = 16^(3/4) = 8.
    assert RobbinsMonroStep(gamma=0.5, n0=10, q=0.75)(6) == pytest.approx(0.0625)
    rows = RobbinsMonroStep(
        gamma=torch.tensor([0.5, 0.5]), n0=torch.tensor([10.0, 10.0]), q=torch.tensor([1.0, 0.75])
    )
    torch.testing.assert_close(rows(6), torch.tensor([0.5 / 16, 0.0625]))
    assert ConstantStep(0.1)(123) == 0.1


@pytest.mark.parametrize("q", [0.5, 1.2])
def test_robbins_monro_exponent_must_be_in_half_open_interval(q):
    with pytest.raises(ValueError, match="q"):
        RobbinsMonroStep(gamma=1.0, n0=1.0, q=q)


def test_record_step_grids():
    assert linear_steps(100, 5) == [0, 25, 50, 75, 100]
    assert log_spaced_steps(1000, 5) == [0, 1, 10, 100, 1000]
    steps = log_spaced_steps(1000, 40)
    assert steps[0] == 0 and steps[-1] == 1000 and steps == sorted(set(steps))
    ratios = np.diff(np.log(steps[10:]))  # evenly spaced in log k once k is past rounding
    assert ratios.max() < 2 * ratios.min()


# --- the engine against a plain per-trajectory loop -------------------------------------------


def _problem():
    net = FeedForward(5, (4,), "smooth_leaky_relu", 0.5)
    generator = torch.Generator().manual_seed(0)
    x = independent_inputs(3, 5, kind="orthonormal", generator=generator)
    y = torch.randn(3, generator=generator)
    theta0 = chatterjee_init(net, middle_low=1.0, middle_high=1.0, output_weight=2.0)
    return net, x, y, theta0


def _plain_loop(net, x, y, theta0, *, seed, ident, n_steps, eta, noise, c=0.0, sigma=0.0):
    """One trajectory, written out step by step without the engine (the reference)."""
    stream = TrajectoryStreams(seed, torch.tensor([ident]))
    p = net.p
    theta = theta0.clone().unsqueeze(0)
    u = None
    losses = []
    for k in range(n_steps):
        loss, grad = net.loss_and_grad(theta, x, y)
        losses.append(float(loss[0]))
        z = stream.normal(k, p)[0] / math.sqrt(p)
        if noise == "ml":
            xi = torch.sqrt(sigma * loss).unsqueeze(-1) * z
        elif noise == "bounded":
            xi = c * z
        else:  # rotated onto u = z_0 / |z_0|
            if u is None:
                u = z / z.norm(dim=-1, keepdim=True)
            xi = c * (z.norm(dim=-1, keepdim=True) * u)
        theta = theta - eta(k) * (grad + xi)
    losses.append(float(net.loss(theta, x, y)[0]))
    return theta[0], np.array(losses)


@pytest.mark.parametrize("noise", ["ml", "bounded", "rotated"])
def test_batched_engine_equals_a_plain_loop_over_trajectories(noise):
    net, x, y, theta0 = _problem()
    ids = torch.tensor([4, 0, 9, 2, 7])
    seed, n_steps = 1234, 120
    sigmas = torch.tensor([0.0, 1.0, 5.0, 20.0, 50.0])
    if noise == "ml":
        law, step = MachineLearningNoise(sigmas), ConstantStep(0.01)
    else:
        law = BoundedNoise(0.3, rotated=noise == "rotated")
        step = RobbinsMonroStep(0.2, 10.0, 0.75)
    run = run_sgd(
        lambda th: net.loss_and_grad(th, x, y),
        theta0,
        noise=law,
        step=step,
        n_steps=n_steps,
        streams=TrajectoryStreams(seed, ids),
        radii=[0.05, 10.0],
    )
    for row, ident in enumerate(ids.tolist()):
        theta, losses = _plain_loop(
            net,
            x,
            y,
            theta0,
            seed=seed,
            ident=ident,
            n_steps=n_steps,
            eta=step,
            noise=noise,
            c=0.3,
            sigma=float(sigmas[row]),
        )
        # Bit-identical on the machines we ran; 1e-12 allows batched GEMM kernels that sum
        # in another order (the noise itself is bit-identical by construction).
        torch.testing.assert_close(run.theta_final[row], theta, rtol=0, atol=1e-12)
        np.testing.assert_allclose(run.loss[:, row].numpy(), losses, rtol=1e-12, atol=1e-15)
        dist = np.array([float((th - theta0).norm()) for th in [theta0]])  # k = 0
        assert run.dist[0, row] == pytest.approx(dist[0])
    # Exit bookkeeping: nobody leaves the radius-10 ball; exit steps match the distances.
    assert bool((run.exit_step[:, 1] == n_steps + 1).all())
    for row in range(len(ids)):
        outside = (run.dist[:, row] > 0.05).nonzero()
        first = int(outside[0]) if len(outside) else n_steps + 1
        assert int(run.exit_step[row, 0]) == first
        assert bool((run.inside[:first, row, 0]).all()) and not bool(
            run.inside[first:, row, 0].any()
        )


def test_machine_learning_noise_vanishes_with_the_loss():
    streams = TrajectoryStreams.range(3, 4)
    sample = MachineLearningNoise(4.0).bind(streams, 6)
    loss = torch.tensor([0.0, 1.0, 4.0, 9.0])
    xi = sample(0, loss)
    z = streams.normal(0, 6)[0] / math.sqrt(6)
    torch.testing.assert_close(xi, torch.sqrt(4.0 * loss).unsqueeze(-1) * z)
    assert float(xi[0].abs().max()) == 0.0


def test_variance_noise_is_machine_learning_or_bounded_noise_per_row():
    # Rows 0-1: c = 0, the machine-learning noise; rows 2-3: σ = 0, the bounded noise; the same
    # draws (the same streams), so the two kinds run in one batch on common random numbers.
    streams = TrajectoryStreams.range(3, 4)
    loss = torch.tensor([1.0, 4.0, 1.0, 4.0])
    sigma = torch.tensor([2.0, 2.0, 0.0, 0.0])
    c = torch.tensor([0.0, 0.0, 3.0, 3.0])
    mixed = VarianceNoise(sigma, c).bind(streams, 6)(0, loss)
    ml = MachineLearningNoise(2.0).bind(streams, 6)(0, loss)
    bounded = BoundedNoise(3.0).bind(streams, 6)(0, loss)
    torch.testing.assert_close(mixed[:2], ml[:2], rtol=0, atol=0)
    torch.testing.assert_close(mixed[2:], bounded[2:])
    # Both at once: E|ξ|² = σF + c².
    both = VarianceNoise(2.0, 3.0).bind(streams, 6)(0, loss)
    z = streams.normal(0, 6)[0] / math.sqrt(6)
    torch.testing.assert_close(both, torch.sqrt(2.0 * loss + 9.0).unsqueeze(-1) * z)


# --- Theorem 4.1's rotated noise ----------------------------------------------------------


def test_rotated_noise_has_one_direction_the_stated_norms_and_mean():
    p, c, batch, n_steps = 20, 2.0, 64, 400
    streams = TrajectoryStreams.range(99, batch)
    rotated = BoundedNoise(c, rotated=True).bind(streams, p)
    plain = BoundedNoise(c).bind(streams, p)
    u = rotated_noise_direction(streams, p)
    loss = torch.ones(batch)
    draws = torch.stack([rotated(k, loss) for k in range(n_steps)])  # (K, B, p)
    unrotated = torch.stack([plain(k, loss) for k in range(n_steps)])
    # Every O_k ξ_k points along the fixed u of its trajectory ...
    torch.testing.assert_close(draws / draws.norm(dim=-1, keepdim=True), u.expand_as(draws))
    # ... with the norm of the unrotated draw ξ_k = c Z_k (the rotation is orthogonal) ...
    torch.testing.assert_close(draws.norm(dim=-1), unrotated.norm(dim=-1))
    # ... and O_0 = I.
    torch.testing.assert_close(draws[0], unrotated[0])
    # Mean: the unrotated noise averages to 0, the rotated one to m̄ u, m̄ = c E|Z|.
    m_bar = c * mean_norm_isotropic(p)
    se = c / math.sqrt(n_steps * batch)  # per-coordinate standard error is about c/√(p K B)
    assert float(unrotated.mean(dim=(0, 1)).abs().max()) < 5 * se
    along_u = (draws * u).sum(-1)  # |ξ_k| per step and trajectory
    assert float(along_u.mean()) == pytest.approx(m_bar, rel=0.01)
    assert float(unrotated.pow(2).sum(-1).mean()) == pytest.approx(c * c, rel=0.02)


def test_mean_norm_of_isotropic_gaussian_closed_forms():
    assert mean_norm_isotropic(1) == pytest.approx(math.sqrt(2 / math.pi))
    assert mean_norm_isotropic(2) == pytest.approx(math.sqrt(math.pi) / 2)  # Rayleigh(1/√2)
    assert mean_norm_isotropic(400) == pytest.approx(1 - 1 / 1600, rel=1e-5)


# --- C_L: Hessian-vector products, Lanczos, the estimate -------------------------------------


def test_hvp_and_lanczos_against_the_dense_hessian_on_a_tiny_net():
    net = FeedForward(3, (2,), "tanh")
    generator = torch.Generator().manual_seed(1)
    x = independent_inputs(2, 3, generator=generator)
    y = torch.randn(2, generator=generator)

    def loss(th):
        return net.loss(th, x, y)

    points = torch.randn(4, net.p, generator=generator)
    v = torch.randn(4, net.p, generator=generator)
    hv = hessian_vector_product(loss, points, v)
    low, high = lanczos_extremes(loss, points, net.p, generator=generator)
    for i in range(4):
        dense = torch.autograd.functional.hessian(lambda t: net.loss(t, x, y), points[i])
        torch.testing.assert_close(hv[i], dense @ v[i])
        eig = torch.linalg.eigvalsh(dense)
        assert float(low[i]) == pytest.approx(float(eig[0]), abs=1e-10)
        assert float(high[i]) == pytest.approx(float(eig[-1]), abs=1e-10)


def test_smoothness_of_a_quadratic_is_its_largest_absolute_eigenvalue():
    generator = torch.Generator().manual_seed(2)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    spectrum = torch.tensor([-7.0, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    a = q @ torch.diag(spectrum) @ q.T

    def loss(th):
        return 0.5 * ((th @ a) * th).sum(-1)

    estimate = estimate_smoothness(loss, torch.zeros(8), 1.0, n_points=6, generator=generator)
    assert estimate.c_l_hat == pytest.approx(7.0, rel=1e-10)
    assert estimate.lambda_min == pytest.approx(-7.0, rel=1e-10)


def test_smoothness_ascent_finds_the_curvature_that_random_points_miss():
    # F = Σ θ_i⁴ / 12 has Hessian diag(θ_i²): on B(0, r) the largest eigenvalue is r², at ±r e_i.
    # Random points of a 30-dimensional ball reach only about r² (2 log p)/p there.
    p, r = 30, 2.0

    def loss(th):
        return th.pow(4).sum(-1) / 12.0

    generator = torch.Generator().manual_seed(3)
    sampled = estimate_smoothness(
        loss, torch.zeros(p), r, n_points=32, n_steps=0, generator=generator
    )
    ascended = estimate_smoothness(
        loss, torch.zeros(p), r, n_points=32, n_steps=40, generator=generator
    )
    assert sampled.c_l_hat < 0.6 * r * r
    assert ascended.c_l_hat == pytest.approx(r * r, rel=0.01)
    assert ascended.c_l_hat <= r * r * (1 + 1e-9)  # points stay in the ball: a lower bound


# --- the constants of Theorem 3.1, Lemma 4.2 and Theorem 4.1 -------------------------------


def test_rho_and_theorem31_step_bound_by_hand():
    assert rho(0.1, 2.0, 3.0, 4.0) == pytest.approx(1 - 0.2 + 0.5 * 0.01 * 3 * (6 + 4))
    # min{1/α, α/(4 C_L (2 C_L + σ))}: the second term binds here ...
    assert theorem31_step_bound(2.0, 3.0, 4.0) == pytest.approx(2 / (4 * 3 * 10))
    # ... and the first when α is large compared with C_L (not possible when α <= 2 C_L).
    assert theorem31_step_bound(10.0, 1.0, 0.0) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        theorem31_step_bound(0.0, 1.0, 0.0)


def test_theorem31_step_gives_rho_at_most_one_minus_alpha_eta_over_two():
    rng = np.random.default_rng(0)
    for _ in range(200):
        c_l = float(rng.uniform(0.1, 100))
        alpha = float(rng.uniform(1e-3, 2 * c_l))  # α <= 2 C_L always (Lemma 2.1)
        sigma = float(rng.uniform(0, 1000))
        eta = theorem31_step_bound(alpha, c_l, sigma)
        value = rho(eta, alpha, c_l, sigma)
        assert 0 < value <= 1 - alpha * eta / 2 + 1e-15


def test_lemma42_n0_makes_the_contraction_of_4_11_hold():
    gamma, alpha, c_l = 0.3, 10.0, 20.0
    for q in (1.0, 0.75, 0.6):
        n0 = lemma42_n0(gamma, alpha, c_l, q)
        assert n0 == pytest.approx((2 * c_l**2 * gamma / alpha) ** (1 / q))
        for k in range(0, 2000, 7):
            eta = gamma / (k + n0) ** q
            assert 1 - alpha * eta + eta**2 * c_l**2 <= 1 - alpha * eta / 2 + 1e-15


def test_lemma42_constant_by_hand():
    assert lemma42_constant(0.5, 2.0, 10.0, 3.0, 1.0) == pytest.approx(0.25 * 4 * 3 / 3.0)
    assert lemma42_constant(0.5, 2.0, 10.0, 3.0, 0.75) == pytest.approx(0.25 * 4 * 3 / 5.0)
    with pytest.raises(ValueError, match="2/α"):
        lemma42_constant(0.1, 2.0, 10.0, 3.0, 1.0)


# --- fits and summaries -------------------------------------------------------------------


def test_fits_recover_known_rates():
    k = np.arange(0, 400, 10)
    fit = geometric_fit(k, 3.0 * 0.97**k)
    assert fit.rate == pytest.approx(0.97)
    np.testing.assert_allclose(fit.line(k), 3.0 * 0.97**k)
    # Zeros (everyone left the ball) and values under the floor are left out.
    values = np.where(k < 200, 0.9**k, 0.0)
    assert geometric_fit(k, values).rate == pytest.approx(0.9)
    assert geometric_fit(k, 0.9**k, floor=0.9**100).k_hi == 90
    steps = np.unique(np.logspace(0, 4, 30).round())
    slope = loglog_fit(steps, 5.0 * steps**-0.75, k_lo=100)
    assert slope.slope == pytest.approx(-0.75)
    assert slope.k_lo >= 100
    assert math.isnan(loglog_fit(steps, steps**-1.0, k_lo=1e5).slope)  # empty window
