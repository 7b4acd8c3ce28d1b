r"""The O1 rules: does a student underfit the points its teacher finds hard, or exaggerate its confidence?

One implementation of claim O1's decision (docs/theory.md §1, §8, §11), used by the evidence
experiments and by ``kdtheory confidence``. Per seed, three models predict on the same points: the
**teacher**, the distilled **student**, and a **control** — the *replica* (one-hot training with
the teacher's architecture, recipe, budget and stopping rule, from another initialization), or
another control such as the one-hot twin, reported beside it.

**Confidence.** ``φ = log p_c − log(1 − p_c)`` of a reference class ``c_i`` (default: the teacher's
top-1 class; ``"label"``: the true label; ``"control_top1"``: the control's top-1), computed by the
kernels of :func:`kdtheory.confidence.point_confidences` (also behind :func:`phi`):
from logits ``φ = z_c − logsumexp_{j≠c} z_j`` (exact, finite); from probabilities
``log max(p_c, ε) − log max(Σ_{j≠c} p_j, ε)`` with ``ε = 1e-12`` — the rest is summed directly, so
``p_c`` within round-off of 1 keeps its exact φ, and only a probability of exactly 0 or 1 (φ = ±∞
otherwise) is clipped, to ``φ = ±log(1/ε) ≈ ±27.6``. ``Δφ_m = φ_m − φ_teacher``.

**Groups.** The low group is the ``fraction`` (default 10%) of points with the lowest
``φ_teacher``, the high group the same share with the highest
(:func:`kdtheory.confidence.confidence_groups`; ``g = max(1, round(fraction · n))``).

**Per-seed effects** (:func:`o1_effects`, selection ``"teacher"`` — the rules of issue 17):

* ``underfit_low = mean_low Δφ_student − mean_low Δφ_control``;
* ``slope = slope(φ_student on φ_teacher) − slope(φ_control on φ_teacher)`` (least squares,
  :func:`kdtheory.confidence.least_squares_slope`);
* ``exaggerate_high = mean_high Δφ_student − mean_high Δφ_control``.

**Rules** (:func:`decide_o1`; fixed here before any run; Student-t 95% intervals over seeds of the
paired per-seed effects, :func:`kdtheory.stats.paired_effect`, three outcomes):

* **O1-underfit** (ICLR wording, "the student underfits points the teacher finds hard"): the
  claim is ``underfit_low < −tolerance``, ``tolerance =`` :data:`TOLERANCE` ``= 0.1`` (a tenth of a
  unit of log-odds, a 10% change of the odds: smaller deviations are not the effect the paper
  describes). Supported when the interval's upper end is below ``−0.1``; not supported when its
  lower end is above ``−0.1`` (so a well-measured zero effect is "not supported").
* **O1-exaggerate** (NeurIPS wording, "the student exaggerates the teacher's confidence
  levels"): the claim is ``slope > 0`` **and** ``exaggerate_high > 0``. Each part is decided as
  above with threshold 0; the conjunction is *supported* when both parts are, *not supported*
  when either part is, *inconclusive* otherwise. (An intersection–union test: each part at level
  95% gives the conjunction level 95% without a correction.) The parts are reported too.

**Why a control: regression to the mean.** The groups, and the default class, are selected by
the teacher's own φ. Write ``φ_teacher = μ + e`` with ``μ`` what the recipe gives on the point and
``e`` the teacher's own deviation (its initialization and data order). The teacher's low group is
where ``e`` is negative on average, so any model whose deviation is independent of ``e`` has
``E[Δφ | low] = −E[e | low] > 0`` from the selection alone, and ``E[Δφ | high] < 0`` (regression to
the mean); and the teacher's top-1 class is the class the teacher over-rates (the winner's curse),
which lowers every other model's φ on it, most where the top classes are close — in the low
group. The two biases have opposite signs and an unknown net (issue 17 measured a negative
low-decile Δφ of every replica on test). An uncontrolled ``Δφ(student − teacher)`` mixes them
with the student's behaviour, so it is not evidence. The replica is selected by the same
teacher, in the same way: if the student deviated from the teacher as a fresh run of the recipe
does (the null), ``E[Δφ_student | group] = E[Δφ_replica | group]`` and the paired difference has
mean zero — the selection biases cancel, and what is left is what distillation changed.

**A limit of the replica control, and the cross-selected check.** A student trained on the
teacher's outputs inherits part of the teacher's deviation — both the part that put the point in
the group and the part that made the class the teacher's top-1 — and a model that inherits it
does not pay the selection biases the replica pays. With ``φ_student = μ_s + a·e + e_s`` the
teacher-selected effect is ``E[μ_s − μ_r | group]`` minus ``a`` times the replica's selection bias:
an exact copy of the teacher (``a = 1``, ``Δφ_student = 0``) gets minus the replica's bias. Where
the winner's curse dominates (the replica's low-group Δφ negative, as issue 17 measured) a copy
reads as *over*-confident in the low group, masking underfitting (+0.42 in φ on the planted copy
of tests/test_deviation.py); where regression to the mean dominates it reads as underfitting.
``o1_effects(..., select="control")`` removes the teacher from the selection instead:
groups are the **control's own** lowest/highest ``fraction`` by ``φ_control``, and the effects are
the student against the teacher directly, on points neither selected —

* ``underfit_low = mean_low (φ_student − φ_teacher)`` (control's low group),
* ``slope = slope(φ_student on φ_control) − slope(φ_teacher on φ_control)`` (the control's φ as
  an instrument: both slopes are free of the attenuation that noise in the regressor causes;
  ``> 0`` iff the instrumental-variable slope of student on teacher exceeds 1 when the teacher's
  slope on the control is positive),
* ``exaggerate_high = mean_high (φ_student − φ_teacher)`` (control's high group);

with the class chosen by the control too (``reference="control_top1"``) or the label
(``"label"``): the teacher's top-1 class is refused here, because the teacher over-rates it and a
student independent of the teacher's deviation would then read as underfitting (measured on a
planted null in tests/test_deviation.py: below −0.5 in φ at 10 classes). Same rules. It assumes the
control's deviation is independent of the teacher's and the student's; a student that copies the
teacher exactly has effects 0.

**Without a control** (``control=None``) the teacher is its own control (``Δφ_control = 0``,
slope 1): the effects are plain student-vs-teacher differences, **not corrected for regression
to the mean**, and every decided effect says so.

This module imports numpy and scipy only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import choice
from kdtheory.confidence.analyses import confidence_groups, least_squares_slope
from kdtheory.confidence.inputs import KINDS, class_indices, open_predictions, real
from kdtheory.confidence.streaming import logit_confidence, point_confidences
from kdtheory.stats import Effect, Rule, all_hold, paired_effect

__all__ = [
    "EFFECTS",
    "FRACTION",
    "LEVEL",
    "NO_CONTROL",
    "REFERENCES",
    "SELECTIONS",
    "TOLERANCE",
    "O1Effects",
    "decide_o1",
    "o1_effects",
    "o1_from_phi",
    "phi",
]

TOLERANCE = 0.1
"""O1-underfit's tolerance on the paired low-group Δφ, in units of log-odds (φ)."""

