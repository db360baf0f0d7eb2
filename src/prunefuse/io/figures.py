"""One figure per call, drawn off-screen and written atomically, for every report in the toolkit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .storage import atomic_write


def plot(path: Path, draw: Callable) -> None:
    """Call ``draw(ax)`` on a fresh 6x4-inch axes, add grid and legend, and save the PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    draw(ax)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
