"""ImageNet and CIFAR-10 from disk, through torchvision (the paper tier).

ImageNet is read with ``ImageFolder`` from ``<root>/train/<class>/*`` and ``<root>/val/<class>/*``
with the standard transforms of the PyTorch ImageNet example (He et al. 2016, as Zhang et al.
Section 2): RandomResizedCrop(224) + horizontal flip for training, Resize(256) + CenterCrop(224)
for validation. CIFAR-10 is read with torchvision's ``CIFAR10`` from ``<root>/cifar-10-batches-py``
with the transforms of kuangliu/pytorch-cifar (Zhang et al. Appendix A.1): RandomCrop(32,
padding=4) + flip. Every random transform is seeded per draw (:class:`SeededDataset`), so the
augmentations depend only on the run seed and the position in training, never on the number of
loader workers or processes.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.datasets import CIFAR10, ImageFolder
from torchvision.datasets.utils import check_integrity

from sgdconv.data.base import (
    Batch,
    DataError,
    DataSource,
    MicroBatches,
    mix_seed,
    round_sample,
    sample_indices,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

IMAGENET_LAYOUT = (
    "<root>/train/<class>/<image> and <root>/val/<class>/<image> (torchvision ImageFolder; the "
    "same class folders, e.g. n01440764, in both; val reorganized into class folders)"
)
CIFAR_LAYOUT = (
    "<root>/cifar-10-batches-py/ with data_batch_1 .. data_batch_5, test_batch and batches.meta "
    "(the python version of CIFAR-10, as extracted from cifar-10-python.tar.gz), or set "
    "download: true to fetch it"
)
CIFAR_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")


class SeededDataset(Dataset):
    """Wraps a map-style dataset with random transforms; item ``(index, seed)`` is
    ``base[index]`` with torch's global RNG seeded by ``seed`` for the transform (and restored
    after), so each draw's augmentation is a function of its seed alone."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return self.base[int(index)]


