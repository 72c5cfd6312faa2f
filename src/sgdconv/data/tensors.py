"""In-memory data: scikit-learn's handwritten digits for the offline tiers, or any ``.npz``.

The offline tiers stand in for ImageNet and CIFAR-10 with the 1,797 8×8 digits that ship with
scikit-learn (real images, no download). :func:`prepare_digits` writes them once to an ``.npz``
(train/validation split by a seed); :class:`TensorSource` serves them to the engine. Two regimes
come from the same images (Zhang et al. Section 2 vs Appendix A.1):

* *non-interpolating* (the ImageNet role): every draw of an example is freshly augmented
  (:class:`ShiftNoise`: a random shift of up to ``shift`` pixels and Gaussian pixel noise), so
  the training distribution is infinite and a small network cannot fit it;
* *interpolating* (the CIFAR-10 role): no augmentation, so the network can fit every example.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sgdconv.data.base import (
    Batch,
    DataError,
    DataSource,
    MicroBatches,
    mix_seed,
    round_sample,
    sample_indices,
)
from sgdconv.files import atomic_write

NPZ_LAYOUT = (
    "an .npz file with arrays x_train (N, ...) float, y_train (N,), x_val (M, ...), y_val (M,)"
)

#: Draws are augmented in chunks of this many examples, each chunk with its own seed, so a
#: sample's augmentations do not depend on its size (a smaller sample is a prefix).
AUGMENT_CHUNK = 64


@dataclass(frozen=True)
class ShiftNoise:
    """Random translation by up to ``shift`` pixels (zero-padded, like a padded random crop)
    plus i.i.d. Gaussian noise of standard deviation ``noise_std`` on every pixel.

    ``pad_value`` is the value of an empty pixel (the background after standardization).
    """

    shift: int = 1
    noise_std: float = 0.3
    pad_value: float = 0.0

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if self.shift > 0:
            x = shift_images(x, self.shift, generator, self.pad_value)
        if self.noise_std > 0:
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)
            x = x + self.noise_std * noise
        return x


def shift_images(x: Tensor, shift: int, generator: torch.Generator, pad_value: float) -> Tensor:
    """Translate each image of ``x`` (B, C, H, W) by its own offset in [-shift, shift]²."""
    b, _, h, w = x.shape
    offsets = torch.randint(0, 2 * shift + 1, (b, 2), generator=generator)
    padded = torch.nn.functional.pad(x, (shift, shift, shift, shift), value=pad_value)
    rows = offsets[:, 0, None] + torch.arange(h)  # (B, H)
    cols = offsets[:, 1, None] + torch.arange(w)  # (B, W)
    batch = torch.arange(b)[:, None, None]
    # (B, H, W, C) gathered, back to (B, C, H, W)
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


class TensorSource(DataSource):
    """Training and validation data held in memory as tensors.

    ``augment`` (optional) maps ``(x, generator) -> x`` and is applied to every draw; with it
    the source is *augmented*: samples larger than the training set are allowed (each repeat of
    an example is a different draw).
    """

    def __init__(
        self,
        x_train: Tensor,
        y_train: Tensor,
        x_val: Tensor | None = None,
        y_val: Tensor | None = None,
        augment: ShiftNoise | None = None,
        num_classes: int | None = None,
    ) -> None:
        if len(x_train) != len(y_train):
            raise ValueError("x_train and y_train differ in length")
        self.x_train, self.y_train = x_train, y_train
        self.x_val, self.y_val = x_val, y_val
        self.augment = augment
        self.num_train = len(x_train)
        self.num_classes = num_classes
        self.augmented = augment is not None

    def _draw(self, indices: Tensor, seed: int) -> Tensor:
        x = self.x_train[indices]
        if self.augment is None:
            return x
        generator = torch.Generator().manual_seed(seed)
        return self.augment(x, generator)

    def train_batches(
        self, plan: Sequence[tuple[Tensor, int]], rank: int = 0, world: int = 1
    ) -> Iterator[Batch]:
        for indices, seed in plan:
            if len(indices) % world:
                raise ValueError(f"global batch {len(indices)} is not divisible by {world}")
            per_rank = len(indices) // world
            shard = slice(rank * per_rank, (rank + 1) * per_rank)
            # Augment the whole global batch, then slice: identical for every world size.
            x = self._draw(indices, seed)[shard]
            yield x, self.y_train[indices[shard]]

    def sample(self, size: int, microbatch: int, seed: int) -> MicroBatches:
        count, b = round_sample(size, microbatch)
        m = count * b
        try:
            indices = sample_indices(self.num_train, m, seed, allow_repeats=self.augmented)
        except ValueError as error:
            raise ValueError(f"{error} (the data are not augmented)") from None
        if self.augment is None:
            x = self.x_train[indices]
        else:  # whole chunks, so that a draw does not depend on the sample size
            padded = -(-m // AUGMENT_CHUNK) * AUGMENT_CHUNK
            indices = sample_indices(self.num_train, padded, seed, allow_repeats=True)
            chunks = [
                self._draw(indices[start : start + AUGMENT_CHUNK], mix_seed("draw", seed, k))
                for k, start in enumerate(range(0, padded, AUGMENT_CHUNK))
            ]
            x, indices = torch.cat(chunks)[:m], indices[:m]
        y = self.y_train[indices]
        return MicroBatches(lambda i: (x[i * b : (i + 1) * b], y[i * b : (i + 1) * b]), count, b)

    def validation(self, batch_size: int) -> MicroBatches | None:
        if self.x_val is None or self.y_val is None or len(self.x_val) == 0:
            return None
        x, y, n = self.x_val, self.y_val, len(self.x_val)
        b = min(batch_size, n)
        count = n // b  # equal micro-batches; the remainder (< b examples) is left out
        return MicroBatches(lambda i: (x[i * b : (i + 1) * b], y[i * b : (i + 1) * b]), count, b)


# --- scikit-learn digits --------------------------------------------------------------------


def prepare_digits(path: str | os.PathLike, *, n_train: int = 1500, seed: int = 0) -> dict:
    """Write scikit-learn's 1,797 digits to ``path`` (.npz): pixels scaled to [0, 1], shape
    (N, 1, 8, 8), a seeded split into ``n_train`` training and the rest validation images."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    if not 1 <= n_train < len(x):
        raise ValueError(f"n_train must be in [1, {len(x) - 1}], got {n_train}")
    order = np.random.default_rng(seed).permutation(len(x))
    train, val = order[:n_train], order[n_train:]

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a tmp name
            np.savez(f, x_train=x[train], y_train=y[train], x_val=x[val], y_val=y[val])

    atomic_write(path, write)
    return {"n_train": len(train), "n_val": len(val), "shape": list(x.shape[1:])}


