r"""Population risk of distillation recipes in a planted linear model; choosing them on validation data.

For ``X = U S Vᵀ`` and an estimator with effective filter ``F`` (:class:`kdtheory.eigen.Filter`)
started from zero, ``θ̂ = V diag(s · F.a_over_eval) Uᵀ y``. Its excess population risk under
covariance ``Σ`` is ``(θ̂ − θ*)ᵀ Σ (θ̂ − θ*)`` (:func:`population_risk`) and its error on a
held-out sample ``(X_val, y_val)`` is ``‖X_val θ̂ − y_val‖²/n_val`` (:func:`validation_mse`); both
are evaluated for a whole grid of recipes at once, as quadratic forms in the coefficients.

Question (docs/theory.md §3, *Generalization*): with a decaying spectrum, does the best student over
``(T, t, teacher weight)`` beat the best early-stopped teacher? Two ways to pick "best":

* :func:`search_best` picks both by their *population* risk (an oracle). The student's grid
  contains the teacher (``t = ∞`` with teacher weight 1 reproduces it), so its gain is ``≥ 0``
  by construction: a ceiling on what distillation could give, not a test.
* :func:`select_on_validation` picks both by their error on a noisy, finite validation sample,
  as a practitioner would, and reports the population risk of what was picked. The gain can
  then take either sign: the student's larger search can also fit the validation noise better.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, as_times
from kdtheory.distill import mixing_weights
from kdtheory.eigen import GRADIENT_FLOW, Filter, Recipe, Spectrum

__all__ = [
    "population_risk",
    "validation_mse",
    "RiskSearch",
    "search_best",
    "ValidationSelection",
    "select_on_validation",
]


def _check_features(spectrum: Spectrum, who: str) -> np.ndarray:
    """The weight-space eigenvectors ``V`` of a features spectrum, or a clear error."""
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a kdtheory.eigen.Spectrum, got {type(spectrum).__name__}")
    if spectrum.V is None:
        raise ValueError(f"{who} needs a features spectrum (Spectrum.from_features)")
    return spectrum.V


def _coefficients(spectrum: Spectrum, y: ArrayLike, filter: Filter) -> np.ndarray:
    """``θ̂`` in the ``V`` basis, ``s · g · Uᵀ y``, shape ``S + (m,)``."""
    if not isinstance(filter, Filter):
        raise TypeError(f"filter must be a kdtheory.eigen.Filter, got {type(filter).__name__}")
    yy = as_float_array(y, "y", ndim=(1,))
    if yy.shape != (spectrum.n,):
        raise ValueError(f"y must have shape ({spectrum.n},), got {yy.shape}")
    g = filter.a_over_eval
    if g.shape[-1] != spectrum.evals.size:
        raise ValueError(f"filter must end in m={spectrum.evals.size} modes, got shape {g.shape}")
    coef: np.ndarray = g * (spectrum.singular_values * spectrum.project(yy))
    return coef


def population_risk(
    spectrum: Spectrum, y: ArrayLike, theta_star: ArrayLike, cov: ArrayLike, filter: Filter
) -> np.ndarray:
    r"""Excess population risk ``(θ̂ − θ*)ᵀ Σ (θ̂ − θ*)`` of the estimators ``θ̂ = V diag(s·g) Uᵀ y``.

    With ``c = s · g · Uᵀ y`` (``θ̂ = V c``): ``cᵀ (VᵀΣV) c − 2 cᵀ VᵀΣθ* + θ*ᵀΣθ*``.

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
    V = _check_features(spectrum, "population_risk")
    th = as_float_array(theta_star, "theta_star", ndim=(1,))
    C = as_float_array(cov, "cov", ndim=(1, 2))
    d = V.shape[0]
    if th.shape != (d,):
        raise ValueError(f"theta_star must have shape ({d},), got {th.shape}")
    if C.shape not in ((d,), (d, d)):
        raise ValueError(f"cov must have shape ({d},) or ({d}, {d}), got {C.shape}")
    coef = _coefficients(spectrum, y, filter)
    SV = (C[:, None] * V) if C.ndim == 1 else C @ V  # Σ V
    M = V.T @ SV  # Vᵀ Σ V
    b = SV.T @ th  # Vᵀ Σ θ*
    c0 = float(th @ (C * th if C.ndim == 1 else C @ th))
    flat = coef.reshape(-1, coef.shape[-1])
    risk = np.sum((flat @ M) * flat, axis=-1) - 2 * flat @ b + c0  # BLAS, not a per-row einsum loop
    r: np.ndarray = np.maximum(risk, 0.0).reshape(coef.shape[:-1])
    return r


