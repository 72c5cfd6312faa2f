"""The statistics of eq. (1) of Zhang et al. (2022) for a language model with memory
(Transformer-XL, Sec. 3.2, Fig. 3 and App. A.2, Fig. 8).

*The sample.* Consecutive segments that share a memory are not exchangeable samples: the loss of
a segment depends on the segments before it. Here one sample is one *segment position*
``(t, b)``: tokens ``t·tgt_len .. (t+1)·tgt_len`` of training stream ``b``, aligned as in
training (:class:`~sgdconv.data.wikitext.LMStreams`). Its loss ℓ_(t,b)(θ) is the mean NLL of
its ``tgt_len`` tokens given a memory recomputed *at θ* from the preceding
``burn_in = n_layer·⌈mem_len/tgt_len⌉`` segments of its stream, starting from empty memory, and
held fixed (no gradient flows into it, the SG(·) of Dai et al. eq. (1)). With ``mem_len`` a
multiple of ``tgt_len`` the top layer reads back exactly ``n_layer·mem_len`` tokens, so this
burn-in gives the memory of any longer history exactly (tests). The population is every such
position of the training streams; eq. (1) then holds as written over it, and
:func:`sgdconv.stats.estimate_gradient_stats` and :func:`sgdconv.stats.top_hessian_eigenvalue`
serve it through :class:`SegmentLoss` (a module) and :func:`segment_nll` (its loss), on the
micro-batches of :func:`segment_sample`; the sharpness is then λ_max of the Hessian of
ℓ in θ with the memory held at its value (the memory is data of the sample, as in training,
where it is detached, and in the authors' power iteration). A sample of m segments holds
m·tgt_len tokens (the axis of the paper's Fig. 8). The noise σ is per segment; SGD's minibatch
of B segments has noise σ/√B, the scale of the authors' estimate below.

*The authors' estimator* (their ``compute_grad_epoch``/``compute_noise``): K consecutive
training batches (all B streams, memory carried from batch to batch, empty at the first, in
train mode) give the "true" gradient ḡ = (1/K) Σ_{j<K} g_j and the loss; the next K batches
give the noise (1/K) Σ_{j=K}^{2K−1} |g_j − ḡ|², logged squared (:func:`authors_lm_stats`): a
plug-in |ḡ| on K·B·tgt_len tokens, biased upwards by Jensen's inequality, and noise on the
minibatch scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from sgdconv.data.base import MicroBatches, round_sample
from sgdconv.data.wikitext import LMStreams
from sgdconv.models.transformer_xl import Mems, MemTransformerLM
from sgdconv.stats._batches import Progress, model_device, with_progress
from sgdconv.stats._model_state import preserved_model_state, trainable_parameters


def burn_in_memory(lm: MemTransformerLM, segments: Tensor) -> Mems:
    """The memory after ``segments [k, tgt_len, B]``, from empty memory, without gradient."""
    mems = None
    with torch.no_grad():
        for segment in segments:
            _, mems = lm.hidden_states(segment, mems)
    return mems


class SegmentLoss(nn.Module):
    """``forward(segments) -> nll [m, tgt_len]``: the per-token NLL of the last of the
    ``burn_in + 1`` segments of each of m samples, given the memory the first ``burn_in``
    rebuild (:func:`burn_in_memory`). ``segments [m, 2, burn_in + 1, tgt_len]`` holds the input
    tokens (index 0 of dim 1) and the targets (index 1) of each sample's segments.

    A module around the language model, so its parameters are the model's and the statistics
    functions run it in the caller's mode (train: dropout in the burn-in too, as in training)."""

    def __init__(self, lm: MemTransformerLM, burn_in: int) -> None:
        super().__init__()
        self.lm, self.burn_in = lm, int(burn_in)

    def forward(self, segments: Tensor) -> Tensor:
        if segments.dim() != 4 or segments.shape[1:3] != (2, self.burn_in + 1):
            raise ValueError(
                f"expected [m, 2, {self.burn_in + 1}, tgt_len] segments, got "
                f"{tuple(segments.shape)}"
            )
        x, y = segments.permute(1, 2, 3, 0)  # each [k, tgt_len, m]
        mems = burn_in_memory(self.lm, x[:-1]) if self.burn_in else None
        nll, _ = self.lm(x[-1], y[-1], mems)
        return nll.t()


