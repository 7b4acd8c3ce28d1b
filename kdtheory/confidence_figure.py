"""The figure of a confidence analysis (``kdtheory confidence --out``); matplotlib is imported lazily."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kdtheory._io import atomic_path
from kdtheory.confidence import ConfidenceReport, binned, least_squares_slope

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["confidence_figure"]


def confidence_figure(
    reports: ConfidenceReport | Mapping[str, ConfidenceReport],
    *,
    title: str = "",
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    r"""Student against teacher logit confidence, and ``Δφ`` by teacher-confidence bin.

    One row of two panels per report. Left: a hexbin (more than 2000 points) or scatter of
    ``(φ_teacher, φ_student)``, the line ``y = x``, the least-squares line with its bootstrap
    interval and the binned means. Right: mean ``Δφ = φ_student − φ_teacher`` per
    teacher-confidence quantile bin with ± 2 standard errors, and the tolerance band ``±tol``.
    With a control, its fitted line and binned means (left) and its ``Δφ`` per bin (right): the
    baseline a student should be compared with (regression to the mean, :mod:`kdtheory.deviation`).

    Args:
      reports: one :class:`~kdtheory.confidence.ConfidenceReport`, or several by panel title.
      title: a figure title.
      path: where to save the PNG (atomically); not saved when ``None``.

    Returns:
      The matplotlib ``Figure`` (closed when saved).
    """
    from kdtheory._mpl import pyplot

    plt = pyplot()

    items = {"predictions": reports} if isinstance(reports, ConfidenceReport) else dict(reports)
    if not items:
        raise ValueError("reports: nothing to draw")
    fig: Figure
    fig, axes = plt.subplots(len(items), 2, figsize=(10.5, 4.4 * len(items)), squeeze=False)
    for (ax, ax2), (name, r) in zip(axes, items.items(), strict=True):
        x, y = r.teacher_logit, r.student_logit
        if x.size > 2000:
            ax.hexbin(x, y, gridsize=45, cmap="Blues", mincnt=1, bins="log")
        else:
            ax.scatter(x, y, s=6, alpha=0.35, color="C0", lw=0)
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1, label="y = x")
        if r.slope is not None and r.intercept is not None:  # both set or both None
            ci = "" if r.slope_ci is None else f" [{r.slope_ci[0]:.2f}, {r.slope_ci[1]:.2f}]"
            xs = np.array([lo, hi])
            ax.plot(xs, r.slope * xs + r.intercept, color="C3", lw=2, label=f"fit: slope {r.slope:.2f}{ci}")
        ax.plot(r.bin_teacher, r.bin_student, "o-", color="C1", ms=4, lw=1.2, label="binned means")
        control_bins = None
        if r.control_logit is not None:
            control_bins = binned(x, r.control_logit, len(r.bin_count))
            fit = least_squares_slope(x, r.control_logit)
            if fit is not None:
                xs = np.array([lo, hi])
                ax.plot(xs, fit[0] * xs + fit[1], color="C4", lw=1.5, ls="-.", label=f"control fit: slope {fit[0]:.2f}")
            ax.plot(control_bins.bin_teacher, control_bins.bin_student, "s-", color="C4", ms=3, lw=1,
                    label="control binned means")  # fmt: skip
        ax.set_xlabel("teacher logit confidence φ_teacher")
        ax.set_ylabel("student logit confidence φ_student")
        clip = f", {r.clipped} clipped" if r.clipped else ""
        ax.set_title(f"{name}: n = {x.size}{clip}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        se = np.nan_to_num(r.bin_delta_se)
        ax2.errorbar(r.bin_teacher, r.bin_delta, yerr=2 * se, color="C2", marker="o", ms=4, capsize=3,
                     label="student − teacher")  # fmt: skip
        if control_bins is not None:
            cse = np.nan_to_num(control_bins.bin_delta_se)
            ax2.errorbar(control_bins.bin_teacher, control_bins.bin_delta, yerr=2 * cse, color="C4", marker="s", ms=3,
                         capsize=3, label="control − teacher")  # fmt: skip
        else:
            ax2.text(0.02, 0.02, "no control: not corrected for regression to the mean", transform=ax2.transAxes,
                     fontsize=8, color="0.35")  # fmt: skip
        if r.tol > 0:
            ax2.axhspan(-r.tol, r.tol, color="0.85", label=f"|Δφ| ≤ tol = {r.tol:g}")
        ax2.legend(fontsize=8, loc="upper right")  # after every labelled artist, the tolerance band included
        ax2.axhline(0.0, color="0.3", ls="--", lw=1)
        ax2.set_xlabel("teacher logit confidence φ_teacher (bin mean)")
        ax2.set_ylabel("mean Δφ = φ_student − φ_teacher")
        ax2.set_title(
            f"low-confidence underfit {100 * r.low_underfit:.0f}%, high-confidence overfit "
            f"{100 * r.high_overfit:.0f}% (q = {r.quantile:g})",
            fontsize=10,
        )
        ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if path is not None:
        try:
            with atomic_path(Path(path)) as tmp:
                fig.savefig(tmp, dpi=130, bbox_inches="tight", format="png")
        finally:
            plt.close(fig)
    return fig
