"""Batched full-batch gradient descent and the trial-and-error step-size rule of Chatterjee
(2022), Remarks 4.4 and 4.7.

Many independent runs θ_{k+1} = θ_k − η ∇F(θ_k) (Section 4, the update after (4.2)) — several
seeds, several step sizes, or both — advance together as the rows of one (B, p) tensor. A row
stops as soon as it converges, F(θ_k) < tol · F(θ0), or diverges (F or ∇F not finite, or
F(θ_k) > divergence_factor · F(θ0)); the others continue on a compacted working set, so finished
rows cost nothing.

Remarks 4.4 and 4.7 say the step size (and, for Theorem 4.1, the output weight A) is found "by
trial and error ... decreasing η until convergence is achieved". :func:`eta_ladder` implements
exactly that choice for a decreasing ladder η_0 > η_1 > ...: each start gets the *largest* η of
the ladder whose run converges within the step budget — the η a practitioner who halves the step
after every failure would stop at. Running the whole ladder as one batch gives the same choice
at once; a run is retired early as soon as a larger η of the same start has succeeded, since it
can no longer be chosen.

**Staying in the ball.** Theorem 2.2 (Section 6: |x_k − x_0| < r for every k) promises more
than convergence: for η small enough every iterate stays in B(θ0, r), the ball of the
certificate (2.1). A large step can converge after travelling far outside the ball, which the
theorem says nothing about. With ``radius`` = r a run *succeeds* only if it converges and
max_k |θ_k − θ0| <= r; the ladder then picks the largest η whose run succeeds, so the reported
run is one the theorem speaks for. A run that has left the ball keeps going (to tell whether it
would have converged outside) only until some run of its start has succeeded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

#: θ (B, p) -> (F(θ) (B,), ∇F(θ) (B, p)), e.g. ``lambda th: net.loss_and_grad(th, x, y)``.
#: With ``labels`` given, it is called as ``loss_and_grad(θ, labels)``: the label of each row of θ
#: (e.g. which data set the row fits), following the rows as finished ones drop out.
LossAndGrad = Callable[..., tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class DescentResult:
    """Per-row outcome of :func:`gradient_descent` (all tensors have leading dimension B).

    ``iterations`` is the k at which the row stopped: the first k with F(θ_k) < tol · F(θ0) for
    a converged row, the step at which divergence was detected, the step at which it was
    retired, or ``max_steps``. ``max_dist`` is max_k |θ_k − θ0| over the iterates visited
    (Theorem 2.2: GD stays in B(θ0, r) when (2.1) holds and η is small enough) and ``left_ball``
    whether it exceeded the ``radius`` given (all False without one). ``history`` (with
    ``record=True``) holds F(θ_k) for k = 0..max_steps, NaN after a row stopped.
    """

    theta: Tensor
    f0: Tensor
    f_final: Tensor
    iterations: Tensor
    converged: Tensor
    diverged: Tensor
    retired: Tensor
    max_dist: Tensor
    left_ball: Tensor
    history: Tensor | None


def gradient_descent(
    loss_and_grad: LossAndGrad,
    theta0: Tensor,
    eta: float | Tensor,
    *,
    max_steps: int,
    tol: float = 1e-8,
    divergence_factor: float = 1e4,
    group: Tensor | None = None,
    radius: float | None = None,
    labels: Tensor | None = None,
    record: bool = False,
) -> DescentResult:
    """Run GD from every row of ``theta0`` (B, p) with its own step ``eta`` (scalar or (B,)).

    Stops a row at F(θ_k) < tol · F(θ0) (or F(θ_k) = 0), or on divergence (see the module
    docstring). A row *succeeds* when it converges without leaving B(θ0, ``radius``) (any
    convergence without a radius). With ``group`` (B,) integer labels, a row is also retired
    once a row of the same group with a strictly larger η has succeeded, or, if it has left the
    ball itself, once any row of its group has succeeded (the ladder of :func:`eta_ladder`).
    With ``labels`` (B,), ``loss_and_grad`` also receives the labels of the rows it evaluates.
    """
    if theta0.dim() != 2:
        raise ValueError(f"theta0 must have shape (B, p), got {tuple(theta0.shape)}")
    if max_steps < 0:
        raise ValueError(f"max_steps must be >= 0, got {max_steps}")
    n_rows, dtype = theta0.shape[0], theta0.dtype
    eta_all = torch.as_tensor(eta, dtype=dtype).expand(n_rows).clone()
    if bool((eta_all <= 0).any()):
        raise ValueError("step sizes must be > 0")
    out = _Rows(theta0, max_steps, record)
    limit = math.inf if radius is None else float(radius)

    # The working set: only rows still running.
    idx = torch.arange(n_rows)
    theta = theta0.detach().clone()
    start, eta_a, f0 = theta.clone(), eta_all.clone(), None
    for k in range(max_steps + 1):
        f, g = loss_and_grad(theta) if labels is None else loss_and_grad(theta, labels[idx])
        f, g = f.detach(), g.detach()
        if f0 is None:
            f0 = f.clone()
            out.f0[:] = f0
        if out.history is not None:
            out.history[k, idx] = f
        finite = torch.isfinite(f) & torch.isfinite(g).all(dim=-1)
        is_conv = finite & ((f < tol * f0) | (f == 0))
        is_div = ~finite | (f > divergence_factor * f0)
        is_ret = torch.zeros_like(is_conv)
        if group is not None:
            out.converged[idx[is_conv]] = True  # so the group test sees this step's winners
            succeeded = out.converged & ~(out.max_dist > limit)
            beaten = _beaten_in_group(group, eta_all, succeeded, idx, out.max_dist[idx] > limit)
            is_ret = ~is_conv & ~is_div & beaten
        stop = is_conv | is_div | is_ret
        if k == max_steps:
            stop = torch.ones_like(stop)
        if bool(stop.any()):
            out.stop(idx[stop], k, theta[stop], f[stop], is_conv[stop], is_div[stop], is_ret[stop])
            keep = ~stop
            idx, theta, start, eta_a, f0, g = (t[keep] for t in (idx, theta, start, eta_a, f0, g))
            if len(idx) == 0:
                break
        theta = theta - eta_a.unsqueeze(-1) * g
        out.max_dist[idx] = torch.maximum(out.max_dist[idx], (theta - start).norm(dim=-1))
    return out.result(limit)


class _Rows:
    """The per-row outcome of :func:`gradient_descent`, filled in as rows stop."""

    def __init__(self, theta0: Tensor, max_steps: int, record: bool) -> None:
        n_rows, dtype = theta0.shape[0], theta0.dtype
        self.theta = theta0.detach().clone()
        self.f0 = torch.full((n_rows,), math.nan, dtype=dtype)
        self.f_final = torch.full((n_rows,), math.nan, dtype=dtype)
        self.iterations = torch.full((n_rows,), max_steps, dtype=torch.long)
        self.converged = torch.zeros(n_rows, dtype=torch.bool)
        self.diverged = torch.zeros(n_rows, dtype=torch.bool)
        self.retired = torch.zeros(n_rows, dtype=torch.bool)
        self.max_dist = torch.zeros(n_rows, dtype=dtype)
        self.history = (
            torch.full((max_steps + 1, n_rows), math.nan, dtype=dtype) if record else None
        )

    def stop(
        self, rows: Tensor, k: int, theta: Tensor, f: Tensor, conv: Tensor, div: Tensor, ret: Tensor
    ) -> None:
        """Record the rows that stop at step k."""
        self.theta[rows], self.f_final[rows], self.iterations[rows] = theta, f, k
        self.converged[rows], self.diverged[rows], self.retired[rows] = conv, div, ret

    def result(self, limit: float) -> DescentResult:
        return DescentResult(
            theta=self.theta,
            f0=self.f0,
            f_final=self.f_final,
            iterations=self.iterations,
            converged=self.converged,
            diverged=self.diverged,
            retired=self.retired,
            max_dist=self.max_dist,
            left_ball=self.max_dist > limit,
            history=self.history,
        )


def _beaten_in_group(
    group: Tensor, eta: Tensor, succeeded: Tensor, idx: Tensor, outside: Tensor
) -> Tensor:
    """For the running rows ``idx``: has a row of the same group with a larger η succeeded, or
    (for a row already ``outside`` the ball, which can no longer be chosen) any row?"""
    n_groups = int(group.max()) + 1
    best = torch.full((n_groups,), -math.inf, dtype=eta.dtype)
    if bool(succeeded.any()):
        best = best.scatter_reduce(0, group[succeeded], eta[succeeded], reduce="amax")
    best_here = best[group[idx]]
    return (eta[idx] < best_here) | (outside & (best_here > -math.inf))


def ladder(eta_max: float, factor: float, rungs: int) -> list[float]:
    """The decreasing step sizes η_max, η_max/factor, ..., η_max/factor^(rungs−1)."""
    if eta_max <= 0 or factor <= 1 or rungs < 1:
        raise ValueError(
            f"need eta_max > 0, factor > 1, rungs >= 1; got {eta_max}, {factor}, {rungs}"
        )
    return [eta_max / factor**k for k in range(rungs)]


#: Outcome codes of one (start, rung) run in :attr:`LadderResult.outcome`.
NOT_RUN, CONVERGED, DIVERGED, TIMED_OUT = 0, 1, 2, 3


@dataclass(frozen=True)
class LadderResult:
    """Per-start outcome of :func:`eta_ladder` (leading dimension S = number of starts).

    ``eta`` is the chosen step (NaN where no rung succeeded: converged, and stayed in the ball
    when a radius was given) and ``rung`` its index (−1 if none). ``iterations``, ``f_final``,
    ``max_dist`` (and ``history``, (max_steps + 1, S), with ``record=True``) belong to the
    chosen run, or to the smallest-η run when none succeeded. The (S, E) tables describe every
    (start, rung) run: ``outcome`` codes it as :data:`CONVERGED`, :data:`DIVERGED`,
    :data:`TIMED_OUT` (reached ``max_steps``) or :data:`NOT_RUN` (not needed, or retired because
    a larger η of the same start had succeeded); ``left_ball`` says whether it left
    B(θ0, radius); ``rung_max_dist`` and ``rung_iterations`` are its excursion and length (NaN
    and −1 where it did not run).
    """

    etas: Tensor
    eta: Tensor
    rung: Tensor
    converged: Tensor
    iterations: Tensor
    f0: Tensor
    f_final: Tensor
    max_dist: Tensor
    outcome: Tensor
    left_ball: Tensor
    rung_max_dist: Tensor
    rung_iterations: Tensor
    history: Tensor | None


def eta_ladder(
    loss_and_grad: LossAndGrad,
    theta0: Tensor,
    etas: Sequence[float],
    *,
    max_steps: int,
    tol: float = 1e-8,
    divergence_factor: float = 1e4,
    radius: float | None = None,
    labels: Tensor | None = None,
    strategy: str = "batch",
    record: bool = False,
) -> LadderResult:
    """Trial-and-error step size (Remarks 4.4, 4.7) for every start of ``theta0`` (S, p).

    Picks, per start, the largest η of the strictly decreasing ladder ``etas`` whose GD run
    reaches F < tol · F(θ0) within ``max_steps`` — the step at which "decreasing η until
    convergence" stops — and, with ``radius`` = r, never leaves B(θ0, r) on the way (Theorem
    2.2). Two equivalent schedules (same choice, since GD is deterministic):

    ``"batch"``: every (start, rung) pair is one row of a single batch of S·E runs; a run is
    retired once a larger η of its start has succeeded. Best when there are few starts.
    ``"sequential"``: rung after rung, each a batch over the starts that have not succeeded yet.
    Best when most starts converge on the first rungs (many seeds). ``labels`` (S,): one per
    start handed to ``loss_and_grad`` with every evaluation (see :data:`LossAndGrad`).
    """
    etas_t = torch.as_tensor(list(etas), dtype=theta0.dtype)
    if etas_t.dim() != 1 or len(etas_t) == 0 or bool((etas_t[1:] >= etas_t[:-1]).any()):
        raise ValueError(f"etas must be a non-empty strictly decreasing ladder, got {list(etas)}")
    if strategy not in ("batch", "sequential"):
        raise ValueError(f"strategy must be 'batch' or 'sequential', got {strategy!r}")
    kwargs = {
        "max_steps": max_steps,
        "tol": tol,
        "divergence_factor": divergence_factor,
        "radius": radius,
        "record": record,
    }
    n_starts, n_rungs = theta0.shape[0], len(etas_t)
    tables = _LadderTables(n_starts, n_rungs, max_steps, theta0.dtype, record)
    if strategy == "batch":
        starts = torch.arange(n_starts).repeat_interleave(n_rungs)  # row s·E + e
        rungs = torch.arange(n_rungs).repeat(n_starts)
        run = gradient_descent(
            loss_and_grad,
            theta0.repeat_interleave(n_rungs, dim=0),
            etas_t[rungs],
            group=starts,
            labels=None if labels is None else labels[starts],
            **kwargs,
        )
        tables.store(starts, rungs, run)
    else:
        remaining = torch.arange(n_starts)
        for e in range(n_rungs):
            part = None if labels is None else labels[remaining]
            run = gradient_descent(
                loss_and_grad, theta0[remaining], etas_t[e], labels=part, **kwargs
            )
            tables.store(remaining, torch.full_like(remaining, e), run)
            remaining = remaining[~(run.converged & ~run.left_ball)]
            if len(remaining) == 0:
                break
    return tables.result(etas_t)


class _LadderTables:
    """The (start, rung) tables of :func:`eta_ladder`, filled run by run."""

    def __init__(
        self, n_starts: int, n_rungs: int, max_steps: int, dtype: torch.dtype, record: bool
    ) -> None:
        shape = (n_starts, n_rungs)
        self.outcome = torch.full(shape, NOT_RUN, dtype=torch.int8)
        self.left = torch.zeros(shape, dtype=torch.bool)
        self.stats = {
            name: torch.full(shape, math.nan, dtype=dtype) for name in ("f0", "f_final", "max_dist")
        }
        self.iters = torch.full(shape, -1, dtype=torch.long)
        self.histories = (
            torch.full((max_steps + 1, *shape), math.nan, dtype=dtype) if record else None
        )

    def store(self, starts: Tensor, rungs: Tensor, run: DescentResult) -> None:
        code = torch.full_like(run.iterations, TIMED_OUT, dtype=torch.int8)
        code[run.diverged] = DIVERGED
        code[run.converged] = CONVERGED
        code[run.retired] = NOT_RUN
        self.outcome[starts, rungs] = code
        self.left[starts, rungs] = run.left_ball
        self.stats["f0"][starts, rungs] = run.f0
        self.stats["f_final"][starts, rungs] = run.f_final
        self.stats["max_dist"][starts, rungs] = run.max_dist
        self.iters[starts, rungs] = run.iterations
        if self.histories is not None and run.history is not None:
            self.histories[:, starts, rungs] = run.history

    def result(self, etas: Tensor) -> LadderResult:
        """Per start, the largest η whose run succeeded (see :class:`LadderResult`)."""
        success = (self.outcome == CONVERGED) & ~self.left
        any_ok = success.any(dim=1)
        # First successful rung = largest successful η; without one, the smallest-η run.
        first = torch.where(any_ok, success.to(torch.int8).argmax(dim=1), len(etas) - 1)
        pick = torch.arange(len(first))
        return LadderResult(
            etas=etas,
            eta=torch.where(any_ok, etas[first], torch.full_like(etas[first], math.nan)),
            rung=torch.where(any_ok, first, torch.full_like(first, -1)),
            converged=any_ok,
            iterations=self.iters[pick, first],
            f0=self.stats["f0"][pick, first],
            f_final=self.stats["f_final"][pick, first],
            max_dist=self.stats["max_dist"][pick, first],
            outcome=self.outcome,
            left_ball=self.left,
            rung_max_dist=self.stats["max_dist"],
            rung_iterations=self.iters,
            history=None if self.histories is None else self.histories[:, pick, first],
        )
