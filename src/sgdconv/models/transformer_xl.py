"""Transformer-XL (Dai et al. 2019) as trained by Zhang et al. (2022), Section 3.2 and Fig. 3.

Zhang et al. train "exactly" the official code of Dai et al. (kimiyoung/transformer-xl,
``mem_transformer.py``) on WikiText-103, with 4 instead of 6 layers. This is that configuration:
relative partial-learnable attention (``attn_type 0``), post-LayerNorm blocks, the adaptive input
with ``div_val 1`` (one full-vocabulary table, ``d_embed = d_model``), the adaptive softmax
(Grave et al. 2017) tied to the input table, and init ``normal`` with ``init_std 0.02``.
Dai et al.: Sec. 3.2 is the segment recurrence (eq. 1), Sec. 3.3 the relative score (terms
(a)-(d)), App. B the shift that computes (b)+(d) for all pairs with one product. Parameter names
are the official ones, so official state dicts load (:func:`load_official_state_dict`); tensors
are ``[time, batch, ...]`` as there.

Differences from the official code, none of which changes the mathematics:

- the per-token loss keeps the tokens' order (the official criterion, called without
  ``keep_order``, groups them by cluster; training only uses their mean);
- every operation is out of place, so Hessian-vector products (double backward) work;
- under ``torch.func`` transforms (``vmap``/``grad``), or with ``dense_softmax=True``, the
  adaptive softmax computes the full distribution instead of selecting each cluster's tokens
  with ``nonzero`` (a data-dependent shape ``vmap`` cannot batch). Dropout under ``vmap`` needs
  ``randomness="different"`` (or ``"same"``); in eval mode or with dropout 0 nothing is random;
- no memory is ``None`` (the official code starts from empty tensors).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Mems = list[Tensor] | None


def rel_shift(x: Tensor) -> Tensor:
    """The official ``_rel_shift`` (Dai et al. 2019, App. B) of scores ``x[i, j, ...]`` of query
    ``i`` against relative-position row ``j`` (rows ordered by distance ``klen - 1`` down to 0).

    Returns ``y`` with ``y[i, j] = x[i, j + qlen - 1 - i]``: the score of query ``i`` (absolute
    position ``mlen + i``) at distance ``mlen + i - j`` from key ``j``, for ``j <= mlen + i``;
    entries above that diagonal are garbage that the causal mask removes. Pad a zero column,
    reinterpret the ``[qlen, klen + 1]`` block as ``[klen + 1, qlen]`` and drop the first row:
    each row ends up shifted left by one more than the row above."""
    qlen, klen = x.shape[:2]
    zero_pad = x.new_zeros((qlen, 1, *x.shape[2:]))
    padded = torch.cat([zero_pad, x], dim=1).reshape(klen + 1, qlen, *x.shape[2:])
    return padded[1:].reshape(x.shape)


def _in_functorch(x: Tensor) -> bool:
    """Whether ``x`` is wrapped by a torch.func transform (vmap/grad); private API, guarded."""
    probe = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return bool(probe is not None and probe(x))


class PositionalEmbedding(nn.Module):
    """Sinusoid encoding R of Vaswani et al. (2017) of relative distances (Dai et al. Sec. 3.3)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.register_buffer(
            "inv_freq", 1.0 / (10000 ** (torch.arange(0.0, d_model, 2.0) / d_model))
        )

    def forward(self, pos_seq: Tensor) -> Tensor:
        sinusoid = torch.outer(pos_seq, self.inv_freq)
        return torch.cat([sinusoid.sin(), sinusoid.cos()], dim=-1)


class PositionwiseFF(nn.Module):
    """``LayerNorm(h + W2 drop(ReLU(W1 h + b1)) + b2)`` with dropout (post-LN, official names)."""

    def __init__(self, d_model: int, d_inner: int, dropout: float) -> None:
        super().__init__()
        self.CoreNet = nn.Sequential(
            nn.Linear(d_model, d_inner),
            nn.ReLU(),  # not inplace (the official one is): keeps double backward simple
            nn.Dropout(dropout),
            nn.Linear(d_inner, d_model),
            nn.Dropout(dropout),
        )
        self.layer_norm = nn.LayerNorm(d_model)

    def forward(self, inp: Tensor) -> Tensor:
        return self.layer_norm(inp + self.CoreNet(inp))


