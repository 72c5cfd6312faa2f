"""Entry point of one training process under torchrun:
``python -m sgdconv.train.worker <spec.json> <run_dir> [--threads N] [--repair]``."""

from __future__ import annotations

import argparse
import json
import logging

import torch

from sgdconv.train.engine import train_run
from sgdconv.train.spec import RunSpec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("spec", help="JSON file with the run spec")
    parser.add_argument("run_dir", help="the run's directory (runs/<run_id>)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--repair", action="store_true", help="only rewrite missing or corrupt checkpoints"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    with open(args.spec) as fh:
        spec = RunSpec.from_dict(json.load(fh))
    train_run(spec, args.run_dir, repair=args.repair)


if __name__ == "__main__":
    main()
