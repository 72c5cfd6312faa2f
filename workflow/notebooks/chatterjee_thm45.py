# %% [markdown]
# # chatterjee_thm45: LeCun initialization, converging fraction and cost vs n, for d/n through 1
# Chatterjee (2022), Theorem 4.5 with Remarks 4.7 and 4.8: the hidden widths and d/n fixed,
# n grows, for several d/n. (a) the fraction of seeds whose GD (step chosen per seed by trial and
# error) reaches F < tol·F(θ0) within the budget, with binomial intervals; (b) the iterations the
# converging seeds needed (median and quartiles) with the fitted slope against n; (c) α, the
# smallest eigenvalue of XᵀX/n, on which the theorem's bound depends. Solid: d/n >= 1, inside the
# hypothesis; dashed: d/n < 1, outside it. Drawn from `theory/chatterjee_thm45_*.parquet`.

# %% tags=["parameters"]
tables = {
    "fractions": "chatterjee_thm45_fractions.parquet",
    "runs": "chatterjee_thm45_runs.parquet",
}
png = "chatterjee_thm45.png"
pdf = "chatterjee_thm45.pdf"
tier = "default"
params = {"tol": 1e-8, "max_steps": 5000}

# %%
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from sgdconv.chatterjee.claims import cost_slope
from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
fractions = pd.read_parquet(tables["fractions"]).sort_values(["d_over_n", "n"])
ratios = sorted(fractions["d_over_n"].unique(), reverse=True)
colors = dict(zip(ratios, sns.color_palette(n_colors=len(ratios)), strict=True))
ns = sorted(fractions["n"].unique())
# α = 0 below d/n = 1 (rank d < n): drawn at a floor under the smallest positive value.
positive = fractions.loc[fractions["alpha_X"] > 0, "alpha_X"]
floor = positive.min() / 30 if len(positive) else 1e-6


def style(ratio):
    inside = ratio >= 1
    return {"color": colors[ratio], "ls": "-" if inside else "--", "marker": "o" if inside else "s"}


def label(ratio):
    return f"d/n = {ratio:g}" + ("" if ratio >= 1 else " (outside)")


# %%
fig, axes = panel_grid(2, 2)
ax = axes[0][0]
shift = {q: (i - (len(ratios) - 1) / 2) * 0.04 for i, q in enumerate(ratios)}
for q, rows in fractions.groupby("d_over_n"):
    x = rows["n"] * np.exp(shift[q])  # side by side, so the intervals do not hide each other
    err = [rows["fraction"] - rows["ci_low"], rows["ci_high"] - rows["fraction"]]
    ax.errorbar(x, rows["fraction"], yerr=err, capsize=3, lw=1.3, ms=4, **style(q))
ax.set(
    xscale="log",
    ylim=(-0.03, 1.05),
    xlabel="n",
    ylabel="fraction converging",
    title=f"(a) converging fraction, {fractions['ci_level'].iloc[0]:.0%} CI",
)

ax = axes[0][1]
slopes = {}
for q, rows in fractions.groupby("d_over_n"):
    slopes[q] = cost_slope(rows)
    ax.plot(rows["n"], rows["median_iterations"], **style(q))
    ax.fill_between(
        rows["n"], rows["iterations_q25"], rows["iterations_q75"], color=colors[q], alpha=0.15
    )
ax.axhline(params["max_steps"], color="0.3", ls=":", lw=1)
ax.set(
    xscale="log", yscale="log", xlabel="n", ylabel="GD iterations", title="(b) cost of convergence"
)

ax = axes[1][0]
for q, rows in fractions.groupby("d_over_n"):
    ax.plot(rows["n"], rows["alpha_X"].clip(lower=floor), **style(q))
ax.axhline(floor, color="0.6", lw=0.8, ls=":")
ax.set(xscale="log", yscale="log", xlabel="n", ylabel="α of XᵀX/n (median)", title="(c) data: α")
for a in (axes[0][0], axes[0][1], axes[1][0]):
    a.set_xticks(ns, [str(n) for n in ns])
    a.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())

# The legend panel: one entry per d/n with its fitted cost slope (the reported claim).
ax = axes[1][1]
ax.axis("off")
handles = []
for q in ratios:
    slope, se, _ = slopes[q]
    cost = (
        f"slope {slope:.2f} ± {se:.2f}"
        if np.isfinite(se)
        else (f"slope {slope:.2f}" if np.isfinite(slope) else "no slope")
    )
    handles.append(Line2D([], [], label=f"{label(q)}: {cost}", **style(q)))
handles += [
    Line2D([], [], color="0.3", ls=":", lw=1, label=f"(b) budget {params['max_steps']} steps"),
    Line2D([], [], color="0.6", ls=":", lw=0.8, label="(c) α = 0 (d < n), drawn at the floor"),
]
ax.legend(
    handles=handles,
    loc="center left",
    fontsize="small",
    title="(b) slope: log median iterations vs log n",
    title_fontsize="small",
)
fig.suptitle(
    f"Chatterjee Thm 4.5: LeCun init, fixed hidden widths, "
    f"{int(fractions['seeds'].iloc[0])} seeds per point ({tier} tier)"
)
save_figure(fig, png, pdf)
