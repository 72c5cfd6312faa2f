"""A tiny language-model run shared by the language-track tests: a WT103-format corpus drawn
from a small Markov chain over 24 words, and the spec of a two-layer Transformer-XL on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sgdconv.data.wikitext import split_file
from sgdconv.train.lm_spec import LMRunSpec

WORDS = [f"w{i}" for i in range(24)]


def write_corpus(root: Path, lines: int = 120, seed: int = 0) -> Path:
    """``wiki.{train,valid,test}.tokens`` of sentences from a sparse Markov chain (learnable)."""
    rng = np.random.default_rng(seed)
    successors = rng.integers(0, len(WORDS), size=(len(WORDS), 3))
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", lines), ("valid", lines // 6), ("test", lines // 6)):
        text = []
        for _ in range(n):
            word, sentence = int(rng.integers(len(WORDS))), []
            for _ in range(int(rng.integers(4, 12))):
                sentence.append(WORDS[word])
                word = int(successors[word, rng.integers(3)])
            text.append(" " + " ".join(sentence) + " \n")
        (root / split_file(split)).write_text("".join(text), encoding="utf-8")
    return root


def lm_spec_for(tmp_path: Path, **overrides) -> LMRunSpec:
    """Two layers, d_model 16, 4 streams of segments of 8 tokens, memory 8; 48 steps."""
    corpus = write_corpus(tmp_path / "corpus")
    spec = {
        "run_id": "lm_toy",
        "model": {
            "name": "transformer_xl",
            "n_layer": 2,
            "d_model": 16,
            "n_head": 2,
            "d_head": 8,
            "d_inner": 32,
            "cutoffs": [8],
            "dropout": 0.0,
        },
        "data": {"name": "wikitext", "path": str(corpus), "key": "test.corpus"},
        "batch_size": 4,
        "tgt_len": 8,
        "mem_len": 8,
        "max_steps": 48,
        "lr": 3e-3,
        "schedule": {"name": "cosine"},
        "checkpoint_every": 8,
        "seed": 5,
        "eval_batch_size": 2,
    }
    return LMRunSpec.from_dict({**spec, **overrides})
