# %% [markdown]
# # zhang_thm43: the time-averaged one-step loss change (Zhang et al. 2022, Thm. 4.3 / 4.4)
# Left: A_n = E_{μ_n}[L(θ) − L(F(θ))] with F an independent SGD step from the checkpoint's
# state (Thm. 4.3's quantity; μ_n sampled at the checkpoints), |A_n| against the number of SGD
# steps n with ± 2 SE, the log-log fit with its 95% bootstrap interval, and n^(-1/2) for
# reference. Right: the per-checkpoint one-step change D(θ_t) itself. Dashed grey: the
# telescoping term (L(θ_0) − L(θ_n))/n of the realized updates, which decays like 1/n for any
# bounded loss and is shown only for contrast.

# %% tags=["parameters"]
tables = {"thm43": "zhang_thm43.parquet"}
png = "zhang_thm43.png"
pdf = "zhang_thm43.pdf"
tier = "default"
params = {}

# %%
import numpy as np
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
table = pd.read_parquet(tables["thm43"])
table = table[np.isfinite(table["change"])]

# %%
fig, axes = panel_grid(1, 2)
left, right = axes[0]
for k, ((_run_id, lr), curve) in enumerate(table.groupby(["run_id", "lr"], sort=False)):
    n = curve["n"].to_numpy(dtype=float)
    fit = curve.iloc[0]
    label = f"lr {lr:g}: slope {fit['slope']:.2f} [{fit['slope_lo']:.2f}, {fit['slope_hi']:.2f}]"
    left.errorbar(
        n,
        curve["independent"].abs(),
        yerr=2 * curve["independent_se"],
        marker="o",
        ms=2,
        lw=0.8,
        color=f"C{k}",
        label=label,
    )
    left.plot(n, np.exp(fit["intercept"]) * n ** fit["slope"], lw=0.8, ls="--", color=f"C{k}")
    left.plot(n, curve["realized"].abs(), lw=0.6, ls="--", color="grey")
    right.errorbar(
        curve["epoch"],
        curve["change"],
        yerr=2 * curve["change_se"],
        marker="o",
        ms=2,
        lw=0.6,
        color=f"C{k}",
        label=f"lr {lr:g}",
    )
n = table["n"].to_numpy(dtype=float)
ref = table["independent"].abs().max()
left.plot(n, ref * (n / n.min()) ** -0.5, color="black", lw=0.6, ls=":", label="∝ n^(-1/2)")
left.set(
    xscale="log",
    yscale="log",
    xlabel="SGD steps n",
    ylabel="|A_n|",
    title="time average under independent steps",
)
left.legend(loc="best", fontsize="x-small")
right.axhline(0.0, color="grey", lw=0.6)
right.set(xlabel="epoch", ylabel="L(θ) − E L(F(θ))", title="one-step change at the checkpoints")
right.legend(loc="best", fontsize="x-small")
fig.suptitle(f"Zhang et al. Thm. 4.3: the time-averaged loss change ({tier} tier)")
save_figure(fig, png, pdf)
