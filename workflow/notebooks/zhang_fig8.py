# %% [markdown]
# # zhang_fig8: Transformer-XL, estimates against sample size (Zhang et al. 2022, Fig. 8, App. A.2)
# At two checkpoints of the cosine run (rows), the estimates on nested samples of segments,
# against the tokens behind them: the plug-in estimates of the sample (|ḡ| biased upwards by
# Jensen's inequality), the unbiased ones (± 2 SE) and the authors' estimator (K consecutive
# training batches with the memory carried; its noise on SGD's minibatch scale, beside the
# unbiased σ/√B). The dotted line marks the size of the per-checkpoint statistics.

# %% tags=["parameters"]
tables = {"sweep_step1000": "sweep.parquet"}
png = "zhang_fig8.png"
pdf = "zhang_fig8.pdf"
tier = "default"
params = {"chosen_tokens": 900000, "sharpness_tokens": 90000}

# %%
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullFormatter

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
sweeps = [pd.read_parquet(path) for _, path in sorted(tables.items())]

# %%
panels = [
    ("loss", "training loss L_S"),
    ("grad_norm", "gradient norm |∇L|"),
    ("noise_norm", "noise norm σ (per segment)"),
    ("noise_norm_minibatch", "minibatch noise σ/√B"),
    ("sharpness", "sharpness λ_max"),
]
labels = {"plugin": "plug-in", "unbiased": "unbiased", "authors": "authors' estimator"}
colors = {"plugin": "C1", "unbiased": "C2", "authors": "C0"}
kilo = FuncFormatter(lambda v, _: f"{v / 1000:g}k")
fig, axes = panel_grid(len(sweeps), len(panels))
for i, sweep in enumerate(sweeps):
    step = int(sweep["step"].iloc[0]) if len(sweep) else -1
    for j, (quantity, title) in enumerate(panels):
        ax = axes[i][j]
        for estimator, group in sweep[sweep["quantity"] == quantity].groupby("estimator"):
            group = group.sort_values("n_tokens")
            ax.errorbar(
                group["n_tokens"],
                group["value"],
                yerr=2 * group["se"].fillna(0),
                marker="o",
                ms=3,
                capsize=2,
                label=labels[estimator],
                color=colors[estimator],
            )
        chosen = params["sharpness_tokens" if quantity == "sharpness" else "chosen_tokens"]
        ax.axvline(chosen, color="grey", lw=0.6, ls=":")
        ax.set(xscale="log", title=f"{title}, step {step}")
        ax.set_xticks(sorted(sweep.loc[sweep["quantity"] == quantity, "n_tokens"].unique()))
        ax.xaxis.set_major_formatter(kilo)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("tokens" if i == len(sweeps) - 1 else "")
        if j in (1, 3):
            ax.legend(loc="best", fontsize="x-small")
fig.suptitle(f"Zhang et al. Fig. 8: estimates vs sample size, Transformer-XL ({tier} tier)")
save_figure(fig, png, pdf)
