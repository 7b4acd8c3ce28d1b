r"""Direction-by-direction comparisons of a student, its teacher and a one-hot run (claim T1).

With teacher time ``T``, student time ``t`` and the recipe's filter ``a``, the student's
coefficient along eigendirection ``k`` is ``a_k(t) a_k(T) w*_k`` (``w*`` the min-norm solution).
Three forms of "distillation exaggerates the implicit bias of GD" (docs/theory.md §3):

* **E1 (ratio)**: for ``λ_j > λ_k``, the student's coefficient ratio ``w_k/w_j`` relative to
  ``w*_k/w*_j`` is ``a_k(t)/a_j(t)`` times the teacher's — strictly smaller whenever the filter is
  increasing in λ (gradient flow; GD with ``ηλ_max ≤ 1``).
* **E2 (matched top progress)**: a one-hot run stopped at ``t'`` with ``a_1(t') = a_1(t) a_1(T)``
  is ahead of the student on every lower direction: ``a_k(t') > a_k(t) a_k(T)``. Numerically
  checked, not proved.
* **E3 (matched norm or loss)**: a one-hot run stopped where its weight norm (or training loss)
  equals the student's crosses the student once: the student is ahead on top directions and
  behind on bottom ones. Numerically checked, not proved.

Margins are reported so that **positive means the statement holds**; :func:`worst_case` scans a
grid of ``(T, t)`` and returns the smallest margin found, over the whole grid or over its
*informative* points only (:func:`informative`: neither the teacher nor the student has learned
the top direction to within round-off, so every filter compared is resolved in float64).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, as_times, choice
from kdtheory.distill import distill_filter, distill_log_remaining, solve_time
from kdtheory.eigen import GRADIENT_FLOW, Recipe, Spectrum

__all__ = ["Comparison", "compare", "informative", "statement_margin", "worst_case", "WorstCase", "STATEMENTS"]

STATEMENTS = ("E1", "E2", "E3_norm", "E3_loss")

#: round-off resolution of a remaining fraction ``1 − a`` next to 1: float64's machine epsilon 2⁻⁵².
RESOLUTION = float(np.finfo(np.float64).eps)
Match = Literal["top_progress", "norm", "loss"]


@dataclass(frozen=True, eq=False)
class Comparison:
    r"""Student, teacher and a matched one-hot run, per eigendirection (descending λ).

    Attributes:
      evals: eigenvalues ``(m,)``.
      student, teacher, onehot: fraction of each label component learned (effective filters),
        shape ``(m,)``.
      student_remaining, onehot_remaining: ``1 − student``, ``1 − onehot`` without cancellation.
      student_log_remaining, onehot_log_remaining: their logarithms, exact where they underflow.
      student_over_teacher: ``a_k(t)`` — the student's coefficient relative to the teacher's.
      student_over_onehot: student / one-hot per direction (NaN where both are 0).
      teacher_t, student_t, onehot_t: the times compared (``onehot_t`` solved by ``match``).
      match: how the one-hot time was chosen.
      crossover: index of the first direction where the student falls behind the one-hot run
        (``m`` if never).
    """

    evals: np.ndarray
    student: np.ndarray
    teacher: np.ndarray
    onehot: np.ndarray
    student_remaining: np.ndarray
    onehot_remaining: np.ndarray
    student_log_remaining: np.ndarray
    onehot_log_remaining: np.ndarray
    student_over_teacher: np.ndarray
    student_over_onehot: np.ndarray
    teacher_t: float
    student_t: float
    onehot_t: float
    match: str
    crossover: int


def compare(
    spectrum: Spectrum,
    *,
    teacher_t: float,
    student_t: float,
    recipe: Recipe = GRADIENT_FLOW,
    match: Match = "top_progress",
    label_energy: ArrayLike | None = None,
) -> Comparison:
    r"""Compare a student with its teacher and with a one-hot run matched by ``match``.

    Remaining fractions ``1 − a`` are computed without cancellation (``e^{−λt}`` for flow), so
    directions whose filters round to 1 are still resolved: the one-hot time matching top progress
    is solved in closed form from ``1 − a_1(t') = e_t + e_T − e_t e_T`` (flow:
    ``t' = −log(…)/(ηλ_1)``; gd: the first step reaching it).

    Args:
      spectrum: the kernel's spectrum.
      teacher_t: the teacher's time ``T`` (scalar).
      student_t: the student's time ``t`` (scalar).
      recipe: training recipe of all three runs (``"flow"`` or ``"gd"``).
      match: ``"top_progress"`` (E2), ``"norm"`` or ``"loss"`` (E3).
      label_energy: ``z_k²`` per direction (summed over outputs), used by ``"norm"`` and
        ``"loss"``; default all ones (labels spread evenly over the eigendirections).

    Returns:
      A :class:`Comparison`.
    """
    choice(match, "match", ("top_progress", "norm", "loss"))
    if recipe.method not in ("flow", "gd"):
        raise ValueError(f"compare supports 'flow' and 'gd' recipes, got {recipe.method!r}")
    m = spectrum.evals.size
    z2 = np.ones(m) if label_energy is None else as_float_array(label_energy, "label_energy", ndim=(1,))
    if z2.shape != (m,):
        raise ValueError(f"label_energy must have shape ({m},), got {z2.shape}")
    teacher = recipe.filter(spectrum, teacher_t).a
    eff = distill_filter(spectrum, student_t, teacher_t=teacher_t, teacher=recipe)
    student, g_st = eff.a, eff.a_over_eval
    le_st = distill_log_remaining(spectrum, student_t, teacher_t=teacher_t, recipe=recipe)  # log(1 − a_t a_T)
    e_st = np.exp(le_st)
    unit = 1.0 / max(spectrum.evals[0], 1e-300)

    if match == "top_progress":
        t_oh = _top_progress_time(spectrum, recipe, float(le_st[0]))
    else:
        if match == "norm":

            def crit(s: float) -> float:
                f = recipe.filter(spectrum, s)
                return float(np.sqrt(np.sum(f.a * f.a_over_eval * z2)))

            target = float(np.sqrt(np.sum(student * g_st * z2)))
        else:

            def crit(s: float) -> float:
                return float(np.sum(recipe.remaining(spectrum, s) ** 2 * z2))

            target = float(np.sum(e_st**2 * z2))
        t_oh = solve_time(crit, target, integer=recipe.method == "gd", scale=unit)
    onehot = recipe.filter(spectrum, t_oh).a
    le_oh = recipe.log_remaining(spectrum, t_oh)
    e_oh = np.exp(le_oh)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio_t = np.where(teacher > 0, student / np.where(teacher > 0, teacher, 1), np.nan)
        ratio_o = np.where(onehot > 0, student / np.where(onehot > 0, onehot, 1), np.nan)
    behind = np.flatnonzero((le_st > le_oh + 1e-12) & (spectrum.evals > 0))
    return Comparison(
        evals=spectrum.evals,
        student=student,
        teacher=teacher,
        onehot=onehot,
        student_remaining=e_st,
        onehot_remaining=e_oh,
        student_log_remaining=le_st,
        onehot_log_remaining=le_oh,
        student_over_teacher=ratio_t,
        student_over_onehot=ratio_o,
        teacher_t=float(teacher_t),
        student_t=float(student_t),
        onehot_t=float(t_oh),
        match=match,
        crossover=int(behind[0]) if behind.size else m,
    )


def _top_progress_time(spectrum: Spectrum, recipe: Recipe, log_e_target: float) -> float:
    """One-hot time at which ``log(1 − a_1)`` first reaches ``log_e_target``, in closed form."""
    lam1 = spectrum.evals[0] * recipe.eigenvalue_scale(spectrum.n)
    q = recipe.learning_rate * lam1
    if log_e_target >= 0.0 or q == 0:
        return 0.0
    if np.isneginf(log_e_target):
        return float("inf")
    if recipe.method == "flow":
        return float(-log_e_target / q)
    if q >= 1.0:
        return 1.0
    return float(np.ceil(log_e_target / np.log1p(-q) * (1 - 1e-14)))


def informative(
    spectrum: Spectrum,
    *,
    teacher_t: ArrayLike,
    student_t: ArrayLike,
    recipe: Recipe = GRADIENT_FLOW,
) -> np.ndarray:
    r"""Which ``(T, t)`` compare runs that are resolved in float64 (not saturated).

    A point is *informative* when neither run has learned the top direction to within round-off:

    .. math::

        1 − a_1(T) > ε \quad\text{and}\quad 1 − a_1(t) > ε, \qquad ε = 2^{−52},

    with ``a_1`` the recipe's filter along the largest eigenvalue (flow: ``e^{−ηλ_1 T} > ε``,
    i.e. ``ηλ_1 T < 52 log 2 ≈ 36.04``). Then, because ``1 − a_k ≥ 1 − a_1`` for every
    ``λ_k ≤ λ_1`` (monotone modes), every remaining fraction that E1–E3 compare exceeds ``ε``:
    the teacher's ``1 − a_k(T)``, the student's own segment ``1 − a_k(t)``, the student's
    ``1 − a_k(t) a_k(T) ≥ max(1 − a_k(t), 1 − a_k(T))``, and the matched one-hot runs' (E2
    matches the student's top remaining fraction; E3's one-hot run stops no later than ``T``,
    since the student's norm is at most, and its loss at least, the teacher's; gd up to the rounding
    of that time to a whole step). At the other
    points the student has converged onto its teacher, or the teacher onto the labels, along the
    top directions to round-off: the true margins there are of order ``e^{−λ t}``, below what
    float64 resolves, and E1/E2 margins come out exactly 0 — they test nothing.

    Args:
      spectrum: the kernel's spectrum (``λ_1 = evals[0] > 0``).
      teacher_t: teacher times ``T``, any shape.
      student_t: student times ``t``, any shape.
      recipe: the recipe (``"flow"``, ``"gd"`` with ``ηλ_1 ≤ 1``, or ``"ridge"``).

    Returns:
      Boolean array of shape ``shape(teacher_t) + shape(student_t)`` (the outer grid).

    Raises:
      ValueError: bad times, or a recipe whose remaining fraction is not monotone (see
        :meth:`~kdtheory.eigen.Recipe.log_remaining`).

    Examples:
      >>> import numpy as np
      >>> from kdtheory.eigen import Spectrum
      >>> spec = Spectrum(evals=np.array([1.0, 0.1]), U=np.eye(2), V=None, rank_tol=0.0)
      >>> informative(spec, teacher_t=[1.0, 40.0], student_t=[30.0, 37.0]).tolist()
      [[True, False], [False, False]]
    """
    top = Spectrum(evals=spectrum.evals[:1], U=spectrum.U[:, :1], V=None, rank_tol=spectrum.rank_tol)  # same n
    log_eps = np.log(RESOLUTION)
    steps = recipe.method == "gd"  # validated here so that errors name the argument
    le_T = recipe.log_remaining(top, as_times(teacher_t, "teacher_t", integer=steps))[..., 0]
    le_t = recipe.log_remaining(top, as_times(student_t, "student_t", integer=steps))[..., 0]
    mask: np.ndarray = np.logical_and.outer(le_T > log_eps, le_t > log_eps)
    return mask


def statement_margin(
    spectrum: Spectrum,
    statement: str,
    *,
    teacher_t: float,
    student_t: float,
    recipe: Recipe = GRADIENT_FLOW,
    label_energy: ArrayLike | None = None,
) -> float:
    r"""Margin by which ``statement`` holds at ``(T, t)``: positive holds, negative fails.

    With remaining fractions ``e = 1 − a`` (computed without cancellation):

    * E1: ``min (a_j − a_k)/a_j = min (e_k − e_j)/a_j`` over distinct ``λ_j > λ_k > 0``
      (``a_k(t)/a_j(t) < 1``);
    * E2: ``min_k (a_k(t') − a_k(t) a_k(T))/a_k(t')`` over ``0 < λ_k < λ_1``, with ``t'``
      matching top progress;
    * E3_norm / E3_loss: with ``d = a_student − a_onehot``, the largest violation of a single
      crossing ``+…+ −…−`` along descending λ, negated: ``−max_{i<j} min(−d_i, d_j)``, or 0 if none.

    Directions with λ = 0 learn nothing in every run and are excluded.

    Args:
      spectrum: the kernel's spectrum.
      statement: one of :data:`STATEMENTS`.
      teacher_t: the teacher's time ``T``.
      student_t: the student's time ``t``.
      recipe: the recipe of all runs (``"flow"`` or ``"gd"``).
      label_energy: ``z_k²`` per direction for E3 (default all ones).

    Returns:
      The margin (``inf`` when there is nothing to compare).
    """
    choice(statement, "statement", STATEMENTS)
    lam = spectrum.evals
    pos = lam > 0
    if statement == "E1":
        a = recipe.filter(spectrum, student_t).a
        scale = recipe.eigenvalue_scale(spectrum.n)
        monotone = recipe.method == "flow" or recipe.learning_rate * lam[0] * scale <= 1.0
        # 1 − a without cancellation where the modes are monotone; oscillating GD modes (ηλ > 1)
        # have a remaining fraction that changes sign, and 1 − a is the only form
        e = recipe.remaining(spectrum, student_t) if monotone else 1.0 - a
        keep = pos & np.r_[True, np.diff(lam) < 0]  # distinct positive eigenvalues
        av, ev = a[keep], e[keep]
        if av.size < 2:
            return float("inf")
        # worst pair j < k: the largest a_j seen so far against a_k, i.e. the smallest e so far
        e_min = np.minimum.accumulate(ev)[:-1]
        a_max = np.maximum.accumulate(av)[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            m = (ev[1:] - e_min) / np.where(a_max > 0, a_max, 1.0)
        return float(np.min(m))
    if statement == "E2":
        c = compare(spectrum, teacher_t=teacher_t, student_t=student_t, recipe=recipe, match="top_progress")
        lower = pos & (lam < lam[0])
        if not lower.any():
            return float("inf")
        # (a_oh − a_st)/a_oh = e_oh expm1(log e_st − log e_oh)/a_oh, exact where e underflows
        with np.errstate(divide="ignore", invalid="ignore"):
            d = c.student_log_remaining[lower] - c.onehot_log_remaining[lower]
            r = c.onehot_remaining[lower] * np.expm1(d) / c.onehot[lower]
        return float(np.min(np.where(np.isfinite(d), r, 0.0)))
    match: Match = "norm" if statement == "E3_norm" else "loss"
    c = compare(
        spectrum, teacher_t=teacher_t, student_t=student_t, recipe=recipe, match=match, label_energy=label_energy
    )
    d = (c.onehot_remaining - c.student_remaining)[pos]  # = a_student − a_onehot
    if d.size < 2:
        return 0.0
    behind_so_far = np.maximum.accumulate(-d)[:-1]
    viol = float(np.max(np.minimum(behind_so_far, d[1:])))
    return -viol if viol > 0 else 0.0


@dataclass(frozen=True)
class WorstCase:
    """The smallest margin of a statement over a grid (positive: held everywhere).

    Attributes:
      statement: the statement checked.
      margin: the smallest margin found.
      teacher_t: the teacher time of the worst case.
      student_t: the student time of the worst case.
      fraction_holding: share of the grid points considered whose margin is ``≥ −tol``.
      checked: number of grid points considered (all, or the informative ones).
      informative: number of informative grid points (:func:`informative`) in the whole grid;
        ``None`` for GD with ``ηλ_1 > 1``, whose oscillating modes have no such criterion.
    """

    statement: str
    margin: float
    teacher_t: float
    student_t: float
    fraction_holding: float
    checked: int
    informative: int | None


def worst_case(
    spectrum: Spectrum,
    statement: str,
    *,
    teacher_t: Sequence[float],
    student_t: Sequence[float],
    recipe: Recipe = GRADIENT_FLOW,
    label_energy: ArrayLike | None = None,
    tol: float = 1e-12,
    informative_only: bool = False,
) -> WorstCase:
    """Check ``statement`` at every ``(T, t)`` of the grid; return the worst case found.

    A grid point holds when its margin is ``≥ −tol`` (round-off allowance; E3's margin is 0 at
    best, so E3 is judged against ``−tol`` too). With ``informative_only`` the saturated points
    (:func:`informative` is False: margins of E1/E2 there round to exactly 0) are skipped, so a
    worst margin of 0 cannot come from runs that are indistinguishable in float64.

    Args:
      spectrum: the kernel's spectrum.
      statement: one of :data:`STATEMENTS`.
      teacher_t: the teacher times of the grid.
      student_t: the student times of the grid.
      recipe: the recipe of all runs.
      label_energy: ``z_k²`` per direction for E3.
      tol: round-off allowance.
      informative_only: consider only the informative grid points.

    Returns:
      A :class:`WorstCase`.

    Raises:
      ValueError: an empty grid, or no informative point with ``informative_only``.
    """
    Ts, ts = np.asarray(teacher_t, dtype=float), np.asarray(student_t, dtype=float)
    if Ts.ndim != 1 or ts.ndim != 1:
        raise ValueError(f"teacher_t and student_t must be 1-D grids, got shapes {Ts.shape} and {ts.shape}")
    oscillating = (
        recipe.method == "gd" and recipe.learning_rate * spectrum.evals[0] * recipe.eigenvalue_scale(spectrum.n) > 1.0
    )
    if oscillating and informative_only:
        raise ValueError("informative_only needs monotone modes (gd with learning_rate * lambda_1 <= 1)")
    mask = None if oscillating else informative(spectrum, teacher_t=Ts, student_t=ts, recipe=recipe)
    worst = None
    holding = 0
    count = 0
    for i, T in enumerate(teacher_t):
        for j, t in enumerate(student_t):
            if informative_only and mask is not None and not mask[i, j]:  # mask exists: checked above
                continue
            mgn = statement_margin(
                spectrum, statement, teacher_t=T, student_t=t, recipe=recipe, label_energy=label_energy
            )
            count += 1
            holding += mgn >= -tol
            if worst is None or mgn < worst[0]:
                worst = (mgn, T, t)
    if worst is None:
        what = "have no informative point" if informative_only and Ts.size and ts.size else "must not be empty"
        raise ValueError(f"teacher_t and student_t {what}")
    n_inf = None if mask is None else int(mask.sum())
    return WorstCase(statement, float(worst[0]), float(worst[1]), float(worst[2]), holding / count, count, n_inf)
