"""Chatterjee (2022), *Convergence of gradient descent for deep neural networks*: every
artifact of the paper.

- chatterjee_fig1, chatterjee_prop31, chatterjee_thm22: the (xy − 1)² illustration of Section 3
  (with Theorem 2.2 and the proof of Proposition 3.1, Section 9). Exact computations: the same
  in every tier up to the resolution of the grid of starts.
- chatterjee_thm41, chatterjee_thm45: the deep networks of Section 4. Theorem 4.1
  (initialization, local Łojasiewicz certificate, GD to zero loss without leaving the
  certificate's ball) and Theorem 4.5 (LeCun initialization: fraction of seeds converging and
  the iterations they need vs n, for d/n through and below 1, Remark 4.8).
"""

from sgdconv.chatterjee import claims as nets_claims
from sgdconv.chatterjee import xy_claims
from sgdconv.chatterjee.workload import cluster_minutes, thm41_work, thm45_work

XY_FIG1 = config["chatterjee"]["fig1"]
XY_PROP31 = config["chatterjee"]["prop31"]
XY_THM22 = config["chatterjee"]["thm22"]


rule simulate_chatterjee_fig1:
    output:
        grid=out("toy/chatterjee_fig1_grid.parquet"),
        paths=out("toy/chatterjee_fig1_paths.parquet"),
    log:
        log("simulate/chatterjee_fig1.log"),
    benchmark:
        out("benchmarks/simulate/chatterjee_fig1.tsv")
    conda:
        ENV
    resources:
        **SMALL,
    params:
        settings=XY_FIG1,
    script:
        "../scripts/simulate_chatterjee_fig1.py"


rule simulate_chatterjee_prop31:
    output:
        starts=out("toy/chatterjee_prop31_starts.parquet"),
        paths=out("toy/chatterjee_prop31_paths.parquet"),
    log:
        log("simulate/chatterjee_prop31.log"),
    benchmark:
        out("benchmarks/simulate/chatterjee_prop31.tsv")
    conda:
        ENV
    resources:
        **SMALL,
    params:
        settings=XY_PROP31,
    script:
        "../scripts/simulate_chatterjee_prop31.py"


rule simulate_chatterjee_thm22:
    output:
        constants=out("toy/chatterjee_thm22_constants.parquet"),
        trajectories=out("toy/chatterjee_thm22_trajectories.parquet"),
    log:
        log("simulate/chatterjee_thm22.log"),
    benchmark:
        out("benchmarks/simulate/chatterjee_thm22.tsv")
    conda:
        ENV
    resources:
        **SMALL,
    params:
        settings=XY_THM22,
    script:
        "../scripts/simulate_chatterjee_thm22.py"


artifact(
    "chatterjee_fig1",
    tables={
        "grid": "toy/chatterjee_fig1_grid.parquet",
        "paths": "toy/chatterjee_fig1_paths.parquet",
    },
    params={
        "limit": XY_FIG1["limit"],
        "f_tol": XY_FIG1["f_tol"],
        "outside_lr": XY_FIG1["outside_lr"],
    },
    notebook="workflow/notebooks/chatterjee_fig1.py",
    claims=xy_claims.claims_fig1,
)


rule chatterjee_fig1:
    input:
        ARTIFACTS["chatterjee_fig1"].targets,


artifact(
    "chatterjee_prop31",
    tables={
        "starts": "toy/chatterjee_prop31_starts.parquet",
        "paths": "toy/chatterjee_prop31_paths.parquet",
    },
    params={"limit": XY_PROP31["limit"], "t_max": XY_PROP31["t_max"]},
    notebook="workflow/notebooks/chatterjee_prop31.py",
    claims=xy_claims.claims_prop31,
)


rule chatterjee_prop31:
    input:
        ARTIFACTS["chatterjee_prop31"].targets,


artifact(
    "chatterjee_thm22",
    tables={
        "constants": "toy/chatterjee_thm22_constants.parquet",
        "trajectories": "toy/chatterjee_thm22_trajectories.parquet",
    },
    params={"bound_floor": XY_THM22["bound_floor"]},
    notebook="workflow/notebooks/chatterjee_thm22.py",
    claims=xy_claims.claims_thm22,
)


rule chatterjee_thm22:
    input:
        ARTIFACTS["chatterjee_thm22"].targets,


NETS_THM41 = config["chatterjee"]["thm41"]
NETS_THM45 = config["chatterjee"]["thm45"]


rule simulate_chatterjee_thm41:
    output:
        configs=out("theory/chatterjee_thm41_configs.parquet"),
        curves=out("theory/chatterjee_thm41_curves.parquet"),
        trials=out("theory/chatterjee_thm41_trials.parquet"),
        ladder=out("theory/chatterjee_thm41_ladder.parquet"),
    log:
        log("simulate/chatterjee_thm41.log"),
    benchmark:
        out("benchmarks/simulate/chatterjee_thm41.tsv")
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=cluster_minutes(thm41_work(NETS_THM41)),
    params:
        settings=NETS_THM41,
        seed=seed("chatterjee_thm41"),
    script:
        "../scripts/simulate_chatterjee_thm41.py"


rule simulate_chatterjee_thm45:
    output:
        fractions=out("theory/chatterjee_thm45_fractions.parquet"),
        runs=out("theory/chatterjee_thm45_runs.parquet"),
    log:
        log("simulate/chatterjee_thm45.log"),
    benchmark:
        out("benchmarks/simulate/chatterjee_thm45.tsv")
    conda:
        ENV
    resources:
        mem_mb=4000,
        runtime=cluster_minutes(thm45_work(NETS_THM45)),
    params:
        settings=NETS_THM45,
        seed=seed("chatterjee_thm45"),
    script:
        "../scripts/simulate_chatterjee_thm45.py"


artifact(
    "chatterjee_thm41",
    tables={
        "configs": "theory/chatterjee_thm41_configs.parquet",
        "curves": "theory/chatterjee_thm41_curves.parquet",
        "trials": "theory/chatterjee_thm41_trials.parquet",
        "ladder": "theory/chatterjee_thm41_ladder.parquet",
    },
    params={"tol": NETS_THM41["tol"], "max_steps": NETS_THM41["max_steps"]},
    notebook="workflow/notebooks/chatterjee_thm41.py",
    claims=nets_claims.claims_thm41,
)


rule chatterjee_thm41:
    input:
        ARTIFACTS["chatterjee_thm41"].targets,


artifact(
    "chatterjee_thm45",
    tables={
        "fractions": "theory/chatterjee_thm45_fractions.parquet",
        "runs": "theory/chatterjee_thm45_runs.parquet",
    },
    params={"tol": NETS_THM45["tol"], "max_steps": NETS_THM45["max_steps"]},
    notebook="workflow/notebooks/chatterjee_thm45.py",
    claims=nets_claims.claims_thm45,
)


rule chatterjee_thm45:
    input:
        ARTIFACTS["chatterjee_thm45"].targets,
