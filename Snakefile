"""Regenerates every figure and claim of three papers on the convergence of (stochastic)
gradient descent. `snakemake --cores N` runs the default tier (config/config.yaml); pass
`--configfile config/test.yaml` or `config/paper.yaml` for the other tiers. See README.md."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/zhang_synthetic.smk"
include: "workflow/rules/chatterjee_toy.smk"
include: "workflow/rules/chatterjee_nets.smk"
include: "workflow/rules/anlu_montecarlo.smk"
include: "workflow/rules/anlu_noise.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/vision.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/claims.smk"


rule all:
    input:
        all_targets(),
    default_target: True


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
