"""Data loaders on small files written in the real formats: an ImageFolder tree (ImageNet),
CIFAR-10 python batches, and the digits .npz; seeded augmentation and batch plans."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from sgdconv.data.base import DataError, build_data, epoch_permutation, mix_seed
from sgdconv.data.folders import (
    CIFAR_MEAN,
    CIFAR_STD,
    check_cifar10_layout,
    check_imagenet_layout,
    cifar10_source,
    imagenet_source,
)
from sgdconv.data.tensors import (
    ShiftNoise,
    TensorSource,
    digits_source,
    prepare_digits,
    shift_images,
)

# --- ImageNet layout -----------------------------------------------------------------------


def write_image_folder(root, classes=("n01", "n02", "n03"), per_class=4, size=(20, 16)):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{c}_{i}.JPEG", format="JPEG")
    return root


def test_imagenet_folder_loads_with_standard_transforms(tmp_path):
    root = write_image_folder(tmp_path / "imagenet")
    source = imagenet_source(str(root), workers=0, crop=8, resize=10)
    assert source.num_train == 12 and source.num_classes == 3 and source.augmented
    plan = [(torch.arange(6), 123)]
    x, y = next(source.train_batches(plan))
    assert x.shape == (6, 3, 8, 8) and y.tolist() == [0, 0, 0, 0, 1, 1]
    # Same plan, same augmentation; another seed, another crop.
    x2, _ = next(source.train_batches(plan))
    assert torch.equal(x, x2)
    x3, _ = next(source.train_batches([(torch.arange(6), 124)]))
    assert not torch.equal(x, x3)
    val = source.validation(4)
    assert len(val) == 3 and next(iter(val))[0].shape == (4, 3, 8, 8)


def test_imagenet_shards_reassemble_the_global_batch(tmp_path):
    root = write_image_folder(tmp_path / "imagenet")
    source = imagenet_source(str(root), workers=0, crop=8, resize=10)
    plan = [(torch.tensor([5, 0, 7, 11, 2, 9]), 7)]
    whole, labels = next(source.train_batches(plan))
    parts = [next(source.train_batches(plan, rank=r, world=2)) for r in range(2)]
    assert torch.equal(torch.cat([p[0] for p in parts]), whole)
    assert torch.equal(torch.cat([p[1] for p in parts]), labels)


def test_imagenet_sample_is_fixed_and_nested(tmp_path):
    root = write_image_folder(tmp_path / "imagenet")
    source = imagenet_source(str(root), workers=0, crop=8, resize=10)
    big, small = source.sample(16, 4, seed=3), source.sample(8, 4, seed=3)
    assert big.n_samples == 16  # more draws than images: augmented data repeat examples
    for (xb, yb), (xs, ys) in zip(big, small, strict=False):
        assert torch.equal(xb, xs) and torch.equal(yb, ys)
    assert torch.equal(next(iter(big))[0], big[0][0])  # the loader and direct access agree


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda root: None, "does not exist|is not a directory"),
        (lambda root: (root / "train" / "n01").mkdir(parents=True), "val"),
        (
            lambda root: [
                (root / s / c).mkdir(parents=True) for s, c in [("train", "a"), ("val", "b")]
            ],
            "different class folders",
        ),
    ],
)
def test_imagenet_malformed_root_names_the_key(tmp_path, damage, problem):
    root = tmp_path / "imagenet"
    damage(root)
    with pytest.raises(DataError, match=r"zhang\.vision\.nonint\.data\.root") as info:
        check_imagenet_layout(str(root), "zhang.vision.nonint.data.root")
    assert "Expected layout" in str(info.value)
    assert info.match(problem)
    with pytest.raises(DataError, match="null"):
        check_imagenet_layout(None, "k")


# --- CIFAR-10 batches ------------------------------------------------------------------------


def write_cifar10(root, per_batch=6):
    """The python version of CIFAR-10: pickled dicts with a (n, 3072) uint8 'data' array
    (R, G, B planes of 32x32, row-major), 'labels', and batches.meta with 'label_names'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    batches = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        entry = {
            "batch_label": name,
            "labels": labels,
            "data": data,
            "filenames": ["x.png"] * per_batch,
        }
        with open(folder / name, "wb") as fh:
            pickle.dump(entry, fh)
        batches[name] = entry
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}, fh)
    return batches


def test_cifar10_batches_decode_pixels_and_labels(tmp_path):
    batches = write_cifar10(tmp_path)
    source = cifar10_source(str(tmp_path), workers=0, augment=False)
    assert source.num_train == 30 and not source.augmented
    val = source.validation(6)
    x, y = next(iter(val))
    test = batches["test_batch"]
    assert y.tolist() == test["labels"]
    # Pixel (channel c, row i, col j) of image 0 is data[0, c*1024 + i*32 + j].
    for c, i, j in [(0, 0, 0), (1, 5, 7), (2, 31, 30)]:
        raw = test["data"][0, c * 1024 + i * 32 + j] / 255.0
        assert float(x[0, c, i, j]) == pytest.approx((raw - CIFAR_MEAN[c]) / CIFAR_STD[c], abs=1e-5)
    # Training set: the five data batches in order.
    x, y = next(source.train_batches([(torch.arange(30), 0)]))
    expected = [label for i in range(1, 6) for label in batches[f"data_batch_{i}"]["labels"]]
    assert y.tolist() == expected


