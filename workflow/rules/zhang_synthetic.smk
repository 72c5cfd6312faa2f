"""zhang_fig4: gradient descent on f = 100 sin θ1 sin θ2 (Zhang et al., Section 3.4)."""

SYNTHETIC = config["zhang"]["synthetic"]


rule simulate_zhang_fig4:
    output:
        out("synthetic/zhang_fig4.parquet"),
    params:
        settings=SYNTHETIC,
    conda:
        ENV
    log:
        log("simulate/zhang_fig4.log"),
    resources:
        **SMALL,
    script:
        "../scripts/simulate_zhang_fig4.py"


register_artifact(
    "zhang_fig4",
    "zhang",
    tables={"trajectories": "synthetic/zhang_fig4.parquet"},
    params={
        "lr_converging": SYNTHETIC["lrs"][0],
        "lr_oscillating": SYNTHETIC["lrs"][1],
        "window": SYNTHETIC["window"],
        "amplitude": SYNTHETIC["amplitude"],
    },
)