FRACTION = 0.1
"""The share of points in the low and the high group."""

LEVEL = 0.95
"""The confidence level of the intervals the rules read."""

REFERENCES = ("teacher_top1", "label", "control_top1")
"""Reference classes: the teacher's top-1, the true label, the control's top-1."""

SELECTIONS = ("teacher", "control")
"""Which model's φ selects the low and high groups (see the module docstring)."""

EFFECTS = ("underfit", "exaggerate", "exaggerate_slope", "exaggerate_high")
"""The keys of :func:`decide_o1`'s result."""

NO_CONTROL = "none: not corrected for regression to the mean"
"""The control named in effects decided without a control."""


class O1Effects(NamedTuple):
    """The O1 effects of one seed, from :func:`o1_effects` or :func:`o1_from_phi`.

    Each effect is ``student_* − control_*``; the two terms are kept so that the decision can
    pair them and a report can show them. Their meaning depends on ``selection`` (module
    docstring): with ``"teacher"``, ``student_low`` is ``mean_low Δφ_student`` and ``control_low``
    ``mean_low Δφ_control`` (0 without a control); with ``"control"``, ``student_low`` is
    ``mean_low (φ_student − φ_teacher)`` and ``control_low`` is 0, ``student_slope`` the slope of
    ``φ_student`` and ``control_slope`` of ``φ_teacher`` on ``φ_control``.

    Attributes:
      underfit_low: the paired low-group effect (φ units; O1-underfit claims it is below −tol).
      slope: the paired slope difference (O1-exaggerate claims it is above 0).
      exaggerate_high: the paired high-group effect (O1-exaggerate claims it is above 0).
      student_low: first term of ``underfit_low``.
      control_low: second term of ``underfit_low``.
      student_slope: first term of ``slope``.
      control_slope: second term of ``slope``.
      student_high: first term of ``exaggerate_high``.
      control_high: second term of ``exaggerate_high``.
      points: the number of points ``n``.
      group: the number of points in each group, ``max(1, round(fraction · n))``.
      selection: ``"teacher"`` or ``"control"``: whose φ chose the groups.
      reference: ``"teacher_top1"``, ``"label"`` or ``"control_top1"``: whose class φ is of.
      controlled: ``False`` when there was no control (the teacher was its own control).
    """

    underfit_low: float
    slope: float
    exaggerate_high: float
    student_low: float
    control_low: float
    student_slope: float
    control_slope: float
    student_high: float
    control_high: float
    points: int
    group: int
    selection: str
    reference: str
    controlled: bool


