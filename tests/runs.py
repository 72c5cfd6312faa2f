"""A tiny training run shared by the engine and statistics tests: random 6×6 images with
linearly separable labels, and the spec of a small ResNet trained on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sgdconv.train.spec import RunSpec


def write_images(path: Path, n: int = 256, n_val: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + n_val, 1, 6, 6)).astype(np.float32)
    w = rng.normal(size=(36, 4))
    y = (x.reshape(len(x), -1) @ w).argmax(axis=1) % 4
    np.savez(path, x_train=x[:n], y_train=y[:n], x_val=x[n:], y_val=y[n:])
    return path


def spec_for(tmp_path: Path, **overrides) -> RunSpec:
    data = write_images(tmp_path / "data.npz")
    spec = {
        "run_id": "toy",
        "model": {"name": "small_resnet", "channels": [4, 4], "num_classes": 4},
        "data": {"name": "tensors", "path": str(data), "shift": 1, "noise_std": 0.2},
        "batch_size": 16,
        "epochs": 3,
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "schedule": {"name": "step", "milestones": [2]},
        "checkpoint_every": 1,
        "seed": 3,
    }
    return RunSpec.from_dict({**spec, **overrides})
