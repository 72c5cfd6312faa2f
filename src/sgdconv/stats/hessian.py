"""Sharpness: the largest eigenvalue of the Hessian of the sample loss (Zhang et al. Figs. 1-3).

The sharpness plotted by Zhang et al. (App. A.2, following Wu, Ma & E 2018) is λ_max(∇²L_S(θ))
for the mean loss L_S = (1/K) Σ_k L_k over the K equal-size micro-batches of the sample. It is
found from Hessian-vector products only,

    H v = (1/K) Σ_k ∇_θ ⟨∇_θ L_k(θ), v⟩          (double backward, one micro-batch at a time),

so memory is that of one micro-batch's graph plus the solver's vectors, never a p × p matrix.
The eigen-solvers are in :mod:`sgdconv.stats.eigensolvers`; both return the largest
*algebraic* eigenvalue (away from a minimum the Hessian has negative eigenvalues, possibly of
larger magnitude) with the true residual |Hv − λv| / |λ| of the returned pair.

Model semantics are those of :func:`sgdconv.stats.estimate_gradient_stats`: the caller's mode is
used (train-mode BatchNorm gives the Hessian of the micro-batch-normalised loss; its running
statistics are restored), and the model, its ``.grad`` and the caller's RNG are left unchanged.
Dropout in train mode would make every product a different random operator, which no Krylov
method tolerates; the RNG is therefore re-seeded identically before each product, so the
operator is the Hessian of one fixed realisation of the dropout masks.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from sgdconv.stats._batches import (
    Batch,
    LossFn,
    Progress,
    batch_size,
    mean_loss,
    model_device,
    unpack,
)
from sgdconv.stats._model_state import preserved_model_state, trainable_parameters
from sgdconv.stats.eigensolvers import EigenPair, lanczos_top, power_top

METHODS = ("lanczos", "power")


@dataclass(frozen=True)
class HessianEig:
    """λ_max of ∇²L_S, its unit eigenvector (flat float64 on the CPU, in the order of the
    trainable parameters), the relative residual |Hv − λv| / |λ|, the number of Hessian-vector
    products used (including the final residual check), and whether residual <= tol."""

    value: float
    vector: Tensor
    residual: float
    n_hvp: int
    converged: bool
    method: str


class HessianVectorProduct:
    """v ↦ ∇²L_S v for flat float64 vectors v, by double backward over the micro-batches.

    Must be called inside :func:`preserved_model_state` (it re-seeds the global RNG).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        batches: Iterable[Batch],
        params: Sequence[nn.Parameter],
        seed: int = 0,
    ) -> None:
        self.model, self.loss_fn, self.batches = model, loss_fn, batches
        self.params = list(params)
        self.device = model_device(self.params)
        self.seed = seed
        self.n_calls = 0

    @property
    def dim(self) -> int:
        return sum(p.numel() for p in self.params)

    def unflatten(self, flat: Tensor) -> list[Tensor]:
        chunks = torch.split(flat.to(self.device), [p.numel() for p in self.params])
        return [c.view_as(p).to(p.dtype) for c, p in zip(chunks, self.params, strict=True)]

    def __call__(self, flat: Tensor) -> Tensor:
        vs = self.unflatten(flat)
        total = [torch.zeros_like(p) for p in self.params]
        torch.manual_seed(self.seed)  # the same dropout masks at every product: one operator
        k, b = 0, None
        with torch.enable_grad():
            for batch in self.batches:
                args, targets = unpack(batch, self.device)
                size = batch_size(args, targets)
                if b is not None and size != b:
                    raise ValueError(f"micro-batches must have equal size: got {size} after {b}")
                b = size
                loss = mean_loss(self.model, self.loss_fn, args, targets)
                grads = torch.autograd.grad(
                    loss, self.params, create_graph=True, materialize_grads=True
                )
                # Gradients that do not depend on θ (e.g. of a linear layer's bias under a
                # linear loss) have no graph and contribute nothing to Hv.
                terms = [(g * v).sum() for g, v in zip(grads, vs, strict=True) if g.requires_grad]
                if terms:
                    hv = torch.autograd.grad(
                        torch.stack(terms).sum(), self.params, materialize_grads=True
                    )
                    torch._foreach_add_(total, hv)
                k += 1
        if k == 0:
            raise ValueError("batches is empty; pass a re-iterable sequence (list, DataLoader)")
        self.n_calls += 1
        return torch.cat([t.reshape(-1) for t in total]).to(torch.float64) / k


def _start_vector(v0: Tensor | Sequence[Tensor] | None, dim: int, seed: int) -> Tensor:
    if v0 is None:  # seeded on the CPU, so the start is the same on every device
        gen = torch.Generator().manual_seed(seed)
        return torch.randn(dim, generator=gen, dtype=torch.float64)
    if isinstance(v0, Tensor):
        flat = v0.reshape(-1)
    else:
        flat = torch.cat([t.reshape(-1).cpu() for t in v0])
    if flat.numel() != dim:
        raise ValueError(f"v0 has {flat.numel()} entries, the trainable parameters {dim}")
    return flat.to(torch.float64)


def top_hessian_eigenvalue(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Iterable[Batch],
    *,
    method: Literal["lanczos", "power"] = "lanczos",
    tol: float = 1e-3,
    max_hvp: int = 200,
    v0: Tensor | Sequence[Tensor] | None = None,
    seed: int = 0,
    ncv: int = 20,
    progress: Progress = False,
) -> HessianEig:
    """The sharpness λ_max(∇²L_S) of the mean loss over ``batches`` (see module doc).

    Args:
        model, loss_fn, batches: as for :func:`sgdconv.stats.estimate_gradient_stats`;
            ``batches`` is iterated once per Hessian-vector product, so it must be re-iterable.
        method: ``"lanczos"`` (thick-restart Lanczos, full re-orthogonalisation in float64) or
            ``"power"`` (the paper's power iteration, shifted when needed).
        tol: stop when |Hv − λv| / |λ| <= tol.
        max_hvp: budget of Hessian-vector products (>= 2 for Lanczos); counted in ``n_hvp``.
        v0: start vector (flat, or one tensor per trainable parameter); default a standard
            normal vector drawn from ``seed``, so the result is deterministic.
        seed: seeds the default start vector and the dropout masks of the products.
        ncv: Lanczos basis size before a thick restart (memory (ncv + 1) · p float64).
        progress: True for a tqdm bar over products, or a callable receiving products done.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    params = trainable_parameters(model)
    device = model_device(params)
    hvp = HessianVectorProduct(model, loss_fn, batches, params, seed=seed)
    start = _start_vector(v0, hvp.dim, seed).to(device)

    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_hvp, desc=f"sharpness ({method})", leave=False)

    def op(v: Tensor) -> Tensor:
        out = hvp(v)
        if bar is not None:
            bar.update(1)
        elif callable(progress):
            progress(hvp.n_calls)
        return out

    try:
        with preserved_model_state(model, device):
            pair: EigenPair
            if method == "lanczos":
                pair = lanczos_top(op, start, tol=tol, max_matvec=max_hvp, ncv=ncv)
            else:
                pair = power_top(op, start, tol=tol, max_matvec=max_hvp)
    finally:
        if bar is not None:
            bar.close()
    return HessianEig(
        value=pair.value,
        vector=pair.vector.detach().cpu(),
        residual=pair.residual,
        n_hvp=pair.n_matvec,
        converged=pair.converged,
        method=method,
    )
