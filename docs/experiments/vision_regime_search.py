"""The offline-regime search of the Zhang vision track (docs/experiments/vision_regime.md).

Standalone: trains with :func:`sgdconv.train.engine.train_run` and measures every checkpoint
with the statistics pipeline the workflow uses (:func:`sgdconv.stats.checkpoint_stats.
checkpoint_statistics`, :func:`sgdconv.stats.aggregate.aggregate_statistics`), then evaluates
the vision claims on the result, without the workflow. Usage::

    python docs/experiments/vision_regime_search.py NAME '{"kind": "step", ...}' [--out DIR]

``kind``: ``step`` (a step-schedule run: Fig. 1, Fig. 5 claims) or ``constant`` (constant-lr
runs ``lrs``: Fig. 2, Thm. 4.3 and eq. (10) claims). Other keys (defaults in ``DEFAULTS``):
the data (``copies``, ``noise_std``, ``shift``, ``fresh``), the model ``channels``,
``batch_size``, ``weight_decay``, ``momentum``, ``lr``, ``epochs``, ``milestones``,
``checkpoint_every``, and ``stats`` (StatsSettings). Prints a summary and the claim rows and
writes ``DIR/NAME/*.parquet``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import pandas as pd
import torch

from sgdconv.data.tensors import prepare_digits
from sgdconv.stats.aggregate import aggregate_statistics
from sgdconv.stats.checkpoint_context import CheckpointContext, StatsSettings
from sgdconv.stats.checkpoint_stats import checkpoint_statistics
from sgdconv.train.engine import train_run
from sgdconv.train.spec import RunSpec
from sgdconv.zhang import claims as zc
from sgdconv.zhang.tables import eq10_table, thm43_table

DEFAULTS = {
    "copies": 8,
    "noise_std": 0.8,
    "shift": 1,
    "fresh": False,
    "channels": [8, 8],
    "batch_size": 64,
    "weight_decay": 5e-4,
    "momentum": 0.9,
    "lr": 0.1,
    "epochs": 45,
    "milestones": None,
    "checkpoint_every": 1,
    "lrs": [0.1, 0.03, 0.01],
    "seed": 7,
    "stats": {
        "sample_size": 4096,
        "sharpness_sample_size": 512,
        "sharpness_tol": 0.01,
        "sharpness_max_hvp": 20,
        "one_step_draws": 0,
        "curvature_directions": 0,
        "validation": False,
        "seed": 5,
    },
}


def spec_for(cfg: dict, run_id: str, lr: float, schedule: dict, data_path: str) -> RunSpec:
    n = 1500 * int(cfg["copies"])
    return RunSpec.from_dict(
        {
            "run_id": run_id,
            "model": {"name": "small_resnet", "channels": cfg["channels"], "in_channels": 1},
            "data": {
                "name": "digits",
                "path": data_path,
                "shift": cfg["shift"],
                "noise_std": cfg["noise_std"],
                "fresh": cfg["fresh"],
                "corruption_seed": 3,
                "copies": cfg["copies"],
            },
            "batch_size": cfg["batch_size"],
            "epochs": cfg["epochs"],
            "lr": lr,
            "momentum": cfg["momentum"],
            "weight_decay": cfg["weight_decay"],
            "schedule": schedule,
            "checkpoint_every": cfg["checkpoint_every"],
            "seed": cfg["seed"],
            "num_train": n,
        }
    )


def measure(spec: RunSpec, run_dir: Path, settings: dict) -> tuple[pd.DataFrame, dict]:
    """Train (or resume) and measure every checkpoint; the run's stats table and timings."""
    t0 = time.perf_counter()
    manifest = train_run(spec, run_dir, progress=False)
    t_train = time.perf_counter() - t0
    st = StatsSettings.from_dict(settings)
    rows = []
    t0 = time.perf_counter()
    for c in manifest["checkpoints"]:
        ctx = CheckpointContext(spec, run_dir / c["path"], st)
        rows.append(pd.DataFrame([checkpoint_statistics(ctx)]))
    t_stats = time.perf_counter() - t0
    log = pd.read_parquet(run_dir / "train_log.parquet")
    table = aggregate_statistics(rows, log, manifest)
    return table, {"train_s": t_train, "stats_s": t_stats, "steps": manifest["total_steps"]}


def summary(stats: pd.DataFrame, bounds: list[float]) -> str:
    cols = ["loss", "grad_norm", "grad_norm_sq_se", "noise_norm", "sharpness"]
    lines = []
    for lo, hi in itertools.pairwise(bounds):
        part = stats[(stats["epoch"] > lo) & (stats["epoch"] <= hi)]
        med = part[cols].median()
        lines.append(f"  epochs ({lo:g}, {hi:g}]: " + ", ".join(f"{c} {med[c]:.4g}" for c in cols))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("config")
    parser.add_argument("--out", default="/tmp/vision_regime")
    args = parser.parse_args()
    torch.set_num_threads(1)
    user = json.loads(args.config)
    cfg = {**DEFAULTS, **user, "stats": {**DEFAULTS["stats"], **user.get("stats", {})}}
    out = Path(args.out) / args.name
    out.mkdir(parents=True, exist_ok=True)
    data = out.parent / "digits.npz"
    if not data.exists():
        prepare_digits(data, n_train=1500, seed=1)
    pd.set_option("display.width", 220)
    print(args.name, json.dumps(cfg))
    if cfg.get("kind", "step") == "step":
        epochs = int(cfg["epochs"])
        milestones = cfg["milestones"] or [epochs // 3, 2 * epochs // 3]
        schedule = {"name": "step", "milestones": milestones, "gamma": 0.1}
        spec = spec_for(cfg, "step", cfg["lr"], schedule, str(data))
        stats, t = measure(spec, out / "run_step", cfg["stats"])
        stats.to_parquet(out / "stats_step.parquet")
        log = pd.read_parquet(out / "run_step" / "train_log.parquet")
        print(t, "\n" + summary(stats, [0, *milestones, epochs]))
        params = {"epochs": epochs, "milestones": milestones}
        claims = zc.claims_fig1({"stats": stats, "train_log": log}, params)
        claims += zc.claims_fig5(
            {"stats": stats}, {"first_milestone": milestones[0], "momentum": cfg["momentum"]}
        )
    else:
        tables, views, lrs = {}, [], {}
        for lr in cfg["lrs"]:
            spec = spec_for(cfg, f"lr{lr:g}", lr, {"name": "constant"}, str(data))
            stats, t = measure(spec, out / f"run_lr{lr:g}", cfg["stats"])
            stats.to_parquet(out / f"stats_lr{lr:g}.parquet")
            print(f"lr {lr:g}", t, "\n" + summary(stats, [0, cfg["epochs"] / 2, cfg["epochs"]]))
            tables[f"lr{lr:g}"], lrs[f"lr{lr:g}"] = stats, lr
            views.append(
                {"table": f"lr{lr:g}", "run_id": f"lr{lr:g}", "lr": lr, "epochs": cfg["epochs"]}
            )
        claims = zc.claims_fig2(tables, {"views": views})
        claims += zc.claims_thm43({"thm43": thm43_table(tables, lrs)}, {})
        claims += zc.claims_eq10({"eq10": eq10_table(tables, lrs)}, {})
    for c in claims:
        print(f"- {c.claim_id}: {c.value:.4g} {c.op} {c.threshold} -> {c.holds}; {c.note}")


if __name__ == "__main__":
    main()
