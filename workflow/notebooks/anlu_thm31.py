# %% [markdown]
# # anlu_thm31: SGD with machine-learning noise from a Chatterjee-initialized point
# (An & Lu, Theorem 3.1)
# Monte Carlo over many trajectories θ_{k+1} = θ_k − η(∇F(θ_k) + ξ_k), one step η for every
# condition. Top row, the probability that a trajectory stays in B(θ0, R − 1) and converges:
# (a) against F(θ0) on the coarse grid, inside Theorem 3.1's step bound; (b) on the grid refined
# around the noiseless crossover F0*, where the noise decides; (c) against σ at one F(θ0) near
# the crossover, past the step bound, with bounded noise of the same size at θ0 for contrast.
# Bottom row: (d) the fraction still inside B(θ0, R − 1) after k steps, machine-learning against
# bounded noise; (e) E[F(θ_k)]/F(θ0) for the same pairs and E[F(θ_k) 1_E] against ρ^k of (3.9)
# inside the bound; (f) the fitted decay factor of E[F 1_E] against ρ, every condition inside the
# bound. Drawn from `theory/anlu_thm31_*.parquet`.

# %% tags=["parameters"]
tables = {
    "conditions": "anlu_thm31_conditions.parquet",
    "steps": "anlu_thm31_steps.parquet",
    "trajectories": "anlu_thm31_trajectories.parquet",
}
png = "anlu_thm31.png"
pdf = "anlu_thm31.pdf"
tier = "default"
params = {"radius": 1.5}

# %%
import matplotlib.ticker
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
conditions = pd.read_parquet(tables["conditions"])
steps = pd.read_parquet(tables["steps"])
grid = conditions[conditions["part"] == "grid"].sort_values(["sigma", "f0"])
sweep = conditions[conditions["part"] == "sweep"].sort_values("sigma")
bounded = conditions[conditions["part"] == "bounded"].sort_values("sigma")
f0_star = float(conditions["f0_star"].iloc[0])
eta = float(conditions["eta"].iloc[0])
sigmas = sorted(grid["sigma"].unique())
colors = dict(zip(sigmas, sns.color_palette(n_colors=len(sigmas)), strict=True))
markers = dict(zip(sigmas, "osD^v<>", strict=False))
refined = grid[grid["refined"]]
radius = float(params["radius"])
# σ past which η exceeds Theorem 3.1's bound (from the sweep's own α̂, Ĉ_L): the last σ inside.
inside_sweep = sweep[sweep["within_step_bound"]]
sigma_edge = float(inside_sweep["sigma"].max()) if len(inside_sweep) else 0.0


def probability(ax, rows, x, **style):
    err = [rows["p_stay_converge"] - rows["ci_low"], rows["ci_high"] - rows["p_stay_converge"]]
    ax.errorbar(x, rows["p_stay_converge"], yerr=err, capsize=2, lw=1.2, ms=4, **style)


# %%
fig, axes = panel_grid(2, 3)
ax = axes[0][0]
for sigma, rows in grid.groupby("sigma"):
    probability(ax, rows, rows["f0"], color=colors[sigma], marker=markers[sigma], alpha=0.85)
ax.axvline(f0_star, color="0.6", lw=0.8, ls=":")
ax.annotate(
    "F0*: (b)",
    (f0_star, 0.5),
    xytext=(-4, 0),
    textcoords="offset points",
    ha="right",
    fontsize="x-small",
    color="0.35",
)
ax.set(
    xscale="log",
    ylim=(-0.04, 1.06),
    xlabel="F(θ0)",
    ylabel="P(stay in B(θ0, R−1), converge)",
    title="(a) inside the step bound",
)
ticks = sorted(set(grid["f0"]) - set(refined["f0"]))  # the coarse grid
ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())

ax = axes[0][1]
for sigma, rows in refined.groupby("sigma"):
    x = 100 * (rows["f0"] / f0_star - 1)
    style = {"color": colors[sigma], "marker": markers[sigma], "alpha": 0.85}
    probability(ax, rows, x, label=f"σ = {sigma:g}", **style)
ax.set(
    ylim=(-0.04, 1.06),
    xlabel="F(θ0) / F0* − 1  (%)",
    ylabel="P(stay, converge)",
    title=f"(b) refined grid, F0* = {f0_star:.4g}",
)
ax.legend(loc="lower left", fontsize="x-small", title="inside the bound", title_fontsize="x-small")