def phi(
    x: ArrayLike, cls: ArrayLike, *, kind: Literal["logits", "probabilities"] = "probabilities", eps: float = 1e-12
) -> np.ndarray:
    r"""Logit confidence ``φ_i = log p_i,c − log(1 − p_i,c)`` of class ``cls[i]`` in each row of ``x``.

    From probabilities: ``log max(p_c, ε) − log max(Σ_{j≠c} p_j, ε)`` — exact where ``p_c`` is
    within round-off of 1 (the rest is summed, not ``1 − p_c``), finite at exactly 0 or 1 (clipped
    to ``±log(1/ε)``). From logits: ``z_c − logsumexp_{j≠c} z_j``, exact and never clipped. It is
    :func:`kdtheory.confidence.logit_confidence`'s ``logit``.

    Args:
      x: probabilities (rows non-negative, summing to one) or logits, ``(n, k)``.
      cls: the class per row, integers in ``[0, k)``, ``(n,)``.
      kind: ``"probabilities"`` (default) or ``"logits"``; a mismatch is refused, not guessed.
      eps: the clipping level for probabilities, in ``(0, 0.5)``.

    Returns:
      float64 ``(n,)``, finite.

    Raises:
      ValueError: malformed ``x``, ``cls`` or ``eps``, naming the argument.

    Example:
      >>> phi([[0.75, 0.25], [1.0, 0.0]], [0, 1]).round(4).tolist()
      [1.0986, -27.631]
    """
    return logit_confidence(x, cls, kind=kind, eps=eps).logit


