"""Statistics of a language model with memory (sgdconv.stats.segments): the burn-in rebuilds
the memory exactly, the loss wrapper serves estimate_gradient_stats and top_hessian_eigenvalue
against direct computations of eq. (1) and of the Hessian, and the authors' estimator against a
direct computation of their formula."""

from __future__ import annotations

import pytest
import torch
from lm_runs import write_corpus

from sgdconv.data.wikitext import LMStreams, burn_in_segments, load_wikitext
from sgdconv.models.transformer_xl import transformer_xl
from sgdconv.stats import estimate_gradient_stats, top_hessian_eigenvalue
from sgdconv.stats.segments import (
    SegmentLoss,
    authors_lm_stats,
    burn_in_memory,
    segment_nll,
    segment_population,
    segment_sample,
)

pytestmark = pytest.mark.usefixtures("float64", "one_thread")


def setup(tmp_path, n_layer=2, mem_len=4, tgt_len=4, d_model=8, batch=4):
    corpus = load_wikitext(write_corpus(tmp_path / "corpus", lines=80))
    streams = LMStreams(corpus, batch_size=batch, tgt_len=tgt_len)
    torch.manual_seed(0)
    # weights larger than the official init (0.02), so that attention reaches far back
    kwargs = {"cutoffs": [6], "init_std": 0.3}
    lm = transformer_xl(len(corpus.vocab), n_layer, d_model, 2, 4, 16, tgt_len, mem_len, **kwargs)
    lm.eval()
    return streams, lm


@pytest.mark.parametrize(("n_layer", "mem_len", "tgt_len"), [(2, 4, 4), (3, 4, 4), (2, 8, 4)])
def test_burn_in_reproduces_a_longer_history_and_one_segment_fewer_does_not(
    tmp_path, n_layer, mem_len, tgt_len
):
    streams, lm = setup(tmp_path, n_layer=n_layer, mem_len=mem_len, tgt_len=tgt_len)
    burn_in = burn_in_segments(n_layer, mem_len, tgt_len)
    long = burn_in + 3
    positions = torch.tensor([[long, 0], [long + 2, 3], [long + 5, 1]])
    x, y = streams.sample_segments(positions, long)  # [long + 1, tgt_len, m]
    segments = torch.stack([x, y]).permute(3, 0, 1, 2)  # [m, 2, long + 1, tgt_len]

    def nll(k):  # the scored segment with a burn-in of k segments
        return SegmentLoss(lm, k)(segments[:, :, -k - 1 :])

    reference = nll(long)
    torch.testing.assert_close(nll(burn_in), reference, rtol=1e-12, atol=1e-12)
    assert (nll(burn_in - 1) - reference).abs().max() > 1e-8  # rounding: ~1e-15
    # ... and the longest history of all: the whole stream from its start, as training reads it
    t, b = int(positions[0, 0]), int(positions[0, 1])
    mems = None
    with torch.no_grad():
        for s in range(t):
            _, mems = lm(*streams.batch(s), mems)
        full, _ = lm(*streams.batch(t), mems)
    torch.testing.assert_close(reference[0], full[:, b], rtol=1e-12, atol=1e-12)


def per_segment_gradients(lm, batches):
    wrapper = SegmentLoss(lm, burn_in_segments(lm.n_layer, lm.mem_len, lm.tgt_len))
    params = list(lm.parameters())
    losses, grads = [], []
    for segments, _ in batches:
        for i in range(len(segments)):
            loss = wrapper(segments[i : i + 1]).mean()
            losses.append(float(loss.detach()))
            grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    return torch.tensor(losses), torch.stack(grads)


