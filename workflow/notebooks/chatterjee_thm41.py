# %% [markdown]
# # chatterjee_thm41: Theorem 4.1 initialization, the local Łojasiewicz certificate and GD
# Chatterjee (2022), Theorem 4.1 with Remark 4.4. Top row: loss curves F(θ_k)/F(θ0) of GD at
# the (A, η) found by trial and error, one panel per depth. Bottom row, one point per
# configuration: the certificate r²α/(4F(θ0)) with the searched α̂ (an upper bound on α) and
# with the proof's lower bound α_lb (Section 7) — (2.1) holds where it is > 1; the output weight A
# used against the A the proof would need; and the largest excursion max_k |θ_k − θ0| / r.
# Drawn from `theory/chatterjee_thm41_*.parquet`.

# %% tags=["parameters"]
tables = {
    "configs": "chatterjee_thm41_configs.parquet",
    "curves": "chatterjee_thm41_curves.parquet",
    "trials": "chatterjee_thm41_trials.parquet",
}
png = "chatterjee_thm41.png"
pdf = "chatterjee_thm41.pdf"
tier = "default"
params = {"tol": 1e-8}

# %%
import numpy as np
import pandas as pd
import seaborn as sns

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
configs = pd.read_parquet(tables["configs"])
curves = pd.read_parquet(tables["curves"])
configs["net"] = "L=" + configs["depth"].astype(str) + ", w=" + configs["width"].astype(str)
configs["cert_hat"] = configs["r"] ** 2 * configs["alpha_hat"] / (4 * configs["F0"])
configs["cert_lb"] = configs["r"] ** 2 * configs["alpha_lb"] / (4 * configs["F0"])
activations = list(dict.fromkeys(configs["activation"]))
palette = dict(zip(activations, sns.color_palette(n_colors=len(activations)), strict=True))
widths = sorted(configs["width"].unique())
dashes = dict(zip(widths, ["-", "--", ":", "-."], strict=False))
depths = sorted(configs["depth"].unique())
tol = float(params["tol"])

# %%
ncols = max(len(depths), 3)
fig, axes = panel_grid(2, ncols)
for ax, depth in zip(axes[0], depths, strict=False):
    for (width, act), curve in curves[curves["depth"] == depth].groupby(["width", "activation"]):
        ax.plot(curve["step"], curve["loss_ratio"], color=palette[act], ls=dashes[width], lw=1.2)
    ax.axhline(tol, color="0.3", lw=0.8, ls=":")
    ax.set(
        yscale="log", xlabel="GD iteration k", ylabel="F(θ_k) / F(θ0)", title=f"depth L = {depth}"
    )
    ax.set_ylim(tol / 100, 1e3)
for ax in axes[0][len(depths) :]:
    ax.axis("off")
handles = [
    *(axes[0][0].plot([], [], color=palette[a], label=a.replace("_", " "))[0] for a in activations),
    *(axes[0][0].plot([], [], color="0.3", ls=dashes[w], label=f"width {w}")[0] for w in widths),
]
fig.legend(handles=handles, loc="outside right center", fontsize="small")

# Bottom left: the certificate with α̂ (filled) and α_lb (triangles; open at the floor when
# the proof's bound is below the axis, e.g. tanh, whose slope floors c_ℓ are tiny).
FLOOR = 1e-6
order = list(dict.fromkeys(configs.sort_values(["depth", "width"])["net"]))
position = {net: i for i, net in enumerate(order)}
offset = {a: (i - (len(activations) - 1) / 2) * 0.12 for i, a in enumerate(activations)}
xpos = configs["net"].map(position) + configs["activation"].map(offset)
colors = configs["activation"].map(palette)
ax = axes[1][0]
ax.scatter(xpos, configs["cert_hat"], c=colors, marker="o", s=30)
low = configs["cert_lb"] < FLOOR
ax.scatter(xpos[~low], configs["cert_lb"][~low], c=colors[~low], marker="v", s=26)
ax.scatter(
    xpos[low],
    np.full(int(low.sum()), FLOOR),
    facecolors="none",
    edgecolors=colors[low],
    marker="v",
    s=26,
)
ax.axhline(1.0, color="0.2", lw=1)
ax.set(yscale="log", ylabel="r² α / (4 F(θ0))", title="certificate (2.1): holds above 1")
ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
ax.set_ylim(FLOOR / 3, None)
proxies = [
    ax.scatter([], [], color="0.4", marker="o", label="α̂ (search, upper bound)"),
    ax.scatter([], [], color="0.4", marker="v", label="α_lb (Section 7, lower bound)"),
    ax.scatter(
        [], [], facecolors="none", edgecolors="0.4", marker="v", label=f"α_lb below {FLOOR:g}"
    ),
]
ax.legend(handles=proxies, loc="lower right", fontsize="x-small")

ax = axes[1][1]
finite = np.isfinite(configs["A_proof"])
ax.scatter(configs["A"][finite], configs["A_proof"][finite], c=colors[finite], s=26)
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

ax = axes[1][2]
ax.scatter(xpos, configs["max_dist_over_r"], c=colors, s=30)
ax.axhline(1.0, color="0.2", lw=1)
ax.set(yscale="log", ylabel="max_k |θ_k − θ0| / r", title="GD excursion from θ0")
ax.set_xticks(range(len(order)), order, rotation=45, ha="right")
for ax in axes[1][3:]:
    ax.axis("off")
n_ok = int(configs["converged"].sum())
fig.suptitle(
    f"Chatterjee Thm 4.1: {n_ok}/{len(configs)} configurations reach F < {tol:g}·F(θ0) "
    f"(n = {configs['n'].iloc[0]}, d = {configs['d'].iloc[0]}, {tier} tier)"
)
save_figure(fig, png, pdf)