def o1_effects(
    teacher: ArrayLike,
    student: ArrayLike,
    control: ArrayLike | None,
    *,
    kind: Literal["logits", "probabilities"] = "probabilities",
    reference: Literal["teacher_top1", "label", "control_top1"] = "teacher_top1",
    labels: ArrayLike | None = None,
    fraction: float = FRACTION,
    select: Literal["teacher", "control"] = "teacher",
) -> O1Effects:
    """The O1 effects of one seed from three models' predictions on the same points.

    φ of the reference class for each model (one pass over row blocks,
    :func:`kdtheory.confidence.point_confidences`; arrays, memory maps or ``.npy`` paths), then
    :func:`o1_from_phi` (rules in the module docstring).

    Args:
      teacher: the teacher's predictions, ``(n, k)``.
      student: the student's predictions on the same points, same shape.
      control: the control's (replica's) predictions, same shape; ``None`` for none (the teacher
        is then its own control: not corrected for regression to the mean).
      kind: ``"probabilities"`` (default) or ``"logits"``, for all three.
      reference: the class φ is of: ``"teacher_top1"`` (default, the paper's), ``"label"`` (needs
        ``labels``) or ``"control_top1"`` (needs a control).
      labels: the true classes, ``(n,)`` integers, one-hot ``(n, k)`` or strings
        (:func:`kdtheory.confidence.class_indices`); needed for ``reference="label"``.
      fraction: the share of points in each group, in ``(0, 0.5]``.
      select: ``"teacher"`` (default, issue 17's rule: groups by the teacher's φ, minus the same
        for the control) or ``"control"`` (cross-selected: groups by the control's φ, student
        against teacher directly; needs ``reference="control_top1"`` or ``"label"``).

    Returns:
      :class:`O1Effects`.

    Raises:
      ValueError: malformed predictions (naming ``teacher``, ``student`` or ``control``), shapes
        that differ, ``reference``/``select`` needing a missing argument, ``select="control"``
        with ``reference="teacher_top1"``, or a teacher (or
        control, for ``select="control"``) whose φ is the same on every point (slope undefined).
    """
    choice(kind, "kind", KINDS)
    choice(reference, "reference", REFERENCES)
    choice(select, "select", SELECTIONS)
    if select == "control" and reference == "teacher_top1":
        raise ValueError(
            "select='control' compares the student with the teacher directly: the teacher's top-1 class would bias "
            "that comparison (winner's curse); use reference='control_top1' or 'label'"
        )
    if reference == "label" and labels is None:
        raise ValueError("reference='label' needs labels")
    if reference == "control_top1" and control is None:
        raise ValueError("reference='control_top1' needs a control")
    n, k = open_predictions(teacher, "teacher").shape
    cls = None if labels is None else class_indices(labels, n=n, k=k, name="labels")
    pts = point_confidences(teacher, student, control, kind=kind, labels=cls, reference=reference)
    return o1_from_phi(
        pts.teacher.logit,
        pts.student.logit,
        None if pts.control is None else pts.control.logit,
        fraction=fraction,
        select=select,
        reference=reference,
    )


