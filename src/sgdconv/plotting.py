"""One shared figure style for every notebook, and the way figures are saved.

Notebooks only plot: they read tidy tables, call :func:`use_style`, draw with seaborn or
matplotlib and finish with :func:`save_figure`, which writes the PNG and the PDF the rule
declares.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # figures are rendered headless, in notebooks and rule scripts alike

import matplotlib.pyplot as plt
import seaborn as sns

#: Qualitative palette shared by all figures (colour-blind safe).
PALETTE = "colorblind"

#: Width of one panel, in inches; figures are laid out as rows of panels like the papers'.
PANEL_WIDTH = 3.2
PANEL_HEIGHT = 2.6


def use_style() -> None:
    """Apply the project's seaborn/matplotlib style."""
    sns.set_theme(context="paper", style="whitegrid", palette=PALETTE, font_scale=1.0)
    plt.rcParams.update(
        {
            # Every figure lays itself out (titles, labels, legends outside the axes never
            # overlap), also one made without panel_grid.
            "figure.constrained_layout.use": True,
            "figure.dpi": 110,
            "savefig.dpi": 200,
            "savefig.bbox": "tight",
            "axes.titlesize": "medium",
            "axes.titleweight": "bold",
            "legend.frameon": False,
            "pdf.fonttype": 42,  # embed TrueType, so the PDF stays editable
            # Reproducible PDFs: no creation date in the file.
            "pdf.compression": 6,
        }
    )


def panel_grid(
    nrows: int, ncols: int, *, sharex: bool | str = False, sharey: bool | str = False
) -> tuple[plt.Figure, Sequence[Sequence[plt.Axes]]]:
    """A figure with ``nrows x ncols`` panels of the standard size, axes as a 2-D array."""
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(PANEL_WIDTH * ncols, PANEL_HEIGHT * nrows),
        sharex=sharex,
        sharey=sharey,
        squeeze=False,
        layout="constrained",
    )
    return fig, axes


def save_figure(fig: plt.Figure, png: str | os.PathLike, pdf: str | os.PathLike) -> None:
    """Write ``fig`` to both paths (creating their folders) and close it."""
    for path in (png, pdf):
        os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    fig.savefig(png)
    fig.savefig(pdf, metadata={"CreationDate": None})
    plt.close(fig)
