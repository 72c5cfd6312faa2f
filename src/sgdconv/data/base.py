"""The interface between data sets and the training engine, and the data registry.

The engine never shuffles or augments by itself: it asks a :class:`DataSource` for *planned*
global batches, each given by the indices of its examples and a batch seed. Every random choice
(the order of an epoch, the augmentation of every draw) is a pure function of the run seed and
the position in training, so a job killed at any step and restarted from its last checkpoint
sees exactly the batches it would have seen (DESIGN.md: resumable, identical on CPU), and a run
split over ``world`` processes sees the same global batches as a single process.

A source also provides the *fixed sample* S_m on which the statistics of eq. (1) of Zhang et al.
are taken (:meth:`DataSource.sample`) and the validation set.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from sgdconv.data.errors import DataError as DataError  # re-exported: every loader raises it
from sgdconv.registry import resolve

Batch = tuple[Tensor, Tensor]


def mix_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple of integers/strings (a hash: nearby inputs are unrelated)."""
    text = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The order in which epoch ``epoch`` visits the ``n`` training examples."""
    generator = torch.Generator().manual_seed(mix_seed("epoch", seed, epoch))
    return torch.randperm(n, generator=generator)


def batch_seed(seed: int, epoch: int, position: int) -> int:
    """Seed of the augmentations of global batch ``position`` of epoch ``epoch``."""
    return mix_seed("batch", seed, epoch, position)


class MicroBatches(Sequence[Batch]):
    """A fixed, re-iterable sequence of equally sized micro-batches on a device.

    ``fetch(i)`` returns micro-batch ``i`` on the CPU; iteration moves each to ``device``.
    Sources backed by files may override :meth:`__iter__` to prefetch with worker processes.
    """

    def __init__(
        self,
        fetch: Callable[[int], Batch],
        count: int,
        size: int,
        device: torch.device | str = "cpu",
    ) -> None:
        self._fetch = fetch
        self.count = int(count)
        self.size = int(size)
        self.device = torch.device(device)

    @property
    def n_samples(self) -> int:
        return self.count * self.size

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> Batch:  # type: ignore[override]
        if not -self.count <= i < self.count:
            raise IndexError(i)
        x, y = self._fetch(i % self.count)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[Batch]:
        for i in range(self.count):
            yield self[i]

    def truncated(self, count: int) -> MicroBatches:
        """The first ``count`` micro-batches (a nested sub-sample, for Fig. 7's sweep)."""
        if not 1 <= count <= self.count:
            raise ValueError(f"count must be in [1, {self.count}], got {count}")
        return MicroBatches(self._fetch, count, self.size, self.device)


class DataSource(ABC):
    """Training data as the engine and the statistics jobs see it.

    Attributes: ``num_train`` (examples in the training set), ``augmented`` (every draw of an
    example is freshly augmented, so the population the statistics estimate is infinite),
    ``num_classes`` (None for regression targets).
    """

    num_train: int
    num_classes: int | None
    augmented: bool

    @abstractmethod
    def train_batches(
        self, plan: Sequence[tuple[Tensor, int]], rank: int = 0, world: int = 1
    ) -> Iterator[Batch]:
        """Yield, for each planned global batch ``(indices, seed)``, this rank's shard.

        Shards are contiguous, equal slices of the global batch (rank r gets rows
        ``r*B/world .. (r+1)*B/world``), with the augmentations the global batch would get.
        """

    @abstractmethod
    def sample(self, size: int, microbatch: int, seed: int) -> MicroBatches:
        """A fixed sample of ``size`` training draws in micro-batches of ``microbatch``.

        The same seed gives the same sample (and augmentations); a smaller size gives a
        prefix of a larger one. ``size`` is rounded down to a multiple of ``microbatch``.
        """

    @abstractmethod
    def validation(self, batch_size: int) -> MicroBatches | None:
        """The validation set (no augmentation), or None if the source has none."""

    def describe(self) -> dict[str, Any]:
        return {
            "num_train": self.num_train,
            "num_classes": self.num_classes,
            "augmented": self.augmented,
        }


def sample_indices(n: int, size: int, seed: int, allow_repeats: bool) -> Tensor:
    """Indices of a fixed sample: a seeded permutation, cycled (with fresh permutations) when
    ``size > n`` is allowed (augmented data, where each repeat is a different draw)."""
    if size > n and not allow_repeats:
        raise ValueError(f"sample size {size} exceeds the {n} training examples")
    chunks, total, k = [], 0, 0
    while total < size:
        generator = torch.Generator().manual_seed(mix_seed("sample", seed, k))
        chunks.append(torch.randperm(n, generator=generator))
        total += n
        k += 1
    return torch.cat(chunks)[:size]


def round_sample(size: int, microbatch: int) -> tuple[int, int]:
    """(count, microbatch) of a sample of at most ``size`` draws in equal micro-batches."""
    if microbatch < 1:
        raise ValueError(f"microbatch must be >= 1, got {microbatch}")
    count = size // microbatch
    if count < 1:
        raise ValueError(f"sample size {size} is smaller than the micro-batch {microbatch}")
    return count, microbatch


#: Data sources by name, as ``"module:function"`` (imported on use). A spec may also name a
#: factory directly as ``"package.module:function"``; other tracks can add entries here.
DATASETS: dict[str, str | Callable[..., DataSource]] = {
    "digits": "sgdconv.data.tensors:digits_source",
    "tensors": "sgdconv.data.tensors:npz_source",
    "imagenet": "sgdconv.data.folders:imagenet_source",
    "cifar10": "sgdconv.data.folders:cifar10_source",
    "wikitext": "sgdconv.data.wikitext:wikitext_source",
}


def build_data(spec: Mapping[str, Any]) -> DataSource:
    """Build a data source from its spec ``{"name": ..., **kwargs}``."""
    spec = dict(spec)
    name = spec.pop("name")
    return resolve(DATASETS, name, "data set")(**spec)
