# %% [markdown]
# # chatterjee_thm22: Theorem 2.2 on f(x, y) = (xy − 1)² (Chatterjee 2022)
# For each start x0 inside the region (3.2), the theorem's constants r, ε, α = α(x0, r),
# L1, L2, the step η = min(r/(L1√p), 6ε/(L2 p)) and the rate δ = min(1, (1 − ε)αη) (table).
# Panel (a): f(x_k) along GD with that step (solid) against the bound (1 − δ)^k f(x0)
# (dashed). Panel (b): |x_k − x0| (solid) against the radius r (dashed): the iterates never
# leave B(x0, r). Drawn from `toy/chatterjee_thm22_constants.parquet` and
# `toy/chatterjee_thm22_trajectories.parquet`.

# %% tags=["parameters"]
tables = {
    "constants": "chatterjee_thm22_constants.parquet",
    "trajectories": "chatterjee_thm22_trajectories.parquet",
}
png = "chatterjee_thm22.png"
pdf = "chatterjee_thm22.pdf"
tier = "default"
params = {"bound_floor": 1e-20}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
constants = pd.read_parquet(tables["constants"])
trajectories = pd.read_parquet(tables["trajectories"])
label = {row.start: f"x0 = ({row.x0:g}, {row.y0:g})" for row in constants.itertuples()}

# %% [markdown]
# The constants of Theorem 2.2 per start (r = a/2; ε maximizes δ subject to (2.2); L1, L2 are
# closed-form bounds over the discs |z| <= a + r and a + 2r, which contain B(x0, r), B(x0, 2r)).

# %%
shown = ["x0", "y0", "f0", "r", "epsilon", "alpha", "L1", "L2", "eta", "delta", "steps"]
constants[shown]

# %%
fig, axes = panel_grid(2, 2)
ax_f, ax_dist = axes[0]
gs = axes[1][0].get_gridspec()
for ax in axes[1]:
    ax.remove()
ax_table = fig.add_subplot(gs[1, :])
radius = constants.set_index("start")["r"]
colours = {start: f"C{i % 10}" for i, start in enumerate(constants["start"])}
for start, run in trajectories.groupby("start"):
    ax_f.semilogy(run["step"], run["f"], color=colours[start], lw=1.2)
    ax_f.semilogy(run["step"], run["bound"], "--", color=colours[start], lw=0.9)
    ax_dist.plot(run["step"], run["dist"], color=colours[start], lw=1.2)
    ax_dist.axhline(radius[start], color=colours[start], ls="--", lw=0.9)
ax_f.set(
    xlabel="iteration k",
    ylabel="f(x_k)",
    ylim=(1e-33, None),
    title="(a) f(x_k) and (1 − δ)^k f(x0) (dashed)",
)
ax_dist.set_xscale("symlog", linthresh=1)
ax_dist.set(
    xlim=(0, trajectories["step"].max()),
    xlabel="iteration k",
    ylabel="|x_k − x0|",
    ylim=(0, None),
    title="(b) |x_k − x0| and r (dashed)",
)

# Lemma 6.2 bounds |R_k| of (6.1) by ε η |∇f(x_k)|²: the largest ratio per start (<= 1 where
# the lemma holds; see the caption on its Taylor constant).
lemma62 = trajectories.groupby("start")["remainder_ratio"].max()
cells = [
    [
        f"({row.x0:g}, {row.y0:g})",
        f"{row.f0:.3g}",
        f"{row.r:.3g}",
        f"{row.epsilon:.3g}",
        f"{row.alpha:.3g}",
        f"{row.L1:.3g}",
        f"{row.L2:.3g}",
        f"{row.eta:.3g}",
        f"{row.delta:.3g}",
        f"{lemma62[row.start]:.2f}",
    ]
    for row in constants.itertuples()
]
ax_table.axis("off")
table = ax_table.table(
    cellText=cells,
    colLabels=["x0", "f(x0)", "r", "ε", "α(x0, r)", "L1", "L2", "η", "δ", "Lemma 6.2 ratio"],
    colWidths=[0.13, 0.08, 0.08, 0.08, 0.1, 0.08, 0.08, 0.08, 0.08, 0.17],
    loc="center",
    cellLoc="center",
)
table.auto_set_font_size(False)
table.set_fontsize(8)
table.scale(1, 1.3)
for i, start in enumerate(constants["start"], start=1):
    table[i, 0].get_text().set_color(colours[start])
    table[i, 0].get_text().set_fontweight("bold")
ax_table.set_title("(c) constants of Theorem 2.2 per start (colours as in (a), (b))")
fig.suptitle(f"Chatterjee (2022) Thm. 2.2: GD on (xy − 1)² with the theorem's step ({tier} tier)")
save_figure(fig, png, pdf)
