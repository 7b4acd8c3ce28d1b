"""Matplotlib figures. matplotlib is imported inside each function (Agg backend, no display).

Every function returns the ``Figure`` and, given ``path``, saves it atomically as PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kdtheory._io import atomic_path

__all__ = ["save_figure", "mode_convergence_figure"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 130) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically and close it."""
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    finally:
        _pyplot().close(fig)
    return Path(path)


def mode_convergence_figure(
    steps: np.ndarray,
    closed_remaining: np.ndarray,
    simulated_remaining: np.ndarray,
    evals: np.ndarray,
    modes: Sequence[int],
    snapshot_steps: Sequence[int],
    *,
    title: str = "",
    path: str | os.PathLike | None = None,
):
    r"""Per-mode convergence of gradient descent: closed form (lines) over simulation (markers).

    Left: the remaining fraction ``1 − a_k(s)`` of the selected eigen-modes against the step
    ``s`` (log axis). Right: the learned fraction ``a_k(s)`` against ``λ_k`` at a few steps, the
    filter sweeping down the spectrum.

    Args:
      steps: steps, shape ``(S,)``.
      closed_remaining: ``1 − a_k(s)`` in closed form, shape ``(S, m)``.
      simulated_remaining: the same measured from an explicit simulation, shape ``(S, m)``.
      evals: eigenvalues, shape ``(m,)``, descending.
      modes: 0-based indices of the modes drawn on the left.
      snapshot_steps: steps drawn on the right (must be in ``steps``).
      title: suptitle.
      path: where to save the PNG (optional).
    """
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    cmap = plt.get_cmap("viridis")
    x = np.maximum(steps, 0.8)
    for j, k in enumerate(modes):
        color = cmap(j / max(len(modes) - 1, 1))
        ax1.plot(x, closed_remaining[:, k], color=color, lw=1.8, label=f"mode {k + 1}: λ={evals[k]:.2g}")
        idx = np.unique(np.geomspace(1, len(steps) - 1, 14).astype(int))
        ax1.plot(x[idx], simulated_remaining[idx, k], "o", color=color, ms=4, mfc="none")
    ax1.set_xscale("log")
    ax1.set_xlabel("gradient-descent step s")
    ax1.set_ylabel("remaining fraction 1 − a_k(s)")
    ax1.set_title("top eigen-modes are learned first\n(lines: closed form, circles: explicit GD loop)", fontsize=10)
    ax1.legend(fontsize=7, loc="lower left")
    ax1.grid(alpha=0.3)
    for j, s in enumerate(snapshot_steps):
        i = int(np.searchsorted(steps, s))
        color = plt.get_cmap("plasma")(j / max(len(snapshot_steps) - 1, 1))
        keep = evals > 0
        ax2.plot(evals[keep], 1 - closed_remaining[i, keep], color=color, lw=1.6, label=f"s = {int(s)}")
        ax2.plot(evals[keep][::7], 1 - simulated_remaining[i, keep][::7], "o", color=color, ms=3, mfc="none")
    ax2.set_xscale("log")
    ax2.set_xlabel("eigenvalue λ_k")
    ax2.set_ylabel("learned fraction a_k(s)")
    ax2.set_title("the GD filter sweeps from the top of the spectrum down", fontsize=10)
    ax2.legend(fontsize=7, loc="upper left")
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
