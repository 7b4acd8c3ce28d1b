r"""A confidence analysis of a student against its teacher (and a control), composed of named analyses.

:func:`analyze` runs, in order: the per-point pass (:func:`kdtheory.confidence.streaming.point_confidences`:
checks, φ of the reference class, KL, top-1s, one row block at a time), the clipping rule
(:data:`MAX_CLIPPED_SHARE`), :func:`~kdtheory.confidence.analyses.slope_analysis`,
:func:`~kdtheory.confidence.analyses.binned`, :func:`~kdtheory.confidence.analyses.tail_shares`,
:func:`~kdtheory.confidence.analyses.fidelity` and, with a control, the O1 effects of
:func:`kdtheory.deviation.o1_from_phi`. Its settings are one small value, :class:`Options`.
:func:`analyze_seeds` analyses several seeds (teacher, student and control per seed) and decides
O1 with :func:`kdtheory.deviation.decide_o1` — the same paired rules, with intervals over seeds, as
the evidence experiments. Without a control, student-vs-teacher differences are **not corrected
for regression to the mean** (:mod:`kdtheory.deviation` explains why that matters) and the
results say so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import choice
from kdtheory.confidence.analyses import (
    binned,
    fidelity,
    slope_analysis,
    tail_shares,
)
from kdtheory.confidence.inputs import (
    KINDS,
    PredictionSource,
    class_indices,
    count,
    open_interval,
    open_predictions,
    real,
)
from kdtheory.confidence.streaming import point_confidences

if TYPE_CHECKING:
    from kdtheory.deviation import O1Effects
    from kdtheory.stats import Effect

__all__ = [
    "MAX_CLIPPED_SHARE",
    "NOT_CORRECTED",
    "ConfidenceReport",
    "Options",
    "SeedsReport",
    "analyze",
    "analyze_seeds",
]

MAX_CLIPPED_SHARE = 0.01
"""Largest share of points whose probability-based φ may be clipped before :func:`analyze` refuses."""

NOT_CORRECTED = (
    "no control: student-vs-teacher differences are not corrected for regression to the mean "
    "(give a replica's predictions as the control)"
)
"""What an analysis without a control says about its student-vs-teacher differences."""

Source = ArrayLike | PredictionSource | str


@dataclass(frozen=True)
class Options:
    """The settings of :func:`analyze` (checked when made; every error names the setting and its range).

    Attributes:
      reference: the class whose confidence is compared: ``"teacher_top1"`` (default), ``"label"``
        (needs labels) or ``"control_top1"`` (needs a control).
      quantile: fraction ``q`` in ``(0, 0.5]`` of lowest/highest teacher-confidence points.
      bins: number of teacher-confidence quantile bins, an integer ``≥ 1``; with fewer points
        than bins each point is its own bin.
      bootstrap: resamples for the slope interval, an integer ``≥ 0`` (0: no interval).
      robust_points: subsample size for the Theil–Sen slope, an integer ``≥ 2``.
      tol: tolerance ``≥ 0`` on ``|Δφ|``: a point counts as under/over-confident only beyond it.
      seed: seed of the bootstrap and of the robust-slope subsample, an integer ``≥ 0``.
      eps: clipping level for probability inputs, in ``(0, 0.5)``.
      accept_clipping: proceed when more than :data:`MAX_CLIPPED_SHARE` of the points had to be
        clipped (probability inputs with exact 0 or 1); otherwise that is refused.
      threads: threads reading and computing row blocks at once, an integer ``≥ 1``, or ``None``
        (default) for the CPUs this process may use, at most 8. Results do not depend on it;
        memory grows by about 28 MB per thread (its read and work buffers).
    """

    reference: Literal["teacher_top1", "label", "control_top1"] = "teacher_top1"
    quantile: float = 0.1
    bins: int = 10
    bootstrap: int = 1000
    robust_points: int = 1000
    tol: float = 0.0
    seed: int = 0
    eps: float = 1e-12
    accept_clipping: bool = False
    threads: int | None = None

    def __post_init__(self) -> None:
        choice(self.reference, "reference", ("teacher_top1", "label", "control_top1"))
        object.__setattr__(self, "quantile", open_interval(self.quantile, "quantile", 0.0, 0.5, closed_high=True))
        count(self.bins, "bins", minimum=1)
        count(self.bootstrap, "bootstrap", minimum=0)
        count(self.robust_points, "robust_points", minimum=2)
        count(self.seed, "seed", minimum=0)
        object.__setattr__(self, "tol", real(self.tol, "tol", minimum=0.0))
        object.__setattr__(self, "eps", open_interval(self.eps, "eps", 0.0, 0.5))
        if self.threads is not None:
            count(self.threads, "threads", minimum=1)
        if not isinstance(self.accept_clipping, bool):
            raise ValueError(f"accept_clipping must be True or False, got {self.accept_clipping!r}")


def _options(options: Options | None, settings: dict[str, Any]) -> Options:
    if options is not None and not isinstance(options, Options):
        raise ValueError(f"options must be a kdtheory.confidence.Options, got {type(options).__name__}")
    base = options or Options()
    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(Options)})
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; the settings are the fields of Options")
    return dataclasses.replace(base, **settings) if settings else base


def _o1_summary(o1: O1Effects, prefix: str = "o1_", keep: int = 9) -> dict[str, float | None]:
    keys = ("underfit_low", "slope", "exaggerate_high", "student_low", "control_low", "student_slope",
            "control_slope", "student_high", "control_high")  # fmt: skip
    return {f"{prefix}{k}": float(getattr(o1, k)) for k in keys[:keep]}


@dataclass(frozen=True, eq=False)
class ConfidenceReport:
    r"""Per-point confidences and the summary statistics of :func:`analyze`.

    Attributes:
      kind: ``"logits"`` or ``"probabilities"``, as stated by the caller.
      reference: ``"teacher_top1"``, ``"label"`` or ``"control_top1"``.
      classes: the reference class per point, ``(n,)``.
      teacher_prob, student_prob: probability of the reference class, ``(n,)``.
      teacher_logit, student_logit: logit confidences ``φ``, ``(n,)``.
      delta: ``Δφ = φ_student − φ_teacher``, ``(n,)``.
      slope, intercept: least squares ``φ_s ≈ slope · φ_t + intercept`` (``None`` when all
        ``φ_t`` are equal).
      slope_ci: bootstrap 95% percentile interval of the slope (``None`` without bootstrap or slope).
      robust_slope, robust_slope_ci: Theil–Sen slope of ``φ_s`` on ``φ_t`` and its 95% interval
        (``scipy.stats.theilslopes``), on a uniform subsample of ``robust_points`` points.
      robust_points: points used for the robust slope (``min(n, robust_points)``).
      quantile: the fraction ``q`` defining the low/high-confidence groups.
      tol: the tolerance on ``|Δφ|`` used by the shares and counts below.
      low_underfit: share of the lowest-``q`` teacher-confidence points with ``Δφ < −tol``.
      high_overfit: share of the highest-``q`` points with ``Δφ > tol``.
      above, below: numbers of points with ``Δφ > tol`` and ``Δφ < −tol``.
      bin_teacher, bin_student, bin_delta: mean ``φ_t``, ``φ_s``, ``Δφ`` per teacher-confidence
        quantile bin (equal counts, lowest confidence first).
      bin_delta_se: standard error of ``bin_delta`` (``NaN`` for a one-point bin).
      bin_count: points per bin.
      agreement: top-1 agreement.
      kl: mean ``KL(p_t ‖ p_s)`` in nats; ``inf`` when some point has ``p_s = 0 < p_t``.
      kl_infinite: points with infinite KL.
      ece_teacher, ece_student: calibration errors against the labels (``None`` without labels).
      clipped: points where any φ the report uses was clipped — the teacher's, the student's, the
        control's, or (with a control) a cross-selected φ of the control's top-1 class
        (probabilities only).
      clipped_teacher, clipped_student: the same, per model.
      bootstrap: resamples used for ``slope_ci``.
      control_prob, control_logit: the control's ``p_c`` and ``φ`` (``None`` without a control).
      clipped_control: the control's clipped points (0 without a control).
      o1: the O1 effects of this one seed against the control (:func:`kdtheory.deviation.o1_from_phi`,
        teacher-selected; ``None`` without a control, or when every ``φ_teacher`` is equal).
      o1_cross: the cross-selected check of this seed (groups and class by the control's own φ
        and top-1, student against teacher directly; ``select="control"`` of
        :func:`kdtheory.deviation.o1_from_phi`); ``None`` without a control.
      controlled: whether a control was given.
    """

    kind: str
    reference: str
    classes: np.ndarray
    teacher_prob: np.ndarray
    student_prob: np.ndarray
    teacher_logit: np.ndarray
    student_logit: np.ndarray
    delta: np.ndarray
    slope: float | None
    intercept: float | None
    slope_ci: tuple[float, float] | None
    robust_slope: float | None
    robust_slope_ci: tuple[float, float] | None
    robust_points: int
    quantile: float
    tol: float
    low_underfit: float
    high_overfit: float
    above: int
    below: int
    bin_teacher: np.ndarray
    bin_student: np.ndarray
    bin_delta: np.ndarray
    bin_delta_se: np.ndarray
    bin_count: np.ndarray
    agreement: float
    kl: float
    kl_infinite: int
    ece_teacher: float | None
    ece_student: float | None
    clipped: int
    clipped_teacher: int
    clipped_student: int
    bootstrap: int
    control_prob: np.ndarray | None = None
    control_logit: np.ndarray | None = None
    clipped_control: int = 0
    o1: O1Effects | None = None
    o1_cross: O1Effects | None = None
    controlled: bool = False

    def summary(self) -> dict[str, float | int | None]:
        """The scalar statistics, for tables and JSON.

        Returns:
          A dict of numbers (``None`` where undefined); ``kl_teacher_student`` may be ``inf``.
          With a control, the O1 effects of this seed (``o1_underfit_low``, ``o1_slope``,
          ``o1_exaggerate_high`` and their terms); ``controlled`` says whether there was one.
        """
        n = int(self.teacher_logit.size)
        return {
            "points": n,
            "slope": self.slope,
            "slope_ci_low": None if self.slope_ci is None else self.slope_ci[0],
            "slope_ci_high": None if self.slope_ci is None else self.slope_ci[1],
            "robust_slope": self.robust_slope,
            "robust_slope_ci_low": None if self.robust_slope_ci is None else self.robust_slope_ci[0],
            "robust_slope_ci_high": None if self.robust_slope_ci is None else self.robust_slope_ci[1],
            "low_confidence_underfit": self.low_underfit,
            "high_confidence_overfit": self.high_overfit,
            "delta_tol": self.tol,
            "delta_above_tol": self.above,
            "delta_below_tol": self.below,
            "mean_delta": float(self.delta.mean()),
            "agreement": self.agreement,
            "kl_teacher_student": self.kl,
            "kl_infinite_points": self.kl_infinite,
            "ece_teacher": self.ece_teacher,
            "ece_student": self.ece_student,
            "mean_logit_teacher": float(self.teacher_logit.mean()),
            "mean_logit_student": float(self.student_logit.mean()),
            "clipped_points": self.clipped,
            "clipped_share": self.clipped / n,
            "controlled": self.controlled,
            **({} if self.o1 is None else _o1_summary(self.o1)),
            **({} if self.o1_cross is None else _o1_summary(self.o1_cross, "o1_cross_", 3)),
        }

    def table(self) -> str:
        """A plain-text table of :meth:`summary` (``—`` where undefined).

        Returns:
          One ``name value`` line per statistic.
        """
        rows = []
        for key, v in self.summary().items():
            text = "—" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
            rows.append(f"{key:<26} {text}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        """One line: size, kind, reference, slope, low-confidence underfitting, agreement, clipped points."""
        s = "undefined" if self.slope is None else f"{self.slope:.3f}"
        return (
            f"ConfidenceReport(n={self.teacher_logit.size}, kind={self.kind}, reference={self.reference}, "
            f"slope={s}, low-confidence underfit={self.low_underfit:.3f}, agreement={self.agreement:.3f}, "
            f"clipped={self.clipped})"
        )


def analyze(
    teacher: Source,
    student: Source,
    *,
    kind: Literal["logits", "probabilities"],
    y: ArrayLike | None = None,
    class_names: Sequence[str] | None = None,
    control: Source | None = None,
    options: Options | None = None,
    names: Sequence[str] = ("teacher", "student", "control"),
    **settings: Any,
) -> ConfidenceReport:
    r"""Compare teacher and student confidences on the same points (and, given one, a control's).

    ``φ`` and ``Δφ = φ_student − φ_teacher`` as in :mod:`kdtheory.confidence`; the named analyses
    of the module docstring. The predictions may be arrays, memory maps or ``.npy`` paths: they
    are read in row blocks, so memory is O(n) whatever the number of classes.

    Args:
      teacher: teacher predictions, ``(n, k)``, of the stated ``kind``.
      student: student predictions on the same points, same shape and kind.
      kind: ``"logits"`` or ``"probabilities"`` — required: inputs that cannot be of this kind
        (rows of non-negative numbers summing to one passed as logits, or negative entries / rows
        not summing to one passed as probabilities) are refused.
      y: labels — integers ``(n,)`` in ``[0, k)``, one-hot ``(n, k)``, or strings mapped to
        classes by :func:`~kdtheory.confidence.class_indices`; needed for ``reference="label"``
        and for ECE.
      class_names: the class name of each column, for string labels.
      control: a control's predictions, same shape and kind — a replica (one-hot, the teacher's
        recipe, another initialization); adds its φ and the O1 effects of this seed. Without it
        the report's differences are not corrected for regression to the mean.
      options: the settings (:class:`Options`); default ``Options()``.
      names: names of the teacher, student (and control) arrays in error messages (the CLI
        passes file names).
      **settings: any field of :class:`Options` by name, overriding ``options`` (e.g.
        ``bootstrap=0``).

    Returns:
      A :class:`ConfidenceReport`.

    Raises:
      ValueError: malformed input or settings, naming the argument and the allowed range; too
        many clipped points without ``accept_clipping``.

    Example:
      >>> import numpy as np
      >>> t = np.log([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
      >>> r = analyze(t, 2 * t, kind="logits", bootstrap=0)
      >>> round(r.slope, 6), r.clipped
      (2.0, 0)
    """
    from kdtheory import deviation

    choice(kind, "kind", KINDS)
    opts = _options(options, settings)
    if isinstance(names, str) or not (
        isinstance(names, Sequence) and len(names) in (2, 3) and all(isinstance(s, str) for s in names)
    ):
        raise ValueError(f"names must be a tuple of two or three strings, got {names!r}")
    name_list = list(names) + ["control"] * (3 - len(names))
    srcs = [open_predictions(x, nm) for x, nm in zip((teacher, student), name_list, strict=False)]
    ctl = None if control is None else open_predictions(control, name_list[2])
    n, k = srcs[0].shape
    for s in srcs[1:] + ([] if ctl is None else [ctl]):
        if s.shape != (n, k):
            raise ValueError(f"{srcs[0].name} has shape {(n, k)} but {s.name} has shape {s.shape}; they must match")
    labels = None if y is None else class_indices(y, n=n, k=k, class_names=class_names)
    if opts.reference == "label" and labels is None:
        raise ValueError("reference='label' needs labels y")
    if opts.reference == "control_top1" and ctl is None:
        raise ValueError("reference='control_top1' needs a control")

    pts = point_confidences(
        srcs[0], srcs[1], ctl, kind=kind, labels=labels, reference=opts.reference, eps=opts.eps, threads=opts.threads
    )
    clip_t, clip_s = pts.teacher.clipped, pts.student.clipped
    sources = [(srcs[0].name, clip_t), (srcs[1].name, clip_s)]
    if ctl is not None and pts.control is not None:
        sources.append((ctl.name, pts.control.clipped))
    if ctl is not None and pts.cross_clipped is not None:  # the φ of the control's top-1 class (o1_cross)
        cross_any = pts.cross_clipped[0] | pts.cross_clipped[1] | pts.cross_clipped[2]
        sources.append((f"any model at {ctl.name}'s top-1 class", cross_any))
    clip_any = np.logical_or.reduce([mask for _, mask in sources])
    clipped = int(np.count_nonzero(clip_any))
    if clipped > MAX_CLIPPED_SHARE * n and not opts.accept_clipping:
        counts = ", ".join(f"{name} ({int(np.count_nonzero(mask))})" for name, mask in sources)
        raise ValueError(
            f"{clipped} of {n} points ({100 * clipped / n:.2g}%) have a probability of exactly 0 or 1 (within "
            f"eps = {opts.eps:g}) for the reference class in {counts}; their "
            f"logit confidence is clipped at ±{-np.log(opts.eps):.3g}, which can reverse the conclusion. Above "
            f"{100 * MAX_CLIPPED_SHARE:g}% this is refused: pass logits (kind='logits', --logits), or accept the "
            "clipping (accept_clipping=True, --accept-clipping)"
        )
    phit, phis = pts.teacher.logit, pts.student.logit
    delta = phis - phit
    order = np.argsort(phit, kind="stable")
    fit = slope_analysis(phit, phis, bootstrap=opts.bootstrap, robust_points=opts.robust_points, seed=opts.seed)
    bins = binned(phit, phis, opts.bins, order=order)
    tails = tail_shares(phit, delta, opts.quantile, opts.tol, order=order)
    fid = fidelity(pts.top_teacher, pts.top_student, pts.kl, (pts.pmax_teacher, pts.pmax_student), labels)
    o1 = o1_cross = None
    if pts.control is not None and np.ptp(phit) > 0:  # otherwise the O1 slopes are undefined (like ``slope``)
        o1 = deviation.o1_from_phi(phit, phis, pts.control.logit, fraction=opts.quantile, reference=opts.reference)
    if pts.cross is not None and np.ptp(pts.cross[2]) > 0:
        o1_cross = deviation.o1_from_phi(*pts.cross, fraction=opts.quantile, select="control", reference="control_top1")
    return ConfidenceReport(
        kind=kind,
        reference=opts.reference,
        classes=pts.classes,
        teacher_prob=pts.teacher.prob,
        student_prob=pts.student.prob,
        teacher_logit=phit,
        student_logit=phis,
        delta=delta,
        quantile=opts.quantile,
        tol=opts.tol,
        clipped=clipped,
        clipped_teacher=int(clip_t.sum()),
        clipped_student=int(clip_s.sum()),
        control_prob=None if pts.control is None else pts.control.prob,
        control_logit=None if pts.control is None else pts.control.logit,
        clipped_control=0 if pts.control is None else int(pts.control.clipped.sum()),
        o1=o1,
        o1_cross=o1_cross,
        controlled=pts.control is not None,
        **fit._asdict(),
        **bins._asdict(),
        **tails._asdict(),
        **fid._asdict(),
    )


class SeedsReport(NamedTuple):
    """Several seeds analysed and O1 decided over them, from :func:`analyze_seeds`.

    Attributes:
      reports: one :class:`ConfidenceReport` per seed, in the order given.
      effects: the O1 effects per seed (``report.o1``, or against the teacher itself without a
        control), for :func:`kdtheory.deviation.decide_o1`; with one seed and no control (or an
        undefined slope), empty.
      decisions: ``{"underfit", "exaggerate", "exaggerate_slope", "exaggerate_high"}`` →
        :class:`kdtheory.stats.Effect` with intervals over seeds (``None`` with one seed: no
        interval over seeds exists).
      controlled: whether every seed had a control (all or none is required).
      note: :data:`NOT_CORRECTED` without a control, else empty.
      cross_decisions: with controls and two or more seeds, the same rules on the cross-selected
        effects (``report.o1_cross``): groups and class chosen by the control, student against
        teacher directly (:mod:`kdtheory.deviation`); else ``None``.
    """

    reports: list[ConfidenceReport]
    effects: list[O1Effects]
    decisions: dict[str, Effect] | None
    controlled: bool
    note: str
    cross_decisions: dict[str, Effect] | None = None


def analyze_seeds(
    runs: Sequence[Sequence[Source]],
    *,
    kind: Literal["logits", "probabilities"],
    y: ArrayLike | None = None,
    class_names: Sequence[str] | None = None,
    options: Options | None = None,
    tolerance: float | None = None,
    control_name: str = "replica",
    names: Sequence[Sequence[str]] | None = None,
    **settings: Any,
) -> SeedsReport:
    """Analyse each seed's ``(teacher, student[, control])`` and decide O1 over the seeds.

    Each seed goes through :func:`analyze` (its predictions read in row blocks; one seed's per-point
    vectors are kept per report). The O1 effects per seed come from
    :func:`kdtheory.deviation.o1_from_phi` with ``fraction = options.quantile``; with two or more
    seeds :func:`kdtheory.deviation.decide_o1` decides them with paired Student-t intervals over
    seeds. Without controls (every run a pair) the teacher is its own control and every decided
    effect says that it is not corrected for regression to the mean.

    Args:
      runs: per seed, ``(teacher, student)`` or ``(teacher, student, control)`` predictions
        (arrays, memory maps or ``.npy`` paths), all of one shape; all runs with a control or none.
      kind: ``"logits"`` or ``"probabilities"``.
      y: labels shared by every seed (the same points), as for :func:`analyze`.
      class_names: the class name of each column, for string labels.
      options: the settings (:class:`Options`).
      tolerance: O1-underfit's tolerance (default :data:`kdtheory.deviation.TOLERANCE`).
      control_name: the control arm in words, for the decided effects.
      names: per seed, the names of its arrays in messages (default ``teacher[s]``, ...).
      **settings: fields of :class:`Options` by name.

    Returns:
      :class:`SeedsReport`.

    Raises:
      ValueError: no runs, runs of the wrong length, a mix of runs with and without a control,
        a seed whose teacher gives every point the same φ (O1's slopes are undefined) when
        there are several seeds, a ``tolerance`` that is not a finite number ``≥ 0`` (checked
        before any predictions are read), or anything :func:`analyze` refuses (naming the seed's
        array).
    """
    from kdtheory import deviation

    opts = _options(options, settings)
    tol = deviation.TOLERANCE if tolerance is None else real(tolerance, "tolerance", minimum=0)  # before any read
    if isinstance(runs, (str, bytes)) or not isinstance(runs, Sequence) or not runs:
        raise ValueError("runs must be a non-empty sequence of (teacher, student[, control]) predictions")
    sizes = set()
    for i, r in enumerate(runs):
        if not isinstance(r, Sequence) or isinstance(r, (str, bytes)) or len(r) not in (2, 3):
            raise ValueError(f"runs[{i}] must be (teacher, student) or (teacher, student, control)")
        sizes.add(len(r))
    if len(sizes) > 1:
        raise ValueError("runs mix seeds with and without a control: give a control for every seed or for none")
    if names is not None and len(names) != len(runs):
        raise ValueError(f"names must give one entry per run ({len(runs)}), got {len(names)}")
    reports: list[ConfidenceReport] = []
    for i, r in enumerate(runs):
        nm = list(names[i]) if names is not None else [f"teacher[{i}]", f"student[{i}]", f"control[{i}]"]
        rep = analyze(r[0], r[1], kind=kind, y=y, class_names=class_names, control=r[2] if len(r) == 3 else None,
                      options=opts, names=nm)  # fmt: skip
        reports.append(rep)
    effects: list[O1Effects] = []
    for i, rep in enumerate(reports):
        if rep.o1 is not None:
            effects.append(rep.o1)
        elif len(runs) >= 2:
            try:
                effects.append(deviation.o1_from_phi(rep.teacher_logit, rep.student_logit, rep.control_logit,
                                                     fraction=opts.quantile, reference=opts.reference))  # fmt: skip
            except ValueError as exc:
                raise ValueError(f"seed {i}: {exc}") from exc
    controlled = sizes == {3}
    decisions = cross = None
    if len(runs) >= 2:
        decisions = deviation.decide_o1(effects, tolerance=tol, control=control_name)
        crossed = [rep.o1_cross for rep in reports]
        if controlled and all(e is not None for e in crossed):
            cross = deviation.decide_o1(
                [e for e in crossed if e is not None], tolerance=tol, control=control_name, label="cross-selected: "
            )
    return SeedsReport(reports, effects, decisions, controlled, "" if controlled else NOT_CORRECTED, cross)
