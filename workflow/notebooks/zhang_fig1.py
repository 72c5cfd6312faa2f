# %% [markdown]
# # zhang_fig1: the quantities of eq. (1) along the step-schedule run (Zhang et al. 2022, Fig. 1)
# Validation accuracy, training loss, gradient norm |∇L|, noise norm σ and sharpness λ_max
# against epoch for the non-interpolating experiment with the step schedule (ImageNet role).
# Drawn from `runs/zhang_nonint_step/stats.parquet` and its `train_log.parquet`.

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
log = pd.read_parquet(tables["train_log"])
status = stats["status"].iloc[0]

# %%
fig, grid = panel_grid(1, 5)
axes = grid[0]
ax = axes[0]
ax.plot(stats["epoch"], stats["val_acc"], marker="o", ms=2)
ax.set(title="validation accuracy", ylabel="top-1 accuracy")
ax = axes[1]
per_epoch = log.groupby("epoch")["minibatch_loss"].mean()
ax.plot(per_epoch.index + 1, per_epoch.to_numpy(), lw=0.8, label="moving average, eq. (2)")
ax.plot(stats["epoch"], stats["loss"], marker="o", ms=2, label="L_S on the sample, eq. (1)")
ax.set(title="training loss", ylabel="loss")
ax.legend(loc="upper right")
for ax, col, title in (
    (axes[2], "grad_norm", "gradient norm |∇L|"),
    (axes[3], "noise_norm", "noise norm σ"),
):
    ax.plot(stats["epoch"], stats[col], marker="o", ms=2, label="unbiased estimate")
    ax.fill_between(
        stats["epoch"],
        stats[col] - 2 * stats[f"{col}_se"],
        stats[col] + 2 * stats[f"{col}_se"],
        alpha=0.25,
        label="± 2 se",
    )
    ax.set(title=title)
axes[2].plot(
    stats["epoch"], stats["grad_norm_plugin"], ls="--", lw=0.8, label="paper's plug-in |ḡ|"
)
axes[2].legend(loc="best")
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