def o1_from_phi(
    phi_teacher: ArrayLike,
    phi_student: ArrayLike,
    phi_control: ArrayLike | None,
    *,
    fraction: float = FRACTION,
    select: Literal["teacher", "control"] = "teacher",
    reference: str = "teacher_top1",
) -> O1Effects:
    """The O1 effects of one seed from the three models' φ (of one reference class) per point.

    Args:
      phi_teacher: the teacher's φ, ``(n,)``, finite.
      phi_student: the student's φ on the same points and class, ``(n,)``.
      phi_control: the control's φ, ``(n,)``; ``None`` for no control.
      fraction: the share of points in each group, in ``(0, 0.5]``.
      select: ``"teacher"`` or ``"control"`` (module docstring).
      reference: the reference class the φ are of, recorded in the result.

    Returns:
      :class:`O1Effects`.

    Raises:
      ValueError: arrays not 1-D of one length or not finite (naming them), ``select="control"``
        without a control, or a selecting φ with no spread (its slope is undefined).
    """
    choice(select, "select", SELECTIONS)
    choice(reference, "reference", REFERENCES)
    named = {"phi_teacher": phi_teacher, "phi_student": phi_student}
    if phi_control is not None:
        named["phi_control"] = phi_control
    arr = {}
    for name, v in named.items():
        a = np.asarray(v, dtype=np.float64)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"{name} must be 1-D and non-empty, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite")
        arr[name] = a
    n = arr["phi_teacher"].size
    for name, a in arr.items():
        if a.size != n:
            raise ValueError(f"{name} has {a.size} points but phi_teacher has {n}")
    t, s = arr["phi_teacher"], arr["phi_student"]
    c = arr.get("phi_control")
    if select == "control":
        if c is None:
            raise ValueError("select='control' needs a control")
        low, high = confidence_groups(c, fraction)
        s_slope, c_slope = _slope(c, s, "phi_control"), _slope(c, t, "phi_control")
        d = s - t
        terms = (float(d[low].mean()), 0.0, s_slope, c_slope, float(d[high].mean()), 0.0)
    else:
        low, high = confidence_groups(t, fraction)
        ds = s - t
        dc = np.zeros(n) if c is None else c - t
        s_slope = _slope(t, s, "phi_teacher")
        c_slope = 1.0 if c is None else _slope(t, c, "phi_teacher")
        terms = (
            float(ds[low].mean()), float(dc[low].mean()), s_slope, c_slope,
            float(ds[high].mean()), float(dc[high].mean()),
        )  # fmt: skip
    sl, cl, ss, cs, sh, ch = terms
    return O1Effects(
        underfit_low=sl - cl,
        slope=ss - cs,
        exaggerate_high=sh - ch,
        student_low=sl,
        control_low=cl,
        student_slope=ss,
        control_slope=cs,
        student_high=sh,
        control_high=ch,
        points=n,
        group=int(low.size),
        selection=select,
        reference=reference,
        controlled=c is not None,
    )


def _slope(x: np.ndarray, y: np.ndarray, name: str) -> float:
    fit = least_squares_slope(x, y)
    if fit is None:
        raise ValueError(f"{name} is the same on every point: the slope of confidence on it is undefined")
    return fit[0]


