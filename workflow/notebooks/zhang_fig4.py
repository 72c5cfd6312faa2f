# %% [markdown]
# # zhang_fig4: GD on f = 100 sin θ1 sin θ2 (Zhang et al. 2022, Fig. 4)
# Rows: the two learning rates. Columns: I the whole trajectory (colour = iteration),
# II the last iterations, III loss and its running average, IV gradient norm and its running
# average. Drawn from `synthetic/zhang_fig4.parquet`.

# %% tags=["parameters"]
tables = {"trajectories": "zhang_fig4.parquet"}
png = "zhang_fig4.png"
pdf = "zhang_fig4.pdf"
tier = "default"
params = {"window": 500}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
trajectories = pd.read_parquet(tables["trajectories"])
window = int(params["window"])

# %%
runs = list(trajectories.groupby("lr"))
fig, axes = panel_grid(len(runs), 4)
for row, (lr, run) in zip(axes, runs, strict=True):
    last = run[run["step"] >= run["step"].max() - window]
    for ax, part, title in (
        (row[0], run, "I: whole trajectory"),
        (row[1], last, f"II: last {window} steps"),
    ):
        points = ax.scatter(part["theta1"], part["theta2"], c=part["step"], cmap="viridis", s=6)
        ax.set(xlabel="θ1", ylabel="θ2", title=f"η = {lr:g}, {title}")
    fig.colorbar(points, ax=row[1], label="iteration")
    for ax, col, name in ((row[2], "loss", "loss"), (row[3], "grad_norm", "gradient norm")):
        ax.plot(run["step"], run[col], lw=0.6, label=name)
        ax.plot(run["step"], run[f"{col}_running_avg"], lw=1.8, label=f"average {name}")
        ax.set(xlabel="iteration", title=f"η = {lr:g}, {'III' if col == 'loss' else 'IV'}: {name}")
        ax.legend(loc="best")
    if run["grad_norm"].min() > 0 and run["grad_norm"].max() / run["grad_norm"].min() > 1e3:
        row[3].set_yscale("log")
fig.suptitle(f"Zhang et al. Fig. 4: GD on 100 sin θ1 sin θ2 ({tier} tier)")
save_figure(fig, png, pdf)
