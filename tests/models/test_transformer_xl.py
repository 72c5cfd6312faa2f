"""Transformer-XL (Dai et al. 2019) of Zhang et al. (2022) Sec. 3.2 against independent ground
truth: brute-force relative scores, a long pass without memory, the causal mask, the adaptive
softmax's normalisation, finite differences, a loop over segments, the official key names."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call, grad, vmap

from sgdconv.models.registry import build_model
from sgdconv.models.transformer_xl import (
    MemTransformerLM,
    ProjectedAdaptiveLogSoftmax,
    load_official_state_dict,
    rel_shift,
    transformer_xl,
)

pytestmark = pytest.mark.usefixtures("float64", "one_thread")

VOCAB, CUTOFFS = 30, (8, 18)


def tiny(mem_len: int = 4, tgt_len: int = 4, seed: int = 0, **kwargs) -> MemTransformerLM:
    torch.manual_seed(seed)
    config = dict(n_layer=2, d_model=8, n_head=2, d_head=4, d_inner=16, cutoffs=CUTOFFS)
    config.update(kwargs)
    model = transformer_xl(VOCAB, tgt_len=tgt_len, mem_len=mem_len, **config)
    # Biases and cluster parameters start at 0; make them matter so the tests see them.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def tokens(qlen: int, bsz: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(VOCAB, (qlen, bsz), generator=torch.Generator().manual_seed(seed))


# --- 1. relative positions ---------------------------------------------------------------------


def test_rel_shift_indexes_by_relative_distance():
    qlen, klen = 3, 7
    x = torch.randn(qlen, klen, 2, 2)
    y = rel_shift(x)
    for i in range(qlen):
        for j in range(klen - qlen + i + 1):  # j <= mlen + i: the keys query i may see
            assert torch.equal(y[i, j], x[i, j + qlen - 1 - i])


def test_attention_scores_against_brute_force_double_loop():
    model = tiny()
    attn = model.layers[0].dec_attn
    qlen, mlen, bsz = 3, 4, 2
    w, mem = torch.randn(qlen, bsz, 8), torch.randn(mlen, bsz, 8)
    klen = mlen + qlen
    r = model.pos_emb(torch.arange(klen - 1, -1, -1.0))
    score, _ = attn.scores(w, r, model.r_w_bias, model.r_r_bias, mem)
    cat = torch.cat([mem, w])
    wq, wk, _ = attn.qkv_net.weight.split(8, dim=0)
    u, v = model.r_w_bias.reshape(-1), model.r_r_bias.reshape(-1)
    for i in range(qlen):
        for j in range(mlen + i + 1):
            dist = mlen + i - j
            # R_{i-j}: sinusoids of the distance (Vaswani et al. 2017), sin block then cos block.
            angles = dist / 10000 ** (torch.arange(0, 8, 2) / 8)
            rel = attn.r_net.weight @ torch.cat([angles.sin(), angles.cos()])
            for b in range(bsz):
                q, k = wq @ cat[mlen + i, b], wk @ cat[j, b]
                terms = (q + u) * k + (q + v) * rel  # Dai et al. Sec. 3.3: (a)+(c), (b)+(d)
                expected = terms.reshape(2, 4).sum(-1)
                torch.testing.assert_close(score[i, j, b], expected, rtol=1e-12, atol=1e-12)


# --- 2. recurrence == one long pass ---------------------------------------------------------


@pytest.mark.parametrize("mem_len", [5, 8])
def test_two_segments_with_memory_equal_one_long_pass(mem_len):
    tgt_len, bsz = 5, 3
    model = tiny(mem_len=mem_len, tgt_len=tgt_len)
    seq = tokens(2 * tgt_len + 1, bsz)
    x, y = seq[:-1], seq[1:]
    loss1, mems = model(x[:tgt_len], y[:tgt_len])
    loss2, _ = model(x[tgt_len:], y[tgt_len:], mems)
    full, _ = model(x, y)  # no memory: the second half sees the first through the causal mask
    torch.testing.assert_close(loss1, full[:tgt_len], rtol=0, atol=1e-12)
    torch.testing.assert_close(loss2, full[tgt_len:], rtol=0, atol=1e-10)


def test_shorter_memory_changes_the_second_segment():
    # The comparison above can fail: a memory shorter than the segment hides early tokens.
    tgt_len = 5
    model = tiny(mem_len=2, tgt_len=tgt_len)
    seq = tokens(2 * tgt_len + 1, 3)
    x, y = seq[:-1], seq[1:]
    _, mems = model(x[:tgt_len], y[:tgt_len])
    loss2, _ = model(x[tgt_len:], y[tgt_len:], mems)
    full, _ = model(x, y)
    assert (loss2 - full[tgt_len:]).abs().max() > 1e-6


# --- 3. causality ------------------------------------------------------------------------------


@pytest.mark.parametrize("with_memory", [False, True])
def test_changing_a_token_affects_only_later_positions(with_memory):
    model = tiny(mem_len=4)
    x = tokens(6, 2)
    mems = model(tokens(4, 2, seed=5), tokens(4, 2, seed=6))[1] if with_memory else None
    t = 3
    x2 = x.clone()
    x2[t] = (x2[t] + 1) % VOCAB
    lp, _ = model.log_probs(x, mems)
    lp2, _ = model.log_probs(x2, mems)
    torch.testing.assert_close(lp[:t], lp2[:t], rtol=0, atol=1e-13)
    assert ((lp[t:] - lp2[t:]).abs().amax(dim=-1) > 1e-8).all()


# --- 4. adaptive softmax -------------------------------------------------------------------------


def adaptive_softmax(cutoffs, dense=False, seed=0):
    torch.manual_seed(seed)
    crit = ProjectedAdaptiveLogSoftmax(VOCAB, 6, cutoffs, dense=dense)
    for p in crit.parameters():
        torch.nn.init.normal_(p, 0.0, 1.0)
    return crit


@pytest.mark.parametrize("dense", [False, True])
def test_adaptive_softmax_is_a_distribution_and_keeps_token_order(dense):
    crit = adaptive_softmax(CUTOFFS, dense)
    hidden = torch.randn(40, 6)
    target = torch.randint(VOCAB, (40,))
    assert {int(t) // 8 for t in target} >= {0, 1, 2}  # every cluster is present
    logp = crit.log_prob(hidden)
    assert logp.shape == (40, VOCAB)
    torch.testing.assert_close(logp.exp().sum(-1), torch.ones(40), rtol=0, atol=1e-12)
    nll = crit(hidden, target)
    expected = torch.stack([-logp[n, target[n]] for n in range(40)])
    torch.testing.assert_close(nll, expected, rtol=0, atol=1e-12)


def test_adaptive_softmax_first_tail_uses_the_last_cluster_row():
    # The official convention: tail i (1-based) hangs on head column -i.
    crit = adaptive_softmax(CUTOFFS)
    with torch.no_grad():
        crit.cluster_weight.zero_()
        crit.cluster_bias.copy_(torch.tensor([0.0, 60.0]))
    mass = crit.log_prob(torch.randn(5, 6)).exp()
    torch.testing.assert_close(mass[:, 8:18].sum(-1), torch.ones(5))


def test_without_cutoffs_it_is_the_tied_softmax():
    model = tiny(cutoffs=())
    x, y = tokens(4, 2), tokens(4, 2, seed=3)
    hidden, _ = model.hidden_states(x)
    emb = model.word_emb.emb_layers[0].weight
    assert model.crit.out_layers[0].weight is emb
    logits = hidden @ emb.T + model.crit.out_layers[0].bias
    expected = -torch.log_softmax(logits, -1).gather(-1, y[..., None]).squeeze(-1)
    torch.testing.assert_close(model(x, y)[0], expected, rtol=0, atol=1e-12)


# --- 5. second derivatives ---------------------------------------------------------------------


def test_hessian_vector_product_against_finite_differences():
    model = tiny(mem_len=3)
    mems = model(tokens(3, 2, seed=7), tokens(3, 2, seed=8))[1]
    x, y = tokens(4, 2), tokens(4, 2, seed=2)
    params = list(model.parameters())
    vec = [torch.randn_like(p) for p in params]

    def gradient(create_graph=False):
        loss = model(x, y, mems)[0].mean()
        return torch.autograd.grad(loss, params, create_graph=create_graph)

    g = gradient(create_graph=True)
    hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, vec, strict=True)), params)
    eps = 1e-5
    with torch.no_grad():
        for p, v in zip(params, vec, strict=True):
            p.add_(eps * v)
    g_plus = gradient()
    with torch.no_grad():
        for p, v in zip(params, vec, strict=True):
            p.sub_(2 * eps * v)
    g_minus = gradient()
    fd = torch.cat(
        [((a - b) / (2 * eps)).reshape(-1) for a, b in zip(g_plus, g_minus, strict=True)]
    )
    hv = torch.cat([h.reshape(-1) for h in hv])
    assert hv.norm() > 1e-3
    torch.testing.assert_close(hv, fd, rtol=1e-6, atol=1e-7)


# --- 6. per-segment gradients ---------------------------------------------------------------


def test_vmap_per_segment_gradients_equal_a_loop():
    model = tiny(mem_len=3, dropout=0.1, dropatt=0.1)  # eval mode: dropout is off
    bsz = 3
    mems = model(tokens(3, bsz, seed=7), tokens(3, bsz, seed=8))[1]
    x, y = tokens(4, bsz), tokens(4, bsz, seed=2)
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def segment_loss(p, xb, yb, mb):
        mb = [m[:, None] for m in mb]
        return functional_call(model, (p, buffers), (xb[:, None], yb[:, None], mb))[0].mean()

    per_segment = vmap(grad(segment_loss), in_dims=(None, 1, 1, 1))(params, x, y, mems)
    for b in range(bsz):
        seg = slice(b, b + 1)
        loss = model(x[:, seg], y[:, seg], [m[:, seg] for m in mems])[0].mean()
        loop = torch.autograd.grad(loss, list(model.parameters()))
        for (name, g_vmap), g_loop in zip(per_segment.items(), loop, strict=True):
            torch.testing.assert_close(g_vmap[b], g_loop, rtol=1e-10, atol=1e-12, msg=name)


# --- 7. official checkpoints ---------------------------------------------------------------------


def official_keys(n_layer: int) -> set[str]:
    """State-dict keys of the official MemTransformerLM (attn_type 0, div_val 1, tied, with
    cutoffs), written out from kimiyoung/transformer-xl's mem_transformer.py."""
    keys = {"word_emb.emb_layers.0.weight", "r_w_bias", "r_r_bias", "pos_emb.inv_freq"}
    keys |= {"crit.cluster_weight", "crit.cluster_bias"}
    keys |= {"crit.out_layers.0.weight", "crit.out_layers.0.bias"}
    for i in range(n_layer):
        attn, ff = f"layers.{i}.dec_attn", f"layers.{i}.pos_ff"
        keys |= {f"{attn}.{n}.weight" for n in ("qkv_net", "r_net", "o_net", "layer_norm")}
        keys |= {f"{attn}.layer_norm.bias", f"{ff}.layer_norm.weight", f"{ff}.layer_norm.bias"}
        keys |= {f"{ff}.CoreNet.{k}.{n}" for k in (0, 3) for n in ("weight", "bias")}
    return keys


