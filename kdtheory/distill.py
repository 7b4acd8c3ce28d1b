r"""Distillation recipes in closed form: every recipe is one composition of spectral filters.

A teacher trained on labels ``y`` for time ``T`` predicts ``ŷ = U diag(a_T) Uᵀ y`` on the
training points. A student trained from zero on ``ŷ`` for time ``t`` predicts
``U diag(a_t a_T) Uᵀ y``. Every recipe here is built by the one rule
:meth:`kdtheory.eigen.Filter.train_from` ("train this segment from a start towards targets"),
with ``ZERO = Filter.zero(m)`` and ``ONE = Filter.labels(λ)`` (the labels):

* teacher → student on ``w ŷ + (1 − w) y``: ``S_t.train_from(ZERO, w T + (1 − w) ONE)``
  (``a = a_t (w a_T + 1 − w)``);
* rounds: ``B_0 = A_0.train_from(ZERO, ONE)``, ``B_j = A_j.train_from(ZERO, w_j B_{j−1} + (1 − w_j) ONE)``;
* late switch (labels on ``[0, s)``, then the teacher for ``t``): ``S_t.train_from(S_s, T)``
  (``a = a_s + a_t (a_T − a_s)``); reverse: ``S_t.train_from(S_s.train_from(ZERO, T), ONE)``.

The returned trajectories' ``filter`` is the effective filter *relative to the labels*, so
``modes``, ``loss``, ``weights`` and test predictions refer to the same labels as a one-hot run
and compare direction by direction (:mod:`kdtheory.exaggeration`).

Mixing: ``teacher_weight`` weighs the **teacher**; ``truth_weight`` (Borup & Andersen's α) weighs
the **ground truth**; give at most one (:func:`mixing_weights`), default pure distillation.
For a ridge recipe the axis arguments (``t``, ``teacher_t``) are ridge strengths, and the
trajectory stores its axis in ``ridge`` (``t`` is ``None``).

References:
  Nagarajan et al. (2023), §5; Mobahi, Farajtabar, Bartlett (2020); Borup & Andersen (2021).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike

from kdtheory._checks import as_times, choice
from kdtheory.dynamics import Dense, FilterArg, Source, TestPoints, apply_filter
from kdtheory.eigen import GRADIENT_FLOW, Filter, Recipe, Spectrum, loss_divisor
from kdtheory.krylov import Lanczos, RitzSpectrum, Structure, StructuredFilter, is_operator, recipe_structure
from kdtheory.trajectory import Trajectory

__all__ = [
    "mixing_weights",
    "distill",
    "distill_filter",
    "rounds",
    "rounds_filter",
    "late_switch",
    "late_switch_filter",
    "distill_log_remaining",
    "teacher_predictions",
    "student_time",
    "solve_time",
    "STOPPING_RULES",
]

STOPPING_RULES = ("time", "norm", "loss", "top_progress", "fidelity", "converged")


def mixing_weights(
    *,
    teacher_weight: float | Sequence[float] | None = None,
    truth_weight: float | Sequence[float] | None = None,
    size: int | None = None,
) -> np.ndarray:
    """The weight(s) on the teacher from either convention — the one helper every mixer uses.

    Args:
      teacher_weight: weight ``w`` on the teacher (scalar, or one per round).
      truth_weight: weight ``α = 1 − w`` on the ground truth (Borup & Andersen's α).
      size: broadcast to this many rounds (a sequence must then have this length); ``None``
        for a scalar.

    Returns:
      ``w`` as a 0-D array (``size=None``) or of shape ``(size,)``; default 1 (pure distillation).

    Raises:
      ValueError: both given, non-finite values, or a sequence of the wrong length.
    """
    if teacher_weight is not None and truth_weight is not None:
        raise ValueError("give teacher_weight or truth_weight (= 1 - teacher_weight), not both")
    name, value = ("truth_weight", truth_weight) if truth_weight is not None else ("teacher_weight", teacher_weight)
    if value is None:
        w = np.asarray(1.0)
    else:
        arr = np.asarray(value)
        if arr.dtype == object or arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"{name} must be a finite number (or one per round), got {value!r}")
        arr = arr.astype(float)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {value!r}")
        w = 1.0 - arr if name == "truth_weight" else arr
    if size is None:
        if w.ndim != 0:
            raise ValueError(f"{name} must be a scalar here, got shape {w.shape}")
        return w
    if w.ndim not in (0, 1) or (w.ndim == 1 and w.size != size):
        raise ValueError(f"{name} must be a scalar or hold one weight per round ({size}), got shape {w.shape}")
    return np.broadcast_to(w, (size,)).copy()


def _constants(spectrum: Spectrum) -> tuple[Filter, Filter]:
    """``ZERO`` and ``ONE`` (the labels) on this spectrum."""
    return Filter.zero(spectrum.evals.size), Filter.labels(spectrum.evals)


def _scalar_axis(value: float, name: str) -> float:
    arr = as_times(value, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    return float(arr)


def _check_spectrum(spectrum: object) -> None:
    if not isinstance(spectrum, Spectrum):
        raise TypeError(f"spectrum must be a kdtheory.eigen.Spectrum, got {type(spectrum).__name__}")


# ---------------------------------------------------------------------- effective filters
def distill_filter(
    spectrum: Spectrum,
    t: ArrayLike,
    *,
    teacher_t: float,
    teacher: Recipe = GRADIENT_FLOW,
    student: Recipe | None = None,
    teacher_weight: float | None = None,
    truth_weight: float | None = None,
    outputs: int | None = None,
) -> Filter:
    r"""Effective filter of a student trained from zero on ``w ŷ + (1 − w) y``.

    ``S_t.train_from(ZERO, w T + (1 − w) ONE)``, i.e. ``a = a_t (w a_T + 1 − w)``.

    Args:
      spectrum: the training kernel's spectrum (shared by teacher and student).
      t: the student's axis (times, steps or ridge strengths), any shape.
      teacher_t: the teacher's time/steps/ridge strength (scalar; ``np.inf`` allowed for times).
      teacher: the teacher's :class:`~kdtheory.eigen.Recipe`.
      student: the student's recipe (default: the teacher's).
      teacher_weight: weight ``w`` on the teacher (default 1).
      truth_weight: weight ``1 − w`` on the labels instead.
      outputs: number of outputs ``k`` (``normalization="per_output"`` only).

    Returns:
      A :class:`~kdtheory.eigen.Filter` of shape ``t.shape + (m,)``.
    """
    _check_spectrum(spectrum)
    w = float(mixing_weights(teacher_weight=teacher_weight, truth_weight=truth_weight))
    zero, one = _constants(spectrum)
    T = teacher.filter(spectrum, _scalar_axis(teacher_t, "teacher_t"), outputs=outputs)
    S = (student or teacher).filter(spectrum, t, outputs=outputs)
    return S.train_from(zero, w * T + (1.0 - w) * one)


def rounds_filter(
    spectrum: Spectrum,
    t: Sequence[float],
    *,
    recipe: Recipe = GRADIENT_FLOW,
    teacher_weight: float | Sequence[float] | None = None,
    truth_weight: float | Sequence[float] | None = None,
    last_round_t: ArrayLike | None = None,
    outputs: int | None = None,
) -> Filter:
    r"""Effective filters of repeated self-distillation, one row per round (a fold of ``train_from``).

    Round 0 is the teacher trained on ``y`` for ``t[0]``; round ``j ≥ 1`` trains from zero for
    ``t[j]`` on ``w_j f_{j−1} + (1 − w_j) y``:
    ``B_j = A_{t_j}.train_from(ZERO, w_j B_{j−1} + (1 − w_j) ONE)``.

    Args:
      spectrum: the training kernel's spectrum.
      t: per-round times (or ridge strengths), one per round, round 0 the teacher.
      recipe: the recipe of every round.
      teacher_weight: weight on the previous round, scalar or one per round (entry 0 unused).
      truth_weight: weight on the labels instead (Borup & Andersen's α), scalar or per round.
      last_round_t: if given, the last round is evaluated along this axis instead (its entry
        of ``t`` is ignored) and only its filter is returned.
      outputs: number of outputs ``k`` (``normalization="per_output"`` only).

    Returns:
      A :class:`~kdtheory.eigen.Filter` of shape ``(len(t), m)``, or
      ``last_round_t.shape + (m,)`` with ``last_round_t``.

    Raises:
      ValueError: no rounds, non-scalar round times, weights of the wrong length.
    """
    _check_spectrum(spectrum)
    t = list(t)
    if not t:
        raise ValueError("t must hold at least one round")
    w = mixing_weights(teacher_weight=teacher_weight, truth_weight=truth_weight, size=len(t))
    zero, one = _constants(spectrum)
    fixed = t[:-1] if last_round_t is not None else t
    out = []
    B = None
    for j, tj in enumerate(fixed):
        A = recipe.filter(spectrum, _scalar_axis(tj, "t"), outputs=outputs)
        B = A.train_from(zero, one if B is None else w[j] * B + (1.0 - w[j]) * one)
        out.append(B)
    if last_round_t is None:
        return Filter.stack(out)
    A = recipe.filter(spectrum, last_round_t, outputs=outputs)
    return A.train_from(zero, one if B is None else w[-1] * B + (1.0 - w[-1]) * one)


def late_switch_filter(
    spectrum: Spectrum,
    t: ArrayLike,
    *,
    teacher_t: float,
    switch_t: float,
    recipe: Recipe = GRADIENT_FLOW,
    teacher: Recipe | None = None,
    reverse: bool = False,
    outputs: int | None = None,
) -> Filter:
    r"""Effective filter of switching targets at ``switch_t``.

    ``reverse=False``: labels on ``[0, s)``, then the teacher's predictions for ``t``:
    ``S_t.train_from(S_s, T)``, ``a = a_s + a_t (a_T − a_s)`` (``= a_T + (a_s − a_T) e^{−λt}`` for
    flow). ``reverse=True``: the teacher first, then the labels:
    ``S_t.train_from(S_s.train_from(ZERO, T), ONE)``, ``a = a_t + (1 − a_t) a_s a_T``.

    Args:
      spectrum: the training kernel's spectrum.
      t: times (steps) after the switch, any shape.
      teacher_t: the teacher's time (scalar).
      switch_t: the time of the switch (scalar).
      recipe: the recipe of the model that switches (``"flow"`` or ``"gd"``).
      teacher: the teacher's recipe (default ``recipe``).
      reverse: distillation first, labels after.
      outputs: number of outputs ``k`` (``normalization="per_output"`` only).

    Returns:
      A :class:`~kdtheory.eigen.Filter` of shape ``t.shape + (m,)``.

    Raises:
      ValueError: a momentum or ridge recipe (momentum's velocity at the switch is state the
        filter algebra does not carry; ridge has no time).
    """
    _check_spectrum(spectrum)
    if recipe.method not in ("flow", "gd"):
        raise ValueError(f"late switching supports recipe methods 'flow' and 'gd', got {recipe.method!r}")
    zero, one = _constants(spectrum)
    T = (teacher or recipe).filter(spectrum, _scalar_axis(teacher_t, "teacher_t"), outputs=outputs)
    S_s = recipe.filter(spectrum, _scalar_axis(switch_t, "switch_t"), outputs=outputs)
    S_t = recipe.filter(spectrum, t, outputs=outputs)
    if not reverse:
        return S_t.train_from(S_s, T)
    return S_t.train_from(S_s.train_from(zero, T), one)


def distill_log_remaining(
    spectrum: Spectrum,
    t: ArrayLike,
    *,
    teacher_t: float,
    recipe: Recipe = GRADIENT_FLOW,
    outputs: int | None = None,
) -> np.ndarray:
    r"""``log(1 − a_t a_T)`` of a student distilled from its teacher, exact where it underflows.

    With ``e = 1 − a`` from :meth:`~kdtheory.eigen.Recipe.log_remaining`:
    ``log(1 − a_t a_T) = log(e_t + e_T (1 − e_t)) = logaddexp(log e_t, log e_T + log1p(−e_t))``,
    so directions whose filters round to 1 keep their remaining fraction (flow: ``e^{−λt}``).

    Args:
      spectrum: the kernel's spectrum.
      t: the student's times, any shape.
      teacher_t: the teacher's time (scalar).
      recipe: the recipe of teacher and student (``"flow"``, ``"gd"`` with ``ηλ_max ≤ 1``, or
        ``"ridge"``).
      outputs: number of outputs ``k`` (``normalization="per_output"`` only).

    Returns:
      Shape ``t.shape + (m,)``; ``−inf`` where nothing remains.
    """
    le_t = recipe.log_remaining(spectrum, t, outputs=outputs)
    le_T = recipe.log_remaining(spectrum, _scalar_axis(teacher_t, "teacher_t"), outputs=outputs)
    with np.errstate(divide="ignore"):  # log1p(−1) = −inf where the student has learned everything
        out: np.ndarray = np.logaddexp(le_t, le_T + np.log1p(-np.exp(le_t)))
        return out


# ---------------------------------------------------------------------- trajectories
def _outputs(y: ArrayLike) -> int:
    """Number of outputs ``k`` of labels ``(n,)`` (1) or ``(n, k)``."""
    shape = np.shape(y)
    return int(shape[1]) if len(shape) == 2 else 1


def _on(source: Source, filter_of: Callable[[Spectrum], Filter]) -> FilterArg:
    """The filter for :func:`kdtheory.dynamics.apply_filter`: evaluated on a spectrum.

    On an operator it is checked on a one-point probe (bad options fail before any kernel
    product) and passed on as a function of the Ritz values.
    """
    if is_operator(source):
        filter_of(RitzSpectrum.of_values(np.zeros(1), source.n))
        return filter_of
    assert isinstance(source, Spectrum)  # apply_filter names any other source in its TypeError
    return filter_of(source)


def _distill_structure(
    source: Source,
    k: int,
    t: ArrayLike,
    teacher_t: float,
    teacher: Recipe,
    student: Recipe,
    teacher_weight: float | None,
    truth_weight: float | None,
) -> Structure | None:
    """``("distill", student, teacher, w)`` for the Krylov residual bounds, or ``None``."""
    T = _scalar_axis(teacher_t, "teacher_t")
    s, tch = recipe_structure(student, t, source.n, k), recipe_structure(teacher, T, source.n, k)
    if s is None or tch is None or s[0] == "ridge":
        return None
    w = float(mixing_weights(teacher_weight=teacher_weight, truth_weight=truth_weight))
    return ("distill", s, (tch[0], tch[1], T), w)


def distill(
    spectrum: Source,
    y: ArrayLike,
    t: ArrayLike,
    *,
    teacher_t: float,
    teacher: Recipe = GRADIENT_FLOW,
    student: Recipe | None = None,
    teacher_weight: float | None = None,
    truth_weight: float | None = None,
    init: ArrayLike | None = None,
    init_weights: ArrayLike | None = None,
    test: TestPoints | None = None,
    solver: Lanczos | Dense | None = None,
) -> Trajectory:
    r"""A student trained on its teacher's training predictions, in closed form.

    The teacher trains on ``y`` from zero for ``teacher_t`` with ``teacher``; the student trains
    for each ``t`` with ``student`` (default: the teacher's recipe) on ``w ŷ + (1 − w) y``. From a
    zero start the trajectory's ``filter`` is the effective filter :func:`distill_filter` relative
    to ``y`` (so ``modes`` and ``loss`` are against the labels). With ``init`` or
    ``init_weights`` the student starts there and the trajectory is relative to its target
    ``w ŷ + (1 − w) y`` (``filter`` is then the student's own filter).

    Args:
      spectrum: the training kernel's spectrum (shared by teacher and student), or the kernel as
        a :class:`~kdtheory.operators.KernelOperator` (certified Krylov solver).
      y: labels ``(n[, k])``.
      t: the student's axis (times, steps, or ridge strengths for a ridge student), any shape.
      teacher_t: the teacher's time/steps/ridge strength (scalar; ``np.inf`` allowed for times).
      teacher: the teacher's :class:`~kdtheory.eigen.Recipe` (a ridge teacher with a GD
        student is fine).
      student: the student's recipe (default: the teacher's).
      teacher_weight: weight ``w`` on the teacher (default 1: pure distillation).
      truth_weight: weight ``1 − w`` on the labels instead.
      init: the student's initial training output (default 0).
      init_weights: the student's initial weights (features spectrum).
      test: held-out points, :class:`kdtheory.dynamics.TestPoints`.
      solver: :class:`kdtheory.dynamics.Dense` on a spectrum, :class:`kdtheory.krylov.Lanczos` on an operator.

    Returns:
      The student's :class:`~kdtheory.trajectory.Trajectory`.
    """
    student = student or teacher
    k = _outputs(y)
    if init is None and init_weights is None:

        def filter_of(spec: Spectrum) -> Filter:
            return distill_filter(
                spec,
                t,
                teacher_t=teacher_t,
                teacher=teacher,
                student=student,
                teacher_weight=teacher_weight,
                truth_weight=truth_weight,
                outputs=k,
            )

        filt = _on(spectrum, filter_of)
        if is_operator(spectrum):
            filt = StructuredFilter(
                filter_of, _distill_structure(spectrum, k, t, teacher_t, teacher, student, teacher_weight, truth_weight)
            )
        return apply_filter(spectrum, y, filt, t=t, recipe=student, test=test, solver=solver)
    target = teacher_predictions(
        spectrum,
        y,
        teacher_t=teacher_t,
        teacher=teacher,
        teacher_weight=teacher_weight,
        truth_weight=truth_weight,
        solver=solver,
    )
    filt = _on(spectrum, lambda spec: student.filter(spec, t, outputs=k))
    return apply_filter(
        spectrum, target, filt, t=t, recipe=student, init=init, init_weights=init_weights, test=test, solver=solver
    )


def teacher_predictions(
    spectrum: Source,
    y: ArrayLike,
    *,
    teacher_t: float,
    teacher: Recipe = GRADIENT_FLOW,
    teacher_weight: float | None = None,
    truth_weight: float | None = None,
    solver: Lanczos | Dense | None = None,
) -> np.ndarray:
    """The (mixed) distillation target ``w ŷ + (1 − w) y`` on the training points.

    Args:
      spectrum: the training kernel's spectrum, or a kernel operator.
      y: labels ``(n[, k])``.
      teacher_t: the teacher's time/steps/ridge strength (scalar).
      teacher: the teacher's recipe.
      teacher_weight: weight ``w`` on the teacher (default 1).
      truth_weight: weight ``1 − w`` on the labels instead.
      solver: Krylov options when ``spectrum`` is a kernel operator.

    Returns:
      Shape of ``y``.
    """
    if not is_operator(spectrum):
        _check_spectrum(spectrum)
    w = float(mixing_weights(teacher_weight=teacher_weight, truth_weight=truth_weight))
    tt, k = _scalar_axis(teacher_t, "teacher_t"), _outputs(y)
    T = _on(spectrum, lambda spec: teacher.filter(spec, tt, outputs=k))
    yhat = apply_filter(spectrum, y, T, solver=solver).train
    return w * yhat + (1.0 - w) * np.asarray(y, dtype=float)


def rounds(
    spectrum: Source,
    y: ArrayLike,
    t: Sequence[float],
    *,
    recipe: Recipe = GRADIENT_FLOW,
    teacher_weight: float | Sequence[float] | None = None,
    truth_weight: float | Sequence[float] | None = None,
    last_round_t: ArrayLike | None = None,
    test: TestPoints | None = None,
    solver: Lanczos | Dense | None = None,
) -> Trajectory:
    r"""Repeated self-distillation: one trajectory entry per round (see :func:`rounds_filter`).

    Entry ``j`` of the returned trajectory is the model after round ``j`` (round 0: the teacher),
    indexed by the round times ``t``; with ``last_round_t`` the trajectory is the last round's,
    along ``last_round_t``.

    Args:
      spectrum: the training kernel's spectrum, or a kernel operator.
      y: labels ``(n[, k])``.
      t: per-round times (or ridge strengths), round 0 the teacher.
      recipe: the recipe of every round.
      teacher_weight: weight on the previous round, scalar or one per round.
      truth_weight: weight on the labels instead, scalar or one per round.
      last_round_t: evaluate the last round along this axis instead.
      test: held-out points, :class:`kdtheory.dynamics.TestPoints`.
      solver: :class:`kdtheory.dynamics.Dense` on a spectrum, :class:`kdtheory.krylov.Lanczos` on an operator.

    Returns:
      A :class:`~kdtheory.trajectory.Trajectory`.
    """
    k = _outputs(y)
    filt = _on(
        spectrum,
        lambda spec: rounds_filter(
            spec,
            t,
            recipe=recipe,
            teacher_weight=teacher_weight,
            truth_weight=truth_weight,
            last_round_t=last_round_t,
            outputs=k,
        ),
    )
    axis = np.asarray(t, float) if last_round_t is None else last_round_t
    return apply_filter(spectrum, y, filt, t=axis, recipe=recipe, test=test, solver=solver)


def late_switch(
    spectrum: Source,
    y: ArrayLike,
    t: ArrayLike,
    *,
    teacher_t: float,
    switch_t: float,
    recipe: Recipe = GRADIENT_FLOW,
    teacher: Recipe | None = None,
    reverse: bool = False,
    test: TestPoints | None = None,
    solver: Lanczos | Dense | None = None,
) -> Trajectory:
    """Train on one target until ``switch_t``, then on the other (see :func:`late_switch_filter`).

    Args:
      spectrum: the training kernel's spectrum, or a kernel operator.
      y: labels ``(n[, k])``.
      t: times (steps) after the switch, any shape; the trajectory's ``t``.
      teacher_t: the teacher's time (scalar).
      switch_t: the time of the switch (scalar).
      recipe: the recipe of the model that switches (``"flow"`` or ``"gd"``).
      teacher: the teacher's recipe (default ``recipe``).
      reverse: distillation first, labels after.
      test: held-out points, :class:`kdtheory.dynamics.TestPoints`.
      solver: :class:`kdtheory.dynamics.Dense` on a spectrum, :class:`kdtheory.krylov.Lanczos` on an operator.

    Returns:
      A :class:`~kdtheory.trajectory.Trajectory` indexed by the times after the switch.
    """
    k = _outputs(y)
    filt = _on(
        spectrum,
        lambda spec: late_switch_filter(
            spec,
            t,
            teacher_t=teacher_t,
            switch_t=switch_t,
            recipe=recipe,
            teacher=teacher,
            reverse=reverse,
            outputs=k,
        ),
    )
    return apply_filter(spectrum, y, filt, t=t, recipe=recipe, test=test, solver=solver)


# ---------------------------------------------------------------------- stopping rules
def student_time(
    spectrum: Spectrum,
    y: ArrayLike,
    *,
    teacher_t: float,
    rule: str,
    value: float | None = None,
    teacher: Recipe = GRADIENT_FLOW,
    student: Recipe | None = None,
    teacher_weight: float | None = None,
    truth_weight: float | None = None,
) -> float:
    r"""When to stop the student, by a rule; solved by a bracketing root finder.

    Rules (``value`` is the target of the criterion):

    * ``"time"``: ``value`` itself;
    * ``"norm"``: ``‖w_student(t)‖ = value`` (weight / RKHS norm; increasing in t);
    * ``"loss"``: training loss against the **labels** ``= value`` (decreasing);
    * ``"top_progress"``: effective filter on the top eigendirection ``a_1 = value`` (increasing);
    * ``"fidelity"``: ``‖f_student(t) − target‖ = value`` (decreasing);
    * ``"converged"``: ``np.inf``.

    For gradient flow the exact real root is returned; for gradient descent the first whole step
    at which the criterion reaches ``value`` (requires ``η λ_max ≤ 1`` so that it is monotone).

    Args:
      spectrum: the training kernel's spectrum.
      y: labels ``(n[, k])``.
      teacher_t: the teacher's time (scalar).
      rule: one of :data:`STOPPING_RULES`.
      value: the criterion's target value (not for ``"converged"``).
      teacher: the teacher's recipe.
      student: the student's recipe (``"flow"`` or ``"gd"``; default the teacher's).
      teacher_weight: weight on the teacher (default 1).
      truth_weight: weight on the labels instead.

    Returns:
      The student time ``t`` (``np.inf`` for ``"converged"``).

    Raises:
      ValueError: the value cannot be reached (e.g. a norm above the converged student's, which
        is at most the teacher's when ``teacher_weight = 1``), unknown rule, non-monotone setting.
    """
    choice(rule, "rule", STOPPING_RULES)
    student = student or teacher
    if rule == "converged":
        return float("inf")
    if value is None:
        raise ValueError(f"rule {rule!r} needs a value")
    if rule == "time":
        return _scalar_axis(value, "value")
    if student.method not in ("flow", "gd"):
        raise ValueError(f"stopping rules other than 'time' support 'flow' and 'gd' students, got {student.method!r}")
    k = _outputs(y)
    if (
        student.method == "gd"
        and student.learning_rate * spectrum.evals[0] * student.eigenvalue_scale(spectrum.n, k) > 1
    ):
        raise ValueError("stopping rules for gd need a monotone learning rate (learning_rate * lambda_max <= 1)")
    w = float(mixing_weights(teacher_weight=teacher_weight, truth_weight=truth_weight))
    y2 = np.asarray(y, dtype=float).reshape(spectrum.n, -1)
    z = spectrum.project(y2)
    z2 = np.sum(z * z, axis=1)
    zero, one = _constants(spectrum)
    T = teacher.filter(spectrum, _scalar_axis(teacher_t, "teacher_t"), outputs=k)
    target = w * T + (1.0 - w) * one
    perp = float(np.sum(spectrum.complement(y2) ** 2))
    div = loss_divisor(student.normalization, spectrum.n, k)

    def crit(t: float) -> float:
        S = student.filter(spectrum, t, outputs=k)
        eff = S.train_from(zero, target)
        if rule == "norm":
            return float(np.sqrt(np.sum(eff.a * eff.a_over_eval * z2)))
        if rule == "loss":
            return float(0.5 * (np.sum((1 - eff.a) ** 2 * z2) + perp) / div)
        if rule == "top_progress":
            return float(eff.a[0])
        return float(np.sqrt(np.sum(((1 - S.a) * target.a) ** 2 * z2)))  # fidelity to the target

    return solve_time(crit, value, integer=student.method == "gd", scale=1.0 / max(spectrum.evals[0], 1e-300))


def solve_time(crit: Callable[[float], float], value: float, *, integer: bool = False, scale: float = 1.0) -> float:
    """Smallest ``t ≥ 0`` with ``crit(t) = value`` for a monotone ``crit`` (bracketing, then Brent).

    ``crit(0)`` and ``crit(∞)`` bound the reachable values.

    Args:
      crit: a monotone function of time.
      value: the value to reach.
      integer: return the first whole step at which ``crit`` reaches ``value``.
      scale: a natural time unit used to start the bracket search.

    Returns:
      The time (``0.0``, a positive root, or ``inf`` when only reached asymptotically).

    Raises:
      ValueError: ``value`` outside ``[crit(0), crit(∞)]``.
    """
    value = _finite(value, "value")
    lo_v, hi_v = crit(0.0), crit(np.inf)
    increasing = hi_v >= lo_v
    for end in (lo_v, hi_v):  # a value at an end up to round-off is that end
        if abs(value - end) <= 1e-12 * max(abs(end), abs(value), np.finfo(float).tiny):
            value = end
    reach = (lo_v <= value <= hi_v) if increasing else (hi_v <= value <= lo_v)
    if not reach:
        raise ValueError(
            f"value {value:.6g} cannot be reached: the criterion runs from {lo_v:.6g} at t = 0 to {hi_v:.6g} at t = inf"
        )
    if value == lo_v:
        return 0.0
    if value == hi_v and not _crosses(crit, value, increasing, 1e300):
        return float("inf")

    def f(t: float) -> float:
        return crit(t) - value if increasing else value - crit(t)

    hi = float(max(np.ceil(scale), 1.0)) if integer else max(scale, 1e-300)
    while f(hi) < 0:
        hi *= 2.0
        if hi > 1e300:  # only reached asymptotically
            return float("inf")
    if integer:
        lo_i, hi_i = 0, int(np.ceil(hi))
        while hi_i - lo_i > 1:
            mid = (lo_i + hi_i) // 2
            if f(mid) >= 0:
                hi_i = mid
            else:
                lo_i = mid
        return float(hi_i)
    return float(scipy.optimize.brentq(f, 0.0, hi, xtol=1e-14 * hi, rtol=4 * np.finfo(float).eps, maxiter=500))


def _crosses(crit: Callable[[float], float], value: float, increasing: bool, t: float) -> bool:
    v = crit(t)
    return v >= value if increasing else v <= value


def _finite(x: object, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not np.isfinite(float(x)):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return float(x)
