r"""Population risk of distillation recipes in a planted linear model, and the search for the best.

For ``X = U S Vᵀ`` and an estimator with effective filter ``F`` (:class:`kdtheory.eigen.Filter`)
started from zero, ``θ̂ = V diag(s · F.a_over_eval) Uᵀ y``, and its excess population risk
under covariance ``Σ`` is ``(θ̂ − θ*)ᵀ Σ (θ̂ − θ*)``, evaluated for a whole grid of recipes at once
as a quadratic form in the coefficients.

Question (THEORY.md §3, *Generalization*): with a decaying spectrum, can the best student over
``(T, t, teacher weight)`` beat the best early-stopped teacher?
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array
from kdtheory.distill import distill_filter, mixing_weights
from kdtheory.eigen import GRADIENT_FLOW, Filter, Recipe, Spectrum

__all__ = ["population_risk", "RiskSearch", "search_best"]


def population_risk(
    spectrum: Spectrum, y: ArrayLike, theta_star: ArrayLike, cov: ArrayLike, filter: Filter
) -> np.ndarray:
    r"""Excess population risk ``(θ̂ − θ*)ᵀ Σ (θ̂ − θ*)`` of the estimators ``θ̂ = V diag(s·g) Uᵀ y``.

    Args:
      spectrum: a features spectrum of X (``Spectrum.from_features``).
      y: labels ``(n,)``.
      theta_star: true coefficients ``(d,)``.
      cov: the population covariance, ``(d, d)``, or its diagonal ``(d,)``.
      filter: the estimators' filters, shape ``S + (m,)`` (only ``a_over_eval`` enters).

    Returns:
      Risks of shape ``S``.

    Raises:
      ValueError: a kernel spectrum, or shapes that do not match.
      TypeError: ``filter`` is not a Filter.
    """
    if spectrum.V is None:
        raise ValueError("population_risk needs a features spectrum (Spectrum.from_features)")
    th = as_float_array(theta_star, "theta_star", ndim=(1,))
    C = as_float_array(cov, "cov", ndim=(1, 2))
    if not isinstance(filter, Filter):
        raise TypeError(f"filter must be a kdtheory.eigen.Filter, got {type(filter).__name__}")
    g = filter.a_over_eval
    if g.shape[-1] != spectrum.evals.size:
        raise ValueError(f"filter must end in m={spectrum.evals.size} modes, got shape {g.shape}")
    d = spectrum.V.shape[0]
    if th.shape != (d,):
        raise ValueError(f"theta_star must have shape ({d},), got {th.shape}")
    SV = (C[:, None] * spectrum.V) if C.ndim == 1 else C @ spectrum.V  # Σ V
    M = spectrum.V.T @ SV  # Vᵀ Σ V
    b = SV.T @ th  # Vᵀ Σ θ*
    c0 = float(th @ (C * th if C.ndim == 1 else C @ th))
    coef = g * (spectrum.singular_values * spectrum.project(y))  # (S..., m): θ̂ in the V basis
    flat = coef.reshape(-1, coef.shape[-1])
    risk = np.einsum("gi,ij,gj->g", flat, M, flat) - 2 * flat @ b + c0
    return np.maximum(risk, 0.0).reshape(coef.shape[:-1])


@dataclass(frozen=True)
class RiskSearch:
    """Best early-stopped teacher vs best student over a grid (population risk).

    Attributes:
      teacher_risk: risk of the best early-stopped teacher.
      teacher_t: its time.
      student_risk: risk of the best student.
      student_teacher_t: the teacher time of the best student.
      student_t: the best student's time.
      student_teacher_weight: the best student's teacher weight.
      gain: ``(teacher_risk − student_risk) / teacher_risk``.
    """

    teacher_risk: float
    teacher_t: float
    student_risk: float
    student_teacher_t: float
    student_t: float
    student_teacher_weight: float
    gain: float  # (teacher_risk − student_risk) / teacher_risk

    @property
    def student_wins(self) -> bool:
        """True when the best student's risk is below the best teacher's (beyond 1e-12 relative)."""
        return self.gain > 1e-12


def search_best(
    spectrum: Spectrum,
    y: ArrayLike,
    theta_star: ArrayLike,
    cov: ArrayLike,
    *,
    teacher_t: Sequence[float],
    student_t: Sequence[float],
    teacher_weight: Sequence[float] | None = None,
    truth_weight: Sequence[float] | None = None,
    recipe: Recipe = GRADIENT_FLOW,
) -> RiskSearch:
    """Grid search of the best teacher (over T) and the best student (over T, t, teacher weight).

    For gradient flow the best teacher time is refined by a bounded scalar minimization between
    its grid neighbours, so a reported student gain is measured against the truly best
    early-stopped teacher, not a grid point. (The student grid is not refined: its gain is a
    lower bound.)

    Args:
      spectrum: a features spectrum of X.
      y: labels ``(n,)``.
      theta_star: true coefficients ``(d,)``.
      cov: population covariance ``(d, d)`` or its diagonal.
      teacher_t: grid of teacher times.
      student_t: grid of student times.
      teacher_weight: grid of teacher weights of the student's mixed target (default ``(1,)``).
      truth_weight: the grid as weights on the labels instead (``1 − teacher_weight``).
      recipe: the recipe of teacher and student.

    Returns:
      A :class:`RiskSearch`.
    """
    Ts = np.asarray(teacher_t, dtype=float)
    ts = np.asarray(student_t, dtype=float)
    r_teacher = population_risk(spectrum, y, theta_star, cov, recipe.filter(spectrum, Ts))
    i = int(np.argmin(r_teacher))
    rt, T_best = float(r_teacher[i]), float(Ts[i])
    if recipe.method == "flow" and np.isfinite(T_best):
        # refine the teacher between its grid neighbours, so a student "win" is not a grid artifact
        lo = np.log(Ts[max(i - 1, 0)])
        hi = np.log(Ts[min(i + 1, Ts.size - 1)]) if np.isfinite(Ts[min(i + 1, Ts.size - 1)]) else np.log(T_best) + 5

        def risk_at(logT):
            return float(population_risk(spectrum, y, theta_star, cov, recipe.filter(spectrum, np.exp(logT))))

        opt = scipy.optimize.minimize_scalar(risk_at, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
        if opt.fun < rt:
            rt, T_best = float(opt.fun), float(np.exp(opt.x))
    best = (np.inf, 0.0, 0.0, 1.0)
    if teacher_weight is None and truth_weight is None:
        teacher_weight = (1.0,)
    grid = teacher_weight if teacher_weight is not None else truth_weight
    weights = mixing_weights(teacher_weight=teacher_weight, truth_weight=truth_weight, size=len(grid))
    for T in np.unique(np.r_[Ts, T_best]):  # the refined teacher too: t = ∞ then reproduces it
        for w in weights:
            eff = distill_filter(spectrum, ts, teacher_t=T, teacher=recipe, teacher_weight=float(w))
            r = population_risk(spectrum, y, theta_star, cov, eff)
            j = int(np.argmin(r))
            if r[j] < best[0]:
                best = (float(r[j]), float(T), float(ts[j]), float(w))
    return RiskSearch(rt, T_best, best[0], best[1], best[2], best[3], (rt - best[0]) / rt if rt > 0 else 0.0)
