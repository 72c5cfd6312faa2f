# %% [markdown]
# # chatterjee_fig1: the region (3.2) of f(x, y) = (xy − 1)² (Chatterjee 2022, Fig. 1)
# Panel (a) is the paper's Figure 1: the shaded region |x0 y0 − 1| < (x0² + y0²)/4 where
# (2.1) holds, and the dashed curves xy = 1 where f = 0, with GD trajectories from starts
# inside the region (Theorem 2.2's step η) and outside it (a fixed step). Panel (b): f along
# those trajectories. Panel (c): for every grid start inside the region, the number of GD
# steps with Theorem 2.2's η until f < f_tol (the claim `chatterjee_region_gd_converges`).
# Drawn from `toy/chatterjee_fig1_grid.parquet` and `toy/chatterjee_fig1_paths.parquet`.

# %% tags=["parameters"]
tables = {"grid": "chatterjee_fig1_grid.parquet", "paths": "chatterjee_fig1_paths.parquet"}
png = "chatterjee_fig1.png"
pdf = "chatterjee_fig1.pdf"
tier = "default"
params = {"limit": 4.0, "f_tol": 1e-10, "outside_lr": 0.01}

# %%
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
grid = pd.read_parquet(tables["grid"])
paths = pd.read_parquet(tables["paths"])
limit = float(params["limit"])
f_tol = float(params["f_tol"])

# The grid table is a full (2m + 1)² grid: pivot it back to 2-D arrays for contour plots.
margin = grid.pivot(index="y0", columns="x0", values="margin")
steps = grid.assign(steps=grid["steps"].where(grid["inside"])).pivot(
    index="y0", columns="x0", values="steps"
)
xs, ys = margin.columns.to_numpy(), margin.index.to_numpy()


def draw_region(ax):
    """The paper's Figure 1: region (3.2) shaded, xy = 1 dashed, y = −x dotted."""
    ax.contourf(xs, ys, margin.to_numpy(), levels=[0, np.inf], colors=["0.82"])
    for sign in (1, -1):
        x = sign * np.geomspace(1 / limit, limit, 200)
        ax.plot(x, 1 / x, "k--", lw=0.9, label="xy = 1 (f = 0)" if sign == 1 else None)
    ax.plot([-limit, limit], [limit, -limit], ":", color="0.35", lw=0.8, label="y = −x")
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit), xlabel="x", ylabel="y", aspect="equal")


# %%
CATEGORIES = {
    "inside": ("C0", "start inside (3.2), η of Thm 2.2"),
    "outside": ("C3", f"start outside, η = {params['outside_lr']:g}"),
    "line": ("C2", f"start on y = −x, η = {params['outside_lr']:g}"),
}


def category(path):
    if path["inside"].iloc[0]:
        return "inside"
    return "line" if path["x0"].iloc[0] + path["y0"].iloc[0] == 0 else "outside"


fig, axes = panel_grid(1, 3)
fig.set_size_inches(fig.get_figwidth(), 3.9)  # room for the two square map panels
ax_region, ax_loss, ax_steps = axes[0]
draw_region(ax_region)
seen = set()
for _, path in paths.groupby("path"):
    kind = category(path)
    colour, label = CATEGORIES[kind]
    label = None if kind in seen else label
    seen.add(kind)
    ax_region.plot(path["x"], path["y"], "-", color=colour, lw=1.2)
    ax_region.plot(path["x"].iloc[0], path["y"].iloc[0], "o", color=colour, ms=3.5, label=label)
    ax_region.plot(path["x"].iloc[-1], path["y"].iloc[-1], "x", color=colour, ms=4.5, mew=1.2)
    ax_loss.semilogy(path["step"], path["f"], color=colour, lw=1.0)
ax_region.set_title("(a) Fig. 1: region (3.2), GD paths")
fig.legend(loc="outside lower center", ncols=5, fontsize="small")

ax_loss.axhline(f_tol, color="0.4", lw=0.8, ls="--")
ax_loss.text(0, f_tol * 3, f"f = {f_tol:g}", fontsize="x-small", color="0.3")
ax_loss.set(
    xlim=(0, 1.15 * paths.loc[paths["f"] < f_tol, "step"].max()),
    ylim=(f_tol / 10, None),
    xlabel="iteration k",
    ylabel="f(x_k)",
    title="(b) f along the GD paths (o → x)",
)

counts = steps.to_numpy()
mesh = ax_steps.pcolormesh(
    xs,
    ys,
    counts,
    shading="nearest",
    cmap="viridis",
    norm=mcolors.LogNorm(vmin=max(1, np.nanmin(counts)), vmax=np.nanmax(counts)),
    rasterized=True,
)
for sign in (1, -1):
    x = sign * np.geomspace(1 / limit, limit, 200)
    ax_steps.plot(x, 1 / x, "k--", lw=0.7)
ax_steps.set(
    xlim=(-limit, limit),
    ylim=(-limit, limit),
    xlabel="x0",
    ylabel="y0",
    aspect="equal",
    title=f"(c) GD steps to f < {f_tol:g}",
)
fig.colorbar(mesh, ax=ax_steps, label="steps, η of Thm 2.2")
fig.suptitle(f"Chatterjee (2022) Fig. 1: f(x, y) = (xy − 1)² ({tier} tier)")
save_figure(fig, png, pdf)
