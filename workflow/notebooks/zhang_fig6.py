# %% [markdown]
# # zhang_fig6: the quantities of eq. (1) when the model interpolates (Zhang et al. 2022, Fig. 6)
# The interpolating experiment (CIFAR-10 role) with its step schedule: training loss,
# gradient norm (log scale), noise norm, sharpness and validation accuracy against epoch.

# %% tags=["parameters"]
tables = {"stats": "stats.parquet"}
png = "zhang_fig6.png"
pdf = "zhang_fig6.pdf"
tier = "default"
params = {"milestones": [100, 150]}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
stats = pd.read_parquet(tables["stats"]).sort_values("epoch")
status = stats["status"].iloc[0]

# %%
panels = [
    ("loss", "training loss L_S", True),
    ("grad_norm", "gradient norm |∇L|", True),
    ("noise_norm", "noise norm σ", True),
    ("sharpness", "sharpness λ_max", False),
    ("val_acc", "validation accuracy", False),
]
fig, axes = panel_grid(1, len(panels))
for ax, (col, title, log_scale) in zip(axes[0], panels, strict=True):
    ax.plot(stats["epoch"], stats[col], marker="o", ms=2)
    if col == "grad_norm":  # 2-SE band from the squared estimate
        ax.fill_between(
            stats["epoch"],
            stats["grad_norm_lcb"].clip(lower=stats[col].min() / 10),
            stats["grad_norm_ucb"],
            alpha=0.25,
        )
    elif f"{col}_se" in stats:
        ax.fill_between(
            stats["epoch"],
            (stats[col] - 2 * stats[f"{col}_se"]).clip(lower=stats[col].min() / 10),
            stats[col] + 2 * stats[f"{col}_se"],
            alpha=0.25,
        )
    if log_scale:
        ax.set_yscale("log")
    ax.set(title=title, xlabel="epoch")
    for m in params["milestones"]:
        ax.axvline(m, color="grey", lw=0.6, ls=":")
suffix = "" if status == "completed" else f" — run {status}"
fig.suptitle(f"Zhang et al. Fig. 6: an interpolating model, step schedule ({tier} tier){suffix}")
save_figure(fig, png, pdf)
