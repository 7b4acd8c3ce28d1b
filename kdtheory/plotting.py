"""Matplotlib figures. matplotlib is imported inside each function (Agg backend, no display).

Every function returns the ``Figure`` and, given ``path``, saves it atomically as PNG.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kdtheory._io import atomic_path

__all__ = [
    "save_figure",
    "mode_convergence_figure",
    "exaggeration_figure",
    "rounds_figure",
    "confidence_figure",
    "late_distillation_figure",
    "denoising_figure",
    "ntk_bridge_figure",
]


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


def _finish(fig, title: str, path: str | os.PathLike | None):
    """Suptitle, tight layout, and save when a path is given."""
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


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
    return _finish(fig, title, path)


def exaggeration_figure(
    path_onehot: np.ndarray,
    path_student: np.ndarray,
    teacher_point: np.ndarray,
    directions: tuple[int, int],
    evals: np.ndarray,
    ratio_teacher: np.ndarray,
    ratio_onehot: np.ndarray,
    crossover: int,
    risks: np.ndarray,
    *,
    title: str = "",
    path: str | os.PathLike | None = None,
):
    r"""Distillation exaggerates GD's implicit bias: three panels.

    Args:
      path_onehot: one-hot trajectory, fraction learned along the two directions, ``(P, 2)``.
      path_student: the student's trajectory in the same coordinates, ``(P, 2)``.
      teacher_point: the teacher's point ``(2,)``.
      directions: 0-based indices of the two directions (for labels).
      evals: eigenvalues ``(m,)``.
      ratio_teacher: student/teacher per direction ``(m,)``.
      ratio_onehot: student/one-hot at matched norm per direction ``(m,)``.
      crossover: index of the first direction where the student is behind.
      risks: ``(seeds, 2)`` population risks of the best teacher and the best student.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    i, j = directions
    ax.plot(path_onehot[:, 0], path_onehot[:, 1], color="0.3", lw=2, label="one-hot GD (flow)")
    ax.plot(path_student[:, 0], path_student[:, 1], color="C3", lw=2, label="student on the teacher")
    ax.plot(*teacher_point, "o", color="C0", ms=9, label="teacher (one-hot stopped at T)")
    ax.set_xlabel(f"fraction learned along u_{i + 1} (λ = {evals[i]:.2g})")
    ax.set_ylabel(f"fraction learned along u_{j + 1} (λ = {evals[j]:.2g})")
    ax.set_title("the student reaches the teacher's point\nbelow the one-hot path (top direction first)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    ax = axes[1]
    keep = evals > 0
    ax.plot(evals[keep], ratio_teacher[keep], color="C0", lw=2, label="student / teacher  (= a_k(t))")
    ax.plot(evals[keep], ratio_onehot[keep], color="C3", lw=2, label="student / one-hot at matched norm")
    ax.axhline(1.0, color="0.5", lw=1, ls="--")
    if 0 < crossover < evals.size:
        ax.axvline(
            evals[crossover], color="C3", lw=1, ls=":", label=f"first direction behind: λ = {evals[crossover]:.2g}"
        )
    ax.set_xscale("log")
    ax.set_xlabel("eigenvalue λ_k")
    ax.set_ylabel("ratio of coefficients")
    ax.set_title("per direction: ahead on top directions,\nbehind on bottom ones", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    ax = axes[2]
    seeds = np.arange(risks.shape[0])
    ax.bar(seeds - 0.2, risks[:, 0], width=0.4, color="C0", label="best early-stopped teacher")
    ax.bar(seeds + 0.2, risks[:, 1], width=0.4, color="C3", label="best student over (T, t, weight)")
    ax.set_xlabel("seed (planted linear model)")
    ax.set_ylabel("excess population risk")
    gain = (risks[:, 0] - risks[:, 1]) / risks[:, 0]
    ax.set_title(
        f"planted model: student gain {100 * gain.mean():.1f}% ± {100 * gain.std(ddof=1) if gain.size > 1 else 0:.1f}%",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return _finish(fig, title, path)


def rounds_figure(
    rounds: np.ndarray,
    test_errors: dict[str, np.ndarray],
    filters: dict[str, np.ndarray],
    *,
    collapse: dict[str, int | None],
    title: str = "",
    path: str | os.PathLike | None = None,
):
    r"""Repeated self-distillation: test error per round, and the filter per round (sparsification).

    Args:
      rounds: round numbers ``(R,)``.
      test_errors: name -> test MSE per round ``(R,)`` (NaN after collapse is drawn as a gap).
      filters: name -> cumulative filters ``(R, m)`` (two are drawn).
      collapse: name -> the round index of the collapse (or None).
    """
    plt = _pyplot()
    names = list(filters)[:2]
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(5 + 4.6 * len(names), 4.3))
    ax = axes[0]
    for k, (name, err) in enumerate(test_errors.items()):
        ax.plot(rounds, err, "o-", color=f"C{k}", label=name)
        c = collapse.get(name)
        if c is not None:
            ax.axvline(rounds[c], color=f"C{k}", ls=":", lw=1)
    ax.set_xlabel("self-distillation round (0 = teacher)")
    ax.set_ylabel("test MSE against the clean function")
    ax.set_yscale("log")
    ax.set_title("test error per round (dotted: collapse to f = 0)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    for ax, name in zip(axes[1:], names, strict=True):
        F = filters[name]
        cmap = plt.get_cmap("viridis")
        for r in range(F.shape[0]):
            ax.plot(
                np.arange(1, F.shape[1] + 1), F[r], color=cmap(r / max(F.shape[0] - 1, 1)), lw=1.5, label=f"round {r}"
            )
        ax.set_xscale("log")
        ax.set_xlabel("eigenfunction index k (descending λ)")
        ax.set_ylabel("cumulative filter")
        ax.set_title(f"{name}: filter per round\n(it concentrates on the top eigenfunctions)", fontsize=10)
        ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
    return _finish(fig, title, path)


def confidence_figure(reports: dict, *, title: str = "", path: str | os.PathLike | None = None):
    r"""Student vs teacher logit confidence, one panel per report (e.g. train and test).

    Each panel: a hexbin (many points) or scatter of ``(φ_teacher, φ_student)``, the line
    ``y = x``, the least-squares line, and the binned means by teacher-confidence quantile.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(reports), figsize=(5.2 * len(reports), 4.6), squeeze=False)
    for ax, (name, r) in zip(axes[0], reports.items(), strict=True):
        x, y = r.teacher_logit, r.student_logit
        if x.size > 2000:
            ax.hexbin(x, y, gridsize=45, cmap="Blues", mincnt=1, bins="log")
        else:
            ax.scatter(x, y, s=6, alpha=0.35, color="C0", lw=0)
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1, label="y = x")
        if r.slope is not None:
            ci = "" if r.slope_ci is None else f" [{r.slope_ci[0]:.2f}, {r.slope_ci[1]:.2f}]"
            xs = np.array([lo, hi])
            ax.plot(xs, r.slope * xs + r.intercept, color="C3", lw=2, label=f"fit: slope {r.slope:.2f}{ci}")
        ax.plot(r.bin_teacher, r.bin_student, "o-", color="C1", ms=4, lw=1.2, label="binned means")
        ax.set_xlabel("teacher logit confidence φ(p_teacher)")
        ax.set_ylabel("student logit confidence φ(p_student)")
        ax.set_title(
            f"{name}: low-confidence underfit {100 * r.low_underfit:.0f}% (lowest {100 * r.quantile:.0f}%)",
            fontsize=10,
        )
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
    return _finish(fig, title, path)


def late_distillation_figure(
    fractions: np.ndarray,
    accuracy: np.ndarray,
    linear_risk: np.ndarray,
    *,
    title: str = "",
    path: str | os.PathLike | None = None,
):
    r"""Outcome against the fraction of training spent on one-hot labels before the switch.

    Left: MLP test accuracy (mean ± std over seeds, thin lines per seed). Right: population risk
    of the linear model in closed form (mean ± std over planted seeds). ``f = 0`` is distillation
    from the start, ``f = 1`` one-hot training throughout.
    """
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for row in accuracy:
        ax1.plot(fractions, row, color="C0", alpha=0.25, lw=1)
    sd = accuracy.std(axis=0, ddof=1) if accuracy.shape[0] > 1 else np.zeros(fractions.size)
    ax1.errorbar(fractions, accuracy.mean(axis=0), yerr=sd, color="C0", lw=2, marker="o", capsize=3)
    ax1.set_xlabel("fraction of training on one-hot labels before switching to the teacher")
    ax1.set_ylabel("test accuracy")
    ax1.set_title("MLP: 0 = distillation throughout, 1 = one-hot throughout", fontsize=10)
    ax1.grid(alpha=0.3)
    sd2 = linear_risk.std(axis=0, ddof=1) if linear_risk.shape[0] > 1 else np.zeros(fractions.size)
    ax2.errorbar(fractions, linear_risk.mean(axis=0), yerr=sd2, color="C3", lw=2, marker="o", capsize=3)
    ax2.set_xlabel("fraction of training on one-hot labels before switching to the teacher")
    ax2.set_ylabel("excess population risk")
    ax2.set_title("planted linear model, gradient flow, closed form", fontsize=10)
    ax2.grid(alpha=0.3)
    return _finish(fig, title, path)


def denoising_figure(
    steps: np.ndarray,
    traces: dict[str, tuple[np.ndarray, np.ndarray]],
    b_simple: dict[str, tuple[np.ndarray, np.ndarray]],
    bin_share: np.ndarray,
    *,
    title: str = "",
    path: str | os.PathLike | None = None,
):
    r"""Gradient noise along training: one-hot vs distillation targets, and where the noise sits.

    Args:
      steps: checkpoint steps ``(C,)``.
      traces: model -> (tr Σ with one-hot targets, with distillation targets), each ``(C,)``.
      b_simple: model -> (B_simple one-hot, B_simple distillation).
      bin_share: share of the removed noise per teacher-confidence decile (lowest first).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    x = np.maximum(steps, 0.8)
    for k, (name, (oh, kd)) in enumerate(traces.items()):
        axes[0].plot(x, oh, color=f"C{k}", lw=2, label=f"{name}: one-hot targets")
        axes[0].plot(x, kd, color=f"C{k}", lw=2, ls="--", label=f"{name}: teacher targets")
        oh_b, kd_b = b_simple[name]
        axes[1].plot(x, oh_b, color=f"C{k}", lw=2, label=f"{name}: one-hot")
        axes[1].plot(x, kd_b, color=f"C{k}", lw=2, ls="--", label=f"{name}: teacher")
    for ax, ylabel in ((axes[0], "tr Σ of per-example gradients"), (axes[1], "B_simple = tr Σ / ‖G‖²")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training step (one-hot run)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    axes[0].set_title("gradient noise at the same parameters", fontsize=10)
    axes[1].set_title("simple noise scale", fontsize=10)
    deciles = np.arange(1, bin_share.size + 1)
    axes[2].bar(deciles, bin_share, color="C3")
    axes[2].axhline(1 / bin_share.size, color="0.4", ls="--", lw=1, label="uniform share")
    axes[2].set_xlabel("teacher-confidence decile (1 = least confident)")
    axes[2].set_ylabel("share of the removed noise Σ‖ξ_i‖²")
    axes[2].set_title("where the noise that distillation removes comes from", fontsize=10)
    axes[2].legend(fontsize=8)
    axes[2].grid(alpha=0.3, axis="y")
    return _finish(fig, title, path)


def ntk_bridge_figure(
    widths: np.ndarray,
    gaps: dict[str, np.ndarray],
    lags: dict[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str = "",
    path: str | os.PathLike | None = None,
):
    r"""Left: linearization gap vs width (log-log, with a ``1/√width`` guide). Right: measured vs
    kernel-predicted student lag per data set and seed."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.3))
    for k, (name, g) in enumerate(gaps.items()):
        sd = g.std(0, ddof=1) if g.shape[0] > 1 else np.zeros(widths.size)
        ax1.errorbar(widths, g.mean(0), yerr=sd, marker="o", color=f"C{k}", capsize=3, label=name)
    ref = gaps["one-hot"].mean(0)[0] * np.sqrt(widths[0] / widths)
    ax1.plot(widths, ref, "--", color="0.5", label="∝ 1/√width")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("hidden width")
    ax1.set_ylabel("‖f_net − f_lin‖ / ‖f_lin − f_0‖")
    ax1.set_title("trained network vs its linearization", fontsize=10)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    for k, (name, (meas, pred)) in enumerate(lags.items()):
        ax2.scatter(pred, meas, color=f"C{k + 2}", label=name, s=30)
    allv = np.concatenate([np.r_[m, p] for m, p in lags.values()])
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.1 * (hi - lo + 1e-12)
    ax2.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="0.5", lw=1, label="y = x")
    ax2.axhline(0, color="0.3", lw=0.8)
    ax2.axvline(0, color="0.3", lw=0.8)
    ax2.set_xlabel("lag predicted by the kernel (closed form)")
    ax2.set_ylabel("lag measured on the network")
    ax2.set_title("student lag on lower NTK directions at matched top progress", fontsize=10)
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    return _finish(fig, title, path)
