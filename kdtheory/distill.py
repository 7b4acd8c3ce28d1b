r"""Distillation recipes in closed form: every recipe is a spectral filter on the labels.

A teacher trained on labels ``y`` for time ``T`` predicts ``ŷ = U diag(a_T) Uᵀ y`` on the
training points. A student trained from zero on ``ŷ`` for time ``t`` predicts
``U diag(a_t a_T) Uᵀ y``: distillation *composes* the optimizer's filter with itself. The recipes
here return :class:`~kdtheory.dynamics.Trajectory` values whose ``filter`` is this *effective
filter relative to the ground-truth labels*, so ``modes``, ``loss``, ``weights`` and test
predictions all refer to the same labels as a one-hot run and can be compared direction by
direction (:mod:`kdtheory.exaggeration`).

Effective filters (``a`` = the recipe's filter, ``w`` = weight on the teacher):

* teacher → student, mixed target ``w ŷ + (1 − w) y``:  ``a_t (w a_T + 1 − w)``;
* rounds ``t_0`` (teacher), ``t_1, …``, weights ``w_j``:  ``B_0 = a_{t_0}``,
  ``B_j = a_{t_j} (w_j B_{j−1} + 1 − w_j)``;
* late switch (one-hot on ``[0, s)``, then distillation for ``t``):  ``a_T + (a_s − a_T)(1 − a_t)``;
  reverse (distillation first):  ``1 − (1 − a_t)(1 − a_s a_T)``;
* each ``a/λ`` is composed the same way from the stable ``a/λ`` of the factors, so λ = 0 and
  t = ∞ stay exact.

Mixing convention: ``teacher_weight`` weighs the **teacher**; ``truth_weight`` (Borup & Andersen's
α) weighs the **ground truth**; give one, ``teacher_weight = 1 − truth_weight``.

References:
  Nagarajan et al. (2023), §5; Mobahi, Farajtabar, Bartlett (2020); Borup & Andersen (2021).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike

from kdtheory._checks import as_times, choice, positive_scalar
from kdtheory.dynamics import Trajectory, apply_filter
from kdtheory.eigen import Spectrum, filter_pair, ridge_filter

__all__ = [
    "Recipe",
    "mixing_weight",
    "distill",
    "distill_filter",
    "rounds",
    "rounds_filter",
    "late_switch",
    "late_switch_filter",
    "student_time",
    "STOPPING_RULES",
]

STOPPING_RULES = ("time", "norm", "loss", "top_progress", "fidelity", "converged")


@dataclass(frozen=True)
class Recipe:
    r"""How a model is trained: optimizer, step size, loss normalization.

    ``method`` is ``"flow"``, ``"gd"``, ``"momentum"`` or ``"ridge"``. The "time" argument of
    :meth:`filter` is continuous time (flow, in units of ``learning_rate``), whole steps (gd,
    momentum) or, for ``"ridge"``, the regularization ``c`` of ``min ½‖f − y‖² + ½ c ‖f‖²_H``
    (ridge with ``c`` is close to gradient flow at time ``1/c``; Ali et al. 2019).

    Attributes:
      method: the optimizer.
      learning_rate: η > 0 (ignored by ridge).
      momentum: β in [0, 1) for ``"momentum"``.
      loss: ``"sum"`` (``½‖f − y‖²``) or ``"mean"`` (``½‖f − y‖²/n``: eigenvalues become λ/n).
      allow_unstable: permit learning rates beyond stability at finite steps.
    """

    method: Literal["flow", "gd", "momentum", "ridge"] = "flow"
    learning_rate: float = 1.0
    momentum: float = 0.0
    loss: Literal["sum", "mean"] = "sum"
    allow_unstable: bool = False

    def __post_init__(self) -> None:
        choice(self.method, "method", ("flow", "gd", "momentum", "ridge"))
        choice(self.loss, "loss", ("sum", "mean"))
        positive_scalar(self.learning_rate, "learning_rate")

    def filter(self, spectrum: Spectrum, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(a, a/λ)`` of this recipe on ``spectrum`` at times ``t``, shape ``t.shape + (m,)``."""
        scale = 1.0 / spectrum.n if self.loss == "mean" else 1.0
        lam = spectrum.evals * scale
        if self.method == "ridge":
            return ridge_filter(lam, t), ridge_filter(lam, t, over_eval=True) * scale
        a, g = filter_pair(
            lam,
            t,
            method=self.method,
            learning_rate=self.learning_rate,
            momentum=self.momentum,
            allow_unstable=self.allow_unstable,
        )
        return a, g * scale

    def log_remaining(self, spectrum: Spectrum, t: ArrayLike) -> np.ndarray:
        r"""``log(1 − a)``, exact where ``1 − a`` itself would underflow.

        flow: ``−ηλt``; gd (``ηλ ≤ 1``): ``s log1p(−ηλ)``; ridge: ``log c − log(λ + c)``. ``−inf``
        where nothing remains (t = ∞ with λ > 0, or ηλ = 1 after a step). Momentum, and GD modes
        with ``ηλ > 1`` (whose remaining fraction changes sign), are refused.
        """
        scale = 1.0 / spectrum.n if self.loss == "mean" else 1.0
        lam = spectrum.evals * scale
        if self.method == "momentum":
            raise ValueError("log_remaining() supports flow, gd and ridge recipes")
        t = as_times(t, "t", integer=self.method == "gd")[..., None]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.method == "ridge":
                if np.isinf(t).any():
                    raise ValueError("t (the ridge regularization) must be finite")
                return np.where(lam > 0, np.log(t) - np.log(lam + t), 0.0) * np.ones_like(t)
            q = self.learning_rate * lam
            if self.method == "gd" and np.any(q > 1):
                raise ValueError("log_remaining() for gd needs learning_rate * lambda_max <= 1 (monotone modes)")
            rate = q if self.method == "flow" else -np.log1p(-q)  # per unit of t, ≥ 0 (inf at q = 1)
            out = -rate * np.where(np.isfinite(t), t, 1.0)
            out = np.where(np.isinf(t), np.where(rate > 0, -np.inf, 0.0), out)
            return np.where(t == 0, 0.0, out)

    def remaining(self, spectrum: Spectrum, t: ArrayLike) -> np.ndarray:
        """``1 − a = exp(log_remaining)`` (see :meth:`log_remaining`)."""
        return np.exp(self.log_remaining(spectrum, t))

    def record(self) -> dict:
        """Metadata stored on trajectories."""
        return {"method": self.method, "learning_rate": float(self.learning_rate), "momentum": float(self.momentum)}


