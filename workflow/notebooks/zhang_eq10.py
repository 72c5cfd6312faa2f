# %% [markdown]
# # zhang_eq10: |∇L|² against the balances of eq. (10) (Zhang et al. 2022, Section 5.1)
# Ratio |∇L|² / rhs along each constant-lr run for three right-hand sides
# (`sgdconv.zhang.eq10`): the paper's η 𝓛 G² with λ_g = E[gᵀHg]/E|g|² the sharpness along the
# stochastic gradient (G² = |∇L|² + σ²/B, B the SGD batch), the same with 𝓛 = λ_max, and the
# momentum-consistent balance (η/2)(tr(HΣ_B)/(1 − β) + ∇LᵀH∇L/(1 + β)), which is exact for a
# quadratic loss at stationarity (ratio 1). Right: the two sharpnesses.

# %% tags=["parameters"]
tables = {"eq10": "zhang_eq10.parquet"}
png = "zhang_eq10.png"
pdf = "zhang_eq10.pdf"
tier = "default"
params = {"momentum": 0.9}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
terms = pd.read_parquet(tables["eq10"])
terms = terms[terms["step"] > 0]
balances = [
    ("ratio_directional", "η λ_g G² (paper, λ_g along g)"),
    ("ratio_lambda_max", "η λ_max G²"),
    ("ratio_momentum", "momentum-consistent"),
]

# %%
fig, axes = panel_grid(1, len(balances) + 1)
runs = list(terms.groupby(["run_id", "run_lr"], sort=False))
for ax, (column, title) in zip(axes[0], balances, strict=False):
    for k, ((_run_id, lr), run) in enumerate(runs):
        ax.plot(run["epoch"], run[column], marker="o", ms=2, color=f"C{k}", label=f"lr {lr:g}")
    ax.axhline(1.0, color="grey", lw=0.6, ls=":")
    ax.set(yscale="log", xlabel="epoch", title=f"|∇L|² / {title}")
axes[0][0].legend(loc="best")
ax = axes[0][-1]
for k, ((_run_id, lr), run) in enumerate(runs):
    ax.plot(run["epoch"], run["sharpness"], color=f"C{k}", lw=0.8, label=f"λ_max, lr {lr:g}")
    ax.plot(run["epoch"], run["directional_sharpness"], color=f"C{k}", lw=0.8, ls="--")
ax.set(yscale="log", xlabel="epoch", title="λ_max (solid), λ_g along g (dashed)")
fig.suptitle(f"Zhang et al. eq. (10): |∇L|² against η λ_g G² and the momentum balance ({tier})")
save_figure(fig, png, pdf)
