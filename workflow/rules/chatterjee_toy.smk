"""chatterjee_fig1, chatterjee_prop31, chatterjee_thm22: the (xy − 1)² illustration of
Chatterjee (2022), Section 3 (with Theorem 2.2 and the proof of Proposition 3.1, Section 9).
Exact computations: the same in every tier up to the resolution of the grid of starts."""

XY_FIG1 = config["chatterjee"]["fig1"]
XY_PROP31 = config["chatterjee"]["prop31"]
XY_THM22 = config["chatterjee"]["thm22"]


rule simulate_chatterjee_fig1:
    output:
        grid=out("toy/chatterjee_fig1_grid.parquet"),
        paths=out("toy/chatterjee_fig1_paths.parquet"),
    params:
        settings=XY_FIG1,
    conda:
        ENV
    log:
        log("simulate/chatterjee_fig1.log"),
    resources:
        **SMALL,
    script:
        "../scripts/simulate_chatterjee_fig1.py"


rule simulate_chatterjee_prop31:
    output:
        starts=out("toy/chatterjee_prop31_starts.parquet"),
        paths=out("toy/chatterjee_prop31_paths.parquet"),
    params:
        settings=XY_PROP31,
    conda:
        ENV
    log:
        log("simulate/chatterjee_prop31.log"),
    resources:
        **SMALL,
    script:
        "../scripts/simulate_chatterjee_prop31.py"


rule simulate_chatterjee_thm22:
    output:
        constants=out("toy/chatterjee_thm22_constants.parquet"),
        trajectories=out("toy/chatterjee_thm22_trajectories.parquet"),
    params:
        settings=XY_THM22,
    conda:
        ENV
    log:
        log("simulate/chatterjee_thm22.log"),
    resources:
        **SMALL,
    script:
        "../scripts/simulate_chatterjee_thm22.py"


register_artifact(
    "chatterjee_fig1",
    "chatterjee",
    tables={
        "grid": "toy/chatterjee_fig1_grid.parquet",
        "paths": "toy/chatterjee_fig1_paths.parquet",
    },
    params={
        "limit": XY_FIG1["limit"],
        "f_tol": XY_FIG1["f_tol"],
        "outside_lr": XY_FIG1["outside_lr"],
    },
)

register_artifact(
    "chatterjee_prop31",
    "chatterjee",
    tables={
        "starts": "toy/chatterjee_prop31_starts.parquet",
        "paths": "toy/chatterjee_prop31_paths.parquet",
    },
    params={"limit": XY_PROP31["limit"], "t_max": XY_PROP31["t_max"]},
)

register_artifact(
    "chatterjee_thm22",
    "chatterjee",
    tables={
        "constants": "toy/chatterjee_thm22_constants.parquet",
        "trajectories": "toy/chatterjee_thm22_trajectories.parquet",
    },
    params={"bound_floor": XY_THM22["bound_floor"]},
)