def mixing_weight(teacher_weight: float | None = None, truth_weight: float | None = None) -> float:
    """The weight on the teacher from either convention (default: pure distillation, 1)."""
    if teacher_weight is not None and truth_weight is not None:
        raise ValueError("give teacher_weight or truth_weight (= 1 - teacher_weight), not both")
    if truth_weight is not None:
        return 1.0 - _finite(truth_weight, "truth_weight")
    return 1.0 if teacher_weight is None else _finite(teacher_weight, "teacher_weight")


def _finite(x: float, name: str) -> float:
    if isinstance(x, bool) or not np.isscalar(x) or not np.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    return float(x)


# ---------------------------------------------------------------------- effective filters
def distill_filter(
    spectrum: Spectrum,
    teacher_time: float,
    student_times: ArrayLike,
    *,
    teacher: Recipe = Recipe(),
    student: Recipe | None = None,
    teacher_weight: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Effective filter of a student trained on ``w ŷ + (1 − w) y``: ``a_t (w a_T + 1 − w)``.

    Returns ``(a, a/λ)`` of shape ``student_times.shape + (m,)``.
    """
    aT, _ = teacher.filter(spectrum, _scalar_time(teacher_time, "teacher_time"))
    a_s, g_s = (student or teacher).filter(spectrum, student_times)
    mix = teacher_weight * aT + (1.0 - teacher_weight)
    return a_s * mix, g_s * mix


def rounds_filter(
    spectrum: Spectrum,
    times: Sequence[float],
    *,
    recipe: Recipe = Recipe(),
    teacher_weights: float | Sequence[float] = 1.0,
    last_round_times: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Effective filters of repeated self-distillation, one row per round.

    Round 0 is the teacher trained on ``y`` for ``times[0]``; round ``j ≥ 1`` trains from zero for
    ``times[j]`` on ``w_j f_{j−1} + (1 − w_j) y``: ``B_j = a_{t_j} (w_j B_{j−1} + 1 − w_j)``.

    Args:
      last_round_times: if given, the last round is evaluated at these times instead (its entry
        of ``times`` is ignored) and only its filter is returned, shape ``last_round_times.shape + (m,)``.

    Returns:
      ``(B, B/λ)``, each of shape ``(len(times), m)`` (or see ``last_round_times``).
    """
    times = list(times)
    if not times:
        raise ValueError("times must hold at least one round")
    fixed = times[:-1] if last_round_times is not None else times
    fixed = [_scalar_time(t, "times") for t in fixed]
    w = np.broadcast_to(np.asarray(teacher_weights, dtype=float), (len(times),))
    out_b, out_g = [], []
    B = G = None
    for j, t in enumerate(fixed):
        a, g = recipe.filter(spectrum, t)
        mix = 1.0 if j == 0 else w[j] * B + (1.0 - w[j])
        B, G = a * mix, g * mix
        out_b.append(B)
        out_g.append(G)
    if last_round_times is None:
        return np.array(out_b), np.array(out_g)
    a, g = recipe.filter(spectrum, last_round_times)
    if B is None:
        return a, g
    mix = w[-1] * B + (1.0 - w[-1])
    return a * mix, g * mix


def late_switch_filter(
    spectrum: Spectrum,
    teacher_time: float,
    switch_time: float,
    times_after: ArrayLike,
    *,
    recipe: Recipe = Recipe(),
    teacher: Recipe | None = None,
    reverse: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Effective filter of switching targets at ``switch_time``.

    ``reverse=False``: one-hot labels on ``[0, s)``, then the teacher's predictions for ``t``:
    ``a_T a_t + a_s (1 − a_t)`` (= ``a_T + (a_s − a_T) e^{−λt}`` for flow).
    ``reverse=True``: the teacher first, then the labels: ``a_t + (1 − a_t) a_s a_T``.

    Momentum is refused: its velocity at the switch is state the filter algebra does not carry.
    """
    if recipe.method not in ("flow", "gd"):
        raise ValueError(f"late switching supports recipe methods 'flow' and 'gd', got {recipe.method!r}")
    aT, gT = (teacher or recipe).filter(spectrum, _scalar_time(teacher_time, "teacher_time"))
    a_s, g_s = recipe.filter(spectrum, _scalar_time(switch_time, "switch_time"))
    a_t, g_t = recipe.filter(spectrum, times_after)
    if not reverse:
        return aT * a_t + a_s * (1.0 - a_t), gT * a_t + g_s * (1.0 - a_t)
    return a_t + (1.0 - a_t) * a_s * aT, g_t + (1.0 - a_t) * g_s * aT


def _scalar_time(t: float, name: str) -> float:
    arr = as_times(t, name)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {arr.shape}")
    return float(arr)


# ---------------------------------------------------------------------- trajectories
def distill(
    spectrum: Spectrum,
    y: ArrayLike,
    teacher_time: float,
    student_times: ArrayLike,
    *,
    teacher: Recipe = Recipe(),
    student: Recipe | None = None,
    teacher_weight: float | None = None,
    truth_weight: float | None = None,
    init: ArrayLike | None = None,
    **outputs,
) -> Trajectory:
    r"""A student trained on its teacher's training predictions, in closed form.

    The teacher trains on ``y`` from zero for ``teacher_time`` with ``teacher``; the student trains
    for each of ``student_times`` with ``student`` (default: the teacher's recipe) on
    ``w ŷ + (1 − w) y``. From a zero start the returned trajectory's ``filter`` is the effective
    filter ``a_t (w a_T + 1 − w)`` relative to ``y`` (so ``modes`` and ``loss`` are against the
    labels). With ``init``, the student starts from ``init`` and the trajectory is relative to its
    target ``w ŷ + (1 − w) y`` (``filter`` is then the student's own filter).

    Args:
      spectrum: the training kernel's spectrum (shared by teacher and student).
      y: labels ``(n[, k])``.
      teacher_time: teacher time/steps/regularization (a scalar; ``np.inf`` allowed).
      student_times: student times, any shape.
      teacher, student: :class:`Recipe` values (a ridge teacher with a GD student is fine).
      teacher_weight, truth_weight: the mixing weight in either convention (default: pure
        distillation, ``teacher_weight = 1``).
      init: the student's initial training output (default 0).
      **outputs: ``test_kernel``, ``test_features``, ``test_init``, ``init_weights``, ``compress``
        as in :func:`kdtheory.dynamics.train`.

    Returns:
      The student's :class:`~kdtheory.dynamics.Trajectory`.
    """
    w = mixing_weight(teacher_weight, truth_weight)
    student = student or teacher
    if init is None and outputs.get("init_weights") is None:
        a, g = distill_filter(spectrum, teacher_time, student_times, teacher=teacher, student=student, teacher_weight=w)
        return apply_filter(
            spectrum, y, a, g, times=student_times, loss=student.loss, recipe=student.record(), **outputs
        )
    target = teacher_predictions(spectrum, y, teacher_time, teacher=teacher, teacher_weight=w)
    a, g = student.filter(spectrum, student_times)
    return apply_filter(
        spectrum, target, a, g, times=student_times, loss=student.loss, init=init, recipe=student.record(), **outputs
    )


def teacher_predictions(
    spectrum: Spectrum, y: ArrayLike, teacher_time: float, *, teacher: Recipe = Recipe(), teacher_weight: float = 1.0
) -> np.ndarray:
    """The (mixed) distillation target ``w ŷ + (1 − w) y`` on the training points."""
    aT, gT = teacher.filter(spectrum, _scalar_time(teacher_time, "teacher_time"))
    yhat = apply_filter(spectrum, y, aT, gT).train
    return teacher_weight * yhat + (1.0 - teacher_weight) * np.asarray(y, dtype=float)


def rounds(
    spectrum: Spectrum,
    y: ArrayLike,
    times: Sequence[float],
    *,
    recipe: Recipe = Recipe(),
    teacher_weights: float | Sequence[float] = 1.0,
    last_round_times: ArrayLike | None = None,
    **outputs,
) -> Trajectory:
    r"""Repeated self-distillation: one trajectory entry per round (see :func:`rounds_filter`).

    Entry ``j`` of the returned trajectory is the model after round ``j`` (round 0: the teacher);
    with ``last_round_times`` the trajectory is the last round's, at those times.
    """
    a, g = rounds_filter(
        spectrum, times, recipe=recipe, teacher_weights=teacher_weights, last_round_times=last_round_times
    )
    labels = np.asarray(times, float) if last_round_times is None else last_round_times
    return apply_filter(spectrum, y, a, g, times=labels, loss=recipe.loss, recipe=recipe.record(), **outputs)


def late_switch(
    spectrum: Spectrum,
    y: ArrayLike,
    teacher_time: float,
    switch_time: float,
    times_after: ArrayLike,
    *,
    recipe: Recipe = Recipe(),
    teacher: Recipe | None = None,
    reverse: bool = False,
    **outputs,
) -> Trajectory:
    """Train on one target until ``switch_time``, then on the other (see :func:`late_switch_filter`).

    ``times`` of the result are the times after the switch.
    """
    a, g = late_switch_filter(
        spectrum, teacher_time, switch_time, times_after, recipe=recipe, teacher=teacher, reverse=reverse
    )
    return apply_filter(spectrum, y, a, g, times=times_after, loss=recipe.loss, recipe=recipe.record(), **outputs)


# ---------------------------------------------------------------------- stopping rules
def student_time(
    spectrum: Spectrum,
    y: ArrayLike,
    teacher_time: float,
    *,
    rule: str,
    value: float | None = None,
    teacher: Recipe = Recipe(),
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

    Raises:
      ValueError: the value cannot be reached (e.g. a norm above the converged student's, which
        is at most the teacher's when ``teacher_weight = 1``), unknown rule, non-monotone setting.
    """
    choice(rule, "rule", STOPPING_RULES)
    student = student or teacher
    w = mixing_weight(teacher_weight, truth_weight)
    if rule == "converged":
        return float("inf")
    if value is None:
        raise ValueError(f"rule {rule!r} needs a value")
    if rule == "time":
        return _scalar_time(value, "value")
    if student.method not in ("flow", "gd"):
        raise ValueError(f"stopping rules other than 'time' support 'flow' and 'gd' students, got {student.method!r}")
    if (
        student.method == "gd"
        and student.learning_rate * spectrum.evals[0] * (1.0 / spectrum.n if student.loss == "mean" else 1.0) > 1.0
    ):
        raise ValueError("stopping rules for gd need a monotone learning rate (learning_rate * lambda_max <= 1)")
    y2 = np.asarray(y, dtype=float).reshape(spectrum.n, -1)
    z = spectrum.project(y2)
    z2 = np.sum(z * z, axis=1)
    aT, _ = teacher.filter(spectrum, _scalar_time(teacher_time, "teacher_time"))
    mix = w * aT + (1.0 - w)
    perp = float(np.sum(spectrum.complement(y2) ** 2))
    div = spectrum.n if student.loss == "mean" else 1.0

    def crit(t: float) -> float:
        a, g = student.filter(spectrum, t)
        eff, geff = a * mix, g * mix
        if rule == "norm":
            return float(np.sqrt(np.sum(eff * geff * z2)))
        if rule == "loss":
            return float(0.5 * (np.sum((1 - eff) ** 2 * z2) + perp) / div)
        if rule == "top_progress":
            return float(eff[0])
        return float(np.sqrt(np.sum(((1 - a) * mix) ** 2 * z2)))  # fidelity to the target

    return solve_time(crit, value, integer=student.method == "gd", scale=1.0 / max(spectrum.evals[0], 1e-300))


def solve_time(crit: Callable[[float], float], value: float, *, integer: bool = False, scale: float = 1.0) -> float:
    """Smallest ``t ≥ 0`` with ``crit(t) = value`` for a monotone ``crit`` (bracketing, then Brent).

    ``crit(0)`` and ``crit(∞)`` bound the reachable values; ``scale`` is a natural time unit used to
    start the bracket search. With ``integer=True`` returns the first whole step at which ``crit``
    reaches ``value``.

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
    f = (lambda t: crit(t) - value) if increasing else (lambda t: value - crit(t))
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


def _crosses(crit, value, increasing, t) -> bool:
    v = crit(t)
    return v >= value if increasing else v <= value
