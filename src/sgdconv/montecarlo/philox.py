"""Counter-based random streams, one per Monte-Carlo trajectory (Philox4x32-10).

The Monte-Carlo engine (:mod:`sgdconv.montecarlo.trajectories`) advances B independent SGD
trajectories as the rows of one (B, p) tensor. For a batched run to be *the same experiment* as
B separate runs, trajectory b must draw exactly the same noise Z_k in both: its randomness has to
depend on (seed, b, k) only, never on how many other trajectories share the batch or in which
order they are drawn. A sequential generator (torch's Mersenne twister) cannot give that without
a Python loop over the trajectories; a counter-based generator can: every random word is a pure
function of a key and a counter, here

    key     = (seed mod 2^32, trajectory id)
    counter = (block j, step k, tag, seed div 2^32)

so row b of the batched draw equals the draw of trajectory b alone, bit for bit, and a set of
trajectories with the same ids sees the same noise in every condition (common random numbers).

Philox4x32-10 is the generator of Salmon, Moraes, Dror & Shaw, "Parallel random numbers: as easy
as 1, 2, 3" (SC'11), the one cuRAND and JAX-on-GPU use; it passes TestU01's BigCrush. The 32×32
-> 64-bit products it needs are computed exactly in int64 by splitting one factor into 16-bit
halves (no reliance on signed-overflow wrap-around), and the implementation is checked against
the Random123 known-answer vectors in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

M32 = 0xFFFFFFFF
#: Philox4x32 round multipliers and Weyl key increments (Salmon et al. 2011, Table 2).
PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
ROUNDS = 10

#: Counter tags: independent sub-streams of one trajectory.
TAG_NOISE = 0


def _mulhilo(multiplier: int, x: Tensor) -> tuple[Tensor, Tensor]:
    """High and low 32-bit words of the 64-bit product ``multiplier * x`` (x < 2^32, int64).

    Exact in int64: with M = M_hi 2^16 + M_lo, both partial products stay below 2^48. Two
    fresh tensors, the rest in place (allocation, not arithmetic, dominates at these sizes).
    """
    p_lo = x * (multiplier & 0xFFFF)
    p_hi = x * (multiplier >> 16)
    hi = (p_lo >> 16).add_(p_hi).bitwise_right_shift_(16)
    lo = p_hi.bitwise_and_(0xFFFF).bitwise_left_shift_(16).add_(p_lo).bitwise_and_(M32)
    return hi, lo


def philox4x32(
    counter: tuple[Tensor, Tensor, Tensor, Tensor],
    key: tuple[Tensor, Tensor],
    rounds: int = ROUNDS,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The Philox4x32 bijection of ``counter`` under ``key``: four words of 32 random bits.

    All inputs are int64 tensors holding values in [0, 2^32) and broadcastable to one shape;
    the outputs have that shape.
    """
    shape = torch.broadcast_shapes(*(c.shape for c in counter), *(k.shape for k in key))
    c0, c1, c2, c3 = (c.to(torch.int64).expand(shape) for c in counter)
    k0, k1 = (k.to(torch.int64) for k in key)
    for _ in range(rounds):
        hi0, lo0 = _mulhilo(PHILOX_M[0], c0)
        hi1, lo1 = _mulhilo(PHILOX_M[1], c2)
        # hi0, hi1 are fresh tensors of the full shape: xor in place.
        c0, c1, c2, c3 = (
            hi1.bitwise_xor_(c1).bitwise_xor_(k0),
            lo1,
            hi0.bitwise_xor_(c3).bitwise_xor_(k1),
            lo0,
        )
        k0 = (k0 + PHILOX_W[0]) & M32
        k1 = (k1 + PHILOX_W[1]) & M32
    return c0, c1, c2, c3


def _unit_open(words: Tensor) -> Tensor:
    """32-bit words -> float64 uniforms in the open interval (0, 1): (u + 1/2) 2^-32."""
    return words.to(torch.float64).add_(0.5).mul_(2.0**-32)


@dataclass(frozen=True)
class TrajectoryStreams:
    """Independent random streams for the trajectories ``ids`` (shape (B,), values < 2^32).

    Trajectory b's stream depends only on ``seed`` and ``ids[b]``; :meth:`subset` selects rows
    without changing any of their draws.
    """

    seed: int
    ids: Tensor

    def __post_init__(self) -> None:
        ids = torch.as_tensor(self.ids, dtype=torch.int64).reshape(-1)
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) > M32):
            raise ValueError("trajectory ids must lie in [0, 2^32)")
        if not 0 <= int(self.seed) < 2**64:
            raise ValueError(f"seed must lie in [0, 2^64), got {self.seed}")
        object.__setattr__(self, "ids", ids)

    @classmethod
    def range(cls, seed: int, count: int, start: int = 0) -> TrajectoryStreams:
        """Streams for trajectories start, start + 1, ..., start + count − 1."""
        return cls(seed, torch.arange(start, start + count, dtype=torch.int64))

    def __len__(self) -> int:
        return int(self.ids.numel())

    def subset(self, rows: Tensor | slice | list[int]) -> TrajectoryStreams:
        """The streams of some rows (same ids, hence the same draws)."""
        return TrajectoryStreams(self.seed, self.ids[rows])

    def words(self, first_step: int, n_steps: int, blocks: int, tag: int = TAG_NOISE) -> Tensor:
        """Random 32-bit words for steps first_step, ..., first_step + n_steps − 1: shape
        (n_steps, B, 4·blocks); entry [t, b] comes from trajectory b's stream, its block j from
        the counter (j, first_step + t, tag, seed div 2^32)."""
        if not (0 <= first_step and first_step + n_steps - 1 <= M32 and n_steps >= 1):
            raise ValueError(f"steps must lie in [0, 2^32), got {first_step} + {n_steps}")
        batch = len(self)
        j = torch.arange(blocks, dtype=torch.int64).view(1, 1, blocks)
        k = torch.arange(first_step, first_step + n_steps, dtype=torch.int64).view(-1, 1, 1)
        const = [torch.tensor(v, dtype=torch.int64) for v in (tag, int(self.seed) >> 32)]
        key = (torch.tensor(int(self.seed) & M32, dtype=torch.int64), self.ids.view(1, -1, 1))
        out = philox4x32((j, k, *const), key)
        return torch.stack(out, dim=-1).reshape(n_steps, batch, 4 * blocks)

    def normal(self, first_step: int, size: int, n_steps: int = 1, tag: int = TAG_NOISE) -> Tensor:
        """Standard normal draws for ``n_steps`` consecutive steps: shape (n_steps, B, size),
        float64, by Box–Muller on pairs of 32-bit uniforms. Drawing several steps at once only
        amortizes the cost: the values are those of one step at a time."""
        blocks = (size + 3) // 4
        words = self.words(first_step, n_steps, blocks, tag)
        u = _unit_open(words).reshape(n_steps, len(self), 2 * blocks, 2)
        radius = torch.log(u[..., 0]).mul_(-2.0).sqrt_()
        angle = u[..., 1].mul(2.0 * math.pi)
        z = torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)), dim=-1)
        return z.reshape(n_steps, len(self), 4 * blocks)[..., :size]