def test_eq1_through_the_wrapper_equals_a_direct_computation(tmp_path):
    streams, lm = setup(tmp_path)
    burn_in = burn_in_segments(2, 4, 4)
    sample = segment_sample(streams, 24, 1, seed=3, burn_in=burn_in)
    assert sample.n_samples == 24 and segment_population(streams, burn_in) > 24
    losses, grads = per_segment_gradients(lm, sample)
    mean = grads.mean(0)
    sigma = ((grads - mean) ** 2).sum(1).mean().sqrt()
    stats = estimate_gradient_stats(SegmentLoss(lm, burn_in), segment_nll, sample)
    assert stats.loss == pytest.approx(float(losses.mean()), rel=1e-10)
    assert stats.grad_norm == pytest.approx(float(mean.norm()), rel=1e-9)
    assert stats.noise_norm == pytest.approx(float(sigma), rel=1e-9)
    # micro-batches of 4 segments: the same L_S and ∇L_S; σ unbiased, not exact
    coarse = segment_sample(streams, 24, 4, seed=3, burn_in=burn_in)
    st4 = estimate_gradient_stats(SegmentLoss(lm, burn_in), segment_nll, coarse)
    assert st4.loss == pytest.approx(stats.loss, rel=1e-10)
    assert st4.grad_norm_plugin == pytest.approx(float(mean.norm()), rel=1e-9)


def test_sharpness_through_the_wrapper_against_finite_differences(tmp_path):
    """λ_max through the wrapper: its eigenvector satisfies Hv = λv for the Hessian taken by
    central differences of the sample gradient with the memory held at its value at θ (the
    memory is data, not a function of θ), and no random direction has a larger Rayleigh
    quotient."""
    streams, lm = setup(tmp_path, d_model=4)
    burn_in = burn_in_segments(2, 4, 4)
    sample = segment_sample(streams, 8, 4, seed=1, burn_in=burn_in)
    wrapper = SegmentLoss(lm, burn_in)
    params = list(lm.parameters())
    fixed = []  # (last segment, targets, memory at θ) of each micro-batch
    for segments, _ in sample:
        x, y = segments.permute(1, 2, 3, 0)
        fixed.append((x[-1], y[-1], burn_in_memory(lm, x[:-1])))

    def gradient(flat_shift):
        chunks = torch.split(flat_shift, [p.numel() for p in params])
        with torch.no_grad():
            for p, c in zip(params, chunks, strict=True):
                p.add_(c.view_as(p))
        total = 0
        for x, y, mems in fixed:
            loss = lm(x, y, mems)[0].mean() / len(sample)
            total = total + torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])
        with torch.no_grad():
            for p, c in zip(params, chunks, strict=True):
                p.sub_(c.view_as(p))
        return total

    def hvp(v, eps=1e-5):
        return (gradient(eps * v) - gradient(-eps * v)) / (2 * eps)

    eig = top_hessian_eigenvalue(wrapper, segment_nll, sample, tol=1e-8, max_hvp=200)
    v = eig.vector
    torch.testing.assert_close(hvp(v), eig.value * v, rtol=0, atol=1e-6 * abs(eig.value))
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        u = torch.randn(len(v), generator=generator, dtype=torch.float64)
        u /= u.norm()
        assert float(u @ hvp(u)) <= eig.value


def test_authors_estimator_against_its_formula(tmp_path):
    streams, lm = setup(tmp_path)
    lm.train()
    counts, start = [2, 3, 5], 1
    got = authors_lm_stats(lm, streams, counts, start=start)
    # direct: every batch gradient, memory carried from `start` on
    params = list(lm.parameters())
    mems, grads, losses = None, [], []
    for j in range(10):
        nll, mems = lm(*streams.batch(start + j), mems)
        loss = nll.mean()
        losses.append(float(loss.detach()))
        grads.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)]))
    g = torch.stack(grads)
    for k in counts:
        true = g[:k].mean(0)
        noise = ((g[k : 2 * k] - true) ** 2).sum(1).mean()
        a = got[k]
        assert a.grad_norm_sq == pytest.approx(float(true @ true), rel=1e-10)
        assert a.noise_sq == pytest.approx(float(noise), rel=1e-10)
        assert a.loss == pytest.approx(sum(losses[:k]) / k, rel=1e-12)
        assert a.n_tokens == k * 4 * 4
    assert lm.training and all(p.grad is None for p in params)
    with pytest.raises(ValueError, match="start"):
        authors_lm_stats(lm, streams, [streams.n_segments], start=0)
