"""An & Lu (2025), *SGD under a local Łojasiewicz condition*: every artifact of the paper.

- anlu_thm31, anlu_thm41, anlu_lem42: Monte-Carlo SGD on Chatterjee-initialized depth-2
  networks, many trajectories per condition advancing as one batch
  (sgdconv.montecarlo.trajectories). Theorem 3.1 (machine-learning noise: inside the step bound
  on an F(θ0) grid refined around the crossover, outside it in σ, against bounded noise of the
  same size), Theorem 4.1 (rotated bounded noise escapes) and Lemma 4.2 (E F(θ_k) ~ k^(−q)
  under bounded noise).
- anlu_noise (Assumption 4): plain minibatch SGD on Chatterjee-initialized networks, an
  interpolating run (d >= n) and a non-interpolating one (n > p), trained by the generic engine
  with the statistics of Zhang et al. eq. (1) at every checkpoint: noise² / F along the
  trajectory.
"""

from sgdconv.anlu import claims as anlu_claims
from sgdconv.anlu import noise_claims
from sgdconv.anlu.noise import NOISE_RUN_KINDS, noise_runs
from sgdconv.anlu.workload import cluster_minutes

# The three experiments share one problem (network, data, searches for α̂ and Ĉ_L).
ANLU_PROBLEM = {key: config["anlu"][key] for key in ("net", "certificate", "smoothness")}
ANLU_THM31 = config["anlu"]["thm31"] | ANLU_PROBLEM
ANLU_THM41 = config["anlu"]["thm41"] | ANLU_PROBLEM
ANLU_LEM42 = config["anlu"]["lem42"] | ANLU_PROBLEM


rule simulate_anlu_thm31:
    output:
        conditions=out("theory/anlu_thm31_conditions.parquet"),
        steps=out("theory/anlu_thm31_steps.parquet"),
        trajectories=out("theory/anlu_thm31_trajectories.parquet"),
    log:
        log("simulate/anlu_thm31.log"),
    benchmark:
        out("benchmarks/simulate/anlu_thm31.tsv")
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=cluster_minutes("anlu_thm31", ANLU_THM31),
    params:
        settings=ANLU_THM31,
        seeds={s: seed(f"anlu_thm31_{s}") for s in ("data", "constants", "noise")},
    script:
        "../scripts/simulate_anlu_thm31.py"


rule simulate_anlu_thm41:
    output:
        conditions=out("theory/anlu_thm41_conditions.parquet"),
        steps=out("theory/anlu_thm41_steps.parquet"),
    log:
        log("simulate/anlu_thm41.log"),
    benchmark:
        out("benchmarks/simulate/anlu_thm41.tsv")
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=cluster_minutes("anlu_thm41", ANLU_THM41),
    params:
        settings=ANLU_THM41,
        seeds={s: seed(f"anlu_thm41_{s}") for s in ("data", "constants", "noise")},
    script:
        "../scripts/simulate_anlu_thm41.py"


rule simulate_anlu_lem42:
    output:
        conditions=out("theory/anlu_lem42_conditions.parquet"),
        steps=out("theory/anlu_lem42_steps.parquet"),
    log:
        log("simulate/anlu_lem42.log"),
    benchmark:
        out("benchmarks/simulate/anlu_lem42.tsv")
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=cluster_minutes("anlu_lem42", ANLU_LEM42),
    params:
        settings=ANLU_LEM42,
        seeds={s: seed(f"anlu_lem42_{s}") for s in ("data", "constants", "noise")},
    script:
        "../scripts/simulate_anlu_lem42.py"


artifact(
    "anlu_thm31",
    tables={
        "conditions": "theory/anlu_thm31_conditions.parquet",
        "steps": "theory/anlu_thm31_steps.parquet",
        "trajectories": "theory/anlu_thm31_trajectories.parquet",
    },
    params={"radius": ANLU_THM31["radius"]},
    notebook="workflow/notebooks/anlu_thm31.py",
    claims=anlu_claims.claims_thm31,
)


rule anlu_thm31:
    input:
        ARTIFACTS["anlu_thm31"].targets,


artifact(
    "anlu_thm41",
    tables={
        "conditions": "theory/anlu_thm41_conditions.parquet",
        "steps": "theory/anlu_thm41_steps.parquet",
    },
    params={"radius": ANLU_THM41["radius"]},
    notebook="workflow/notebooks/anlu_thm41.py",
    claims=anlu_claims.claims_thm41,
)


rule anlu_thm41:
    input:
        ARTIFACTS["anlu_thm41"].targets,


artifact(
    "anlu_lem42",
    tables={
        "conditions": "theory/anlu_lem42_conditions.parquet",
        "steps": "theory/anlu_lem42_steps.parquet",
    },
    params={"radius": ANLU_LEM42["radius"], "fit_from_n0": ANLU_LEM42["fit_from_n0"]},
    notebook="workflow/notebooks/anlu_lem42.py",
    claims=anlu_claims.claims_lem42,
)


rule anlu_lem42:
    input:
        ARTIFACTS["anlu_lem42"].targets,


# --- anlu_noise (Assumption 4): minibatch SGD through rules/training.smk and rules/stats.smk --

NOISE = config["anlu"]["noise"]
register_runs(
    noise_runs(
        NOISE,
        seeds={kind: seed(f"anlu_noise_{kind}") for kind in NOISE_RUN_KINDS},
        device=config["compute"]["device"],
    )
)

artifact(
    "anlu_noise",
    tables={
        "interpolating": "runs/anlu_noise_interpolating/stats.parquet",
        "non_interpolating": "runs/anlu_noise_non_interpolating/stats.parquet",
    },
    params={
        kind: {k: NOISE[kind][k] for k in ("n", "d", "widths", "lr")} for kind in NOISE_RUN_KINDS
    },
    notebook="workflow/notebooks/anlu_noise.py",
    claims=noise_claims.claims_anlu_noise,
)


rule anlu_noise:
    input:
        ARTIFACTS["anlu_noise"].targets,
