# %% [markdown]
# # zhang_fig5: moving-average vs last-iterate training loss (Zhang et al. 2022, Fig. 5)
# Left, eq. (2): the mean of the minibatch losses over each epoch (``loss_moving_avg`` of the
# stats table, at every checkpoint that ends an epoch). Middle, eq. (3): the loss at the
# epoch's last iterate on the same minibatches. Right: both, with the first phase shaded (the
# claim compares them after it).

# %% tags=["parameters"]
tables = {"stats": "stats.parquet", "train_log": "train_log.parquet"}
png = "zhang_fig5.png"
pdf = "zhang_fig5.pdf"
tier = "default"
params = {"milestones": [30, 60], "first_milestone": 30}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
stats = pd.read_parquet(tables["stats"]).sort_values("epoch")
both = stats.dropna(subset=["loss_moving_avg", "loss_last"])

# %%
fig, axes = panel_grid(1, 3, sharey=True)
axes[0][0].plot(both["epoch"], both["loss_moving_avg"], marker="o", ms=2)
axes[0][0].set(title="eq. (2): moving average", ylabel="full-batch training loss")
axes[0][1].plot(both["epoch"], both["loss_last"], marker="o", ms=2, color="C1")
axes[0][1].set(title="eq. (3): last iterate")
ax = axes[0][2]
ax.plot(both["epoch"], both["loss_moving_avg"], marker="o", ms=2, label="eq. (2)")
ax.plot(both["epoch"], both["loss_last"], marker="o", ms=2, label="eq. (3)")
ax.axvspan(0, params["first_milestone"], color="grey", alpha=0.1, label="first phase")
ax.set(title="both")
ax.legend(loc="upper right")
for ax in axes[0]:
    ax.set_xlabel("epoch")
    ax.set_yscale("log")
    for m in params["milestones"]:
        ax.axvline(m, color="grey", lw=0.6, ls=":")
fig.suptitle(
    f"Zhang et al. Fig. 5: training loss as eq. (2) vs eq. (3), step schedule ({tier} tier)"
)
save_figure(fig, png, pdf)