def load_npz(path: str | os.PathLike, key: str) -> dict[str, np.ndarray]:
    """Read the arrays of an ``.npz`` data file, failing with the config key and layout."""
    path = Path(path)
    if not path.is_file():
        raise DataError(key, f"file {str(path)!r} does not exist", NPZ_LAYOUT)
    try:
        with np.load(path) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as error:  # a truncated or foreign file
        raise DataError(key, f"cannot read {str(path)!r} ({error})", NPZ_LAYOUT) from None
    missing = {"x_train", "y_train", "x_val", "y_val"} - set(arrays)
    if missing:
        raise DataError(key, f"{str(path)!r} lacks arrays {sorted(missing)}", NPZ_LAYOUT)
    if len(arrays["x_train"]) != len(arrays["y_train"]) or len(arrays["x_train"]) == 0:
        raise DataError(key, f"{str(path)!r}: x_train/y_train empty or unequal", NPZ_LAYOUT)
    return arrays


def npz_source(
    path: str,
    *,
    key: str = "data.path",
    shift: int = 0,
    noise_std: float = 0.0,
    standardize: bool = False,
    num_classes: int | None = None,
    fresh: bool = True,
    corruption_seed: int = 0,
    copies: int = 1,
) -> TensorSource:
    """A :class:`TensorSource` from an ``.npz`` (see :data:`NPZ_LAYOUT`).

    ``standardize`` subtracts the training pixels' mean and divides by their standard
    deviation (one scalar each); ``shift``/``noise_std`` > 0 corrupt the images with
    :class:`ShiftNoise` (noise in standardized units): with ``fresh`` a new corruption on every
    draw (an infinite, augmented training distribution; ``copies`` > 1 then makes an epoch
    ``copies`` passes over the images, each draw corrupted afresh), otherwise once, from
    ``corruption_seed``: the training set becomes ``copies`` independently corrupted copies of
    every training image (a fixed, finite data set), the validation set one corrupted copy.
    """
    arrays = load_npz(path, key)
    x_train = torch.as_tensor(arrays["x_train"], dtype=torch.float32)
    x_val = torch.as_tensor(arrays["x_val"], dtype=torch.float32)
    y_train, y_val = torch.as_tensor(arrays["y_train"]), torch.as_tensor(arrays["y_val"])
    pad_value = 0.0
    if standardize:
        mean, std = x_train.mean(), x_train.std()
        x_train, x_val = (x_train - mean) / std, (x_val - mean) / std
        pad_value = float(-mean / std)
    augment = None
    if shift > 0 or noise_std > 0:
        if x_train.ndim != 4:
            raise DataError(key, "shift/noise augmentation needs images (N, C, H, W)", NPZ_LAYOUT)
        augment = ShiftNoise(int(shift), float(noise_std), pad_value)
        if fresh:
            # An epoch of `copies` passes: the draws differ, as every draw is corrupted afresh.
            x_train = x_train.repeat(int(copies), 1, 1, 1)
            y_train = y_train.repeat(int(copies))
        else:
            generator = torch.Generator().manual_seed(corruption_seed)
            x_train = torch.cat([augment(x_train, generator) for _ in range(int(copies))])
            y_train = y_train.repeat(int(copies))
            x_val = augment(x_val, generator)
            augment = None
    elif copies != 1:
        raise DataError(key, "copies > 1 needs a corruption (shift or noise_std > 0)", NPZ_LAYOUT)
    return TensorSource(x_train, y_train, x_val, y_val, augment, num_classes)


def digits_source(
    path: str,
    *,
    key: str = "data.path",
    shift: int = 0,
    noise_std: float = 0.0,
    fresh: bool = True,
    corruption_seed: int = 0,
    copies: int = 1,
) -> TensorSource:
    """The digits of :func:`prepare_digits`, standardized, 10 classes, optionally corrupted
    (afresh at every draw, or once in ``copies`` copies; see :func:`npz_source`)."""
    return npz_source(
        path,
        key=key,
        shift=shift,
        noise_std=noise_std,
        standardize=True,
        num_classes=10,
        fresh=fresh,
        corruption_seed=corruption_seed,
        copies=copies,
    )