ax = axes[0][2]
ax.axvspan(sigma_edge, sweep["sigma"].max() * 2, color="0.92", zorder=0)
shown = sweep[sweep["sigma"] > 0]
probability(ax, shown, shown["sigma"], color="k", marker="o", label="machine learning √(σF)")
if len(bounded):
    probability(
        ax, bounded, bounded["sigma"], color="C3", marker="s", ls="--", label="bounded, c² = σF(θ0)"
    )
ax.set(
    xscale="log",
    ylim=(-0.04, 1.06),
    xlim=(shown["sigma"].min() / 1.5, shown["sigma"].max() * 1.5),
    xlabel="σ",
    ylabel="P(stay, converge)",
    title=f"(c) F(θ0) = {float(sweep['f0'].iloc[0]):.4g}, same η",
)
ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
ax.annotate(
    "outside the\nstep bound",
    (0.97, 0.55),
    xycoords="axes fraction",
    ha="right",
    fontsize="x-small",
    color="0.35",
)
ax.legend(loc="lower left", fontsize="x-small")

# Bottom row: machine-learning against bounded noise at the sweep's F(θ0), matched sizes.
pairs = [s for s in bounded["sigma"] if s in set(sweep["sigma"])][:: max(1, len(bounded) // 3)]
shades = dict(zip(pairs, sns.color_palette("viridis", n_colors=len(pairs)), strict=True))
f0_sweep = float(sweep["f0"].iloc[0])
ax = axes[1][0]
for sigma in pairs:
    for part, ls in (("sweep", "-"), ("bounded", "--")):
        rows = steps[(steps["part"] == part) & (steps["sigma"] == sigma)]
        ax.plot(rows["step"], rows["p_inside"], color=shades[sigma], ls=ls, lw=1.3)
ax.set(
    ylim=(-0.04, 1.06),
    xlabel="step k",
    ylabel="P(inside B(θ0, R−1) up to k)",
    title="(d) staying, by noise",
)
handles = [Line2D([], [], color=shades[s], label=f"σ = {s:g}") for s in pairs]
handles += [
    Line2D([], [], color="0.3", label="machine learning"),
    Line2D([], [], color="0.3", ls="--", label="bounded, same size at θ0"),
]
ax.legend(handles=handles, loc="center right", fontsize="x-small")

ax = axes[1][1]
for sigma in pairs:
    for part, ls in (("sweep", "-"), ("bounded", "--")):
        rows = steps[(steps["part"] == part) & (steps["sigma"] == sigma)]
        ax.plot(rows["step"], rows["mean_f"] / f0_sweep, color=shades[sigma], ls=ls, lw=1.3)
inside = refined[(refined["sigma"] == max(sigmas))].sort_values("f0").iloc[[0]]
for row in inside.itertuples():
    mine = (steps["part"] == "grid") & (steps["sigma"] == row.sigma) & (steps["f0"] == row.f0)
    rows = steps[mine]
    ax.plot(rows["step"], rows["bound"] / row.f0, color="k", ls=":", lw=1)
ax.set(yscale="log", xlabel="step k", ylabel="E F(θ_k) / F(θ0)", title="(e) loss, by noise")
ax.legend(
    handles=[Line2D([], [], color="k", ls=":", lw=1, label="ρ^k, (3.9)")],
    loc="lower left",
    fontsize="x-small",
)

ax = axes[1][2]
inside_grid = grid[grid["within_step_bound"]]
for sigma, rows in inside_grid.groupby("sigma"):
    ax.scatter(
        rows["rho"],
        rows["fitted_rate"],
        color=colors[sigma],
        marker=markers[sigma],
        s=16,
        alpha=0.8,
        label=f"σ = {sigma:g}",
    )
low = min(inside_grid["fitted_rate"].min(), inside_grid["rho"].min())
high = max(inside_grid["fitted_rate"].max(), inside_grid["rho"].max())
pad = 0.1 * (high - low)
ax.plot([low - pad, high + pad], [low - pad, high + pad], color="k", lw=1)
ax.set(xlabel="ρ of (3.2)", ylabel="fitted decay of E[F 1_E]", title="(f) rate vs ρ, inside")
for axis in (ax.xaxis, ax.yaxis):
    axis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3f"))
ax.legend(
    loc="upper left",
    fontsize="x-small",
    title="below the line: (3.9) holds",
    title_fontsize="x-small",
)
fig.suptitle(
    f"An & Lu Thm 3.1: SGD with machine-learning noise, R = {radius:g}, η = {eta:.3g} ({tier} tier)"
)
save_figure(fig, png, pdf)
