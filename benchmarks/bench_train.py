"""Overhead of the training engine (train log, checkpoints, tqdm) against a bare training loop.

Both train the same model on the same planned batches with the same optimizer, on one CPU
thread: the engine (sgdconv.train.engine.train_run) with a checkpoint at every epoch (the
densest cadence of the offline tiers) and a train-log row per step; the bare loop (the PyTorch
ImageNet example's inner loop) with neither. The cost of an epoch is measured as
(T(2E epochs) − T(E epochs)) / E, which removes one-time costs (building the data and model,
imports, the final parquet/JSON outputs); those are reported separately. Repeated alternately;
the ratio of the medians is printed.

    python benchmarks/bench_train.py [--epochs 10] [--repeats 5] [--quick]

Writes benchmarks/out/bench_train.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sgdconv.data.base import batch_seed, build_data, epoch_permutation
from sgdconv.data.tensors import prepare_digits
from sgdconv.train.engine import init_model, make_optimizer, steps_per_epoch, train_run
from sgdconv.train.losses import build_loss
from sgdconv.train.spec import RunSpec


def make_spec(data: Path, epochs: int, run_id: str, every: float = 1.0) -> RunSpec:
    """The default tier's non-interpolating step run, shortened (a checkpoint every ``every``
    epochs)."""
    return RunSpec(
        run_id=run_id,
        model={"name": "small_resnet", "channels": [8, 8], "in_channels": 1, "num_classes": 10},
        data={"name": "digits", "path": str(data), "shift": 1, "noise_std": 0.8},
        batch_size=64,
        epochs=epochs,
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        schedule={"name": "step", "milestones": [epochs // 2]},
        checkpoint_every=every,
        seed=1,
    )


def bare_loop(spec: RunSpec) -> float:
    """The PyTorch-example loop: no log rows, no checkpoints, no progress bar (timed from
    building the data, as the engine is)."""
    start = time.perf_counter()
    source = build_data(spec.data)
    model = init_model(spec, torch.device("cpu"))
    spe = steps_per_epoch(spec, source)
    optimizer, scheduler = make_optimizer(spec, model, spe)
    loss_fn = build_loss(spec.loss)
    model.train()
    for epoch in range(spec.epochs):
        order = epoch_permutation(source.num_train, spec.seed, epoch)
        b = spec.batch_size
        plan = [(order[j * b : (j + 1) * b], batch_seed(spec.seed, epoch, j)) for j in range(spe)]
        for x, y in source.train_batches(plan):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    return time.perf_counter() - start


def engine(spec: RunSpec, folder: Path) -> float:
    start = time.perf_counter()
    train_run(spec, folder / spec.run_id, progress=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="E (the runs take E and 2E)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="E = 3, 3 repeats")
    parser.add_argument(
        "--checkpoint-every", type=float, default=1.0, help="epochs between checkpoints"
    )
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.repeats = 3, 3
    torch.set_num_threads(1)
    e1, e2 = args.epochs, 2 * args.epochs
    times: dict[str, list[float]] = {"bare1": [], "bare2": [], "engine1": [], "engine2": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / "digits.npz"
        prepare_digits(data, n_train=1500, seed=0)
        engine(make_spec(data, 1, "warmup"), folder)  # imports (pyarrow, tqdm) happen once
        for k in range(args.repeats):
            times["bare1"].append(bare_loop(make_spec(data, e1, f"b{k}")))
            spec = make_spec(data, e1, f"e{k}", args.checkpoint_every)
            times["engine1"].append(engine(spec, folder))
            times["bare2"].append(bare_loop(make_spec(data, e2, f"B{k}")))
            spec = make_spec(data, e2, f"E{k}", args.checkpoint_every)
            times["engine2"].append(engine(spec, folder))
    med = {key: statistics.median(values) for key, values in times.items()}
    bare = (med["bare2"] - med["bare1"]) / e1
    full = (med["engine2"] - med["engine1"]) / e1
    setup = {
        "bare": med["bare1"] - e1 * bare,
        "engine": med["engine1"] - e1 * full,
    }
    spe = 1500 // 64
    print(f"{e1} and {e2} epochs x {spe} steps, batch 64, small ResNet [8, 8], 1 thread")
    print(
        f"engine: a train-log row per step, a checkpoint every {args.checkpoint_every:g} epoch(s)"
    )
    print(f"bare loop:      {bare * 1000:7.1f} ms/epoch, one-time {setup['bare'] * 1000:6.1f} ms")
    print(f"engine:         {full * 1000:7.1f} ms/epoch, one-time {setup['engine'] * 1000:6.1f} ms")
    print(f"per-epoch overhead ratio: {full / bare:.3f}  (target <= 1.05)")
    print(f"whole {e2}-epoch run ratio: {med['engine2'] / med['bare2']:.3f}")
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    result = {
        "epochs": [e1, e2],
        "checkpoint_every": args.checkpoint_every,
        "repeats": args.repeats,
        "steps_per_epoch": spe,
        "times_s": times,
        "ms_per_epoch": {"bare": bare * 1000, "engine": full * 1000},
        "one_time_ms": {k: v * 1000 for k, v in setup.items()},
        "ratio_per_epoch": full / bare,
        "ratio_whole_run": med["engine2"] / med["bare2"],
        "target": 1.05,
    }
    (out / "bench_train.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
