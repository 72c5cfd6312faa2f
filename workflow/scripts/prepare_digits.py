"""Rule prepare_digits: scikit-learn's handwritten digits as an .npz (train/validation split)."""

from sgdconv.data.tensors import prepare_digits
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    info = prepare_digits(
        snakemake.output[0], n_train=snakemake.params.n_train, seed=snakemake.params.seed
    )
    logger.info("wrote %s: %s", snakemake.output[0], info)
