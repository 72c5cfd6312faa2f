"""Regenerates every figure and claim of three papers on the convergence of (stochastic)
gradient descent. `snakemake --cores N` runs the default tier (config/config.yaml); pass
`--configfile config/test.yaml` or `config/paper.yaml` for the other tiers. See README.md."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/zhang.smk"
include: "workflow/rules/chatterjee.smk"
include: "workflow/rules/anlu.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"


rule all:
    default_target: True
    input:
        all_targets(),


rule zhang:
    input:
        paper_targets("zhang"),


rule chatterjee:
    input:
        paper_targets("chatterjee"),


rule anlu:
    input:
        paper_targets("anlu"),


localrules:
    all,
    zhang,
    chatterjee,
    anlu,
