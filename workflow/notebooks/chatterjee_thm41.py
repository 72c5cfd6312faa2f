# %% [markdown]
# # chatterjee_thm41: Theorem 4.1 initialization, the local Łojasiewicz certificate and GD
# Chatterjee (2022), Theorem 4.1 with Remark 4.4. Top row: loss curves F(θ_k)/F(θ0) of GD at
# the (A, η) found by trial and error, one panel per depth. Bottom row, one point per
# configuration: the certificate r²α/(4F(θ0)) with the searched α̂ (not refuted above 1) and with
# the proof's lower bound α_lb (Section 7, proof-backed above 1); the output weight A used
# against the A the proof would need; and the step ladder: how far each step's GD went from θ0,
# max_k |θ_k − θ0| / r, with the chosen step (the largest that converges inside B(θ0, r)).
# Drawn from `theory/chatterjee_thm41_*.parquet`.

# %% tags=["parameters"]
tables = {
    "configs": "chatterjee_thm41_configs.parquet",
    "curves": "chatterjee_thm41_curves.parquet",
    "trials": "chatterjee_thm41_trials.parquet",
    "ladder": "chatterjee_thm41_ladder.parquet",
}
png = "chatterjee_thm41.png"
pdf = "chatterjee_thm41.pdf"
tier = "default"
params = {"tol": 1e-8}

# %%
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
configs = pd.read_parquet(tables["configs"])
curves = pd.read_parquet(tables["curves"])
ladder = pd.read_parquet(tables["ladder"])
configs["net"] = "L=" + configs["depth"].astype(str) + ", w=" + configs["width"].astype(str)
configs["cert_hat"] = configs["r"] ** 2 * configs["alpha_hat"] / (4 * configs["F0"])
configs["cert_lb"] = configs["r"] ** 2 * configs["alpha_lb"] / (4 * configs["F0"])
activations = list(dict.fromkeys(configs["activation"]))
palette = dict(zip(activations, sns.color_palette(n_colors=len(activations)), strict=True))
widths = sorted(configs["width"].unique())
dashes = dict(zip(widths, ["-", "--", ":", "-."], strict=False))
depths = sorted(configs["depth"].unique())
tol = float(params["tol"])
# One x position per configuration: networks left to right, activations side by side.
order = list(dict.fromkeys(configs.sort_values(["depth", "width"])["net"]))
position = {net: i for i, net in enumerate(order)}
offset = {a: (i - (len(activations) - 1) / 2) * 0.18 for i, a in enumerate(activations)}
configs["x"] = configs["net"].map(position) + configs["activation"].map(offset)
colors = configs["activation"].map(palette)

# %%
ncols = max(len(depths), 3) + 1  # the last column holds the legends
fig, axes = panel_grid(2, ncols)
for ax, depth in zip(axes[0], depths, strict=False):
    for (width, act), curve in curves[curves["depth"] == depth].groupby(["width", "activation"]):
        ax.plot(curve["step"], curve["loss_ratio"], color=palette[act], ls=dashes[width], lw=1.2)
    ax.axhline(tol, color="0.3", lw=0.8, ls=":")
    ax.set(
        yscale="log", xlabel="GD iteration k", ylabel="F(θ_k) / F(θ0)", title=f"depth L = {depth}"
    )
    ax.set_ylim(tol / 100, max(10.0, 3 * float(curves["loss_ratio"].max())))
for ax in axes[0][len(depths) :]:
    ax.axis("off")
handles = [
    *(Line2D([], [], color=palette[a], label=a.replace("_", " ")) for a in activations),
    *(Line2D([], [], color="0.3", ls=dashes[w], label=f"width {w}") for w in widths),
    Line2D([], [], color="0.3", ls=":", lw=0.8, label=f"F = {tol:g}·F(θ0)"),
]
axes[0][-1].legend(handles=handles, loc="center left", fontsize="small")