def validation_mse(spectrum: Spectrum, y: ArrayLike, X_val: ArrayLike, y_val: ArrayLike, filter: Filter) -> np.ndarray:
    r"""Mean squared error ``‖X_val θ̂ − y_val‖² / n_val`` of the estimators ``θ̂ = V diag(s·g) Uᵀ y``.

    Computed as ``(X_val V) c`` with ``c = s · g · Uᵀ y``, for every filter of the grid at once.

    Args:
      spectrum: a features spectrum of the training design X (``Spectrum.from_features``).
      y: training labels ``(n,)``.
      X_val: validation inputs ``(n_val, d)``.
      y_val: validation labels ``(n_val,)`` (noisy, as the training labels).
      filter: the estimators' filters, shape ``S + (m,)`` (only ``a_over_eval`` enters).

    Returns:
      Mean squared validation errors, shape ``S``.

    Raises:
      ValueError: a kernel spectrum, an empty validation sample, or shapes that do not match.
      TypeError: ``filter`` is not a Filter.
    """
    V = _check_features(spectrum, "validation_mse")
    Xv = as_float_array(X_val, "X_val", ndim=(2,))
    yv = as_float_array(y_val, "y_val", ndim=(1,))
    d = V.shape[0]
    if Xv.shape[0] == 0 or Xv.shape[1] != d:
        raise ValueError(f"X_val must have shape (n_val >= 1, {d}), got {Xv.shape}")
    if yv.shape != (Xv.shape[0],):
        raise ValueError(f"y_val must have shape ({Xv.shape[0]},) to match X_val, got {yv.shape}")
    coef = _coefficients(spectrum, y, filter)
    pred = coef @ (Xv @ V).T  # S + (n_val,)
    mse: np.ndarray = np.mean((pred - yv) ** 2, axis=-1)
    return mse


def _student_grid(spectrum: Spectrum, Ts: np.ndarray, ts: np.ndarray, weights: np.ndarray, recipe: Recipe) -> Filter:
    r"""Filters of the students on ``w ŷ_T + (1 − w) y`` for every ``(T, w, t)``: shape ``(nT, nw, nt, m)``.

    ``S_t.train_from(ZERO, w T + (1 − w) ONE)`` (:func:`kdtheory.distill.distill_filter`), broadcast.
    """
    teacher = recipe.filter(spectrum, Ts).a  # (nT, m)
    target_a = weights[None, :, None, None] * teacher[:, None, None, :] + (1.0 - weights)[None, :, None, None]
    target = Filter(target_a, np.zeros_like(target_a))  # only a target's values (a) enter
    student = recipe.filter(spectrum, ts)  # (nt, m)
    zero = Filter.zero(spectrum.evals.size)
    return student.train_from(zero, target)


