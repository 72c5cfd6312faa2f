# %% [markdown]
# # zhang_eq10: |∇L|² against η · sharpness · G² (Zhang et al. 2022, eq. (10), Section 5.1)
# Left: both sides of eq. (10) at every checkpoint of the constant-lr runs (G² = |∇L|² + σ²/b,
# the second moment of a stochastic gradient); the line is equality. Right: their ratio along
# each run.

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
terms = terms[(terms["step"] > 0) & (terms["grad_norm_sq"] > 0)]

# %%
fig, axes = panel_grid(1, 2)
ax = axes[0][0]
for k, ((_run_id, lr), run) in enumerate(terms.groupby(["run_id", "run_lr"], sort=False)):
    ax.scatter(run["rhs"], run["grad_norm_sq"], s=8, color=f"C{k}", label=f"lr {lr:g}")
    axes[0][1].plot(run["epoch"], run["ratio"], marker="o", ms=2, color=f"C{k}", label=f"lr {lr:g}")
lo = min(terms["rhs"].min(), terms["grad_norm_sq"].min())
hi = max(terms["rhs"].max(), terms["grad_norm_sq"].max())
ax.plot([lo, hi], [lo, hi], color="grey", lw=0.6, ls=":", label="equality")
ax.set(xscale="log", yscale="log", xlabel="η · λ_max · G²", ylabel="|∇L|²", title="eq. (10)")
ax.legend(loc="best")
ax = axes[0][1]
ax.axhline(1.0, color="grey", lw=0.6, ls=":")
ax.set(yscale="log", xlabel="epoch", ylabel="|∇L|² / (η λ_max G²)", title="ratio along each run")
fig.suptitle(f"Zhang et al. eq. (10): |∇L|² = η · λ_max · G² ({tier} tier)")
save_figure(fig, png, pdf)
