# %% [markdown]
# # zhang_thm43: the time-averaged one-step loss change (Zhang et al. 2022, Thm. 4.3 / 4.4)
# |E_{μ_n}[L(θ) − L(F(θ))]| against the number of SGD steps n along each constant-lr run, on
# log-log axes, with least-squares fits and the theorem's n^(-1/2) for reference. Left: F the
# update SGD took (the average telescopes to (L(θ_0) − L(θ_n))/n); right: F independent
# updates drawn at the checkpoints (μ_n subsampled at the checkpoints).

# %% tags=["parameters"]
tables = {"thm43": "zhang_thm43.parquet"}
png = "zhang_thm43.png"
pdf = "zhang_thm43.pdf"
tier = "default"
params = {}

# %%
import numpy as np
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
table = pd.read_parquet(tables["thm43"])

# %%
fig, axes = panel_grid(1, 2, sharey=True)
for ax, column, title in (
    (axes[0][0], "realized", "realized updates"),
    (axes[0][1], "independent", "independent updates at the checkpoints"),
):
    for k, ((_run_id, lr), curve) in enumerate(table.groupby(["run_id", "lr"], sort=False)):
        values = curve[column].abs()
        keep = values > 0
        ax.plot(curve["n"][keep], values[keep], marker="o", ms=2, lw=0.8, color=f"C{k}")
        slope = curve[f"slope_{column}"].iloc[0]
        intercept = curve[f"intercept_{column}"].iloc[0]
        n = curve["n"].to_numpy(dtype=float)
        ax.plot(
            n,
            np.exp(intercept) * n**slope,
            ls="--",
            lw=0.8,
            color=f"C{k}",
            label=f"lr {lr:g}: slope {slope:.2f}",
        )
    n = table["n"].to_numpy(dtype=float)
    ref = table[column].abs().max()
    ax.plot(n, ref * (n / n.min()) ** -0.5, color="grey", lw=0.6, ls=":", label="∝ n^(-1/2)")
    ax.set(xscale="log", yscale="log", xlabel="SGD steps n", title=title)
    ax.legend(loc="lower left")
axes[0][0].set_ylabel("|time average of L(θ) − L(F(θ))|")
fig.suptitle(f"Zhang et al. Thm. 4.3: the time-averaged loss change vanishes ({tier} tier)")
save_figure(fig, png, pdf)
