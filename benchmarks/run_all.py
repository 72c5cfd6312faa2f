"""Run every ``benchmarks/bench_*.py`` in turn and print its results (``make benchmarks``).

Each benchmark is a standalone script that prints a table and writes its JSON to
``benchmarks/out/``; extra arguments (e.g. ``--quick``) are passed to every script. Benchmarks
report ratios measured within one run and never fail on a target; this runner fails only if a
script crashes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    if not scripts:
        print("no benchmarks/bench_*.py found")
        return 0
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} {' '.join(argv)}".rstrip(), flush=True)
        t0 = time.perf_counter()
        code = subprocess.call([sys.executable, str(script), *argv], cwd=HERE.parent)
        print(f"=== {script.name}: exit {code}, {time.perf_counter() - t0:.0f} s", flush=True)
        if code != 0:
            failed.append(script.name)
    print(f"\n{len(scripts) - len(failed)}/{len(scripts)} benchmarks ran; JSON in {HERE / 'out'}")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
