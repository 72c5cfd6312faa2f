# %% [markdown]
# # zhang_fig3: Transformer-XL, the quantities of eq. (1) along training (Zhang et al. 2022, Fig. 3)
# One column per run (the cosine schedule, then the constant learning rates), as in the paper;
# rows: training loss (eq. (2), the moving average of the minibatch losses since the previous
# checkpoint, and eq. (1) on the fixed sample of segments), gradient norm |∇L| (the unbiased
# estimate with its 2-SE band, and the paper's plug-in |ḡ|), noise norm σ per segment and σ/√B
# for SGD's minibatch of B segments, sharpness λ_max (eval mode) and validation loss, against
# the optimizer step. Drawn from `runs/<run_id>/stats.parquet` and `train_log.parquet`.

# %% tags=["parameters"]
tables = {"cosine": "stats.parquet", "cosine_log": "train_log.parquet"}
png = "zhang_fig3.png"
pdf = "zhang_fig3.pdf"
tier = "default"
params = {"runs": [{"name": "cosine", "schedule": "cosine", "lr": 2.5e-4}], "batch_size": 60}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
runs = params["runs"]
stats = {r["name"]: pd.read_parquet(tables[r["name"]]).sort_values("step") for r in runs}

# %%
rows = ["training loss", "gradient norm |∇L|", "noise norm", "sharpness λ_max", "validation loss"]
fig, axes = panel_grid(len(rows), len(runs), sharey="row")
for j, run in enumerate(runs):
    s = stats[run["name"]]
    trained = s[s["step"] > 0]
    col = [axes[i][j] for i in range(len(rows))]
    col[0].plot(trained["step"], trained["loss_moving_avg"], lw=0.9, label="eq. (2), moving avg.")
    col[0].plot(s["step"], s["loss"], marker="o", ms=2, label="eq. (1), sample")
    col[1].plot(s["step"], s["grad_norm"], marker="o", ms=2, label="unbiased")
    col[1].fill_between(s["step"], s["grad_norm_lcb"], s["grad_norm_ucb"], alpha=0.25)
    col[1].plot(s["step"], s["grad_norm_plugin"], ls="--", lw=0.8, label="plug-in |ḡ|")
    col[2].plot(s["step"], s["noise_norm"], marker="o", ms=2, label="σ per segment")
    col[2].plot(s["step"], s["noise_norm_minibatch"], ls="--", lw=0.8, label="σ/√B, minibatch")
    col[3].plot(s["step"], s["sharpness"], marker="o", ms=2)
    col[4].plot(s["step"], s["val_loss"], marker="o", ms=2)
    kind = "cosine" if run["schedule"] == "cosine" else "constant"
    status = s["status"].iloc[0]
    flag = "" if status == "completed" else f" [{status}]"
    col[0].set_title(f"{kind} lr {run['lr']:g}{flag}")
    col[-1].set_xlabel("step")
    for ax, name in zip(col, rows, strict=True):
        ax.set_ylabel(name if j == 0 else "")
    col[1].set_yscale("log")
    if j == 0:
        for ax in col[:3]:
            ax.legend(loc="best", fontsize="x-small")
fig.suptitle(
    f"Zhang et al. Fig. 3: Transformer-XL, {params.get('n_layer', '?')} layers ({tier} tier)"
)
save_figure(fig, png, pdf)