def _grid_axes(
    teacher_t: ArrayLike,
    student_t: ArrayLike,
    teacher_weight: Sequence[float] | None,
    truth_weight: Sequence[float] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    Ts = np.atleast_1d(as_times(teacher_t, "teacher_t")).ravel()
    ts = np.atleast_1d(as_times(student_t, "student_t")).ravel()
    if Ts.size == 0 or ts.size == 0:
        raise ValueError("teacher_t and student_t must not be empty")
    grid: Sequence[float]
    if teacher_weight is not None:
        grid = teacher_weight
    elif truth_weight is not None:
        grid = truth_weight
    else:
        teacher_weight = grid = (1.0,)
    n_w = np.size(grid)
    if n_w == 0:
        raise ValueError("the grid of teacher weights must not be empty")
    weights = mixing_weights(teacher_weight=teacher_weight, truth_weight=truth_weight, size=n_w)
    return Ts, ts, weights


@dataclass(frozen=True)
class RiskSearch:
    """Best early-stopped teacher vs best student over a grid, both chosen by population risk.

    Attributes:
      teacher_risk: risk of the best early-stopped teacher.
      teacher_t: its time.
      student_risk: risk of the best student.
      student_teacher_t: the teacher time of the best student.
      student_t: the best student's time.
      student_teacher_weight: the best student's teacher weight.
      gain: ``(teacher_risk − student_risk) / teacher_risk`` — ``≥ 0`` up to round-off by
        construction (the student grid contains the teacher): a ceiling, not evidence.
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
    teacher_t: ArrayLike,
    student_t: ArrayLike,
    teacher_weight: Sequence[float] | None = None,
    truth_weight: Sequence[float] | None = None,
    recipe: Recipe = GRADIENT_FLOW,
) -> RiskSearch:
    """Oracle grid search: the best teacher (over T) and best student (over T, t, weight) by population risk.

    For gradient flow the best teacher time is refined by a bounded scalar minimization between
    its grid neighbours, and the student grid includes the refined time. With ``np.inf`` in
    ``student_t`` and a teacher weight of 1 the student grid contains every teacher, so the gain
    is ``≥ 0`` by construction: use it as the ceiling of what distillation could give when the
    population is known, and :func:`select_on_validation` for the empirical question. Ties are
    broken by the first grid point in ``(T, weight, t)`` order.

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

    Raises:
      ValueError: empty grids, both weight conventions given, or shapes that do not match.
    """
    Ts, ts, weights = _grid_axes(teacher_t, student_t, teacher_weight, truth_weight)
    r_teacher = population_risk(spectrum, y, theta_star, cov, recipe.filter(spectrum, Ts))
    i = int(np.argmin(r_teacher))
    rt, T_best = float(r_teacher[i]), float(Ts[i])
    if recipe.method == "flow" and np.isfinite(T_best):
        # refine the teacher between its grid neighbours, so a student "win" is not a grid artifact
        lo = np.log(Ts[max(i - 1, 0)])
        hi = np.log(Ts[min(i + 1, Ts.size - 1)]) if np.isfinite(Ts[min(i + 1, Ts.size - 1)]) else np.log(T_best) + 5

        def risk_at(logT: float) -> float:
            return float(population_risk(spectrum, y, theta_star, cov, recipe.filter(spectrum, np.exp(logT))))

        opt = scipy.optimize.minimize_scalar(risk_at, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
        if opt.fun < rt:
            rt, T_best = float(opt.fun), float(np.exp(opt.x))
    T_all = np.unique(np.r_[Ts, T_best])  # the refined teacher too: t = ∞ then reproduces it
    r = population_risk(spectrum, y, theta_star, cov, _student_grid(spectrum, T_all, ts, weights, recipe))
    a, b, c = np.unravel_index(int(np.argmin(r)), r.shape)
    rs = float(r[a, b, c])
    gain = (rt - rs) / rt if rt > 0 else 0.0
    return RiskSearch(rt, T_best, rs, float(T_all[a]), float(ts[c]), float(weights[b]), gain)


@dataclass(frozen=True)
class ValidationSelection:
    r"""A teacher and a student each chosen on a validation sample, with their population risks.

    Attributes:
      teacher_t: the early-stopping time of the one-hot teacher with the smallest validation error.
      teacher_validation_mse: its validation error.
      teacher_risk: its excess population risk.
      student_teacher_t: the teacher time of the student with the smallest validation error.
      student_t: that student's time.
      student_teacher_weight: that student's teacher weight.
      student_validation_mse: its validation error.
      student_risk: its excess population risk.
      student_is_teacher: the chosen student's filter equals the chosen teacher's to round-off
        (e.g. ``t = ∞``, weight 1, same ``T``): the selection fell back on the teacher.
    """

    teacher_t: float
    teacher_validation_mse: float
    teacher_risk: float
    student_teacher_t: float
    student_t: float
    student_teacher_weight: float
    student_validation_mse: float
    student_risk: float
    student_is_teacher: bool

    @property
    def gain(self) -> float:
        """``teacher_risk − student_risk``: positive when the chosen student generalizes better."""
        return self.teacher_risk - self.student_risk

    @property
    def relative_gain(self) -> float:
        """``gain / teacher_risk`` (0 when the teacher's risk is 0)."""
        return self.gain / self.teacher_risk if self.teacher_risk > 0 else 0.0


def select_on_validation(
    spectrum: Spectrum,
    y: ArrayLike,
    X_val: ArrayLike,
    y_val: ArrayLike,
    theta_star: ArrayLike,
    cov: ArrayLike,
    *,
    teacher_t: ArrayLike,
    student_t: ArrayLike,
    teacher_weight: Sequence[float] | None = None,
    truth_weight: Sequence[float] | None = None,
    recipe: Recipe = GRADIENT_FLOW,
) -> ValidationSelection:
    r"""Choose the teacher's time, and the student's (T, t, weight), on validation data; return their risks.

    The control is the early-stopped one-hot model: ``T̂ = argmin_T MSE_val(θ̂_T)`` over
    ``teacher_t``. The student is trained from zero on ``w ŷ_T + (1 − w) y`` for time ``t``
    (filter ``a_t (w a_T + 1 − w)``); ``(T̂_s, t̂, ŵ) = argmin MSE_val`` over the grid
    ``teacher_t × weights × student_t``. Both choices see only ``(X_val, y_val)``; the population
    risk (:func:`population_risk`) of each is reported. Ties go to the first grid point in
    ``(T, weight, t)`` order. Nothing makes the student's risk smaller by construction: a larger
    search can also fit the validation noise better (the winner's curse).

    Args:
      spectrum: a features spectrum of the training design X.
      y: training labels ``(n,)``.
      X_val: validation inputs ``(n_val, d)`` from the same model.
      y_val: noisy validation labels ``(n_val,)``.
      theta_star: true coefficients ``(d,)`` (for the population risk only).
      cov: population covariance ``(d, d)`` or its diagonal (for the population risk only).
      teacher_t: grid of teacher times (the teacher's and the student's teacher's).
      student_t: grid of student times (``np.inf`` allowed: the student converged on its target).
      teacher_weight: grid of weights on the teacher in the student's target (default ``(1,)``).
      truth_weight: the grid as weights on the labels instead (``1 − teacher_weight``).
      recipe: the recipe of teacher and student.

    Returns:
      A :class:`ValidationSelection`.

    Raises:
      ValueError: empty grids, both weight conventions given, or shapes that do not match.
    """
    Ts, ts, weights = _grid_axes(teacher_t, student_t, teacher_weight, truth_weight)
    F_teacher = recipe.filter(spectrum, Ts)
    v_teacher = validation_mse(spectrum, y, X_val, y_val, F_teacher)
    i = int(np.argmin(v_teacher))
    F_student = _student_grid(spectrum, Ts, ts, weights, recipe)
    v_student = validation_mse(spectrum, y, X_val, y_val, F_student)
    a, b, c = np.unravel_index(int(np.argmin(v_student)), v_student.shape)
    chosen = Filter.stack([F_teacher[i], F_student[a, b, c]])
    risk = population_risk(spectrum, y, theta_star, cov, chosen)
    same = bool(np.allclose(chosen.a_over_eval[0], chosen.a_over_eval[1], rtol=1e-12, atol=0.0))
    return ValidationSelection(
        teacher_t=float(Ts[i]),
        teacher_validation_mse=float(v_teacher[i]),
        teacher_risk=float(risk[0]),
        student_teacher_t=float(Ts[a]),
        student_t=float(ts[c]),
        student_teacher_weight=float(weights[b]),
        student_validation_mse=float(v_student[a, b, c]),
        student_risk=float(risk[1]),
        student_is_teacher=same,
    )
