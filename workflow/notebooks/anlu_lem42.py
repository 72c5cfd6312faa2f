# %% [markdown]
# # anlu_lem42: E F(θ_k) under bounded noise decays like k^(−q) (An & Lu, Lemma 4.2)
# Robbins–Monro steps η_k = γ/(k + n0)^q, bounded noise ξ_k = c Z_k (mean zero). (a) E F(θ_k)
# over the trajectories that stayed in B(θ0, r) (the Lemma's conditioning), with the
# least-squares fit over the fitted window, the slope −q through it, and the leading term of the
# bound (4.5); (b) k^q E F(θ_k), flat where the rate k^(−q) holds. Drawn from
# `theory/anlu_lem42_*.parquet`.

# %% tags=["parameters"]
tables = {
    "conditions": "anlu_lem42_conditions.parquet",
    "steps": "anlu_lem42_steps.parquet",
}
png = "anlu_lem42.png"
pdf = "anlu_lem42.pdf"
tier = "default"
params = {"radius": 0.5, "fit_from_n0": 10.0}

# %%
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
conditions = pd.read_parquet(tables["conditions"]).set_index("q")
steps = pd.read_parquet(tables["steps"])
steps = steps[steps["step"] > 0]
qs = sorted(steps["q"].unique(), reverse=True)
colors = dict(zip(qs, sns.color_palette(n_colors=len(qs)), strict=True))

# %%
fig, axes = panel_grid(1, 2)
ax = axes[0][0]
for q, group in steps.groupby("q"):
    cond = conditions.loc[q]
    ax.plot(
        group["step"],
        group["mean_f_given_stay"],
        color=colors[q],
        marker="o",
        ms=3,
    )
    ax.fill_between(
        group["step"],
        group["mean_f_given_stay"] - 2 * group["se_f_given_stay"],
        group["mean_f_given_stay"] + 2 * group["se_f_given_stay"],
        color=colors[q],
        alpha=0.2,
    )
    ax.plot(
        group["step"],
        group["rate_reference"],
        color="k",
        lw=1,
        ls="--",
    )
    ax.plot(group["step"], group["bound"], color=colors[q], lw=1, ls=":")
    ax.axvline(cond["fit_k_lo"], color=colors[q], lw=0.8, alpha=0.6)
ax.set(
    xscale="log",
    yscale="log",
    xlabel="step k",
    ylabel="E F(θ_k)",
    title="(a) E F(θ_k) ± 2 s.e.",
)
handles = [
    Line2D([], [], color="0.3", marker="o", ms=3, label="E[F | stayed in B(θ0, r)]"),
    Line2D([], [], color="k", ls="--", lw=1, label="k^(−q) through the window start"),
    Line2D([], [], color="0.3", ls=":", lw=1, label="leading term of bound (4.5)"),
    Line2D(
        [],
        [],
        color="0.3",
        lw=0.8,
        label="window start, k = {:g} n0".format(float(params["fit_from_n0"])),
    ),
]
ax.legend(handles=handles, loc="lower left", fontsize="x-small")
ax.set_ylim(bottom=steps["mean_f_given_stay"].min() / 300)  # room for the legend

ax = axes[0][1]
for q, group in steps.groupby("q"):
    cond = conditions.loc[q]
    ax.plot(
        group["step"],
        group["mean_f_given_stay"] * group["step"] ** q,
        color=colors[q],
        marker="o",
        ms=3,
        label=f"q = {q:g}: fitted slope {cond['fitted_slope']:.3f} (shaded: window)",
    )
    ax.axvspan(cond["fit_k_lo"], cond["fit_k_hi"], color=colors[q], alpha=0.08)
ax.set(
    xscale="log",
    yscale="log",
    xlabel="step k",
    ylabel="k^q · E F(θ_k)",
    title="(b) k^q E F: flat where E F ∝ k^(−q)",
)
ax.legend(loc="lower right", fontsize="x-small")
scaled = steps["mean_f_given_stay"] * steps["step"] ** steps["q"]
ax.set_ylim(scaled.min() / 4, scaled.max() * 1.5)  # room for the legend below the curves
fig.suptitle(
    f"An & Lu Lemma 4.2: E F(θ_k) under bounded noise, r = {params['radius']:g} ({tier} tier)"
)
save_figure(fig, png, pdf)