def test_cifar10_augmentation_is_seeded(tmp_path):
    write_cifar10(tmp_path)
    source = cifar10_source(str(tmp_path), workers=0)
    plan = [(torch.arange(8), 5)]
    a, b = next(source.train_batches(plan)), next(source.train_batches(plan))
    assert torch.equal(a[0], b[0]) and a[0].shape == (8, 3, 32, 32)


def test_cifar10_missing_or_corrupt_files_name_the_key(tmp_path):
    key = "zhang.vision.interp.data.root"
    with pytest.raises(DataError, match=key) as info:
        cifar10_source(str(tmp_path), workers=0, key=key)
    assert "data_batch_1" in str(info.value) and "download: true" in str(info.value)
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="cannot unpickle test_batch"):
        check_cifar10_layout(str(tmp_path), key)
    with pytest.raises(DataError, match="checksum"):
        check_cifar10_layout(str(tmp_path), key, verify_md5=True)


# --- digits ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_npz(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "digits.npz"
    prepare_digits(path, n_train=1500, seed=0)
    return path


def test_digits_split_and_scaling(digits_npz):
    from sklearn.datasets import load_digits

    data = np.load(digits_npz)
    assert data["x_train"].shape == (1500, 1, 8, 8) and data["x_val"].shape == (297, 1, 8, 8)
    assert data["x_train"].min() == 0 and data["x_train"].max() == 1
    # The split is a partition of sklearn's 1,797 images (pixels / 16).
    allx = np.concatenate([data["x_train"], data["x_val"]]).reshape(1797, 64) * 16
    ref = load_digits().data
    assert sorted(map(tuple, allx.round().astype(int))) == sorted(map(tuple, ref.astype(int)))
    source = digits_source(str(digits_npz))
    assert abs(float(source.x_train.mean())) < 1e-5 and float(
        source.x_train.std()
    ) == pytest.approx(1, abs=1e-4)


def test_shift_matches_a_loop_with_padding():
    gen = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 4 * 5, dtype=torch.float32).reshape(2, 1, 4, 5)
    out = shift_images(x, 1, gen, pad_value=-1.0)
    offsets = torch.randint(0, 3, (2, 2), generator=torch.Generator().manual_seed(0))
    for b in range(2):
        dy, dx = int(offsets[b, 0]) - 1, int(offsets[b, 1]) - 1
        for i in range(4):
            for j in range(5):
                si, sj = i + dy, j + dx
                expected = x[b, 0, si, sj] if 0 <= si < 4 and 0 <= sj < 5 else -1.0
                assert float(out[b, 0, i, j]) == float(expected)


def test_noise_has_the_configured_std():
    x = torch.zeros(4000, 1, 8, 8)
    out = ShiftNoise(shift=0, noise_std=0.3)(x, torch.Generator().manual_seed(1))
    assert float(out.std()) == pytest.approx(0.3, rel=0.01)


def test_tensor_source_world_invariance_and_sample_prefix(digits_npz):
    source = digits_source(str(digits_npz), shift=1, noise_std=0.3)
    order = epoch_permutation(source.num_train, seed=1, epoch=0)
    plan = [(order[:8], mix_seed(1, 0)), (order[8:16], mix_seed(1, 1))]
    whole = list(source.train_batches(plan))
    halves = [list(source.train_batches(plan, rank=r, world=2)) for r in range(2)]
    for k in range(2):
        assert torch.equal(torch.cat([halves[0][k][0], halves[1][k][0]]), whole[k][0])
    big, small = source.sample(3000, 100, seed=4), source.sample(1000, 50, seed=4)
    assert big.n_samples == 3000  # > 1500 examples: every repeat is a new augmentation
    assert torch.equal(torch.cat([x for x, _ in big])[:1000], torch.cat([x for x, _ in small]))
    plain = digits_source(str(digits_npz))
    with pytest.raises(ValueError, match="not augmented"):
        plain.sample(3000, 100, seed=4)


def test_copies_multiply_the_epoch(digits_npz):
    # fresh: an epoch of 3 passes, each draw corrupted afresh (the copies are the same images);
    # not fresh: 3 fixed, independently corrupted copies of every image.
    fresh = digits_source(str(digits_npz), shift=1, noise_std=0.3, copies=3)
    plain = digits_source(str(digits_npz))
    assert fresh.num_train == 3 * plain.num_train and fresh.augmented
    assert torch.equal(fresh.x_train[1500:3000], plain.x_train)
    assert torch.equal(fresh.y_train[3000:], plain.y_train)
    fixed = digits_source(str(digits_npz), shift=1, noise_std=0.3, fresh=False, copies=3)
    assert fixed.num_train == 4500 and not fixed.augmented
    assert not torch.equal(fixed.x_train[:1500], fixed.x_train[1500:3000])


def test_missing_npz_names_the_key(tmp_path):
    with pytest.raises(DataError, match=r"'zhang\.vision\.data'.*does not exist"):
        digits_source(str(tmp_path / "nope.npz"), key="zhang.vision.data")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(DataError, match="lacks arrays"):
        digits_source(str(bad))


def test_registry_builds_by_name_and_module_path(digits_npz):
    a = build_data({"name": "digits", "path": str(digits_npz)})
    b = build_data({"name": "sgdconv.data.tensors:digits_source", "path": str(digits_npz)})
    assert isinstance(a, TensorSource) and torch.equal(a.x_train, b.x_train)
    with pytest.raises(KeyError, match="unknown data set"):
        build_data({"name": "mnist"})
