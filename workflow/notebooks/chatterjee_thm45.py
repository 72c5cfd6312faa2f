# %% [markdown]
# # chatterjee_thm45: LeCun initialization, fraction of seeds converging vs n
# Chatterjee (2022), Theorem 4.5 with Remarks 4.7 and 4.8: d/n and the hidden widths fixed,
# n grows. Left: the fraction of seeds whose GD (step chosen per seed by trial and error)
# reaches F < tol·F(θ0), with binomial confidence intervals. Middle: iterations needed by the
# converging seeds. Right: the extreme eigenvalues α, β of XᵀX/n, which Remark 4.8 expects to
# approach positive limits. Drawn from `theory/chatterjee_thm45_*.parquet`.

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
import pandas as pd
import seaborn as sns

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
fractions = pd.read_parquet(tables["fractions"]).sort_values("n")
runs = pd.read_parquet(tables["runs"])

# %%
fig, axes = panel_grid(1, 3)
ax = axes[0][0]
err = [fractions["fraction"] - fractions["ci_low"], fractions["ci_high"] - fractions["fraction"]]
ax.errorbar(fractions["n"], fractions["fraction"], yerr=err, marker="o", capsize=4, lw=1.5)
ax.set(
    xscale="log",
    ylim=(-0.02, 1.05),
    xlabel="n (d = {:g} n)".format(fractions["d_over_n"].iloc[0]),
    ylabel="fraction of seeds converging",
    title=f"{fractions['ci_level'].iloc[0]:.0%} {fractions['ci_method'].iloc[0]} intervals",
)
ax.set_xticks(fractions["n"], [str(n) for n in fractions["n"]])
ax.minorticks_off()
ax.margins(x=0.08)
for row in fractions.itertuples():
    ax.annotate(
        f"{row.converged}/{row.seeds}",
        (row.n, row.ci_low),
        textcoords="offset points",
        xytext=(0, -12),
        ha="center",
        fontsize="x-small",
    )

ax = axes[0][1]
done = runs[runs["converged"]]
sns.boxplot(done, x="n", y="iterations", ax=ax, color="C0", fliersize=2)
ax.set(
    yscale="log",
    xlabel="n",
    ylabel="GD iterations to F < tol·F(θ0)",
    title=f"converging seeds (budget {params['max_steps']})",
)

ax = axes[0][2]
ax.plot(fractions["n"], fractions["alpha_X"], marker="o", label="α (min eigenvalue)")
ax.plot(fractions["n"], fractions["beta_X"], marker="s", label="β (max eigenvalue)")
ax.set(
    xscale="log", yscale="log", xlabel="n", ylabel="eigenvalue of XᵀX/n", title="data conditioning"
)
ax.set_xticks(fractions["n"], [str(n) for n in fractions["n"]])
ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
ax.legend(loc="best")
fig.suptitle(
    f"Chatterjee Thm 4.5: LeCun init, smooth leaky ReLU, hidden widths fixed ({tier} tier)"
)
save_figure(fig, png, pdf)