class _PlanSampler(torch.utils.data.Sampler):
    """Batch sampler yielding one list of ``(index, seed)`` per (sharded) planned batch."""

    def __init__(self, batches: Sequence[list[tuple[int, int]]]) -> None:
        self.batches = batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class FolderSource(DataSource):
    """A torchvision training set (random transforms) and validation set, loaded by
    ``DataLoader`` workers. Always *augmented* (every draw is freshly transformed)."""

    def __init__(
        self, train: Dataset, val: Dataset | None, num_classes: int, workers: int = 0
    ) -> None:
        self.train = SeededDataset(train)
        self.val = val
        self.num_train = len(train)  # type: ignore[arg-type]
        self.num_classes = num_classes
        self.augmented = True
        self.workers = int(workers)

    def _loader(self, dataset: Dataset, batches: Sequence[list]) -> DataLoader:
        return DataLoader(
            dataset,
            batch_sampler=_PlanSampler(batches),
            num_workers=self.workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=False,
        )

    def train_batches(
        self, plan: Sequence[tuple[Tensor, int]], rank: int = 0, world: int = 1
    ) -> Iterator[Batch]:
        batches = []
        for indices, seed in plan:
            per_rank = len(indices) // world
            if per_rank * world != len(indices):
                raise ValueError(f"global batch {len(indices)} is not divisible by {world}")
            positions = range(rank * per_rank, (rank + 1) * per_rank)
            batches.append([(int(indices[p]), mix_seed("draw", seed, p)) for p in positions])
        yield from self._loader(self.train, batches)

    def sample(self, size: int, microbatch: int, seed: int) -> MicroBatches:
        count, b = round_sample(size, microbatch)
        indices = sample_indices(self.num_train, count * b, seed, allow_repeats=self.augmented)
        items = [(int(i), mix_seed("sample", seed, p)) for p, i in enumerate(indices)]
        batches = [items[k * b : (k + 1) * b] for k in range(count)]
        return _LoaderBatches(self, self.train, batches, b)

    def validation(self, batch_size: int) -> MicroBatches | None:
        if self.val is None:
            return None
        n = len(self.val)  # type: ignore[arg-type]
        b = min(batch_size, n)
        batches = [list(range(k * b, (k + 1) * b)) for k in range(n // b)]
        return _LoaderBatches(self, self.val, batches, b)


class _LoaderBatches(MicroBatches):
    """Micro-batches read from disk on every pass (a 1.6e5-image sample does not fit in
    memory), prefetched by the source's loader workers."""

    def __init__(self, source: FolderSource, dataset: Dataset, batches: list, size: int):
        def fetch(i: int) -> Batch:
            items = [dataset[j] for j in batches[i]]
            return (torch.stack([x for x, _ in items]), torch.as_tensor([t for _, t in items]))

        super().__init__(fetch, len(batches), size)
        self._source, self._dataset, self._batches = source, dataset, batches

    def truncated(self, count: int) -> MicroBatches:
        if not 1 <= count <= self.count:
            raise ValueError(f"count must be in [1, {self.count}], got {count}")
        out = _LoaderBatches(self._source, self._dataset, self._batches[:count], self.size)
        out.device = self.device
        return out

    def __iter__(self) -> Iterator[Batch]:
        for x, y in self._source._loader(self._dataset, self._batches):
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


# --- ImageNet ------------------------------------------------------------------------------


def check_imagenet_layout(root: str | None, key: str) -> dict[str, Any]:
    """Check ``root`` against :data:`IMAGENET_LAYOUT` (class folders only, no image scan)."""
    if not root:
        raise DataError(key, "no path given (null)", IMAGENET_LAYOUT)
    base = Path(root)
    if not base.is_dir():
        raise DataError(key, f"{root!r} is not a directory", IMAGENET_LAYOUT)
    classes = {}
    for split in ("train", "val"):
        folder = base / split
        if not folder.is_dir():
            raise DataError(key, f"{str(folder)!r} is missing", IMAGENET_LAYOUT)
        names = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
        if not names:
            raise DataError(key, f"{str(folder)!r} has no class folders", IMAGENET_LAYOUT)
        classes[split] = names
    if classes["train"] != classes["val"]:
        only = sorted(set(classes["train"]) ^ set(classes["val"]))[:5]
        raise DataError(
            key, f"train/ and val/ have different class folders (e.g. {only})", IMAGENET_LAYOUT
        )
    return {"root": str(base.resolve()), "num_classes": len(classes["train"])}


def imagenet_transforms(crop: int = 224, resize: int = 256) -> tuple[Any, Any]:
    """(train, val) transforms of the PyTorch ImageNet example."""
    normalize = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train = T.Compose(
        [T.RandomResizedCrop(crop), T.RandomHorizontalFlip(), T.ToTensor(), normalize]
    )
    val = T.Compose([T.Resize(resize), T.CenterCrop(crop), T.ToTensor(), normalize])
    return train, val


def imagenet_source(
    root: str | None,
    *,
    key: str = "data.root",
    workers: int = 8,
    crop: int = 224,
    resize: int = 256,
) -> FolderSource:
    """ImageNet (ILSVRC-2012) through ``ImageFolder``; fails naming ``key`` when malformed."""
    check_imagenet_layout(root, key)
    train_tf, val_tf = imagenet_transforms(crop, resize)
    try:
        train = ImageFolder(os.path.join(root, "train"), transform=train_tf)
        val = ImageFolder(os.path.join(root, "val"), transform=val_tf)
    except (FileNotFoundError, RuntimeError) as error:
        raise DataError(key, str(error), IMAGENET_LAYOUT) from None
    return FolderSource(train, val, len(train.classes), workers)


# --- CIFAR-10 ------------------------------------------------------------------------------


def check_cifar10_layout(root: str | None, key: str, *, verify_md5: bool = False) -> dict:
    """Check ``root`` against :data:`CIFAR_LAYOUT`; with ``verify_md5`` also the checksums."""
    if not root:
        raise DataError(key, "no path given (null)", CIFAR_LAYOUT)
    folder = Path(root) / "cifar-10-batches-py"
    missing = [name for name in CIFAR_FILES if not (folder / name).is_file()]
    if missing:
        raise DataError(key, f"{str(folder)!r} lacks {missing}", CIFAR_LAYOUT)
    if verify_md5:
        expected = dict(CIFAR10.train_list + CIFAR10.test_list)
        expected[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
        bad = [n for n, md5 in expected.items() if not check_integrity(str(folder / n), md5)]
        if bad:
            raise DataError(key, f"checksum mismatch (corrupted files): {bad}", CIFAR_LAYOUT)
    for name in CIFAR_FILES:
        try:
            with open(folder / name, "rb") as fh:
                entry = pickle.load(fh, encoding="latin1")
        except Exception as error:
            raise DataError(key, f"cannot unpickle {name} ({error})", CIFAR_LAYOUT) from None
        needed = ("label_names",) if name == "batches.meta" else ("data", "labels")
        if not isinstance(entry, dict) or any(k not in entry for k in needed):
            raise DataError(key, f"{name} lacks the keys {needed}", CIFAR_LAYOUT)
    return {"root": str(Path(root).resolve()), "num_classes": 10}


def download_cifar10(root: str, key: str) -> None:
    """Fetch CIFAR-10 into ``root`` (only when the config asks: ``download: true``)."""
    try:
        CIFAR10(root, train=True, download=True)
    except Exception as error:
        raise DataError(key, f"download failed ({error})", CIFAR_LAYOUT) from None


class _CheckedCIFAR10(CIFAR10):
    """torchvision's CIFAR10 without its per-load md5 re-hash (the layout and, once, the
    checksums are checked by :func:`check_cifar10_layout`)."""

    def _check_integrity(self) -> bool:
        return True

    def _load_meta(self) -> None:
        with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as fh:
            self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def cifar10_transforms() -> tuple[Any, Any]:
    """(train, test) transforms of kuangliu/pytorch-cifar."""
    normalize = T.Normalize(CIFAR_MEAN, CIFAR_STD)
    train = T.Compose(
        [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), normalize]
    )
    return train, T.Compose([T.ToTensor(), normalize])


def cifar10_source(
    root: str | None,
    *,
    key: str = "data.root",
    workers: int = 2,
    augment: bool = True,
) -> FolderSource:
    """CIFAR-10 through torchvision's ``CIFAR10`` (files checked by :func:`check_cifar10_layout`;
    the md5 check, slow and done once, belongs to the data-preparation job)."""
    check_cifar10_layout(root, key)
    train_tf, test_tf = cifar10_transforms()
    if not augment:
        train_tf = test_tf
    train = _CheckedCIFAR10(root, train=True, transform=train_tf)
    val = _CheckedCIFAR10(root, train=False, transform=test_tf)
    source = FolderSource(train, val, 10, workers)
    source.augmented = augment
    return source
