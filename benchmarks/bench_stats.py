"""Benchmarks of sgdconv.stats (issue 3): ratios measured in one run, never asserted.

1. ``estimate_gradient_stats`` (loss + gradient norm + noise, one pass) against one plain
   full-gradient pass (``loss.backward()`` per micro-batch) over the same m samples — target
   <= 1.15x — and against the two-pass scheme of the paper's code (full gradient, then the
   deviations of the minibatch gradients from it; ≈ 2x).
2. At b = 128 on a small CNN: the speed-up over a per-sample loop (b = 1 backward each, the
   brute-force way to get σ exactly) and over ``per_sample=True`` (torch.func per-sample
   gradients).
3. Hessian-vector products needed to reach the residual |Hv − λv|/|λ| <= 1e-3 on the same
   operator: Lanczos against power iteration — target <= 1/3.

Timings: one thread, methods interleaved within each repeat, medians over repeats. The machine
may be shared, so absolute times are noisy; the ratios within one run are what we report.
Writes ``benchmarks/out/bench_stats.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from sgdconv.stats import estimate_gradient_stats, top_hessian_eigenvalue

OUT = Path(__file__).resolve().parent / "out" / "bench_stats.json"
LOSS = nn.CrossEntropyLoss()


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )


def synthetic_images(m: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """16 x 16 RGB images labelled by a random linear teacher on 4 x 4 average-pooled pixels."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m, 3, 16, 16, generator=gen)
    teacher = torch.randn(3 * 4 * 4, 10, generator=gen)
    y = (nn.functional.avg_pool2d(x, 4).flatten(1) @ teacher).argmax(1)
    return x, y


def microbatches(x, y, b):
    return [(x[i : i + b], y[i : i + b]) for i in range(0, len(x), b)]


def pretrain(model: nn.Module, x, y, steps: int = 60, lr: float = 0.05) -> nn.Module:
    """A few SGD steps, so the statistics are taken away from the initialisation."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(2)
    for _ in range(steps):
        idx = torch.randint(len(x), (64,), generator=gen)
        opt.zero_grad()
        LOSS(model(x[idx]), y[idx]).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model


# --- the competitors --------------------------------------------------------------------------


def plain_gradient_pass(model, batches) -> float:
    """One full-gradient pass: |∇L_S| only."""
    model.zero_grad(set_to_none=True)
    k = len(batches)
    for x, y in batches:
        (LOSS(model(x), y) / k).backward()
    return float(torch.sqrt(sum((p.grad**2).sum() for p in model.parameters())))


def two_pass(model, batches) -> tuple[float, float]:
    """The paper's scheme: pass 1 the full gradient ḡ, pass 2 Σ_k |g_k − ḡ|²."""
    grad_norm = plain_gradient_pass(model, batches)
    full = [p.grad.clone() for p in model.parameters()]
    dev = 0.0
    for x, y in batches:
        model.zero_grad(set_to_none=True)
        LOSS(model(x), y).backward()
        dev += float(
            sum(((p.grad - g) ** 2).sum() for p, g in zip(model.parameters(), full, strict=True))
        )
    model.zero_grad(set_to_none=True)
    return grad_norm, dev


def per_sample_loop(model, batches) -> float:
    """Exact σ by brute force: one backward per sample."""
    grads = []
    for xb, yb in batches:
        for i in range(len(xb)):
            model.zero_grad(set_to_none=True)
            LOSS(model(xb[i : i + 1]), yb[i : i + 1]).backward()
            grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    g = torch.stack(grads)
    model.zero_grad(set_to_none=True)
    return float(((g - g.mean(0)) ** 2).sum(1).mean().sqrt())


def time_interleaved(
    fns: dict[str, Callable[[], object]], repeats: int, warmup: bool = True
) -> dict[str, float]:
    """Median wall time of each function; every repeat runs all functions once, in turn."""
    for fn in fns.values() if warmup else ():  # allocator, first-call dispatch, torch.func
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def bench_gradient_stats(m: int, b: int, repeats: int, loop_repeats: int) -> dict:
    x, y = synthetic_images(m)
    model = pretrain(small_cnn(), x, y)
    batches = microbatches(x, y, b)
    fns = {
        "plain_gradient_pass": lambda: plain_gradient_pass(model, batches),
        "estimate_gradient_stats": lambda: estimate_gradient_stats(model, LOSS, batches),
        "two_pass_paper": lambda: two_pass(model, batches),
        "per_sample_torch_func": lambda: estimate_gradient_stats(
            model, LOSS, batches, per_sample=True
        ),
    }
    t = time_interleaved(fns, repeats)
    # The brute-force loop is slow and needs no warm-up beyond the one above.
    loop = {"per_sample_loop": lambda: per_sample_loop(model, batches)}
    t.update(time_interleaved(loop, loop_repeats, warmup=False))
    ours = t["estimate_gradient_stats"]
    return {
        "m": m,
        "b": b,
        "n_params": sum(p.numel() for p in model.parameters()),
        "seconds": t,
        "ratios": {
            "ours_over_plain_pass": ours / t["plain_gradient_pass"],
            "two_pass_over_plain_pass": t["two_pass_paper"] / t["plain_gradient_pass"],
            "speedup_vs_per_sample_loop": t["per_sample_loop"] / ours,
            "speedup_vs_torch_func_per_sample": t["per_sample_torch_func"] / ours,
        },
    }


