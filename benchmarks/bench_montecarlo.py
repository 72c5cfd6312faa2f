"""Benchmark of sgdconv.montecarlo.trajectories (issue 4): trajectory-steps per second of the
batched Monte-Carlo SGD engine against a per-trajectory loop (target >= 20x), in one run.

Both sides run the same code, :func:`sgdconv.montecarlo.trajectories.run_sgd`, on the same
trajectories (same per-trajectory noise streams, hence the same results): the vectorized side
advances B trajectories as one (B, p) batch, the loop side calls it once per trajectory (B = 1),
as a plain Python loop over trajectories would. Problems: the anlu_thm31 network (depth 2,
d = 8, n = 4, width 8, p = 81) with machine-learning noise and a constant step, and the
anlu_thm41 setting (rotated bounded noise, Robbins–Monro steps).

Timings: one thread, the two sides interleaved within each repeat, medians over repeats. The
machine may be shared, so absolute rates are noisy; the ratio within one run is what we report.
Writes ``benchmarks/out/bench_montecarlo.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from sgdconv.anlu.setup import build_problem
from sgdconv.montecarlo.philox import TrajectoryStreams
from sgdconv.montecarlo.trajectories import (
    BoundedNoise,
    ConstantStep,
    MachineLearningNoise,
    RobbinsMonroStep,
    run_sgd,
)

OUT = Path(__file__).resolve().parent / "out" / "bench_montecarlo.json"
NET = {
    "d": 8,
    "n": 4,
    "widths": [8],
    "activation": "smooth_leaky_relu",
    "leaky_slope": 0.5,
    "output_weight": 2.5,
    "inputs": "orthonormal",
}
CASES = {
    # (noise law, step size, F(θ0), radius): the settings of anlu_thm31 and anlu_thm41.
    "thm31: ML noise, constant step": (
        MachineLearningNoise(200.0),
        ConstantStep(1.25e-4),
        4.0,
        0.5,
    ),
    "thm41: rotated bounded noise, RM steps": (
        BoundedNoise(5.0, rotated=True),
        RobbinsMonroStep(0.03, 12.0, 1.0),
        0.01,
        0.5,
    ),
}


def _time_run(problem, case, streams: TrajectoryStreams, n_steps: int) -> float:
    noise, step, f0, radius = case
    start = time.perf_counter()
    run_sgd(
        problem.loss_and_grad(f0),
        problem.theta0,
        noise=noise,
        step=step,
        n_steps=n_steps,
        streams=streams,
        radii=[radius],
        record_steps=list(range(0, n_steps + 1, 10)),
    )
    return time.perf_counter() - start


def bench_case(
    name: str, batch: int, loop_trajectories: int, n_steps: int, repeats: int
) -> dict[str, float | int | str]:
    """Trajectory-steps per second, batched (B = ``batch``) and looped (``loop_trajectories``
    runs of B = 1), medians over interleaved repeats."""
    problem = build_problem(NET, seed=0)
    case = CASES[name]
    streams = TrajectoryStreams.range(1, batch)
    _time_run(problem, case, streams.subset(slice(0, 4)), 5)  # warm-up
    batched, looped = [], []
    for _ in range(repeats):
        seconds = _time_run(problem, case, streams, n_steps)
        batched.append(batch * n_steps / seconds)
        seconds = sum(
            _time_run(problem, case, streams.subset([i]), n_steps) for i in range(loop_trajectories)
        )
        looped.append(loop_trajectories * n_steps / seconds)
    rate_batched, rate_looped = statistics.median(batched), statistics.median(looped)
    return {
        "case": name,
        "p": problem.net.p,
        "batch": batch,
        "n_steps": n_steps,
        "loop_trajectories": loop_trajectories,
        "batched_traj_steps_per_s": rate_batched,
        "loop_traj_steps_per_s": rate_looped,
        "ratio": rate_batched / rate_looped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 5
    n_steps = 100 if args.quick else 300
    results = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": args.threads,
        "cases": [
            bench_case(name, batch, 4 if args.quick else 8, n_steps, repeats)
            for name in CASES
            for batch in (256, 1024)
        ],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"Monte-Carlo SGD, trajectory-steps per second ({args.threads} thread(s), medians):")
    print(f"{'case':<40} {'p':>4} {'B':>5} | {'batched':>10} {'loop':>9} | {'ratio':>6}")
    for row in results["cases"]:
        print(
            f"{row['case']:<40} {row['p']:>4} {row['batch']:>5} | "
            f"{row['batched_traj_steps_per_s']:>10.3g} {row['loop_traj_steps_per_s']:>9.3g} | "
            f"{row['ratio']:>5.0f}x"
        )
    worst = min(row["ratio"] for row in results["cases"])
    print(f"\n  batched / per-trajectory loop, smallest ratio: {worst:.0f}x  (target >= 20x)")
    print(f"\nwritten: {OUT}")


if __name__ == "__main__":
    main()
