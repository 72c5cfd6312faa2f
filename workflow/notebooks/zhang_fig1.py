# %% [markdown]
# # zhang_fig1: the quantities of eq. (1) along the step-schedule run (Zhang et al. 2022, Fig. 1)
# Validation accuracy, training loss, gradient norm |∇L|, noise norm σ and sharpness λ_max
# against epoch for the non-interpolating experiment with the step schedule (ImageNet role).
# The gradient norm is the unbiased estimate with its 2-SE band from the squared estimate
# (√max(|∇L|² ∓ 2 SE, 0): a clipped estimate keeps its upper bound), beside the paper's
# plug-in |ḡ|. Drawn from `runs/zhang_nonint_step/stats.parquet`.

# %% tags=["parameters"]
tables = {"stats": "stats.parquet", "train_log": "train_log.parquet"}
png = "zhang_fig1.png"
pdf = "zhang_fig1.pdf"
tier = "default"
params = {"milestones": [30, 60], "epochs": 90}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
stats = pd.read_parquet(tables["stats"]).sort_values("epoch")
status = stats["status"].iloc[0]
trained = stats[stats["epoch"] > 0]

# %%
fig, grid = panel_grid(1, 5)
axes = grid[0]
ax = axes[0]
ax.plot(stats["epoch"], stats["val_acc"], marker="o", ms=2)
ax.set(title="validation accuracy", ylabel="top-1 accuracy")
ax = axes[1]
ax.plot(trained["epoch"], trained["loss_moving_avg"], lw=0.8, label="moving average, eq. (2)")
ax.plot(stats["epoch"], stats["loss"], marker="o", ms=2, label="L_S on the sample, eq. (1)")
ax.set(title="training loss", ylabel="loss")
ax.legend(loc="upper right")
ax = axes[2]
ax.plot(stats["epoch"], stats["grad_norm"], marker="o", ms=2, label="unbiased estimate")
ax.fill_between(
    stats["epoch"], stats["grad_norm_lcb"], stats["grad_norm_ucb"], alpha=0.25, label="± 2 SE"
)
ax.plot(stats["epoch"], stats["grad_norm_plugin"], ls="--", lw=0.8, label="paper's plug-in |ḡ|")
ax.set(title="gradient norm |∇L|", yscale="log")
ax.legend(loc="best")
ax = axes[3]
ax.plot(stats["epoch"], stats["noise_norm"], marker="o", ms=2)
ax.fill_between(
    stats["epoch"],
    stats["noise_norm"] - 2 * stats["noise_norm_se"],
    stats["noise_norm"] + 2 * stats["noise_norm_se"],
    alpha=0.25,
)
ax.set(title="noise norm σ")
ax = axes[4]
ax.plot(stats["epoch"], stats["sharpness"], marker="o", ms=2)
ax.set(title="sharpness λ_max")
for ax in axes:
    ax.set_xlabel("epoch")
    for m in params["milestones"]:
        ax.axvline(m, color="grey", lw=0.6, ls=":")
suffix = "" if status == "completed" else f" — run {status}"
milestones = params["milestones"]
fig.suptitle(
    f"Zhang et al. Fig. 1: step schedule, lr ÷10 at epochs {milestones} ({tier} tier){suffix}"
)
save_figure(fig, png, pdf)
