r"""Repeated self-distillation in kernel ridge regression (Mobahi et al. 2020; Borup & Andersen 2021).

A 1-D noisy regression problem — ``y = sin(2πx) + σ ε`` on ``n`` uniform points, RBF kernel —
is refit round after round:

* Mobahi-style: each round fits the previous round's predictions under the fixed constraint
  ``(1/n)‖f(X) − y_t‖² ≤ ε``; the regularization ``c_t`` grows, the filter concentrates on the top
  eigenfunctions, and after finitely many rounds the solution collapses to ``f ≡ 0``;
* Borup-style: fixed regularization ``c``, target ``α y + (1 − α) f_{t−1}`` (α on the ground truth),
  for α = 0 (pure self-distillation: the filter ``A^τ`` decays to 0) and α > 0 (converges to ridge
  with ``c/α``).

Measured: test MSE against the clean function per round (is it U-shaped?), the effective number
of eigenfunctions passed by each round's filter ``Σ_k B_k / B_1`` (sparsification), ``c_t`` and the
collapse round.

Verdict rule: *supported* when Mobahi's ``c_t`` increases strictly, the effective dimension of
every family decreases strictly over the non-collapsed rounds, and the Mobahi rounds collapse
within the configured number of rounds. Whether the test error is U-shaped (best at an
intermediate round) is reported, not required.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from kdtheory.dynamics import TestPoints, apply_filter
from kdtheory.eigen import Spectrum
from kdtheory.experiments.config import param
from kdtheory.experiments.harness import Experiment, Progress, finish, pyplot
from kdtheory.experiments.result import Outcome, Verdict
from kdtheory.ridge_family import borup_filters, mobahi_rounds

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["EXPERIMENT", "Config", "figure", "measure"]

CLAIM = (
    "Repeated self-distillation amplifies regularization: the filter sparsifies round by round "
    "and fixed-constraint rounds collapse"
)


@dataclass(frozen=True)
class Config:
    """Configuration of :func:`measure`.

    Attributes:
      n: training points; n_test: test grid size.
      noise: label noise σ.
      length_scale: RBF length scale.
      nugget: added to the kernel's diagonal (Mobahi et al. assume a full-rank kernel; a smooth RBF
        kernel on many points is numerically rank deficient).
      epsilon_fraction: Mobahi's ε as a fraction of the noise variance σ².
      reg: Borup's fixed ridge regularization (in units of the kernel's λ_max).
      truth_weights: Borup's α values.
      rounds: number of rounds (round 0 is the teacher).
      seed: data seed.
    """

    n: int = param(200, "training points", low=2)
    n_test: int = param(500, "test grid size", low=1)
    noise: float = param(0.5, "label noise σ", low=0)
    length_scale: float = param(0.08, "RBF length scale", above=0)
    nugget: float = param(1e-6, "added to the kernel's diagonal (keeps it full rank)", low=0)
    epsilon_fraction: float = param(0.05, "Mobahi's ε as a fraction of the noise variance σ²", above=0)
    reg: float = param(1e-2, "Borup's fixed ridge regularization (units of the kernel's λ_max)", above=0)
    truth_weights: tuple[float, ...] = param((0.0, 0.3), "Borup's α values", low=0, high=1)
    rounds: int = param(14, "rounds (round 0 is the teacher)", low=2)
    seed: int = param(0, "data seed", low=0)


def _rbf(a: np.ndarray, b: np.ndarray, ell: float) -> np.ndarray:
    """``exp(−(a_i − b_j)² / 2ℓ²)`` for 1-D points, by scikit-learn."""
    from sklearn.metrics.pairwise import rbf_kernel

    K: np.ndarray = rbf_kernel(a[:, None], b[:, None], gamma=1.0 / (2 * ell**2))
    return K


def _effective_dimension(B: np.ndarray) -> np.ndarray:
    """``Σ_k B_k / max_k B_k`` per row (0 for an all-zero row)."""
    top = B.max(axis=1)
    return np.where(top > 0, B.sum(axis=1) / np.where(top > 0, top, 1.0), 0.0)


def measure(cfg: Config, say: Progress) -> Outcome:
    """Mobahi and Borup rounds on one noisy 1-D regression problem; test error and filters per round.

    Args: see :class:`~kdtheory.experiments.harness.Measure`.

    Returns:
      The :class:`~kdtheory.experiments.result.Outcome`: measurements, effects and the verdict.
    """
    rng = np.random.default_rng(cfg.seed)
    x = np.sort(rng.uniform(0, 1, cfg.n))
    y = np.sin(2 * np.pi * x) + cfg.noise * rng.standard_normal(cfg.n)
    xt = np.linspace(0, 1, cfg.n_test)
    ft = np.sin(2 * np.pi * xt)
    K, Kx = _rbf(x, x, cfg.length_scale) + cfg.nugget * np.eye(cfg.n), _rbf(xt, x, cfg.length_scale)
    spec = Spectrum.from_kernel(K)

    errors: dict[str, np.ndarray] = {}
    filters: dict[str, np.ndarray] = {}  # family -> the filter's values a per round (rounds, n)
    collapse: dict[str, int | None] = {}
    eff_dim: dict[str, np.ndarray] = {}
    mob = mobahi_rounds(spec, y, epsilon=cfg.epsilon_fraction * cfg.noise**2, rounds=cfg.rounds)
    tr = apply_filter(spec, y, mob.filters, test=TestPoints(kernel=Kx))
    name = f"Mobahi (ε = {cfg.epsilon_fraction:g} σ²)"
    errors[name] = np.mean((tr.test - ft) ** 2, axis=1)
    filters[name] = mob.filters.a
    collapse[name] = mob.collapsed_at
    say(f"Mobahi: c_t = {np.array2string(mob.ridge, precision=3)}; collapse at round {mob.collapsed_at}")
    c = cfg.reg * spec.evals[0]
    for alpha in cfg.truth_weights:
        B = borup_filters(spec.evals, ridge=c, truth_weight=alpha, rounds=cfg.rounds)
        tr = apply_filter(spec, y, B, test=TestPoints(kernel=Kx))
        key = f"Borup (α = {alpha:g})"
        errors[key] = np.mean((tr.test - ft) ** 2, axis=1)
        filters[key] = B.a
        collapse[key] = None
        say(f"{key}: test MSE {np.array2string(errors[key], precision=4)}")
    for key, a in filters.items():
        live = a.max(axis=1) > 0
        eff_dim[key] = _effective_dimension(a[live])

    c_increasing = bool(np.all(np.diff(mob.ridge[np.isfinite(mob.ridge)]) > 0))
    sparsifies = {k: bool(np.all(np.diff(v) < 0)) for k, v in eff_dim.items()}
    collapsed = mob.collapsed_at is not None
    u_shape = {}
    for k, e in errors.items():
        live = e[: collapse[k]] if collapse[k] is not None else e
        best = int(np.argmin(live))
        u_shape[k] = {"best_round": best, "intermediate": 0 < best < live.size - 1}
    verdict: Verdict = "supported" if (c_increasing and all(sparsifies.values()) and collapsed) else "not supported"

    shapes = "; ".join(f"{k}: best round {v['best_round']}" for k, v in u_shape.items())
    return Outcome(
        verdict,
        (
            f"Mobahi c_t strictly increasing: {c_increasing}; effective dimension Σ B_k / B_1 strictly "
            f"decreasing over live rounds: {sparsifies}; Mobahi collapse at round {mob.collapsed_at} "
            f"(‖y_t‖² ≤ nε). Test error (reported, not required to be U-shaped): {shapes}"
        ),
        measured={
            "mobahi_reg": [float(v) for v in mob.ridge],
            "mobahi_collapsed_at": mob.collapsed_at,
            "mobahi_target_norm_sq_over_n": (mob.target_norms_sq / cfg.n).tolist(),
            "epsilon": cfg.epsilon_fraction * cfg.noise**2,
            "test_mse": {k: [float(v) for v in e] for k, e in errors.items()},
            "effective_dimension": {k: v.tolist() for k, v in eff_dim.items()},
            "best_round": {k: v["best_round"] for k, v in u_shape.items()},
            "best_round_is_intermediate": {k: v["intermediate"] for k, v in u_shape.items()},
        },
        figure_data={"errors": errors, "filters": filters, "collapse": collapse},
    )


def figure(outcome: Outcome, cfg: Config) -> Figure:
    r"""Test error per round, and the cumulative filter per round of the first two families.

    Args:
      outcome: :func:`measure`'s outcome; ``figure_data`` holds the test error and the filter per
        round of each family, and the Mobahi collapse round.
      cfg: the configuration (rounds, size and noise, for the axes and title).

    Returns:
      Three panels: test MSE per round; the filter per round of the first two families.
    """
    d = outcome.figure_data
    rounds = np.arange(cfg.rounds)
    names = list(d["filters"])[:2]
    plt = pyplot()
    fig, axes = plt.subplots(1, 1 + len(names), figsize=(5 + 4.6 * len(names), 4.3))
    ax = axes[0]
    for k, (name, err) in enumerate(d["errors"].items()):
        c = d["collapse"][name]
        ax.plot(rounds, np.where(rounds < (c or cfg.rounds), err, np.nan), "o-", color=f"C{k}", label=name)
        if c is not None:
            ax.axvline(rounds[c], color=f"C{k}", ls=":", lw=1)
    ax.set(xlabel="self-distillation round (0 = teacher)", ylabel="test MSE against the clean function", yscale="log")
    ax.set_title("test error per round (dotted: collapse to f = 0)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    cmap = plt.get_cmap("viridis")
    for ax, name in zip(axes[1:], names, strict=True):
        F = d["filters"][name][:, :60]
        for r in range(F.shape[0]):
            color = cmap(r / max(F.shape[0] - 1, 1))
            ax.plot(np.arange(1, F.shape[1] + 1), F[r], color=color, lw=1.5, label=f"round {r}")
        ax.set(xscale="log", xlabel="eigenfunction index k (descending λ)", ylabel="cumulative filter")
        ax.set_title(f"{name}: filter per round\n(it concentrates on the top eigenfunctions)")
        ax.legend(fontsize=7, ncol=2)
        ax.grid(alpha=0.3)
    return finish(fig, f"Repeated self-distillation, kernel ridge on sin(2πx) + noise (n={cfg.n}, σ={cfg.noise:g})")


EXPERIMENT = Experiment(
    "repeated_self_distillation", "validation", CLAIM, full=Config(), quick=Config(n=80, n_test=200, rounds=16),
    measure=measure, figure=figure,
)  # fmt: skip
