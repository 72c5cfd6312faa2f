# %% [markdown]
# # zhang_fig7: estimated statistics vs sample size (Zhang et al. 2022, Fig. 7, App. A.2)
# At the sweep checkpoint and at the final checkpoint of the step-schedule run (one row each),
# on nested samples of increasing size: the plug-in estimates (|ḡ| is biased upwards by
# Jensen's inequality), the unbiased estimates of the population's |∇L| and σ (± 2 SE), and
# the authors' estimator (their scripts: |ḡ| over K minibatches, the noise on the minibatch
# scale √((1/K) Σ |g_j − ḡ'|²) ≈ σ/√b, 10 power iterations for the sharpness). The dotted
# lines mark the sizes the per-checkpoint statistics use.

# %% tags=["parameters"]
tables = {"sweep": "sample_size_sweep.parquet"}
png = "zhang_fig7.png"
pdf = "zhang_fig7.pdf"
tier = "default"
params = {"chosen_size": 1024, "sharpness_size": 512}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
sweeps = [
    pd.read_parquet(path) for name, path in sorted(tables.items()) if name.startswith("sweep")
]
sweeps = sorted((s for s in sweeps if len(s)), key=lambda s: s["epoch"].iloc[0])

# %%
quantities = [
    ("loss", "training loss L_S"),
    ("grad_norm", "gradient norm |∇L|"),
    ("noise_norm", "noise norm σ (authors': σ_b)"),
    ("sharpness", "sharpness λ_max"),
]
labels = {"plugin": "plug-in", "unbiased": "unbiased", "authors": "authors' scripts"}
styles = {"plugin": ("-", "o"), "unbiased": ("--", "s"), "authors": (":", "^")}
fig, axes = panel_grid(len(sweeps), len(quantities))
for i, sweep in enumerate(sweeps):
    for ax, (quantity, title) in zip(axes[i], quantities, strict=True):
        for estimator, group in sweep[sweep["quantity"] == quantity].groupby("estimator"):
            group = group.sort_values("n_samples")
            ax.errorbar(
                group["n_samples"],
                group["value"],
                yerr=2 * group["se"].fillna(0),
                ls=styles[estimator][0],
                marker=styles[estimator][1],
                ms=3,
                capsize=2,
                label=labels[estimator],
            )
        size = params["chosen_size"]
        if quantity == "sharpness" and params.get("sharpness_size"):
            size = params["sharpness_size"]
        ax.axvline(size, color="grey", lw=0.6, ls=":", label="size per checkpoint")
        scale = "log" if quantity == "noise_norm" else "linear"  # two scales: σ and σ/√b
        ax.set(title=f"{title}, epoch {sweep['epoch'].iloc[0]:g}", xscale="log", yscale=scale)
        if i == len(sweeps) - 1:
            ax.set_xlabel("sample size m")
    axes[i][1].legend(loc="best")
fig.suptitle(f"Zhang et al. Fig. 7: estimates vs sample size ({tier} tier)")
save_figure(fig, png, pdf)