class RelPartialLearnableMultiHeadAttn(nn.Module):
    """Relative multi-head attention, Dai et al. (2019) Sec. 3.3, followed by ``LN(w + ·)``.

    score(i, j) = (q_i + u)·k_j  [(a)+(c)]  +  (q_i + v)·W_R R_{i-j}  [(b)+(d)], scaled by
    1/sqrt(d_head), with u = ``r_w_bias`` and v = ``r_r_bias`` shared by all layers."""

    def __init__(self, n_head: int, d_model: int, d_head: int, dropout: float, dropatt: float):
        super().__init__()
        self.n_head, self.d_head = n_head, d_head
        self.qkv_net = nn.Linear(d_model, 3 * n_head * d_head, bias=False)
        self.r_net = nn.Linear(d_model, n_head * d_head, bias=False)
        self.o_net = nn.Linear(n_head * d_head, d_model, bias=False)
        self.drop = nn.Dropout(dropout)
        self.dropatt = nn.Dropout(dropatt)
        self.layer_norm = nn.LayerNorm(d_model)
        self.scale = 1.0 / d_head**0.5

    def scores(
        self, w: Tensor, r: Tensor, r_w_bias: Tensor, r_r_bias: Tensor, mem: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Unscaled, unmasked scores ``[qlen, klen, batch, n_head]`` of the queries of ``w``
        against the keys of ``[mem | w]``, and the values ``[klen, batch, n_head, d_head]``."""
        qlen, bsz = w.shape[:2]
        # Keys and values see the memory (eq. 1: SG(h^{n-1}_{τ}) ∘ h^{n-1}_{τ+1}); queries do not.
        cat = w if mem is None else torch.cat([mem, w], dim=0)
        q, k, v = self.qkv_net(cat).chunk(3, dim=-1)
        heads = (self.n_head, self.d_head)
        q = q[-qlen:].reshape(qlen, bsz, *heads)
        k = k.reshape(cat.size(0), bsz, *heads)
        v = v.reshape(cat.size(0), bsz, *heads)
        r_k = self.r_net(r).reshape(r.size(0), *heads)
        ac = torch.einsum("ibnd,jbnd->ijbn", q + r_w_bias, k)
        bd = rel_shift(torch.einsum("ibnd,jnd->ijbn", q + r_r_bias, r_k))
        return ac + bd, v

    def forward(
        self,
        w: Tensor,
        r: Tensor,
        r_w_bias: Tensor,
        r_r_bias: Tensor,
        attn_mask: Tensor,
        mem: Tensor | None = None,
    ) -> Tensor:
        score, v = self.scores(w, r, r_w_bias, r_r_bias, mem)
        score = (score * self.scale).masked_fill(attn_mask[:, :, None, None], float("-inf"))
        prob = self.dropatt(F.softmax(score, dim=1))
        vec = torch.einsum("ijbn,jbnd->ibnd", prob, v)
        out = self.o_net(vec.reshape(*vec.shape[:2], self.n_head * self.d_head))
        return self.layer_norm(w + self.drop(out))


class RelPartialLearnableDecoderLayer(nn.Module):
    """One Transformer-XL layer: relative attention block, then feed-forward block."""

    def __init__(
        self, n_head: int, d_model: int, d_head: int, d_inner: int, dropout: float, dropatt: float
    ) -> None:
        super().__init__()
        self.dec_attn = RelPartialLearnableMultiHeadAttn(n_head, d_model, d_head, dropout, dropatt)
        self.pos_ff = PositionwiseFF(d_model, d_inner, dropout)

    def forward(
        self,
        inp: Tensor,
        r: Tensor,
        r_w_bias: Tensor,
        r_r_bias: Tensor,
        attn_mask: Tensor,
        mem: Tensor | None = None,
    ) -> Tensor:
        return self.pos_ff(self.dec_attn(inp, r, r_w_bias, r_r_bias, attn_mask, mem))


class AdaptiveEmbedding(nn.Module):
    """Adaptive input (Baevski & Auli 2019) with ``div_val 1``: one full-vocabulary table,
    scaled by sqrt(d_model)."""

    def __init__(self, n_token: int, d_embed: int) -> None:
        super().__init__()
        self.emb_layers = nn.ModuleList([nn.Embedding(n_token, d_embed)])
        self.emb_scale = d_embed**0.5

    def forward(self, inp: Tensor) -> Tensor:
        return self.emb_layers[0](inp) * self.emb_scale


class ProjectedAdaptiveLogSoftmax(nn.Module):
    """Adaptive softmax (Grave et al. 2017), official ``div_val 1`` layout without projections.

    The vocabulary splits at ``cutoffs`` into a shortlist ``[0, c_0)`` and tails
    ``[c_{i-1}, c_i)``. The head is a softmax over the shortlist and one logit per tail, from
    ``out_layers[0]`` rows ``[0, c_0)`` followed by ``cluster_weight``/``cluster_bias``; tail i
    (1-based) takes head column ``-i`` (the official convention: the LAST cluster row is the
    FIRST tail) times a softmax over its rows of ``out_layers[0]``. No cutoffs: a plain softmax.
    """

    def __init__(
        self, n_token: int, d_embed: int, cutoffs: Sequence[int] = (), dense: bool = False
    ):
        super().__init__()
        self.n_token = n_token
        self.cutoff_ends = [0, *cutoffs, n_token]
        if any(b <= a for a, b in zip(self.cutoff_ends, self.cutoff_ends[1:], strict=False)):
            raise ValueError(f"cutoffs must increase strictly within (0, {n_token}): {cutoffs}")
        self.n_clusters = len(self.cutoff_ends) - 2
        self.dense = dense
        if self.n_clusters > 0:
            self.cluster_weight = nn.Parameter(torch.zeros(self.n_clusters, d_embed))
            self.cluster_bias = nn.Parameter(torch.zeros(self.n_clusters))
        self.out_layers = nn.ModuleList([nn.Linear(d_embed, n_token)])

    def _head_log_prob(self, hidden: Tensor) -> Tensor:
        weight, bias = self.out_layers[0].weight, self.out_layers[0].bias
        short = self.cutoff_ends[1]
        head_w = torch.cat([weight[:short], self.cluster_weight], dim=0)
        head_b = torch.cat([bias[:short], self.cluster_bias], dim=0)
        return F.log_softmax(F.linear(hidden, head_w, head_b), dim=-1)

    def _tail_log_prob(self, hidden: Tensor, i: int) -> Tensor:
        lo, hi = self.cutoff_ends[i], self.cutoff_ends[i + 1]
        layer = self.out_layers[0]
        return F.log_softmax(F.linear(hidden, layer.weight[lo:hi], layer.bias[lo:hi]), dim=-1)

    def log_prob(self, hidden: Tensor) -> Tensor:
        """The full log-distribution ``[..., n_token]`` over the vocabulary at each position."""
        if self.n_clusters == 0:
            return self._tail_log_prob(hidden, 0)  # the whole vocabulary: a plain softmax
        head = self._head_log_prob(hidden)
        parts = [head[..., : self.cutoff_ends[1]]]
        for i in range(1, self.n_clusters + 1):
            parts.append(head[..., -i, None] + self._tail_log_prob(hidden, i))
        return torch.cat(parts, dim=-1)

    def forward(self, hidden: Tensor, target: Tensor) -> Tensor:
        """Negative log-likelihood ``[N]`` of ``target [N]`` given ``hidden [N, d]``, in order."""
        if self.n_clusters == 0 or self.dense or _in_functorch(hidden):
            return -self.log_prob(hidden).gather(-1, target[:, None]).squeeze(-1)
        # Only the tokens of cluster i pay for its tail softmax (the point of the method).
        head = self._head_log_prob(hidden)
        nll = hidden.new_zeros(target.shape)
        for i in range(self.n_clusters + 1):
            lo, hi = self.cutoff_ends[i], self.cutoff_ends[i + 1]
            idx = ((target >= lo) & (target < hi)).nonzero().squeeze(1)
            if idx.numel() == 0:
                continue
            target_i = (target[idx] - lo)[:, None]
            if i == 0:
                logp = head[idx].gather(1, target_i).squeeze(1)
            else:
                tail = self._tail_log_prob(hidden[idx], i)
                logp = head[idx, -i] + tail.gather(1, target_i).squeeze(1)
            nll = nll.index_copy(0, idx, -logp)  # out of place: double backward stays valid
        return nll


class MemTransformerLM(nn.Module):
    """Transformer-XL language model with segment-level recurrence (Dai et al. 2019, Sec. 3.2).

    The memory of layer n is that layer's INPUT over the last ``mem_len`` positions (``mems[0]``
    is the embedding output after dropout), without gradient (the SG(·) of eq. 1). As in the
    official code there are ``n_layer + 1`` memories; the last (the top output) is never read.
    """

    def __init__(
        self,
        n_token: int,
        n_layer: int,
        n_head: int,
        d_model: int,
        d_head: int,
        d_inner: int,
        dropout: float,
        dropatt: float,
        tgt_len: int,
        mem_len: int,
        cutoffs: Sequence[int] = (),
        *,
        clamp_len: int = -1,
        same_length: bool = False,
        dense_softmax: bool = False,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        self.n_token, self.n_layer, self.d_model = n_token, n_layer, d_model
        self.tgt_len, self.mem_len = tgt_len, mem_len
        self.clamp_len, self.same_length = clamp_len, same_length
        self.word_emb = AdaptiveEmbedding(n_token, d_model)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            RelPartialLearnableDecoderLayer(n_head, d_model, d_head, d_inner, dropout, dropatt)
            for _ in range(n_layer)
        )
        self.crit = ProjectedAdaptiveLogSoftmax(n_token, d_model, cutoffs, dense_softmax)
        # tie_weight (Press & Wolf 2017): the output layer's weight IS the embedding table.
        self.crit.out_layers[0].weight = self.word_emb.emb_layers[0].weight
        self.pos_emb = PositionalEmbedding(d_model)
        # u and v of Sec. 3.3, one pair for the whole network (the official untie_r False).
        self.r_w_bias = nn.Parameter(torch.empty(n_head, d_head))
        self.r_r_bias = nn.Parameter(torch.empty(n_head, d_head))
        self.reset_parameters(init_std)

    @torch.no_grad()
    def reset_parameters(self, init_std: float = 0.02) -> None:
        """The official ``weights_init`` for ``--init normal``: weights N(0, init_std), biases 0,
        LayerNorm weights N(1, init_std), ``r_w_bias``/``r_r_bias`` N(0, init_std)."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, 0.0, init_std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.normal_(module.weight, 1.0, init_std)
                nn.init.zeros_(module.bias)
            elif isinstance(module, ProjectedAdaptiveLogSoftmax) and module.n_clusters > 0:
                nn.init.normal_(module.cluster_weight, 0.0, init_std)
                nn.init.zeros_(module.cluster_bias)
        nn.init.normal_(self.r_w_bias, 0.0, init_std)
        nn.init.normal_(self.r_r_bias, 0.0, init_std)

    def attn_mask(self, qlen: int, mlen: int, device: torch.device | None = None) -> Tensor:
        """``[qlen, mlen + qlen]``, True where query i may NOT see key j (j > mlen + i; with
        ``same_length`` also keys more than ``mem_len`` back, as the official code)."""
        ones = torch.ones(qlen, mlen + qlen, dtype=torch.bool, device=device)
        mask = torch.triu(ones, diagonal=1 + mlen)
        if self.same_length:
            mask_len = mlen + qlen - self.mem_len
            shift = qlen - mask_len if mask_len > 0 else qlen
            mask = mask | torch.tril(ones, diagonal=-shift)
        return mask

    def hidden_states(self, tokens: Tensor, mems: Mems = None) -> tuple[Tensor, Mems]:
        """Top hidden states ``[qlen, B, d_model]`` (after dropout) and the new memories."""
        qlen = tokens.size(0)
        mlen = 0 if mems is None else mems[0].size(0)
        word_emb = self.word_emb(tokens)
        mask = self.attn_mask(qlen, mlen, word_emb.device)
        inv_freq = self.pos_emb.inv_freq
        pos_seq = torch.arange(
            mlen + qlen - 1, -1, -1.0, device=inv_freq.device, dtype=inv_freq.dtype
        )
        if self.clamp_len > 0:
            pos_seq = pos_seq.clamp(max=self.clamp_len)
        pos_emb = self.drop(self.pos_emb(pos_seq))
        core_out = self.drop(word_emb)
        hids = [core_out]
        for i, layer in enumerate(self.layers):
            mem = None if mems is None else mems[i]
            core_out = layer(core_out, pos_emb, self.r_w_bias, self.r_r_bias, mask, mem)
            hids.append(core_out)
        return self.drop(core_out), self._update_mems(hids, mems)

    def _update_mems(self, hids: list[Tensor], mems: Mems) -> Mems:
        # Official _update_mems with ext_len 0: keep positions [mlen + qlen - mem_len, mlen + qlen).
        if self.mem_len <= 0:
            return None
        old = [None] * len(hids) if mems is None else mems
        return [
            (h if m is None else torch.cat([m, h], dim=0))[-self.mem_len :].detach()
            for m, h in zip(old, hids, strict=True)
        ]

    def forward(self, tokens: Tensor, targets: Tensor, mems: Mems = None) -> tuple[Tensor, Mems]:
        """Per-token NLL ``[tgt_len, B]`` of ``targets`` given ``tokens [qlen, B]`` (qlen >=
        tgt_len; the last tgt_len positions are scored) and ``mems``; and the new memories."""
        tgt_len = targets.size(0)
        hidden, new_mems = self.hidden_states(tokens, mems)
        pred = hidden[-tgt_len:]
        nll = self.crit(pred.reshape(-1, self.d_model), targets.reshape(-1))
        return nll.reshape(tgt_len, -1), new_mems

    def log_probs(self, tokens: Tensor, mems: Mems = None) -> tuple[Tensor, Mems]:
        """Next-token log-distributions ``[qlen, B, n_token]`` and the new memories."""
        hidden, new_mems = self.hidden_states(tokens, mems)
        return self.crit.log_prob(hidden), new_mems