def test_official_state_dict_round_trip_and_errors():
    source, target = tiny(seed=0), tiny(seed=1)
    official = {k: v.clone() for k, v in source.state_dict().items()}
    assert set(official) == official_keys(2)
    x, y = tokens(4, 2), tokens(4, 2, seed=2)
    assert not torch.equal(source(x, y)[0], target(x, y)[0])
    load_official_state_dict(target, {f"module.{k}": v for k, v in official.items()})
    torch.testing.assert_close(target(x, y)[0], source(x, y)[0], rtol=0, atol=0)
    assert target.crit.out_layers[0].weight is target.word_emb.emb_layers[0].weight

    missing = dict(official)
    del missing["layers.1.pos_ff.CoreNet.3.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['layers.1.pos_ff.CoreNet.3.bias'\]"):
        load_official_state_dict(target, missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['word_emb.emb_projs.0'\]"):
        load_official_state_dict(target, {**official, "word_emb.emb_projs.0": torch.ones(1)})
    untied = {**official, "crit.out_layers.0.weight": torch.zeros(VOCAB, 8)}
    with pytest.raises(ValueError, match="tie_weight"):
        load_official_state_dict(target, untied)


# --- 8. memory ----------------------------------------------------------------------------------


def test_memory_is_each_layers_input_detached_and_the_last_mem_len_positions():
    mem_len, bsz = 3, 2
    model = tiny(mem_len=mem_len, tgt_len=5)
    inputs = []
    for layer in model.layers:
        layer.register_forward_hook(lambda m, args, out: inputs.append(args[0]))
    x1 = tokens(5, bsz)
    loss1, mems = model(x1, tokens(5, bsz, seed=2))
    assert len(mems) == 3 and all(m.shape == (mem_len, bsz, 8) for m in mems)
    assert all(not m.requires_grad and m.grad_fn is None for m in mems)
    emb = model.word_emb.emb_layers[0].weight[x1] * math.sqrt(8)
    torch.testing.assert_close(mems[0], emb[-mem_len:].detach(), rtol=0, atol=0)
    torch.testing.assert_close(mems[1], inputs[1][-mem_len:].detach(), rtol=0, atol=0)

    # A segment shorter than mem_len keeps the tail of the old memory in front.
    x2 = tokens(2, bsz, seed=4)
    loss2, mems2 = model(x2, tokens(2, bsz, seed=5), mems)
    emb2 = model.word_emb.emb_layers[0].weight[x2] * math.sqrt(8)
    torch.testing.assert_close(mems2[0], torch.cat([mems[0][-1:], emb2.detach()]))

    # No gradient reaches the first segment's graph: loss2's gradient is that of a constant memory.
    params = list(model.parameters())
    g = torch.autograd.grad(loss2.sum(), params)
    frozen = [m.clone() for m in mems]
    g_frozen = torch.autograd.grad(model(x2, tokens(2, bsz, seed=5), frozen)[0].sum(), params)
    for a, b in zip(g, g_frozen, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert loss1.grad_fn is not None  # the first segment's graph is intact and separate


# --- factory, registry, init ---------------------------------------------------------------------


def test_registry_factory_parameter_count_and_init():
    torch.manual_seed(0)
    model = build_model("transformer_xl", vocab_size=VOCAB, n_layer=2, d_model=8, n_head=2,
                        d_head=4, d_inner=16, tgt_len=4, mem_len=4, cutoffs=CUTOFFS)  # fmt: skip
    assert isinstance(model, MemTransformerLM)
    v, d, h, dh, di = VOCAB, 8, 2, 4, 16
    per_layer = 3 * h * dh * d + 2 * h * dh * d + 2 * d + (d * di + di) + (di * d + d) + 2 * d
    # tied table + output bias + 2 clusters + u, v + layers
    expected = v * d + v + 2 * (d + 1) + 2 * h * dh + 2 * per_layer
    assert sum(p.numel() for p in model.parameters()) == expected
    assert model.crit.out_layers[0].bias.abs().max() == 0
    assert model.crit.cluster_bias.abs().max() == 0
    ln = model.layers[0].pos_ff.layer_norm.weight
    assert 0.9 < ln.mean() < 1.1 and 0 < ln.std() < 0.1
    table = model.word_emb.emb_layers[0].weight
    assert abs(table.std().item() - 0.02) < 0.005
    torch.manual_seed(0)
    again = transformer_xl(VOCAB, 2, 8, 2, 4, 16, 4, 4, CUTOFFS)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("cutoffs", [(5, 5), (0,), (VOCAB,), (10, 5)])
def test_bad_cutoffs_are_refused(cutoffs):
    with pytest.raises(ValueError, match="cutoffs"):
        ProjectedAdaptiveLogSoftmax(VOCAB, 6, cutoffs)