# Bottom left: the certificate with α̂ (filled) and α_lb (triangles; open at the floor when
# the proof's bound is below the axis, e.g. tanh, whose slope floors c_ℓ are tiny).
FLOOR = 1e-6
ax = axes[1][0]
ax.scatter(configs["x"], configs["cert_hat"], c=colors, marker="o", s=26)
low = configs["cert_lb"] < FLOOR
ax.scatter(
    configs["x"][~low], configs["cert_lb"][~low], c=colors[~low], marker="v", s=22, alpha=0.8
)
ax.scatter(
    configs["x"][low],
    np.full(int(low.sum()), FLOOR),
    facecolors="none",
    edgecolors=colors[low],
    marker="v",
    s=22,
)
ax.axhline(1.0, color="0.2", lw=1)
ax.set(yscale="log", ylabel="r² α / (4 F(θ0))", title="certificate (2.1), r = δ/2")
ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
ax.set_ylim(FLOOR / 3, None)

ax = axes[1][1]
finite = np.isfinite(configs["A_proof"])
ax.scatter(configs["A"][finite], configs["A_proof"][finite], c=colors[finite], s=24)
lim = [configs["A"].min() / 2, configs["A"].max() * 2]
ax.plot(lim, lim, color="0.3", lw=0.8, ls="--")
ax.set(
    xscale="log",
    yscale="log",
    xlabel="A used (trial and error)",
    ylabel="A needed by Section 7",
    title="output weight A"
    + (f" ({int((~finite).sum())} infinite, not shown)" if (~finite).any() else ""),
)

# Bottom right: every rung of the step ladder at the chosen A. Below the line: inside B(θ0, r),
# where Theorem 2.2 speaks; the star is the chosen step, the largest that converged there.
ax = axes[1][2]
styles = {
    "converged in the ball": ("o", "none"),
    "converged outside the ball": ("s", None),
    "left the ball, stopped": ("^", None),
    "diverged": ("X", None),
    "out of steps": ("d", "none"),
    "out of steps, left the ball": ("d", None),
}
rungs = ladder.merge(configs[["depth", "width", "activation", "x"]]).query(
    "outcome != 'not needed'"
)
for outcome, (marker, face) in styles.items():
    part = rungs[(rungs["outcome"] == outcome) & ~rungs["chosen"]]
    ax.scatter(
        part["x"],
        part["max_dist_over_r"].clip(upper=1e3),
        marker=marker,
        facecolors=face if face else "0.55",
        edgecolors="0.55",
        s=14,
        lw=0.8,
        label=outcome,
    )
chosen = rungs[rungs["chosen"]]
ax.scatter(
    chosen["x"], chosen["max_dist_over_r"], marker="*", s=70, c=chosen["activation"].map(palette)
)
ax.axhline(1.0, color="0.2", lw=1)
ax.set(yscale="log", ylabel="max_k |θ_k − θ0| / r", title="step ladder: excursion from θ0")
ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
proxies = [
    Line2D([], [], ls="", marker="o", color="0.4", label="α̂ (search: not refuted above 1)"),
    Line2D([], [], ls="", marker="v", color="0.4", label="α_lb (Section 7: proof above 1)"),
    Line2D([], [], ls="", marker="v", mfc="none", mec="0.4", label=f"α_lb below {FLOOR:g}"),
    Line2D([], [], ls="", marker="*", ms=9, color="0.4", label="chosen step (in the ball)"),
    *(
        Line2D([], [], ls="", marker=m, mfc="none" if f else "0.55", mec="0.55", label=o)
        for o, (m, f) in styles.items()
        if (rungs["outcome"] == o).any() and not rungs.loc[rungs["outcome"] == o, "chosen"].all()
    ),
]
for ax in axes[1][3:]:
    ax.axis("off")
axes[1][-1].legend(handles=proxies, loc="center left", fontsize="small")
n_ok = int((configs["converged"] & (configs["max_dist_over_r"] < 1)).sum())
fig.suptitle(
    f"Chatterjee Thm 4.1: {n_ok}/{len(configs)} configurations reach F < {tol:g}·F(θ0) inside "
    f"B(θ0, r) (n = {configs['n'].iloc[0]}, d = {configs['d'].iloc[0]}, {tier} tier)"
)
save_figure(fig, png, pdf)
