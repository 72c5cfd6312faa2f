"""Rules check_imagenet / check_cifar10: check (or, for CIFAR-10 when the config asks,
download) a data set at its configured path; the error names the config key and layout."""

import json

from sgdconv.data.folders import check_cifar10_layout, check_imagenet_layout, download_cifar10
from sgdconv.workflow import rule_logging

with rule_logging(snakemake) as logger:
    p = snakemake.params
    if snakemake.rule == "check_imagenet":
        info = check_imagenet_layout(p.root, p.key)
    else:
        if p.download:
            download_cifar10(p.root, p.key)
        info = check_cifar10_layout(p.root, p.key, verify_md5=p.verify_md5)
    with open(snakemake.output[0], "w") as fh:
        json.dump(info, fh, indent=1)
    logger.info("%s: %s", p.key, info)
