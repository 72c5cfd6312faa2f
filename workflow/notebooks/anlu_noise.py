# %% [markdown]
# # anlu_noise: machine-learning noise along plain minibatch SGD (An & Lu 2025, Assumption 4)
# Two runs of the training engine on Chatterjee-initialized networks: interpolating (d >= n)
# and non-interpolating (n > p, random targets). At every checkpoint the statistics pipeline
# measures the full loss F(θ_k) and the per-sample noise σ(θ_k) of Zhang et al. eq. (1).

# %% tags=["parameters"]
tables = {"interpolating": "interp.parquet", "non_interpolating": "nonint.parquet"}
png = "anlu_noise.png"
pdf = "anlu_noise.pdf"
tier = "default"
params = {}

# %%
import pandas as pd

from sgdconv.plotting import panel_grid, save_figure, use_style

use_style()
labels = {
    "interpolating": "interpolating (d ≥ n)",
    "non_interpolating": "non-interpolating (n > p)",
}
runs = {name: pd.read_parquet(path).sort_values("step") for name, path in tables.items()}

# %%
fig, axes = panel_grid(1, 3)
ax_loss, ax_scatter, ax_ratio = axes[0]
for name, stats in runs.items():
    noise_sq = stats["noise_norm"] ** 2
    ax_loss.plot(stats["step"], stats["loss_last"], marker="o", ms=3, label=labels[name])
    ax_scatter.loglog(stats["loss_last"], noise_sq, marker="o", ms=4, ls="-", label=labels[name])
    ratio = noise_sq / stats["loss_last"]
    ax_ratio.plot(stats["step"], ratio, marker="o", ms=3, label=labels[name])
ax_loss.set(yscale="log", xlabel="SGD step k", ylabel="F(θ_k)", title="(a) full loss F")
ax_scatter.set(xlabel="F(θ_k)", ylabel="σ(θ_k)²", title="(b) noise² against loss")
ax_ratio.set(yscale="log", xlabel="SGD step k", ylabel="σ² / F", title="(c) noise² / loss")
handles, names = ax_loss.get_legend_handles_labels()
fig.legend(handles, names, loc="outside lower center", ncols=2)  # below the panels, over no data
fig.suptitle(f"An & Lu Assumption 4: noise² ∝ F along SGD when the net interpolates ({tier} tier)")
save_figure(fig, png, pdf)
