r"""Direction-by-direction comparisons of a student, its teacher and a one-hot run (claim T1).

With teacher time ``T``, student time ``t`` and the recipe's filter ``a``, the student's
coefficient along eigendirection ``k`` is ``a_k(t) a_k(T) w*_k`` (``w*`` the min-norm solution).
Three forms of "distillation exaggerates the implicit bias of GD" (THEORY.md §3):

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
grid of ``(T, t)`` and returns the smallest margin found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, choice
from kdtheory.distill import distill_filter, distill_log_remaining, solve_time
from kdtheory.eigen import GRADIENT_FLOW, Recipe, Spectrum

__all__ = ["Comparison", "compare", "statement_margin", "worst_case", "WorstCase", "STATEMENTS"]

STATEMENTS = ("E1", "E2", "E3_norm", "E3_loss")
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

            def crit(s):
                f = recipe.filter(spectrum, s)
                return float(np.sqrt(np.sum(f.a * f.a_over_eval * z2)))

            target = float(np.sqrt(np.sum(student * g_st * z2)))
        else:

            def crit(s):
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
    match = "norm" if statement == "E3_norm" else "loss"
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
      fraction_holding: share of grid points whose margin is ``≥ −tol``.
      checked: number of grid points.
    """

    statement: str
    margin: float
    teacher_t: float
    student_t: float
    fraction_holding: float
    checked: int


def worst_case(
    spectrum: Spectrum,
    statement: str,
    *,
    teacher_t: Sequence[float],
    student_t: Sequence[float],
    recipe: Recipe = GRADIENT_FLOW,
    label_energy: ArrayLike | None = None,
    tol: float = 1e-12,
) -> WorstCase:
    """Check ``statement`` at every ``(T, t)`` of the grid; return the worst case found.

    A grid point holds when its margin is ``≥ −tol`` (round-off allowance; E3's margin is 0 at
    best, so E3 is judged against ``−tol`` too).

    Args:
      spectrum: the kernel's spectrum.
      statement: one of :data:`STATEMENTS`.
      teacher_t: the teacher times of the grid.
      student_t: the student times of the grid.
      recipe: the recipe of all runs.
      label_energy: ``z_k²`` per direction for E3.
      tol: round-off allowance.

    Returns:
      A :class:`WorstCase`.

    Raises:
      ValueError: an empty grid.
    """
    worst = None
    holding = 0
    count = 0
    for T in teacher_t:
        for t in student_t:
            mgn = statement_margin(
                spectrum, statement, teacher_t=T, student_t=t, recipe=recipe, label_energy=label_energy
            )
            count += 1
            holding += mgn >= -tol
            if worst is None or mgn < worst[0]:
                worst = (mgn, T, t)
    if worst is None:
        raise ValueError("teacher_t and student_t must not be empty")
    return WorstCase(statement, float(worst[0]), float(worst[1]), float(worst[2]), holding / count, count)
