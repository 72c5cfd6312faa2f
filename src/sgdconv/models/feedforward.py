"""The feedforward networks of Chatterjee (2022), Section 4, as batched functions of θ.

f(x, w) = σ_L(W_L σ_{L-1}(... W_2 σ_1(W_1 x + b_1) + b_2 ...) + b_L), with d_L = 1 and σ_L the
identity; w = (W_1, b_1, ..., W_L, b_L) is flattened into θ ∈ R^p, p = Σ_l d_l (d_{l-1} + 1)
(eq. (4.1)), in exactly that order (each W_l row-major). The loss is the squared error
S(w) = (1/n) Σ_i (y_i − f(x_i, w))² of eq. (4.2) (An & Lu's F, eq. (A.1)).

Every function takes θ of shape (B, p) — B independent parameter vectors (Monte-Carlo
trajectories, seeds, search starts) evaluated together as batched tensors — or (p,).
:class:`FeedForwardModule` wraps the same network as an ``nn.Module`` for the training engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

# --- activations -------------------------------------------------------------------------
# Theorem 4.1 needs C² activations with σ(0) = 0 and σ' > 0 everywhere; Theorem 4.5 also needs
# C1 <= σ' <= C2. Remark 4.2 lists tanh, the bipolar sigmoid and the identity; Remark 4.6 the
# smooth leaky ReLU a x + (1 − a) log(1 + e^x), which we shift by (1 − a) log 2 so σ(0) = 0
# (the biases make the shift immaterial, as Remark 4.2 notes).

ACTIVATIONS = ("tanh", "bipolar_sigmoid", "smooth_leaky_relu", "linear")


def activation_fn(name: str, leaky_slope: float = 0.5) -> Callable[[Tensor], Tensor]:
    """σ for an activation of :data:`ACTIVATIONS` (σ(0) = 0, σ' > 0)."""
    if name == "tanh":
        return torch.tanh
    if name == "bipolar_sigmoid":
        # (1 − e^{−x}) / (1 + e^{−x}) = tanh(x / 2), written this way for numerical stability.
        return lambda x: torch.tanh(0.5 * x)
    if name == "smooth_leaky_relu":
        a = _check_slope(leaky_slope)
        shift = (1.0 - a) * math.log(2.0)
        return lambda x: a * x + (1.0 - a) * nn.functional.softplus(x) - shift
    if name == "linear":
        return lambda x: x
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def activation_derivative(name: str, leaky_slope: float = 0.5) -> Callable[[Tensor], Tensor]:
    """σ' in closed form (used for the slope bounds c_ℓ of the proof of Theorem 4.1)."""
    # sech² rather than 1 − tanh²: the latter cancels to exactly 0 for |x| >~ 19, which would
    # make the Section-7 slope floors c_ℓ = min σ' (and the bound α_lb) vanish spuriously.
    if name == "tanh":
        return lambda x: torch.cosh(x).pow(-2)
    if name == "bipolar_sigmoid":
        return lambda x: 0.5 * torch.cosh(0.5 * x).pow(-2)
    if name == "smooth_leaky_relu":
        a = _check_slope(leaky_slope)
        return lambda x: a + (1.0 - a) * torch.sigmoid(x)
    if name == "linear":
        return torch.ones_like
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def _check_slope(a: float) -> float:
    if not 0.0 < a < 1.0:
        raise ValueError(f"smooth leaky ReLU slope must be in (0, 1), got {a}")
    return float(a)


# --- the network -------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedForward:
    """Architecture of a Section-4 network: input dimension ``d``, hidden widths
    ``(d_1, ..., d_{L-1})`` (so depth L = len(widths) + 1 >= 2), d_L = 1, one activation for
    all hidden layers."""

    d: int
    widths: tuple[int, ...]
    activation: str = "tanh"
    leaky_slope: float = 0.5

    def __post_init__(self) -> None:
        if self.d < 1 or not self.widths or min(self.widths) < 1:
            raise ValueError(f"need d >= 1 and at least one hidden layer, got {self}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        activation_fn(self.activation, self.leaky_slope)  # validates name and slope

    @property
    def dims(self) -> tuple[int, ...]:
        """(d_0 = d, d_1, ..., d_L = 1)."""
        return (self.d, *self.widths, 1)

    @property
    def depth(self) -> int:
        return len(self.widths) + 1

    @property
    def p(self) -> int:
        """Number of parameters, eq. (4.1)."""
        dims = self.dims
        return sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))

    def slices(self) -> list[tuple[slice, slice]]:
        """Where (W_l, b_l) sit in θ, for l = 1..L."""
        out, start, dims = [], 0, self.dims
        for l in range(1, len(dims)):
            w_end = start + dims[l] * dims[l - 1]
            out.append((slice(start, w_end), slice(w_end, w_end + dims[l])))
            start = w_end + dims[l]
        return out

    def layers(self, theta: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Views (W_l of shape (..., d_l, d_{l-1}), b_l of shape (..., d_l)) into θ."""
        if theta.shape[-1] != self.p:
            raise ValueError(f"θ has {theta.shape[-1]} entries, the network has p = {self.p}")
        dims, lead = self.dims, theta.shape[:-1]
        return [
            (theta[..., ws].reshape(*lead, dims[l], dims[l - 1]), theta[..., bs])
            for l, (ws, bs) in enumerate(self.slices(), start=1)
        ]

    def flatten(self, layers: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
        """Inverse of :meth:`layers`."""
        parts = []
        for weight, bias in layers:
            parts += [weight.reshape(*weight.shape[:-2], -1), bias]
        return torch.cat(parts, dim=-1)

    def hidden(self, theta: Tensor, x: Tensor) -> list[Tensor]:
        """Pre-activations g_1, ..., g_L (each (B, n, d_l)) of the proof of Theorem 4.1."""
        sigma = activation_fn(self.activation, self.leaky_slope)
        batched = theta.dim() == 2
        theta2 = theta if batched else theta.unsqueeze(0)
        h = x.to(theta2.dtype).unsqueeze(0)  # (1, n, d), broadcast over B
        pre = []
        layers = self.layers(theta2)
        for l, (weight, bias) in enumerate(layers, start=1):
            g = torch.matmul(h, weight.transpose(-1, -2)) + bias.unsqueeze(-2)
            pre.append(g)
            h = g if l == len(layers) else sigma(g)  # σ_L is the identity
        return pre if batched else [g.squeeze(0) for g in pre]

    def forward(self, theta: Tensor, x: Tensor) -> Tensor:
        """f(x_i, θ) for each row x_i of ``x`` (n, d): shape (B, n), or (n,) for θ of shape (p,)."""
        return self.hidden(theta, x)[-1].squeeze(-1)

    def loss(self, theta: Tensor, x: Tensor, y: Tensor) -> Tensor:
        """S(θ) = (1/n) Σ (y_i − f(x_i, θ))², eq. (4.2): shape (B,) or ()."""
        return (self.forward(theta, x) - y.to(theta.dtype)).pow(2).mean(dim=-1)

    def loss_and_grad(self, theta: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """S(θ) and ∇S(θ), batched: each row of θ gets its own gradient."""
        with torch.enable_grad():
            theta = theta.detach().requires_grad_(True)
            loss = self.loss(theta, x, y)
            (grad,) = torch.autograd.grad(loss.sum(), theta)
        return loss.detach(), grad


# --- initializations ---------------------------------------------------------------------


def chatterjee_init(
    net: FeedForward,
    *,
    middle_low: float,
    middle_high: float,
    output_weight: float,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """The initialization of Theorem 4.1: W_1 = 0, all biases 0, the entries of W_2..W_{L-1}
    i.i.d. uniform in [middle_low, middle_high] (strictly positive; δ is their minimum), and
    every entry of W_L equal to ``output_weight`` (the A of the theorem). Shape (p,).

    With W_1 = 0 and b = 0 the network outputs 0, so S(θ0) = (1/n) Σ y_i² (eq. (7.5)).
    """
    if not 0.0 < middle_low <= middle_high:
        raise ValueError(f"need 0 < middle_low <= middle_high, got {middle_low}, {middle_high}")
    if output_weight <= 0:
        raise ValueError(f"output_weight (A) must be > 0, got {output_weight}")
    dims = net.dims
    layers = []
    for l in range(1, len(dims)):
        shape = (dims[l], dims[l - 1])
        if l == 1:
            weight = torch.zeros(shape, dtype=dtype)
        elif l == net.depth:
            weight = torch.full(shape, float(output_weight), dtype=dtype)
        else:
            u = torch.rand(shape, generator=generator, dtype=dtype)
            weight = middle_low + (middle_high - middle_low) * u
        layers.append((weight, torch.zeros(dims[l], dtype=dtype)))
    return net.flatten(layers)


def middle_min(net: FeedForward, theta: Tensor) -> float:
    """δ of Theorem 4.1: the minimum entry of W_2, ..., W_{L-1} (inf for L = 2)."""
    middle = [w for w, _ in net.layers(theta)[1:-1]]
    return min((float(w.min()) for w in middle), default=math.inf)


def lecun_init(
    net: FeedForward,
    batch: int,
    *,
    c: float = 1.0,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """LeCun initialization of Theorem 4.5: W_l entries i.i.d. N(0, c / d_{l-1}), biases 0.
    Shape (batch, p), one independent draw per row."""
    if c <= 0:
        raise ValueError(f"c must be > 0, got {c}")
    dims = net.dims
    layers = []
    for l in range(1, len(dims)):
        std = math.sqrt(c / dims[l - 1])
        weight = std * torch.randn(batch, dims[l], dims[l - 1], generator=generator, dtype=dtype)
        layers.append((weight, torch.zeros(batch, dims[l], dtype=dtype)))
    return net.flatten(layers)


# --- data with d >= n ---------------------------------------------------------------------


def independent_inputs(
    n: int,
    d: int,
    *,
    kind: str = "gaussian",
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> Tensor:
    """n linearly independent inputs in R^d (rows), d >= n, as Theorems 4.1 and 4.5 require.

    ``gaussian``: i.i.d. N(0, 1) coordinates (Remark 4.8: α and β of XᵀX/n then have positive
    limits as n, d → ∞ with d/n fixed). ``orthonormal``: orthonormal rows scaled to norm √n,
    so XᵀX/n = I exactly (α = β = 1).
    """
    if d < n:
        raise ValueError(f"need d >= n for linearly independent inputs, got n={n}, d={d}")
    z = torch.randn(n, d, generator=generator, dtype=dtype)
    if kind == "gaussian":
        x = z
    elif kind == "orthonormal":
        q, _ = torch.linalg.qr(z.T)  # (d, n) with orthonormal columns
        x = math.sqrt(n) * q.T
    else:
        raise ValueError(f"unknown input kind {kind!r}; expected 'gaussian' or 'orthonormal'")
    if gram_eigenvalues(x)[0] <= 0:  # pragma: no cover - probability zero
        raise RuntimeError("inputs are not linearly independent")
    return x


def gram_eigenvalues(x: Tensor) -> Tensor:
    """Eigenvalues (ascending) of XᵀX/n, X the d×n matrix whose columns are the inputs; α of
    Theorems 4.1/4.5 is the first, β the last."""
    n = x.shape[0]
    return torch.linalg.eigvalsh(x @ x.T / n)


# --- as an nn.Module ----------------------------------------------------------------------


class FeedForwardModule(nn.Module):
    """The same network as an ``nn.Module`` with one parameter per W_l and b_l, for the
    training engine; ``forward(x)`` returns f(x_i, θ) with shape (n,)."""

    def __init__(self, net: FeedForward, theta: Tensor | None = None) -> None:
        super().__init__()
        self.net = net
        dims = net.dims
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(dims[l], dims[l - 1])) for l in range(1, len(dims))
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.zeros(dims[l])) for l in range(1, len(dims))
        )
        if theta is not None:
            self.load_flat(theta)

    def load_flat(self, theta: Tensor) -> None:
        with torch.no_grad():
            for (weight, bias), w, b in zip(
                self.net.layers(theta), self.weights, self.biases, strict=True
            ):
                w.copy_(weight)
                b.copy_(bias)

    def flat(self) -> Tensor:
        """θ as a flat vector, in the order of eq. (4.1)."""
        return self.net.flatten(list(zip(self.weights, self.biases, strict=True))).detach()

    def forward(self, x: Tensor) -> Tensor:
        sigma = activation_fn(self.net.activation, self.net.leaky_slope)
        h = x
        last = len(self.weights) - 1
        for l, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = nn.functional.linear(h, w, b)
            if l < last:
                h = sigma(h)
        return h.squeeze(-1)