def bench_hessian(
    m: int, b: int, tol: float, max_hvp: int, seeds: tuple[int, ...], steps: tuple[int, ...]
) -> dict:
    """HVPs to residual ``tol`` for both methods on a fixed grid of operators (CNN seeds x SGD
    steps): the ratio depends on the gap λ_2/λ_1 of each Hessian, so one operator would be
    an anecdote."""
    x, y = synthetic_images(m, seed=3)
    batches = microbatches(x, y, b)
    rows = []
    for seed in seeds:
        for n_steps in steps:
            model = pretrain(small_cnn(seed=seed), x, y, steps=n_steps)
            row: dict = {"seed": seed, "sgd_steps": n_steps}
            for method in ("lanczos", "power"):
                t0 = time.perf_counter()
                eig = top_hessian_eigenvalue(
                    model, LOSS, batches, method=method, tol=tol, max_hvp=max_hvp
                )
                row[method] = {
                    "value": eig.value,
                    "residual": eig.residual,
                    "n_hvp": eig.n_hvp,
                    "converged": eig.converged,
                    "seconds": time.perf_counter() - t0,
                }
            row["ratio"] = row["lanczos"]["n_hvp"] / row["power"]["n_hvp"]
            rows.append(row)
    ratios = [r["ratio"] for r in rows]
    total = {k: sum(r[k]["n_hvp"] for r in rows) for k in ("lanczos", "power")}
    return {
        "m": m,
        "b": b,
        "tol": tol,
        "operators": rows,
        "median_ratio": statistics.median(ratios),
        "max_ratio": max(ratios),
        "total_hvp": total,
        "ratio_total_hvp": total["lanczos"] / total["power"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller sample")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 7
    m = 512 if args.quick else 1024
    results = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            "processor": platform.processor() or platform.machine(),
        },
        "gradient_stats": [
            bench_gradient_stats(m, 128, repeats, loop_repeats=1 if args.quick else 3),
            bench_gradient_stats(m, 32, repeats, loop_repeats=1),
        ],
        "hessian": bench_hessian(
            256,
            128,
            tol=1e-3,
            max_hvp=2000,
            seeds=(1,) if args.quick else (1, 2),
            steps=(0, 300) if args.quick else (0, 60, 300),
        ),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"\nwritten: {OUT}")


def print_table(results: dict) -> None:
    print(
        f"sgdconv.stats benchmarks (torch {results['machine']['torch']}, "
        f"{results['machine']['threads']} thread(s), medians)"
    )
    print(
        f"\n{'b':>5} {'m':>6} | {'ours/plain':>10} {'2-pass/plain':>12} | "
        f"{'vs per-sample loop':>18} {'vs torch.func':>13}"
    )
    for row in results["gradient_stats"]:
        r = row["ratios"]
        print(
            f"{row['b']:>5} {row['m']:>6} | {r['ours_over_plain_pass']:>9.3f}x "
            f"{r['two_pass_over_plain_pass']:>11.3f}x | "
            f"{r['speedup_vs_per_sample_loop']:>16.1f}x faster "
            f"{r['speedup_vs_torch_func_per_sample']:>6.2f}x faster"
        )
    h = results["hessian"]
    print(f"\nsharpness: Hessian-vector products to residual <= {h['tol']:g} (m = {h['m']}):")
    print(f"{'seed':>5} {'SGD steps':>9} {'λ_max':>9} | {'Lanczos':>7} {'power':>6} {'ratio':>6}")
    for r in h["operators"]:
        ok = "" if r["lanczos"]["converged"] and r["power"]["converged"] else "  (not converged)"
        print(
            f"{r['seed']:>5} {r['sgd_steps']:>9} {r['lanczos']['value']:>9.4g} | "
            f"{r['lanczos']['n_hvp']:>7} {r['power']['n_hvp']:>6} {r['ratio']:>6.3f}{ok}"
        )
    print(
        f"  Lanczos / power: median {h['median_ratio']:.3f}, max {h['max_ratio']:.3f}, "
        f"total HVPs {h['total_hvp']['lanczos']} / {h['total_hvp']['power']} = "
        f"{h['ratio_total_hvp']:.3f}  (target <= 1/3)"
    )
    target = results["gradient_stats"][0]["ratios"]["ours_over_plain_pass"]
    print(f"  one-pass stats / plain gradient pass at b = 128: {target:.3f}  (target <= 1.15)")


if __name__ == "__main__":
    main()
