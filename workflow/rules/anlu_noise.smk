"""anlu_noise (An & Lu, Assumption 4): plain minibatch SGD on Chatterjee-initialized networks,
an interpolating run (d >= n) and a non-interpolating one (n > p), trained by the generic engine
(rules/training.smk) with the statistics of Zhang et al. eq. (1) at every checkpoint
(rules/stats.smk): noise² / F along the trajectory."""

NOISE = config["anlu"]["noise"]
NOISE_FACTORIES = "sgdconv.anlu.noise"


def noise_run_spec(settings, offset):
    """A training run spec (sgdconv.train.RunSpec) from one run's config section."""
    s = settings
    return {
        "model": {
            "name": f"{NOISE_FACTORIES}:chatterjee_net",
            "d": s["d"],
            "widths": s["widths"],
            "activation": s["activation"],
            "leaky_slope": s["leaky_slope"],
            "middle_low": s["middle_low"],
            "middle_high": s["middle_high"],
            "output_weight": s["output_weight"],
            "seed": seed_for(offset),
        },
        "data": {
            "name": f"{NOISE_FACTORIES}:regression_source",
            "n": s["n"],
            "d": s["d"],
            "inputs": s["inputs"],
            "target_scale": s["target_scale"],
            "seed": seed_for(offset + 1),
        },
        "loss": "mse",
        "batch_size": s["batch_size"],
        "epochs": s["epochs"],
        "lr": s["lr"],
        "checkpoint_every": s["checkpoint_every"],
        "seed": seed_for(offset + 2),
        "device": config["compute"]["device"],
    }


# The whole training set is the statistics sample, in micro-batches of one example: the noise
# norm of eq. (1) is then exact (no estimator variance), and no sharpness is needed here.
NOISE_STATS = {"microbatch": 1, "sharpness": False, "validation": False}

for _kind, _offset in (("interpolating", 5200), ("non_interpolating", 5210)):
    register_run(
        f"anlu_noise_{_kind}",
        noise_run_spec(NOISE[_kind], _offset),
        num_train=NOISE[_kind]["n"],
        stats={**NOISE_STATS, "sample_size": NOISE[_kind]["n"], "seed": seed_for(_offset + 3)},
        resources={"mem_mb": 1000, "runtime": 10},
    )

register_artifact(
    "anlu_noise",
    "anlu",
    tables={
        "interpolating": "runs/anlu_noise_interpolating/stats.parquet",
        "non_interpolating": "runs/anlu_noise_non_interpolating/stats.parquet",
    },
    params={
        "interpolating": {k: NOISE["interpolating"][k] for k in ("n", "d", "widths", "lr")},
        "non_interpolating": {k: NOISE["non_interpolating"][k] for k in ("n", "d", "widths", "lr")},
    },
)
