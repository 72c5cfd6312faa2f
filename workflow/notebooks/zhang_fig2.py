# %% [markdown]
# # zhang_fig2: the quantities of eq. (1) with constant learning rates (Zhang et al. 2022, Fig. 2)
# One column per constant learning rate, the last the longer run (its first epochs are the
# regular-length run at that lr, sliced by `sgdconv.zhang.analysis.view_stats`); rows: training
# loss, gradient norm (unbiased, 2-SE band from the squared estimate, and the plug-in |ḡ|),
# noise norm, sharpness.

# %% tags=["parameters"]
tables = {"lr0.1": "stats.parquet"}
png = "zhang_fig2.png"
pdf = "zhang_fig2.pdf"
tier = "default"
params = {"views": [{"table": "lr0.1", "lr": 0.1, "epochs": 90, "long": False}]}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style
from sgdconv.zhang.analysis import view_stats

use_style()
views = params["views"]
frames = [view_stats(pd.read_parquet(tables[v["table"]]), v["epochs"]) for v in views]

# %%
rows = [
    ("loss", "training loss L_S"),
    ("grad_norm", "gradient norm |∇L|"),
    ("noise_norm", "noise norm σ"),
    ("sharpness", "sharpness λ_max"),
]
fig, axes = panel_grid(len(rows), len(views), sharey="row")
for j, (view, stats) in enumerate(zip(views, frames, strict=True)):
    status = stats["status"].iloc[0]
    for i, (col, name) in enumerate(rows):
        ax = axes[i][j]
        ax.plot(stats["epoch"], stats[col], marker="o", ms=2)
        if col == "grad_norm":
            ax.fill_between(
                stats["epoch"], stats["grad_norm_lcb"], stats["grad_norm_ucb"], alpha=0.25
            )
            ax.plot(stats["epoch"], stats["grad_norm_plugin"], ls="--", lw=0.8)
        elif f"{col}_se" in stats:
            ax.fill_between(
                stats["epoch"],
                stats[col] - 2 * stats[f"{col}_se"],
                stats[col] + 2 * stats[f"{col}_se"],
                alpha=0.25,
            )
        if i == 0:
            long = " (long run)" if view["long"] else ""
            flag = "" if status == "completed" else f" [{status}]"
            ax.set_title(f"lr {view['lr']:g}, {view['epochs']} epochs{long}{flag}")
        if j == 0:
            ax.set_ylabel(name)
        if i == len(rows) - 1:
            ax.set_xlabel("epoch")
axes[1][0].legend(["unbiased", "± 2 SE", "paper's plug-in |ḡ|"], loc="best")
fig.suptitle(f"Zhang et al. Fig. 2: constant learning rates ({tier} tier)")
save_figure(fig, png, pdf)
