"""The files of WikiText-103 (word level) as :mod:`sgdconv.data.wikitext` reads them. Free of
torch, so that the workflow can check a configured corpus when Snakemake parses it."""

from __future__ import annotations

SPLITS = ("train", "valid", "test")
LAYOUT = (
    "a directory holding wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens (WikiText-103 "
    "word level: whitespace-separated tokens, one paragraph per line, rare words as <unk>), e.g. "
    "wikitext-103/ extracted from wikitext-103-v1.zip, or the output of write_offline_corpus"
)


def split_file(split: str) -> str:
    """File name of a split in the WT103 layout."""
    return f"wiki.{split}.tokens"
