"""The error every loader raises for a missing or malformed data path. Free of torch, so that
the workflow can check data paths when Snakemake parses it (once in every cluster job)."""

from __future__ import annotations


class DataError(ValueError):
    """A data path or file is missing or malformed.

    The message names the config key that points to it and the layout that was expected.
    """

    def __init__(self, key: str, problem: str, layout: str) -> None:
        super().__init__(f"Data error for config key '{key}': {problem}\nExpected layout: {layout}")
        self.key = key
