"""Chatterjee's Section-4 networks: shapes, eq. (4.1), gradients against finite differences,
the initializations' structure and the nn.Module twin."""

from __future__ import annotations

import math

import pytest
import torch

from sgdconv.models.feedforward import (
    ACTIVATIONS,
    FeedForward,
    FeedForwardModule,
    activation_derivative,
    activation_fn,
    chatterjee_init,
    gram_eigenvalues,
    independent_inputs,
    lecun_init,
    middle_min,
)

pytestmark = pytest.mark.usefixtures("float64")


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_vanish_at_zero_and_increase(name):
    x = torch.linspace(-8, 8, 1001)
    sigma, dsigma = activation_fn(name, 0.3), activation_derivative(name, 0.3)
    assert float(sigma(torch.zeros(1))) == pytest.approx(0.0, abs=1e-15)
    assert bool((dsigma(x) > 0).all())
    auto = torch.func.vmap(torch.func.grad(lambda t: sigma(t)))(x)
    torch.testing.assert_close(dsigma(x), auto)


def test_bipolar_sigmoid_and_smooth_leaky_relu_closed_forms():
    x = torch.linspace(-5, 5, 11)
    torch.testing.assert_close(
        activation_fn("bipolar_sigmoid")(x), (1 - torch.exp(-x)) / (1 + torch.exp(-x))
    )
    a = 0.2
    expected = a * x + (1 - a) * torch.log1p(torch.exp(x)) - (1 - a) * math.log(2)
    torch.testing.assert_close(activation_fn("smooth_leaky_relu", a)(x), expected)


def test_parameter_count_is_eq_4_1_and_flatten_round_trips():
    net = FeedForward(d=7, widths=(5, 3))
    assert net.p == 5 * 8 + 3 * 6 + 1 * 4
    theta = torch.randn(4, net.p)
    torch.testing.assert_close(net.flatten(net.layers(theta)), theta)


def test_forward_matches_a_hand_written_loop():
    net = FeedForward(d=4, widths=(3, 2), activation="tanh")
    theta = torch.randn(net.p)
    x = torch.randn(6, 4)
    (w1, b1), (w2, b2), (w3, b3) = net.layers(theta)
    expected = [float(w3 @ torch.tanh(w2 @ torch.tanh(w1 @ xi + b1) + b2) + b3) for xi in x]
    torch.testing.assert_close(net.forward(theta, x), torch.tensor(expected))


def test_batched_rows_are_independent():
    net = FeedForward(d=5, widths=(4,), activation="smooth_leaky_relu")
    theta = torch.randn(3, net.p)
    x, y = torch.randn(5, 5), torch.randn(5)
    loss, grad = net.loss_and_grad(theta, x, y)
    for b in range(3):
        l1, g1 = net.loss_and_grad(theta[b], x, y)
        torch.testing.assert_close(loss[b], l1)
        torch.testing.assert_close(grad[b], g1)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_gradient_matches_central_differences(name):
    net = FeedForward(d=4, widths=(3, 3), activation=name)
    gen = torch.Generator().manual_seed(1)
    theta = torch.randn(net.p, generator=gen)
    x, y = torch.randn(4, 4, generator=gen), torch.randn(4, generator=gen)
    _, grad = net.loss_and_grad(theta, x, y)
    h = 1e-6
    numeric = torch.stack(
        [
            (net.loss(theta + h * e, x, y) - net.loss(theta - h * e, x, y)) / (2 * h)
            for e in torch.eye(net.p)
        ]
    )
    torch.testing.assert_close(grad, numeric, rtol=1e-6, atol=1e-8)


def test_chatterjee_init_structure_and_initial_loss():
    net = FeedForward(d=6, widths=(4, 3, 2))
    theta = chatterjee_init(
        net,
        middle_low=0.5,
        middle_high=1.5,
        output_weight=7.0,
        generator=torch.Generator().manual_seed(0),
    )
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = net.layers(theta)
    assert bool((w1 == 0).all()) and all(bool((b == 0).all()) for b in (b1, b2, b3, b4))
    assert bool(((w2 >= 0.5) & (w2 <= 1.5)).all()) and bool((w3 > 0).all())
    assert bool((w4 == 7.0).all())
    assert middle_min(net, theta) == pytest.approx(
        float(torch.cat([w2.flatten(), w3.flatten()]).min())
    )
    x, y = torch.randn(5, 6), torch.randn(5)
    # f(·, θ0) = 0, so S(θ0) = mean y² (eq. (7.5)), whatever W_2..W_L are.
    assert float(net.loss(theta, x, y)) == pytest.approx(float((y**2).mean()))


def test_lecun_init_variances():
    net = FeedForward(d=200, widths=(100,))
    theta = lecun_init(net, 50, c=2.0, generator=torch.Generator().manual_seed(0))
    (w1, b1), (w2, b2) = net.layers(theta)
    assert float(w1.var()) == pytest.approx(2.0 / 200, rel=0.03)
    assert float(w2.var()) == pytest.approx(2.0 / 100, rel=0.05)
    assert bool((b1 == 0).all()) and bool((b2 == 0).all())


def test_independent_inputs():
    gen = torch.Generator().manual_seed(0)
    x = independent_inputs(8, 16, kind="orthonormal", generator=gen)
    torch.testing.assert_close(gram_eigenvalues(x), torch.ones(8))
    x = independent_inputs(8, 16, generator=gen)
    assert float(gram_eigenvalues(x)[0]) > 0
    with pytest.raises(ValueError):
        independent_inputs(8, 4)


def test_module_twin_matches_functional_net():
    net = FeedForward(d=5, widths=(4, 3), activation="bipolar_sigmoid")
    theta = torch.randn(net.p)
    module = FeedForwardModule(net, theta)
    x = torch.randn(7, 5)
    torch.testing.assert_close(module(x), net.forward(theta, x))
    torch.testing.assert_close(module.flat(), theta)


def test_bad_architecture_is_rejected():
    with pytest.raises(ValueError):
        FeedForward(d=3, widths=())
    with pytest.raises(ValueError):
        FeedForward(d=3, widths=(2,), activation="relu")
    with pytest.raises(ValueError):
        FeedForward(d=3, widths=(2,), activation="smooth_leaky_relu", leaky_slope=1.5)