def transformer_xl(
    vocab_size: int,
    n_layer: int,
    d_model: int,
    n_head: int,
    d_head: int,
    d_inner: int,
    tgt_len: int,
    mem_len: int,
    cutoffs: Sequence[int] = (),
    dropout: float = 0.0,
    dropatt: float = 0.0,
    **options: Any,
) -> MemTransformerLM:
    """Transformer-XL of Dai et al. (2019) in the official ``attn_type 0``, ``div_val 1``,
    tied, post-LN configuration; ``options``: ``clamp_len``, ``same_length``,
    ``dense_softmax``, ``init_std`` of :class:`MemTransformerLM`. The WT103 base model:
    ``vocab_size 267735, d_model 410, n_head 10, d_head 41, d_inner 2100, tgt_len = mem_len =
    150, cutoffs (20000, 40000, 200000), dropout 0.1, dropatt 0.0``, with ``n_layer 4`` in
    Zhang et al. (2022), Sec. 3.2."""
    dims = (vocab_size, n_layer, n_head, d_model, d_head, d_inner)
    return MemTransformerLM(*dims, dropout, dropatt, tgt_len, mem_len, cutoffs, **options)


def load_official_state_dict(model: MemTransformerLM, state_dict: Mapping[str, Tensor]) -> None:
    """Load a state dict of the official ``MemTransformerLM`` (attn_type 0, div_val 1, tied,
    d_embed = d_model) into ``model``. The names coincide; a ``module.`` prefix (DataParallel)
    is stripped, and ``pos_emb.inv_freq`` (a constant) may be absent.

    Raises:
        ValueError: naming the missing and unexpected keys, or if the checkpoint's output layer
            is not tied to its embedding.
    """
    sd = dict(state_dict)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    sd.setdefault("pos_emb.inv_freq", model.pos_emb.inv_freq)
    emb, out = "word_emb.emb_layers.0.weight", "crit.out_layers.0.weight"
    if emb in sd and out in sd and not torch.equal(sd[emb], sd[out]):
        raise ValueError(f"{out} differs from {emb}: only tie_weight checkpoints are supported")
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(sd)), sorted(set(sd) - expected)
    if missing or unexpected:
        raise ValueError(
            f"state dict does not match the Transformer-XL: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    model.load_state_dict(sd, strict=True)
