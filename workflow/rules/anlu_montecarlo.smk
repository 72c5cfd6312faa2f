"""anlu_thm31, anlu_thm41, anlu_lem42: Monte-Carlo SGD of An & Lu (2025) on Chatterjee-initialized
depth-2 networks, many trajectories per condition advancing as one batch
(sgdconv.montecarlo.trajectories). Theorem 3.1 (machine-learning noise), Theorem 4.1 (rotated bounded
noise escapes) and Lemma 4.2 (E F(θ_k) ~ k^(−q) under bounded noise)."""

from sgdconv.anlu.workload import cluster_minutes

# Seeds (offsets 5100–5199): data, the constants' searches and the SGD noise of each experiment.
# anlu_thm41 and anlu_lem42 share the data and constants' streams (the same problem, hence the
# same α̂, Ĉ_L and schedules when their settings agree) and differ in the noise stream.

ANLU_THM31 = config["anlu"]["thm31"]
ANLU_THM41 = config["anlu"]["thm41"]
ANLU_LEM42 = config["anlu"]["lem42"]


rule simulate_anlu_thm31:
    output:
        conditions=out("theory/anlu_thm31_conditions.parquet"),
        steps=out("theory/anlu_thm31_steps.parquet"),
    params:
        settings=ANLU_THM31,
        seeds={"data": seed_for(5100), "constants": seed_for(5101), "noise": seed_for(5102)},
    conda:
        ENV
    log:
        log("simulate/anlu_thm31.log"),
    benchmark:
        out("benchmarks/simulate_anlu_thm31.tsv")
    resources:
        mem_mb=2000,
        runtime=cluster_minutes("anlu_thm31", ANLU_THM31),
    script:
        "../scripts/simulate_anlu_thm31.py"


rule simulate_anlu_thm41:
    output:
        conditions=out("theory/anlu_thm41_conditions.parquet"),
        steps=out("theory/anlu_thm41_steps.parquet"),
    params:
        settings=ANLU_THM41,
        seeds={"data": seed_for(5110), "constants": seed_for(5111), "noise": seed_for(5112)},
    conda:
        ENV
    log:
        log("simulate/anlu_thm41.log"),
    benchmark:
        out("benchmarks/simulate_anlu_thm41.tsv")
    resources:
        mem_mb=2000,
        runtime=cluster_minutes("anlu_thm41", ANLU_THM41),
    script:
        "../scripts/simulate_anlu_thm41.py"


rule simulate_anlu_lem42:
    output:
        conditions=out("theory/anlu_lem42_conditions.parquet"),
        steps=out("theory/anlu_lem42_steps.parquet"),
    params:
        settings=ANLU_LEM42,
        seeds={"data": seed_for(5110), "constants": seed_for(5111), "noise": seed_for(5122)},
    conda:
        ENV
    log:
        log("simulate/anlu_lem42.log"),
    benchmark:
        out("benchmarks/simulate_anlu_lem42.tsv")
    resources:
        mem_mb=2000,
        runtime=cluster_minutes("anlu_lem42", ANLU_LEM42),
    script:
        "../scripts/simulate_anlu_lem42.py"


register_artifact(
    "anlu_thm31",
    "anlu",
    tables={
        "conditions": "theory/anlu_thm31_conditions.parquet",
        "steps": "theory/anlu_thm31_steps.parquet",
    },
    params={"radius": ANLU_THM31["radius"]},
)

register_artifact(
    "anlu_thm41",
    "anlu",
    tables={
        "conditions": "theory/anlu_thm41_conditions.parquet",
        "steps": "theory/anlu_thm41_steps.parquet",
    },
    params={"radius": ANLU_THM41["radius"]},
)

register_artifact(
    "anlu_lem42",
    "anlu",
    tables={
        "conditions": "theory/anlu_lem42_conditions.parquet",
        "steps": "theory/anlu_lem42_steps.parquet",
    },
    params={"radius": ANLU_LEM42["radius"], "fit_from_n0": ANLU_LEM42["fit_from_n0"]},
)
