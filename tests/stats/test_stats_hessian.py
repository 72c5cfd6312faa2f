"""top_hessian_eigenvalue and the eigen-solvers against dense Hessians (float64):
``torch.autograd.functional.hessian`` of the mean loss as a function of the flattened
trainable parameters, and ``torch.linalg.eigh``."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call

from nets import BNNet
from sgdconv.stats import HessianEig, top_hessian_eigenvalue
from sgdconv.stats.eigensolvers import lanczos_top, power_top

DT = torch.float64
LOSS = nn.MSELoss()
METHODS = ["lanczos", "power"]


pytestmark = pytest.mark.usefixtures("one_thread")


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).to(DT)


def batches_of(m: int = 12, b: int = 4, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m, 3, generator=gen, dtype=DT)
    y = torch.randn(m, 2, generator=gen, dtype=DT)
    return [(x[i : i + b], y[i : i + b]) for i in range(0, m, b)]


def dense_hessian(model: nn.Module, loss_fn, batches) -> torch.Tensor:
    """∇² of (1/K) Σ_k L_k w.r.t. the flattened trainable parameters (on a copy of the model)."""
    twin = copy.deepcopy(model)
    named = [(n, p) for n, p in twin.named_parameters() if p.requires_grad]
    sizes = [p.numel() for _, p in named]

    def mean_loss(flat: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(flat, sizes)
        params = {n: c.view_as(p) for (n, p), c in zip(named, chunks, strict=True)}
        losses = [loss_fn(functional_call(twin, params, (x,)), y) for x, y in batches]
        return torch.stack(losses).mean()

    flat0 = torch.cat([p.detach().flatten() for _, p in named])
    return torch.autograd.functional.hessian(mean_loss, flat0, vectorize=True)


def check_against_dense(eig: HessianEig, h: torch.Tensor, tol: float) -> None:
    evals, evecs = torch.linalg.eigh(h)
    assert eig.converged and eig.residual <= tol
    assert eig.value == pytest.approx(float(evals[-1]), rel=1e-7)
    v = eig.vector
    assert float(v.norm()) == pytest.approx(1.0, rel=1e-12)
    # v lies in the top eigenspace (which may be degenerate, e.g. identical output blocks)
    top = evecs[:, evals >= evals[-1] - 1e-6 * abs(evals[-1])]
    assert float((top.T @ v).norm()) == pytest.approx(1.0, abs=1e-6)
    true_residual = float((h @ v - eig.value * v).norm()) / abs(eig.value)
    assert eig.residual == pytest.approx(true_residual, rel=1e-4, abs=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_matches_dense_hessian(method):
    model, batches = mlp(), batches_of()
    h = dense_hessian(model, LOSS, batches)
    eig = top_hessian_eigenvalue(model, LOSS, batches, method=method, tol=1e-9, max_hvp=4000)
    check_against_dense(eig, h, 1e-9)
    assert eig.method == method and eig.n_hvp <= 4000


class Quadratic(nn.Module):
    """ℓ_i(θ) = ½ θᵀ A_i θ: the Hessian of the mean loss is the mean of the A_i."""

    def __init__(self, p: int) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.ones(p, dtype=DT))

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return 0.5 * torch.einsum("i,bij,j->b", self.theta, a, self.theta)


def quadratic_problem(eigenvalues: list[float], m: int = 8, b: int = 2):
    p = len(eigenvalues)
    gen = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(p, p, generator=gen, dtype=DT))
    a = q @ torch.diag(torch.tensor(eigenvalues, dtype=DT)) @ q.T
    noise = torch.randn(m, p, p, generator=gen, dtype=DT)
    noise = noise + noise.transpose(1, 2)
    samples = a + noise - noise.mean(0)  # mean exactly A
    targets = torch.zeros(m, dtype=DT)
    batches = [(samples[i : i + b], targets[i : i + b]) for i in range(0, m, b)]
    return Quadratic(p), batches, a


def mean_output(out, _target):
    return out.mean()


@pytest.mark.parametrize("method", METHODS)
def test_largest_algebraic_not_largest_magnitude(method):
    """λ = (−10, −4, −1, 0.5, 1, 2): the answer is 2, not the dominant −10."""
    model, batches, a = quadratic_problem([-10.0, -4.0, -1.0, 0.5, 1.0, 2.0])
    h = dense_hessian(model, mean_output, batches)
    torch.testing.assert_close(h, a)
    eig = top_hessian_eigenvalue(model, mean_output, batches, method=method, tol=1e-8, max_hvp=2000)
    check_against_dense(eig, h, 1e-8)
    assert eig.value == pytest.approx(2.0, rel=1e-8)


@pytest.mark.parametrize("method", METHODS)
def test_budget_respected(method):
    model, batches = mlp(), batches_of()
    eig = top_hessian_eigenvalue(model, LOSS, batches, method=method, tol=1e-14, max_hvp=5)
    assert eig.n_hvp == 5 and not eig.converged and eig.residual > 1e-14


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_given_seed_or_v0(method):
    model, batches = mlp(), batches_of()
    kw = {"method": method, "tol": 1e-4}
    first = top_hessian_eigenvalue(model, LOSS, batches, **kw)
    again = top_hessian_eigenvalue(model, LOSS, batches, **kw)
    assert first.value == again.value and torch.equal(first.vector, again.vector)
    v0 = [torch.randn_like(p) for p in model.parameters()]
    as_list = top_hessian_eigenvalue(model, LOSS, batches, v0=v0, **kw)
    as_flat = top_hessian_eigenvalue(
        model, LOSS, batches, v0=torch.cat([t.flatten() for t in v0]), **kw
    )
    assert as_list.value == as_flat.value and as_list.n_hvp == as_flat.n_hvp


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_model_unchanged(train):
    model, batches = BNNet().to(DT), batches_of()
    with torch.no_grad():
        model(batches[0][0])
    model.train(train)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    h = dense_hessian(model, LOSS, batches)  # of the loss in the same mode
    eig = top_hessian_eigenvalue(model, LOSS, batches, tol=1e-8)
    check_against_dense(eig, h, 1e-8)
    for k, v in model.state_dict().items():
        assert torch.equal(before[k], v), k
    assert model.training == train and model.bn.training == train
    assert all(p.grad is None for p in model.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_dropout_gives_one_fixed_operator():
    """Re-seeding before every product makes train-mode dropout a fixed operator; with fresh
    masks at each product Lanczos cannot reach a small residual."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 2)).to(DT)
    batches = batches_of()
    eig = top_hessian_eigenvalue(model, LOSS, batches, tol=1e-8, max_hvp=300)
    assert eig.converged and eig.residual <= 1e-8
    assert model.training