def decide_o1(
    per_seed: Sequence[O1Effects],
    *,
    tolerance: float = TOLERANCE,
    level: float = LEVEL,
    control: str = "replica",
    label: str = "",
) -> dict[str, Effect]:
    """Decide O1-underfit and O1-exaggerate from per-seed effects, with paired t intervals over seeds.

    The rules of the module docstring: ``underfit``: ``underfit_low < −tolerance``;
    ``exaggerate_slope``: ``slope > 0``; ``exaggerate_high``: ``exaggerate_high > 0``;
    ``exaggerate``: both of the last two (supported if both are, not supported if either is,
    inconclusive otherwise; its estimate and interval are the slope part's, the high-group part
    in ``extra``). Each interval is :func:`kdtheory.stats.t_interval` of the per-seed differences
    ``student_* − control_*`` (:func:`kdtheory.stats.paired_effect`; zero variance across seeds
    is inconclusive). Effects decided without a control name the control
    :data:`NO_CONTROL` and say in their reason that they are not corrected for regression to the
    mean.

    Args:
      per_seed: one :class:`O1Effects` per seed (at least 2), all with the same selection,
        reference and presence of a control.
      tolerance: the O1-underfit tolerance, ``≥ 0``, in φ units (default :data:`TOLERANCE`).
      level: the intervals' confidence level, in ``(0, 1)``.
      control: the control arm in words, e.g. ``"replica"`` or ``"one-hot twin"`` (ignored
        without a control).
      label: prefix of every effect's name, e.g. ``"mnist1d paper test: "``.

    Returns:
      ``{"underfit", "exaggerate", "exaggerate_slope", "exaggerate_high"}`` →
      :class:`kdtheory.stats.Effect`; ``extra`` holds the selection, reference, the mean of each
      term and the group size.

    Raises:
      ValueError: fewer than 2 seeds, mixed selections/references/controls, a non-:class:`O1Effects`
        item, or a bad ``tolerance`` or ``level``.

    Example:
      >>> e = [O1Effects(-0.5 + 0.01 * s, 0.2, 0.3, -0.4, 0.1 - 0.01 * s, 1.2, 1.0, 0.5, 0.2, 100, 10,
      ...                "teacher", "teacher_top1", True) for s in range(5)]
      >>> decide_o1(e)["underfit"].verdict
      'supported'
    """
    seeds = list(per_seed)
    if len(seeds) < 2:
        raise ValueError(f"per_seed needs at least 2 seeds for an interval, got {len(seeds)}")
    for i, e in enumerate(seeds):
        if not isinstance(e, O1Effects):
            raise ValueError(f"per_seed[{i}] must be an O1Effects (from o1_effects), got {type(e).__name__}")
    kinds = {(e.selection, e.reference, e.controlled) for e in seeds}
    if len(kinds) > 1:
        raise ValueError(f"per_seed mixes selections/references/controls {sorted(kinds)}; decide each apart")
    tolerance = real(tolerance, "tolerance", minimum=0)  # level is checked by stats.Rule below
    selection, reference, controlled = seeds[0].selection, seeds[0].reference, seeds[0].controlled
    arm = control if controlled else NO_CONTROL
    if selection == "control":
        arm = f"{control}: selects the groups (cross-selected); student compared with the teacher directly"
    where = f"{100 * seeds[0].group / seeds[0].points:.3g}%"
    what = {
        "underfit": f"low-confidence {where}: mean Δφ, student − control",
        "exaggerate_slope": "slope of φ on the teacher's φ, student − control",
        "exaggerate_high": f"high-confidence {where}: mean Δφ, student − control",
    }
    if selection == "control":
        what = {
            "underfit": f"control's low-confidence {where}: mean φ, student − teacher",
            "exaggerate_slope": "slope on the control's φ, student − teacher",
            "exaggerate_high": f"control's high-confidence {where}: mean φ, student − teacher",
        }
    fields = {"underfit": "low", "exaggerate_slope": "slope", "exaggerate_high": "high"}
    rules = {
        "underfit": Rule(-tolerance, "less", level),
        "exaggerate_slope": Rule(0.0, "greater", level),
        "exaggerate_high": Rule(0.0, "greater", level),
    }
    out: dict[str, Effect] = {}
    for key, f in fields.items():
        a = [getattr(e, f"student_{f}") for e in seeds]
        b = [getattr(e, f"control_{f}") for e in seeds]
        eff = paired_effect(f"{label}O1 {key}: {what[key]}", a, b, control=arm, rule=rules[key])
        extra = dict(eff.extra)
        extra.update(
            selection=selection, reference=reference, group=seeds[0].group, points=seeds[0].points,
            student_mean=float(np.mean(a)), control_mean=float(np.mean(b)),
        )  # fmt: skip
        reason = eff.reason if controlled else f"{eff.reason}; {NO_CONTROL}"
        out[key] = dataclasses.replace(eff, reason=reason, extra=extra)
    out["exaggerate"] = _conjunction(out["exaggerate_slope"], out["exaggerate_high"], label, level)
    return {k: out[k] for k in EFFECTS}


def _conjunction(slope: Effect, high: Effect, label: str, level: float) -> Effect:
    """O1-exaggerate: the slope part and the high-group part must both hold (intersection–union)."""
    verdict = all_hold((slope.verdict, high.verdict))
    reason = f"slope part {slope.verdict} ({slope.reason}); high-group part {high.verdict} ({high.reason})"
    extra = {
        "high_estimate": high.estimate, "high_ci": [high.ci_low, high.ci_high],
        **{k: v for k, v in slope.extra.items() if k != "per_seed"},
        "per_seed_slope": slope.extra["per_seed"], "per_seed_high": high.extra["per_seed"],
    }  # fmt: skip
    return Effect(
        f"{label}O1 exaggerate: slope difference > 0 and high-confidence Δφ difference > 0",
        slope.estimate, slope.ci_low, slope.ci_high, slope.seeds, slope.control,
        f"supported if both parts are supported (each: the {100 * level:g}% interval lies > 0); not supported if "
        "either is not supported; inconclusive otherwise",
        slope.interval, verdict, reason, extra,
    )  # fmt: skip
