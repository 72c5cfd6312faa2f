# %% [markdown]
# # zhang_fig7: estimated statistics vs sample size (Zhang et al. 2022, Fig. 7, App. A.2)
# At the final checkpoint of the step-schedule run, on nested samples of increasing size:
# the paper's plug-in estimates (|ḡ| is biased upwards by Jensen's inequality) and the
# unbiased estimates of the population's |∇L| and σ, with ± 2 standard errors.

# %% tags=["parameters"]
tables = {"sweep": "sample_size_sweep.parquet"}
png = "zhang_fig7.png"
pdf = "zhang_fig7.pdf"
tier = "default"
params = {"chosen_size": 1024}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
sweep = pd.read_parquet(tables["sweep"])
epoch = sweep["epoch"].iloc[0]

# %%
quantities = [
    ("loss", "training loss L_S"),
    ("grad_norm", "gradient norm |∇L|"),
    ("noise_norm", "noise norm σ"),
    ("sharpness", "sharpness λ_max"),
]
labels = {"paper": "paper's estimator (plug-in)", "unbiased": "unbiased estimator"}
fig, axes = panel_grid(1, len(quantities))
for ax, (quantity, title) in zip(axes[0], quantities, strict=True):
    for estimator, group in sweep[sweep["quantity"] == quantity].groupby("estimator"):
        group = group.sort_values("n_samples")
        ax.errorbar(
            group["n_samples"],
            group["value"],
            yerr=2 * group["se"].fillna(0),
            marker="o",
            ms=3,
            capsize=2,
            label=labels[estimator],
        )
    ax.axvline(
        params["chosen_size"], color="grey", lw=0.6, ls=":", label="size used per checkpoint"
    )
    ax.set(title=title, xlabel="sample size m", xscale="log")
axes[0][1].legend(loc="best")
fig.suptitle(f"Zhang et al. Fig. 7: estimates vs sample size at epoch {epoch:g} ({tier} tier)")
save_figure(fig, png, pdf)