def test_frozen_parameters_excluded():
    model, batches = mlp(), batches_of()
    model[0].requires_grad_(False)
    h = dense_hessian(model, LOSS, batches)
    eig = top_hessian_eigenvalue(model, LOSS, batches, tol=1e-9)
    assert eig.vector.numel() == 5 * 2 + 2
    check_against_dense(eig, h, 1e-9)


def test_errors():
    model, batches = mlp(), batches_of()
    with pytest.raises(ValueError, match="method"):
        top_hessian_eigenvalue(model, LOSS, batches, method="arnoldi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="v0"):
        top_hessian_eigenvalue(model, LOSS, batches, v0=torch.ones(3))
    with pytest.raises(ValueError, match="re-iterable"):
        top_hessian_eigenvalue(model, LOSS, iter(batches))
    with pytest.raises(ValueError, match="equal size"):
        top_hessian_eigenvalue(model, LOSS, [*batches, (batches[0][0][:2], batches[0][1][:2])])


# --- the solvers on explicit matrices ------------------------------------------------------------


def random_symmetric(p: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(p, p, generator=gen, dtype=DT)
    return (a + a.T) / 2


def test_lanczos_thick_restart_on_matrix():
    """ncv = 6 on a 80 x 80 matrix forces many thick restarts."""
    a = random_symmetric(80, 0)
    top = float(torch.linalg.eigvalsh(a)[-1])
    v0 = torch.ones(80, dtype=DT)
    pair = lanczos_top(lambda v: a @ v, v0, tol=1e-10, max_matvec=2000, ncv=6)
    assert pair.converged and pair.value == pytest.approx(top, rel=1e-9)
    assert pair.residual == pytest.approx(
        float((a @ pair.vector - pair.value * pair.vector).norm()) / abs(pair.value), rel=1e-6
    )
    full = lanczos_top(lambda v: a @ v, v0, tol=1e-10, max_matvec=2000, ncv=80)
    assert full.value == pytest.approx(top, rel=1e-9) and full.n_matvec < pair.n_matvec


def test_lanczos_exhausts_small_space():
    """p = 3 < ncv: the Krylov space becomes invariant after 3 products; exact answer."""
    a = torch.tensor([[2.0, 1.0, 0.0], [1.0, -5.0, 0.3], [0.0, 0.3, 1.0]], dtype=DT)
    pair = lanczos_top(lambda v: a @ v, torch.ones(3, dtype=DT), tol=1e-12, max_matvec=50)
    assert pair.value == pytest.approx(float(torch.linalg.eigvalsh(a)[-1]), rel=1e-12)
    assert pair.n_matvec == 4  # three Lanczos steps + the residual check


def test_power_on_matrix_counts_and_shift():
    a = torch.diag(torch.tensor([-3.0, 0.5, 1.0], dtype=DT))
    pair = power_top(lambda v: a @ v, torch.ones(3, dtype=DT), tol=1e-10, max_matvec=500)
    assert pair.converged and pair.value == pytest.approx(1.0, rel=1e-10)
    # phase one alone (−3 dominant, ratio 1/3) takes ~log(1e-10)/log(1/3) ≈ 21 products
    assert 21 <= pair.n_matvec <= 500
    with pytest.raises(ValueError):
        power_top(lambda v: a @ v, torch.zeros(3, dtype=DT))


def test_progress_callback_counts_products():
    model, batches = mlp(), batches_of()
    seen: list[int] = []
    eig = top_hessian_eigenvalue(model, LOSS, batches, tol=1e-4, progress=seen.append)
    assert seen == list(range(1, eig.n_hvp + 1))