def segment_nll(nll: Tensor, target: Tensor) -> Tensor:
    """The loss of a micro-batch of segments: the mean of :class:`SegmentLoss`'s token NLLs
    (equal-length segments: the mean of the per-segment losses ℓ_(t,b))."""
    return nll.mean()


def segment_population(streams: LMStreams, burn_in: int) -> int:
    """N: the segment positions with a full burn-in, ``(n_segments − burn_in) · B``."""
    return (streams.n_segments - burn_in) * streams.batch_size


def segment_sample(
    streams: LMStreams, size: int, microbatch: int, seed: int, burn_in: int
) -> MicroBatches:
    """The fixed sample of ``size`` segment positions (a simple random sample without
    replacement, seeded; a smaller size is a prefix) in micro-batches of ``microbatch``, each
    ``(segments, scored_targets)``: ``segments [b, 2, burn_in + 1, tgt_len]`` for
    :class:`SegmentLoss` and ``scored_targets [b, tgt_len]`` (its leading dimension is the
    sample's, as the statistics functions read it)."""
    count, b = round_sample(size, microbatch)
    positions = streams.sample_positions(count * b, seed, burn_in)

    def fetch(i: int) -> tuple[Tensor, Tensor]:
        x, y = streams.sample_segments(positions[i * b : (i + 1) * b], burn_in)
        segments = torch.stack([x, y]).permute(3, 0, 1, 2).contiguous()  # [b, 2, k, L]
        return segments, segments[:, 1, -1]

    return MicroBatches(fetch, count, b)


# --- the authors' estimator -----------------------------------------------------------------


@dataclass(frozen=True)
class AuthorsLMStats:
    """The authors' loss, |ḡ|² and minibatch-scale noise² from K batches (and K more)."""

    loss: float
    grad_norm_sq: float
    noise_sq: float
    n_batches: int  # K
    batch_size: int  # B streams
    tgt_len: int

    @property
    def grad_norm(self) -> float:
        return max(self.grad_norm_sq, 0.0) ** 0.5

    @property
    def noise_norm(self) -> float:
        return max(self.noise_sq, 0.0) ** 0.5

    @property
    def n_tokens(self) -> int:
        """Tokens of the K batches behind ḡ (the paper's "token size")."""
        return self.n_batches * self.batch_size * self.tgt_len


def authors_lm_stats(
    lm: MemTransformerLM,
    streams: LMStreams,
    counts: Sequence[int],
    *,
    start: int = 0,
    progress: Progress = False,
) -> dict[int, AuthorsLMStats]:
    """The authors' estimates (module docstring) for every K in ``counts``: batches ``start ..
    start + K − 1`` give ḡ_K and the loss, batches ``start + K .. start + 2K − 1`` the noise,
    with the memory carried from ``start`` on (empty there). One pass over ``2 max(K)``
    batches, in the model's mode; the model is left as found."""
    counts = sorted({int(k) for k in counts})
    last = 2 * counts[-1]
    if counts[0] < 1 or start < 0 or start + last > streams.n_segments:
        raise ValueError(
            f"need 1 <= K and start + 2 max(K) <= {streams.n_segments} segments: "
            f"start {start}, counts {counts}"
        )
    params = trainable_parameters(lm)
    device = model_device(params)
    total: Tensor | None = None
    mean: dict[int, Tensor] = {}
    loss_sum, losses, noise = 0.0, {}, dict.fromkeys(counts, 0.0)
    mems = None
    with preserved_model_state(lm, device), torch.enable_grad():
        for j in with_progress(range(last), progress, "authors' estimator"):
            x, y = streams.batch(start + j)
            nll, mems = lm(x.to(device), y.to(device), mems)
            loss = nll.mean()
            grads = torch.autograd.grad(loss, params, materialize_grads=True)
            g = torch.cat([t.reshape(-1) for t in grads]).double()
            for k in counts:  # batches K .. 2K − 1 measure the noise around ḡ_K
                if k <= j < 2 * k:
                    noise[k] += float((g - mean[k]).square().sum())
            total = g if total is None else total + g
            loss_sum += float(loss.detach())
            if j + 1 in noise:
                mean[j + 1], losses[j + 1] = total / (j + 1), loss_sum / (j + 1)
    return {
        k: AuthorsLMStats(
            losses[k],
            float(mean[k].square().sum()),
            noise[k] / k,
            k,
            streams.batch_size,
            streams.tgt_len,
        )
        for k in counts
    }
