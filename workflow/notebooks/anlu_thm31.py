# %% [markdown]
# # anlu_thm31: SGD with machine-learning noise from a Chatterjee-initialized point
# (An & Lu, Theorem 3.1)
# Monte Carlo over many trajectories θ_{k+1} = θ_k − η(∇F(θ_k) + √(σF(θ_k)) Z_k), Z_k ~ N(0, I/p),
# with one step η within Theorem 3.1's bound for every condition. (a) probability that a
# trajectory stays in B(θ0, R − 1) and converges, vs F(θ0), one curve per σ; (b) how far the
# trajectories go, max_k |θ_k − θ0|, against R − 1; (c) E[F(θ_k) 1_{E_k}] against ρ^k F(θ0) of
# (3.9); (d) fitted decay factor vs ρ for every condition. Drawn from `theory/anlu_thm31_*.parquet`.

# %% tags=["parameters"]
tables = {
    "conditions": "anlu_thm31_conditions.parquet",
    "steps": "anlu_thm31_steps.parquet",
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
conditions = pd.read_parquet(tables["conditions"]).sort_values(["sigma", "f0"])
steps = pd.read_parquet(tables["steps"])
sigmas = sorted(conditions["sigma"].unique())
f0s = sorted(conditions["f0"].unique())
colors = dict(zip(sigmas, sns.color_palette(n_colors=len(sigmas)), strict=True))
markers = dict(zip(sigmas, "osD^v<>", strict=False))
radius = float(params["radius"])

# %%
fig, axes = panel_grid(2, 2)
ax = axes[0][0]
for sigma, group in conditions.groupby("sigma"):
    err = [group["p_stay_converge"] - group["ci_low"], group["ci_high"] - group["p_stay_converge"]]
    ax.errorbar(
        group["f0"],
        group["p_stay_converge"],
        yerr=err,
        marker=markers[sigma],
        color=colors[sigma],
        capsize=3,
        lw=1.2,
        alpha=0.8,
        label=f"σ = {sigma:g}",
    )
proof = conditions[conditions["certificate_proof_backed"]]["f0"]
if len(proof):
    ax.axvspan(min(f0s) / 1.5, proof.max(), color="0.9", zorder=0, label="(2.2) proof-backed")
ax.set(
    xscale="log",
    ylim=(-0.03, 1.05),
    xlabel="F(θ0)",
    ylabel="P(stay in B(θ0, R−1) and converge)",
    title="(a) stay-and-converge probability",
)
ax.set_xticks(f0s, [f"{v:g}" for v in f0s])
ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
ax.legend(loc="lower left", fontsize="small")

ax = axes[0][1]
for sigma, group in conditions.groupby("sigma"):
    ax.plot(
        group["f0"],
        group["max_dist_median"],
        marker=markers[sigma],
        color=colors[sigma],
        alpha=0.8,
        label=f"σ = {sigma:g} (median)",
    )
    # The 10–90% band over trajectories (narrow: the noise barely moves the path).
    ax.fill_between(
        group["f0"], group["max_dist_q10"], group["max_dist_q90"], color=colors[sigma], alpha=0.2
    )
ax.axhline(radius - 1, color="k", ls="--", lw=1, label="R − 1")
ax.axhline(radius, color="k", ls=":", lw=1, label="R")
ax.legend(loc="upper left", fontsize="small")
ax.set(
    xscale="log",
    ylim=(0, 1.7 * radius),  # room for the legend above the line R
    xlabel="F(θ0)",
    ylabel="max_k |θ_k − θ0|",
    title="(b) farthest distance from θ0",
)
ax.set_xticks(f0s, [f"{v:g}" for v in f0s])
ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())

ax = axes[1][0]
sigma_max = max(sigmas)
shown = steps[steps["sigma"] == sigma_max]
palette = dict(zip(f0s, sns.color_palette("viridis", n_colors=len(f0s)), strict=True))
for f0, group in shown.groupby("f0"):
    positive = group[group["mean_f_in"] > 0]
    ax.plot(
        positive["step"], positive["mean_f_in"] / f0, color=palette[f0], label=f"F(θ0) = {f0:g}"
    )
    ax.plot(group["step"], group["bound"] / f0, color=palette[f0], ls="--", lw=0.8)
ax.set(
    yscale="log",
    xlabel="step k",
    ylabel="E[F(θ_k) 1_{E_k}] / F(θ0)",
    title=f"(c) E[F 1_E] vs ρ^k F(θ0), σ = {sigma_max:g}",
)
handles, _ = ax.get_legend_handles_labels()
handles += [
    Line2D([], [], color="0.3", label="Monte Carlo"),
    Line2D([], [], color="0.3", ls="--", lw=0.8, label="ρ^k, eq. (3.9)"),
]
ax.legend(handles=handles, loc="lower left", fontsize="x-small", ncols=2)

ax = axes[1][1]
for sigma, group in conditions.groupby("sigma"):
    ax.scatter(
        group["rho"],
        group["fitted_rate"],
        marker=markers[sigma],
        color=colors[sigma],
        label=f"σ = {sigma:g}",
        alpha=0.8,
    )
low = min(conditions["fitted_rate"].min(), conditions["rho"].min())
high = max(conditions["fitted_rate"].max(), conditions["rho"].max())
pad = 0.1 * (high - low)
ax.plot([low - pad, high + pad], [low - pad, high + pad], color="k", lw=1, label="rate = ρ")
ax.set(
    xlabel="ρ of (3.2) from α̂, Ĉ_L, η, σ",
    ylabel="fitted decay factor of E[F 1_E]",
    title="(d) fitted rate vs ρ (every condition)",
)
for axis in (ax.xaxis, ax.yaxis):
    axis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.3f"))
ax.legend(
    loc="upper left", fontsize="small", title="below the line: within (3.9)", title_fontsize="small"
)
fig.suptitle(f"An & Lu Thm 3.1: SGD with machine-learning noise, R = {radius:g} ({tier} tier)")
save_figure(fig, png, pdf)
