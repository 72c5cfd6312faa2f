# %% [markdown]
# # chatterjee_prop31: the gradient flow of (xy − 1)² enters the region (3.2) (Prop. 3.1)
# Panel (a): for each grid start, the time at which the gradient flow (3.1) enters the
# region (3.2) of Figure 1 (grey: starts already inside; the starts on y = −x never enter and
# go to the saddle (0, 0)). Panel (b): a few flow paths. Panel (c): the entry time against
# the distance |x0 + y0| to the line y = −x, which grows like ½ log(1/|x0 + y0|) (Section 9:
# near the line d(x + y)/dt = 2(1 − xy)(x + y) with 1 − xy >= 1). Drawn from
# `toy/chatterjee_prop31_starts.parquet` and `toy/chatterjee_prop31_paths.parquet`.

# %% tags=["parameters"]
tables = {
    "starts": "chatterjee_prop31_starts.parquet",
    "paths": "chatterjee_prop31_paths.parquet",
}
png = "chatterjee_prop31.png"
pdf = "chatterjee_prop31.pdf"
tier = "default"
params = {"limit": 4.0, "t_max": 40.0}

# %%
import matplotlib.colors as mcolors
import numpy as np
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
starts = pd.read_parquet(tables["starts"])
paths = pd.read_parquet(tables["paths"])
limit = float(params["limit"])
grid = starts[starts["set"] == "grid"]
near = starts[starts["set"] == "near_line"]
on_line = grid[grid["on_antidiagonal"]]
# Entry times on the (2m + 1)² grid as 2-D arrays; starts already inside (t = 0) and on the
# line (never) are masked and drawn separately.
t_enter = grid.assign(t=grid["t_enter"].where(grid["t_enter"] > 0)).pivot(
    index="y0", columns="x0", values="t"
)
margin = grid.pivot(index="y0", columns="x0", values="margin")
at_zero = grid.assign(zero=grid["t_enter"] == 0).pivot(index="y0", columns="x0", values="zero")
xs, ys = t_enter.columns.to_numpy(), t_enter.index.to_numpy()


def draw_curves(ax):
    """xy = 1 dashed (where f = 0) and y = −x (the flows there go to the saddle)."""
    for sign in (1, -1):
        x = sign * np.geomspace(1 / limit, limit, 200)
        ax.plot(x, 1 / x, "k--", lw=0.8, label="xy = 1 (f = 0)" if sign == 1 else None)
    ax.plot([-limit, limit], [limit, -limit], ":", color="0.2", lw=1.0, label="y = −x")
    ax.set(xlim=(-limit, limit), ylim=(-limit, limit), aspect="equal")


# %%
fig, axes = panel_grid(1, 3)
fig.set_size_inches(fig.get_figwidth(), 3.9)  # room for the two square map panels
ax_time, ax_paths, ax_log = axes[0]

positive = t_enter.to_numpy()
mesh = ax_time.pcolormesh(
    xs,
    ys,
    positive,
    shading="nearest",
    cmap="magma_r",
    norm=mcolors.LogNorm(vmin=np.nanmin(positive), vmax=np.nanmax(positive)),
    rasterized=True,
)
# Grey cells: starts entering at t = 0 (inside, or on the boundary of, the region), drawn
# cell by cell like the entry times.
ax_time.pcolormesh(
    xs,
    ys,
    np.where(at_zero.to_numpy(), 1.0, np.nan),
    shading="nearest",
    cmap=mcolors.ListedColormap(["0.82"]),
    rasterized=True,
)
draw_curves(ax_time)
ax_time.plot(
    on_line["x0"],
    on_line["y0"],
    "o",
    color="C2",
    mec="C2",
    ms=2,
    label="start on y = −x (→ saddle)",
)
ax_time.set(xlabel="x0", ylabel="y0", title="(a) flow entry time into (3.2)")
fig.colorbar(mesh, ax=ax_time, label="entry time t (grey: t = 0)", pad=0.02)

ax_paths.contourf(xs, ys, margin.to_numpy(), levels=[0, np.inf], colors=["0.82"])
draw_curves(ax_paths)
for i, (_, path) in enumerate(paths.groupby("path")):
    colour = f"C{i % 10}"
    ax_paths.plot(path["x"], path["y"], color=colour, lw=1.3)
    ax_paths.plot(path["x"].iloc[0], path["y"].iloc[0], "o", color=colour, ms=3.5)
    entry = path[path["inside"]]
    if len(entry):
        ax_paths.plot(entry["x"].iloc[0], entry["y"].iloc[0], "s", mfc="none", color=colour, ms=5)
ax_paths.set(xlabel="x", ylabel="y", title=f"(b) flow paths, t <= {paths['t'].max():g}")
ax_paths.plot([], [], "ks", mfc="none", ms=5, label="first sample inside (3.2)")

off_line = grid[~grid["on_antidiagonal"] & (grid["t_enter"] > 0)]
ax_log.plot(
    (off_line["x0"] + off_line["y0"]).abs(),
    off_line["t_enter"],
    ".",
    color="0.6",
    ms=2.5,
    label="grid starts",
)
for x0, group in near.groupby("x0"):
    ax_log.plot(
        (group["x0"] + group["y0"]).abs(),
        group["t_enter"],
        "o-",
        ms=3.5,
        lw=1,
        label=f"(x0, −x0 + s), x0 = {x0:g}",
    )
s = np.geomspace((near["x0"] + near["y0"]).abs().min(), 2 * limit, 50)
ax_log.plot(s, 0.5 * np.log(1 / s), "k:", lw=1, label="½ log(1/s)")
ax_log.set(
    xscale="log",
    xlabel="s = |x0 + y0|",
    ylabel="entry time t",
    title="(c) entry time near y = −x",
)
ax_log.legend(loc="upper right", fontsize="x-small")
handles, labels = ax_paths.get_legend_handles_labels()
more_h, more_l = ax_time.get_legend_handles_labels()
legend = dict(zip(labels + more_l, handles + more_h, strict=True))
fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncols=4, fontsize="small")
fig.suptitle(f"Chatterjee (2022) Prop. 3.1: gradient flow of (xy − 1)² ({tier} tier)")
save_figure(fig, png, pdf)
