# %% [markdown]
# # anlu_thm41: bounded noise rotated onto one direction escapes the ball (An & Lu, Theorem 4.1)
# Robbins–Monro steps η_k = γ/(k + n0)^q; the noise O_k ξ_k = |ξ_k| u of (4.15) (solid) against
# the same bounded noise ξ_k unrotated (dashed). (a) fraction of trajectories that have left
# B(θ0, r) by step k; (b) |θ_k − θ0| against Σ_{j<k} η_j, with the noise's own displacement
# m̄ Σ η_j; (c) E F(θ_k). Drawn from `theory/anlu_thm41_*.parquet`.

# %% tags=["parameters"]
tables = {
    "conditions": "anlu_thm41_conditions.parquet",
    "steps": "anlu_thm41_steps.parquet",
}
png = "anlu_thm41.png"
pdf = "anlu_thm41.pdf"
tier = "default"
params = {"radius": 0.5}

# %%
import pandas as pd
import seaborn as sns

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
conditions = pd.read_parquet(tables["conditions"])
steps = pd.read_parquet(tables["steps"])
qs = sorted(steps["q"].unique(), reverse=True)
colors = dict(zip(qs, sns.color_palette(n_colors=len(qs)), strict=True))
styles = {"rotated": "-", "unrotated": "--"}
radius = float(params["radius"])

# %%
fig, axes = panel_grid(1, 3)
ax = axes[0][0]
for (q, noise), group in steps.groupby(["q", "noise"]):
    shown = group[group["step"] > 0]
    ax.plot(
        shown["step"],
        shown["p_escaped"],
        color=colors[q],
        ls=styles[noise],
        marker="o" if noise == "rotated" else None,
        ms=3,
        label=f"q = {q:g}, {noise}",
    )
ax.axhline(0.99, color="k", lw=0.8, ls=":", label="99%")
ax.set(
    xscale="log",
    ylim=(-0.03, 1.05),
    xlabel="step k",
    ylabel=f"fraction that left B(θ0, {radius:g})",
    title="(a) escape from the ball",
)
ax.legend(loc="center left", fontsize="small")

ax = axes[0][1]
for (q, noise), group in steps.groupby(["q", "noise"]):
    ax.plot(group["sum_eta"], group["dist_median"], color=colors[q], ls=styles[noise])
    ax.fill_between(
        group["sum_eta"], group["dist_q10"], group["dist_q90"], color=colors[q], alpha=0.2
    )
    if noise == "rotated":
        ax.plot(
            group["sum_eta"],
            group["expected_noise_length"],
            color=colors[q],
            ls=":",
            lw=1,
            label=f"q = {q:g}: m̄ Σ η_j",
        )
ax.axhline(radius, color="k", lw=1, ls="-.", label="r")
ax.set(
    xscale="log",
    yscale="log",
    xlabel="Σ_{j<k} η_j",
    ylabel="|θ_k − θ0|",
    title="(b) distance vs Σ η (median, 10–90%)",
)
ax.legend(loc="upper left", fontsize="small")

ax = axes[0][2]
for (q, noise), group in steps[steps["step"] > 0].groupby(["q", "noise"]):
    ax.plot(
        group["step"],
        group["mean_f"],
        color=colors[q],
        ls=styles[noise],
        label=f"q = {q:g}, {noise}",
    )
ax.set(
    xscale="log",
    yscale="log",
    xlabel="step k",
    ylabel="E F(θ_k)",
    title="(c) E F: the rotated push keeps F > 0",
)
ax.legend(loc="lower left", fontsize="small")
fig.suptitle(
    f"An & Lu Thm 4.1: rotated bounded noise, γ/(k + n0)^q steps, r = {radius:g} ({tier} tier)"
)
save_figure(fig, png, pdf)
