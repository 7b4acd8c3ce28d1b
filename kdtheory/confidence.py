r"""Confidence deviations between a teacher and a student, on any predictions (claim O1).

For each point ``i`` take a reference class ``c_i`` — the teacher's top-1 class (default) or the
true label — and the probability each model gives it. The *logit confidence* of a model is

.. math:: φ = \log\frac{p_c}{1 - p_c} = z_c - \operatorname{logsumexp}_{j \ne c} z_j ,

computed from logits ``z`` in that second form (finite whenever the logits are, even where
``p_c`` rounds to 1 in float32), or from probabilities as ``log p_c − log Σ_{j≠c} p_j`` — which is
infinite where a probability is exactly 0 or 1, so such points are clipped to ``[ε, ·]`` and
*counted*; above :data:`MAX_CLIPPED_SHARE` of the points the analysis refuses unless told
``accept_clipping=True``. The deviation of the student is ``Δφ = φ_student − φ_teacher``.

Measured (Nagarajan et al. 2023, *On student-teacher deviations in distillation*, §3–4;
Stanton et al. 2021 for fidelity):

* the least-squares slope of ``φ_student`` on ``φ_teacher`` with a bootstrap percentile interval
  (slope > 1: the student *exaggerates* the teacher's confidence levels), and a robust
  Theil–Sen slope with its interval;
* binned curves: mean ``φ_teacher``, ``φ_student`` and ``Δφ`` per teacher-confidence quantile bin;
* *low-confidence underfitting*: among the fraction ``q`` of points the teacher is least
  confident about, the share with ``Δφ < −tol``; *high-confidence overfitting*: among the top
  ``q``, the share with ``Δφ > tol``; counts of ``Δφ > tol``, ``Δφ < −tol`` over all points;
* fidelity: top-1 agreement, ``KL(teacher ‖ student)`` (mean over points, nats; ``+∞`` where
  the student gives probability exactly 0 to a class the teacher supports) and the expected
  calibration error (10 equal-width bins) of each model against the labels.

Memory: the inputs (kept in their own dtype) plus O(n) working space — rows are processed in
blocks and the bootstrap draws multinomial counts and reduces each resample to its sufficient
statistics, never an array of (resamples × points).

This module imports numpy and scipy only; reading files and drawing figures live in
:mod:`kdtheory.cli`, :mod:`kdtheory._io` and :mod:`kdtheory.confidence_figure`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit, log_softmax, logsumexp, rel_entr
from scipy.stats import theilslopes

from kdtheory._checks import choice

__all__ = [
    "KINDS",
    "MAX_CLIPPED_SHARE",
    "ConfidenceReport",
    "LogitConfidence",
    "analyze",
    "class_indices",
    "confidence_groups",
    "expected_calibration_error",
    "least_squares_slope",
    "logit_confidence",
    "validate_predictions",
]

KINDS = ("logits", "probabilities")
"""The input kinds: the caller states which one its arrays are (no default)."""

MAX_CLIPPED_SHARE = 0.01
"""Largest share of points whose probability-based φ may be clipped before :func:`analyze` refuses."""

_ROW_BLOCK = 1 << 16  # rows per block of the row-wise pass (working space ~ block × k float64)
_BOOT_BLOCK = 1 << 20  # resampled indices drawn at once by the bootstrap


class LogitConfidence(NamedTuple):
    """Per-point confidence in a reference class, from :func:`logit_confidence`.

    Attributes:
      prob: probability of the reference class, ``(n,)``.
      logit: logit confidence ``φ = log(p_c / (1 − p_c))``, ``(n,)``; finite.
      clipped: ``(n,)`` bool, where φ was clipped because a probability was below ``eps``
        (probability input only; all ``False`` for logits).
    """

    prob: np.ndarray
    logit: np.ndarray
    clipped: np.ndarray


def _as_predictions(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a real 2-D array in its own float dtype (ints become float64); errors name ``name``."""
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: expected an (n, k) array of numbers; rows of different lengths? ({exc})") from exc
    if arr.dtype == object:
        raise ValueError(f"{name}: expected an (n, k) array of numbers; got ragged rows or Python objects")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (points x classes), got shape {arr.shape}")
    if arr.shape[1] < 2:
        raise ValueError(f"{name}: needs at least 2 classes (columns), got shape {arr.shape}")
    if arr.shape[0] < 1:
        raise ValueError(f"{name}: no points (shape {arr.shape})")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _sum_tolerance(dtype: np.dtype, k: int) -> float:
    """Tolerance on ``|Σ_j p_j − 1|`` for probabilities stored in ``dtype`` with ``k`` classes.

    ``max(base, k · eps(dtype))``: a softmax evaluated and rounded in ``dtype`` sums to one within a
    few ``k · eps``; ``base`` is ``1e-6`` for float64 and ``1e-4`` for narrower floats (float16 with
    10 classes: 9.8e-3).
    """
    eps = float(np.finfo(dtype).eps)
    base = 1e-6 if eps < 1e-10 else 1e-4
    return max(base, k * eps)


def validate_predictions(
    x: ArrayLike, *, kind: Literal["logits", "probabilities"], name: str = "predictions"
) -> np.ndarray:
    """Check a predictions array against its stated kind; return it as a 2-D float array.

    Both kinds: real, finite, 2-D ``(n, k)`` with ``n ≥ 1``, ``k ≥ 2``. Logits: refused when
    *every* row is non-negative and sums to one (those are probabilities). Probabilities:
    non-negative, each row summing to one within ``max(base, k · eps(dtype))`` (``base`` = 1e-6
    for float64, 1e-4 for float32/float16), so float16 softmax outputs are accepted.

    Args:
      x: the predictions, ``(n, k)``.
      kind: ``"logits"`` or ``"probabilities"`` — what the caller states ``x`` is.
      name: the name used in error messages (an argument or a file name).

    Returns:
      ``x`` as an array in its own floating dtype (integer input becomes float64); no copy is
      made of a floating array.

    Raises:
      ValueError: naming ``name``, what was expected and what was seen.
    """
    choice(kind, "kind", KINDS)
    arr = _as_predictions(x, name)
    n, k = arr.shape
    tol = _sum_tolerance(arr.dtype, k)
    all_prob_like = True
    for start in range(0, n, _ROW_BLOCK):
        b = arr[start : start + _ROW_BLOCK].astype(np.float64)
        finite = np.isfinite(b)
        if not finite.all():
            i, j = (int(v) for v in np.argwhere(~finite)[0])
            raise ValueError(f"{name}: contains {b[i, j]} at row {start + i}, column {j}; {kind} must be finite")
        sums = b.sum(axis=1)
        negative = (b < 0).any(axis=1)
        off = np.abs(sums - 1.0) > tol
        if kind == "probabilities":
            if negative.any():
                i = int(np.argmax(negative))
                raise ValueError(
                    f"{name}: kind='probabilities' but row {start + i} has a negative entry ({b[i].min():.6g}); "
                    "these look like logits: state kind='logits' (--logits)"
                )
            if off.any():
                i = int(np.argmax(off))
                raise ValueError(
                    f"{name}: kind='probabilities' but row {start + i} sums to {sums[i]:.6g} "
                    f"(allowed: 1 ± {tol:.2g}); these look like logits: state kind='logits' (--logits)"
                )
        elif all_prob_like and (negative.any() or off.any()):
            all_prob_like = False
    if kind == "logits" and all_prob_like:
        raise ValueError(
            f"{name}: kind='logits' but every row is non-negative and sums to 1 (within {tol:.2g}): "
            "these are probabilities; state kind='probabilities' (--probabilities)"
        )
    return arr


def logit_confidence(
    x: ArrayLike, classes: ArrayLike, *, kind: Literal["logits", "probabilities"], eps: float = 1e-12
) -> LogitConfidence:
    r"""Probability and logit confidence ``φ`` of class ``classes[i]`` in each row of ``x``.

    From logits: ``φ = z_c − logsumexp_{j≠c} z_j`` and ``p_c = sigmoid(φ)`` — exact and finite.
    From probabilities: ``φ = log max(p_c, ε) − log max(Σ_{j≠c} p_j, ε)`` (the rest is summed
    directly, so no cancellation near ``p_c = 1``); ``clipped`` marks the rows where the ``max``
    changed a value (a probability of exactly 0 or 1 gives φ = ±∞ otherwise).

    Args:
      x: logits or probabilities, ``(n, k)``; validated as by :func:`validate_predictions`.
      classes: the reference class per row, integers in ``[0, k)``, shape ``(n,)``.
      kind: ``"logits"`` or ``"probabilities"``.
      eps: clipping level for probabilities, in ``(0, 0.5)``.

    Returns:
      :class:`LogitConfidence` ``(prob, logit, clipped)``.

    Raises:
      ValueError: malformed ``x``, ``classes`` or ``eps``, naming the argument.
    """
    arr = validate_predictions(x, kind=kind, name="x")
    n, k = arr.shape
    cls = _integer_labels(classes, n, k, "classes")
    eps = _open_interval(eps, "eps", 0.0, 0.5)
    prob, phi, clipped = np.empty(n), np.empty(n), np.zeros(n, bool)
    for start in range(0, n, _ROW_BLOCK):
        sl = slice(start, start + _ROW_BLOCK)
        prob[sl], phi[sl], clipped[sl] = _block_confidence(arr[sl].astype(np.float64), cls[sl], kind, eps)
    return LogitConfidence(prob, phi, clipped)


def _block_confidence(b: np.ndarray, cls: np.ndarray, kind: str, eps: float):
    rows = np.arange(b.shape[0])
    if kind == "logits":
        zc = b[rows, cls].copy()
        b[rows, cls] = -np.inf  # b is a private float64 copy
        phi = zc - logsumexp(b, axis=1)
        return expit(phi), phi, np.zeros(b.shape[0], bool)
    pc = b[rows, cls].copy()
    b[rows, cls] = 0.0
    rest = b.sum(axis=1)
    clipped = (pc < eps) | (rest < eps)
    phi = np.log(np.maximum(pc, eps)) - np.log(np.maximum(rest, eps))
    return pc, phi, clipped


def expected_calibration_error(confidence: ArrayLike, correct: ArrayLike, *, bins: int = 10) -> float:
    r"""Expected calibration error ``Σ_b (n_b / n) |accuracy_b − confidence_b|``.

    Bins are ``bins`` equal-width intervals of the top-1 probability on ``[0, 1]`` (right-closed;
    the first also holds 0), as in Guo et al. (2017).

    Args:
      confidence: top-1 probability per point, in ``[0, 1]``, shape ``(n,)``.
      correct: whether the top-1 class is the label, bool ``(n,)``.
      bins: number of bins, an integer ``≥ 1``.

    Returns:
      The ECE, in ``[0, 1]``.

    Raises:
      ValueError: mismatched shapes, confidences outside ``[0, 1]`` or ``bins < 1``.
    """
    bins = _count(bins, "bins", minimum=1)
    conf = np.asarray(confidence, dtype=np.float64)
    hit = np.asarray(correct)
    if conf.ndim != 1 or hit.shape != conf.shape or conf.size == 0:
        raise ValueError(
            f"confidence and correct must be non-empty 1-D of one length, got {conf.shape} and {hit.shape}"
        )
    if not np.all((conf >= 0) & (conf <= 1)):
        raise ValueError("confidence must lie in [0, 1]")
    idx = np.digitize(conf, np.linspace(0.0, 1.0, bins + 1)[1:-1], right=True)
    gap = np.bincount(idx, weights=hit.astype(np.float64), minlength=bins) - np.bincount(
        idx, weights=conf, minlength=bins
    )
    return float(np.sum(np.abs(gap)) / conf.size)


@dataclass(frozen=True, eq=False)
class ConfidenceReport:
    r"""Per-point confidences and the summary statistics of :func:`analyze`.

    Attributes:
      kind: ``"logits"`` or ``"probabilities"``, as stated by the caller.
      reference: ``"teacher_top1"`` or ``"label"``.
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
      clipped: points whose ``φ_teacher`` or ``φ_student`` was clipped (probabilities only).
      clipped_teacher, clipped_student: the same, per model.
      bootstrap: resamples used for ``slope_ci``.
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

    def summary(self) -> dict[str, float | int | None]:
        """The scalar statistics, for tables and JSON.

        Returns:
          A dict of numbers (``None`` where undefined); ``kl_teacher_student`` may be ``inf``.
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
    teacher: ArrayLike,
    student: ArrayLike,
    *,
    kind: Literal["logits", "probabilities"],
    y: ArrayLike | None = None,
    class_names: Sequence[str] | None = None,
    reference: Literal["teacher_top1", "label"] = "teacher_top1",
    quantile: float = 0.1,
    bins: int = 10,
    bootstrap: int = 1000,
    robust_points: int = 1000,
    tol: float = 0.0,
    seed: int = 0,
    eps: float = 1e-12,
    accept_clipping: bool = False,
    names: tuple[str, str] = ("teacher", "student"),
) -> ConfidenceReport:
    r"""Compare teacher and student confidences on the same points.

    ``φ`` and ``Δφ = φ_student − φ_teacher`` as in the module docstring. The slope is ordinary
    least squares of ``φ_s`` on ``φ_t``; its interval is the 2.5–97.5% percentile interval of
    ``bootstrap`` resampled slopes, each computed from the multinomial resample counts ``w`` by
    the closed form ``(Σw x̃ỹ − Σw x̃ Σw ỹ / n) / (Σw x̃² − (Σw x̃)² / n)`` on centred data
    (resamples with no spread in ``φ_t`` are dropped). The robust slope is Theil–Sen
    (``scipy.stats.theilslopes``, 95%) on a uniform subsample of ``robust_points`` points, because
    its cost is quadratic (``robust_points = 1000``: about 0.1 s and 25 MB); its sampling
    error is of order ``1/sqrt(robust_points)`` relative.

    Args:
      teacher: teacher predictions, ``(n, k)``, of the stated ``kind``.
      student: student predictions on the same points, same shape and kind.
      kind: ``"logits"`` or ``"probabilities"`` — required: inputs that cannot be of this kind
        (rows of non-negative numbers summing to one passed as logits, or negative entries / rows
        not summing to one passed as probabilities) are refused.
      y: labels — integers ``(n,)`` in ``[0, k)``, one-hot ``(n, k)``, or strings mapped to
        classes by :func:`class_indices`; needed for ``reference="label"`` and for ECE.
      class_names: the class name of each column, for string labels (see :func:`class_indices`).
      reference: the class whose confidence is compared: the teacher's top-1 or the label.
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
      names: names of the two prediction arrays in error messages (the CLI passes file names).

    Returns:
      A :class:`ConfidenceReport`.

    Raises:
      ValueError: malformed input or hyperparameters, naming the argument and the allowed
        range; too many clipped points without ``accept_clipping``.

    Example:
      >>> import numpy as np
      >>> t = np.log([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
      >>> r = analyze(t, 2 * t, kind="logits", bootstrap=0)
      >>> round(r.slope, 6), r.clipped
      (2.0, 0)
    """
    choice(kind, "kind", KINDS)
    choice(reference, "reference", ("teacher_top1", "label"))
    if not (isinstance(names, tuple) and len(names) == 2 and all(isinstance(s, str) for s in names)):
        raise ValueError(f"names must be a tuple of two strings, got {names!r}")
    quantile = _open_interval(quantile, "quantile", 0.0, 0.5, closed_high=True)
    bins = _count(bins, "bins", minimum=1)
    bootstrap = _count(bootstrap, "bootstrap", minimum=0)
    robust_points = _count(robust_points, "robust_points", minimum=2)
    seed = _count(seed, "seed", minimum=0)
    tol = _real(tol, "tol", minimum=0.0)
    eps = _open_interval(eps, "eps", 0.0, 0.5)
    if not isinstance(accept_clipping, bool):
        raise ValueError(f"accept_clipping must be True or False, got {accept_clipping!r}")
    t = validate_predictions(teacher, kind=kind, name=names[0])
    s = validate_predictions(student, kind=kind, name=names[1])
    if t.shape != s.shape:
        raise ValueError(f"{names[0]} has shape {t.shape} but {names[1]} has shape {s.shape}; they must match")
    n, k = t.shape
    labels = None if y is None else class_indices(y, n=n, k=k, class_names=class_names)
    if reference == "label" and labels is None:
        raise ValueError("reference='label' needs labels y")

    rows = _row_pass(t, s, kind, labels if reference == "label" else None, eps)
    cls, pt, phit, clip_t, ps, phis, clip_s, kl_rows, top_t, top_s, pmax_t, pmax_s = rows
    clipped = int(np.count_nonzero(clip_t | clip_s))
    if clipped > MAX_CLIPPED_SHARE * n and not accept_clipping:
        raise ValueError(
            f"{clipped} of {n} points ({100 * clipped / n:.2g}%) have a probability of exactly 0 or 1 (within "
            f"eps = {eps:g}) for the reference class in {names[0]} ({int(clip_t.sum())}) or {names[1]} "
            f"({int(clip_s.sum())}); their "
            f"logit confidence is clipped at ±{-np.log(eps):.3g}, which can reverse the conclusion. Above "
            f"{100 * MAX_CLIPPED_SHARE:g}% this is refused: pass logits (kind='logits', --logits), or accept the "
            "clipping (accept_clipping=True, --accept-clipping)"
        )
    delta = phis - phit

    slope = intercept = ci = robust = robust_ci = None
    m = min(n, robust_points)
    fit = least_squares_slope(phit, phis)
    if fit is not None:
        slope, intercept = fit
        if bootstrap:
            xc, yc = phit - phit.mean(), phis - phis.mean()
            sl = _bootstrap_slopes(xc, yc, bootstrap, np.random.default_rng([seed, 0]))
            if sl.size:
                ci = (float(np.percentile(sl, 2.5)), float(np.percentile(sl, 97.5)))
    if n >= 2 and np.ptp(phit) > 0:
        sub = np.random.default_rng([seed, 1]).choice(n, size=m, replace=False) if m < n else slice(None)
        if np.ptp(phit[sub]) > 0:
            res = theilslopes(phis[sub], phit[sub], alpha=0.95)
            robust, robust_ci = float(res.slope), (float(res.low_slope), float(res.high_slope))

    order = np.argsort(phit, kind="stable")
    low, high = confidence_groups(phit, quantile, order=order)
    nb = min(bins, n)
    size, extra = divmod(n, nb)
    count = np.array([size + 1] * extra + [size] * (nb - extra))  # the sizes np.array_split gives
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    d_sorted = delta[order]
    bin_delta = np.add.reduceat(d_sorted, starts) / count
    sq = np.add.reduceat((d_sorted - np.repeat(bin_delta, count)) ** 2, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        bin_se = np.where(count > 1, np.sqrt(sq / np.maximum(count - 1, 1) / count), np.nan)

    ece_t = ece_s = None
    if labels is not None:
        ece_t = expected_calibration_error(pmax_t, top_t == labels)
        ece_s = expected_calibration_error(pmax_s, top_s == labels)
    kl_inf = int(np.count_nonzero(np.isinf(kl_rows)))
    return ConfidenceReport(
        kind=kind,
        reference=reference,
        classes=cls,
        teacher_prob=pt,
        student_prob=ps,
        teacher_logit=phit,
        student_logit=phis,
        delta=delta,
        slope=slope,
        intercept=intercept,
        slope_ci=ci,
        robust_slope=robust,
        robust_slope_ci=robust_ci,
        robust_points=m,
        quantile=quantile,
        tol=tol,
        low_underfit=float(np.mean(delta[low] < -tol)),
        high_overfit=float(np.mean(delta[high] > tol)),
        above=int(np.count_nonzero(delta > tol)),
        below=int(np.count_nonzero(delta < -tol)),
        bin_teacher=np.add.reduceat(phit[order], starts) / count,
        bin_student=np.add.reduceat(phis[order], starts) / count,
        bin_delta=bin_delta,
        bin_delta_se=bin_se,
        bin_count=count,
        agreement=float(np.mean(top_t == top_s)),
        kl=float("inf") if kl_inf else max(float(kl_rows.mean()), 0.0),
        kl_infinite=kl_inf,
        ece_teacher=ece_t,
        ece_student=ece_s,
        clipped=clipped,
        clipped_teacher=int(clip_t.sum()),
        clipped_student=int(clip_s.sum()),
        bootstrap=bootstrap,
    )


def least_squares_slope(x: ArrayLike, y: ArrayLike) -> tuple[float, float] | None:
    r"""Ordinary least squares ``y ≈ slope · x + intercept``, on centred data.

    ``slope = Σ (x − x̄)(y − ȳ) / Σ (x − x̄)²``, ``intercept = ȳ − slope · x̄``. The slope of
    ``φ_student`` on ``φ_teacher`` (confidence exaggeration when above 1, docs/theory.md §11) and
    the paired slopes of :mod:`kdtheory.deviation` all come from here.

    Args:
      x: the regressor, ``(n,)``, finite.
      y: the response, ``(n,)``, finite, same length.

    Returns:
      ``(slope, intercept)``, or ``None`` when ``x`` has no spread (``n < 2`` or all equal): the
      slope is undefined there.

    Raises:
      ValueError: ``x`` and ``y`` not 1-D of one length, or not finite.
    """
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.ndim != 1 or ya.shape != xa.shape:
        raise ValueError(f"x and y must be 1-D of one length, got shapes {xa.shape} and {ya.shape}")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("x and y must be finite")
    if xa.size < 2 or np.ptp(xa) == 0:
        return None
    xm, ym = xa.mean(), ya.mean()
    xc = xa - xm
    sxx = float(xc @ xc)
    if sxx <= 0:
        return None
    slope = float(xc @ (ya - ym)) / sxx
    return slope, float(ym - slope * xm)


def confidence_groups(
    phi_teacher: ArrayLike, fraction: float, *, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``fraction`` least and most confident points, by a model's ``φ``.

    The group size is ``g = max(1, round(fraction · n))``; the points are sorted by ``φ`` with a
    stable sort (ties keep their index order), the low group is the first ``g`` and the high
    group the last ``g``. With ``fraction = 0.5`` and odd ``n`` the middle point is in both.

    Args:
      phi_teacher: the selecting model's logit confidence per point, ``(n,)``, ``n ≥ 1``.
      fraction: the share ``q`` in ``(0, 0.5]``.
      order: ``np.argsort(phi_teacher, kind="stable")`` when the caller already has it.

    Returns:
      ``(low, high)``: int64 index arrays of ``g`` points each, lowest ``φ`` first.

    Raises:
      ValueError: ``phi_teacher`` not 1-D and non-empty, or ``fraction`` outside ``(0, 0.5]``.
    """
    fraction = _open_interval(fraction, "fraction", 0.0, 0.5, closed_high=True)
    phi = np.asarray(phi_teacher)
    if phi.ndim != 1 or phi.size == 0:
        raise ValueError(f"phi_teacher must be 1-D and non-empty, got shape {phi.shape}")
    if order is None:
        order = np.argsort(phi, kind="stable")
    g = max(1, int(round(fraction * phi.size)))
    return order[:g], order[-g:]


def _row_pass(t: np.ndarray, s: np.ndarray, kind: str, labels: np.ndarray | None, eps: float):
    """Per-point quantities, computed in row blocks (float64 working space ~ block × k)."""
    n, _ = t.shape
    f, i, b = (lambda: np.empty(n)), (lambda: np.empty(n, np.int64)), (lambda: np.empty(n, bool))
    cls, pt, phit, clip_t, ps, phis, clip_s = i(), f(), f(), b(), f(), f(), b()
    kl, top_t, top_s, pmax_t, pmax_s = f(), i(), i(), f(), f()
    for start in range(0, n, _ROW_BLOCK):
        sl = slice(start, start + _ROW_BLOCK)
        tb, sb = t[sl].astype(np.float64), s[sl].astype(np.float64)
        top_t[sl], top_s[sl] = tb.argmax(axis=1), sb.argmax(axis=1)
        cls[sl] = top_t[sl] if labels is None else labels[sl]
        if kind == "logits":
            lt, ls = log_softmax(tb, axis=1), log_softmax(sb, axis=1)
            p = np.exp(lt)
            kl[sl] = np.sum(p * (lt - ls), axis=1)
            pmax_t[sl], pmax_s[sl] = np.exp(lt.max(axis=1)), np.exp(ls.max(axis=1))
        else:
            # rows sum to one within round-off (validated); normalize so that KL >= 0 exactly in theory
            pn, qn = tb / tb.sum(axis=1, keepdims=True), sb / sb.sum(axis=1, keepdims=True)
            kl[sl] = np.sum(rel_entr(pn, qn), axis=1)
            pmax_t[sl], pmax_s[sl] = pn.max(axis=1), qn.max(axis=1)
        pt[sl], phit[sl], clip_t[sl] = _block_confidence(tb, cls[sl], kind, eps)
        ps[sl], phis[sl], clip_s[sl] = _block_confidence(sb, cls[sl], kind, eps)
    return cls, pt, phit, clip_t, ps, phis, clip_s, kl, top_t, top_s, pmax_t, pmax_s


def _bootstrap_counts(n: int, resamples: int, rng: np.random.Generator):
    """Yield blocks of multinomial resample counts, ``(c, n)`` int64 with rows summing to ``n``.

    Each block draws ``c · n ≤ max(n, 2**20)`` indices uniformly from ``[0, n)`` and counts them.
    """
    per = max(1, _BOOT_BLOCK // n)
    done = 0
    while done < resamples:
        c = min(per, resamples - done)
        idx = rng.integers(0, n, size=(c, n))
        idx += (n * np.arange(c))[:, None]
        yield np.bincount(idx.ravel(), minlength=c * n).reshape(c, n)
        done += c


def _bootstrap_slopes(xc: np.ndarray, yc: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """OLS slopes of ``resamples`` bootstrap resamples of centred ``(xc, yc)``, from sufficient statistics."""
    n = xc.size
    design = np.stack([xc, yc, xc * xc, xc * yc])  # (4, n): rows contiguous, 4x faster products than (n, 4)
    out = []
    for counts in _bootstrap_counts(n, resamples, rng):
        sx, sy, sxx, sxy = design @ counts.T
        vx = sxx - sx * sx / n
        cov = sxy - sx * sy / n
        keep = vx > 1e-12 * np.maximum(sxx, np.finfo(float).tiny)
        out.append(cov[keep] / vx[keep])
    return np.concatenate(out) if out else np.empty(0)


def class_indices(
    y: ArrayLike, *, n: int, k: int, class_names: Sequence[str] | None = None, name: str = "y"
) -> np.ndarray:
    """Labels as class indices ``(n,)`` in ``[0, k)``.

    Accepted: integers (or whole floats) ``(n,)``; one-hot ``(n, k)`` (exactly one 1 per row);
    strings ``(n,)``. Strings map to columns by ``class_names`` (the name of each column, in
    order) when given; otherwise strings that are all integers are read as integers, and other
    strings map by their sorted order (``sorted(set(y))[j]`` → column ``j``), which requires
    exactly ``k`` distinct strings.

    Args:
      y: the labels.
      n: number of points.
      k: number of classes.
      class_names: names of the ``k`` columns, for string labels.
      name: the name used in error messages.

    Returns:
      int64 class indices, ``(n,)``.

    Raises:
      ValueError: labels that do not map to the ``k`` classes, naming ``name``.
    """
    try:
        arr = np.asarray(y)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: expected {n} labels; rows of different lengths? ({exc})") from exc
    if arr.dtype.kind in "US" or (arr.dtype == object and arr.size and all(isinstance(v, str) for v in arr.flat)):
        return _string_labels(arr.astype(str), n, k, class_names, name)
    if class_names is not None:
        raise ValueError(f"class_names is for string labels; {name} holds {arr.dtype} values")
    if arr.ndim == 2:
        if arr.shape != (n, k):
            raise ValueError(f"{name}: one-hot labels must have shape {(n, k)} (points x classes), got {arr.shape}")
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
        ok = np.all((arr == 0) | (arr == 1), axis=1) & (np.count_nonzero(arr, axis=1) == 1)
        if not ok.all():
            i = int(np.argmin(ok))
            raise ValueError(f"{name}: (n, k) labels must be one-hot; row {i} is {arr[i].tolist()[:8]}")
        return arr.argmax(axis=1).astype(np.int64)
    return _integer_labels(arr, n, k, name)


def _integer_labels(y: ArrayLike, n: int, k: int, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per point, shape ({n},)), got shape {arr.shape}")
    if arr.dtype == object or arr.dtype == bool or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name}: class labels must be whole numbers in [0, {k - 1}]")
    if arr.min() < 0 or arr.max() >= k:
        raise ValueError(f"{name}: class labels must lie in [0, {k - 1}], got range [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def _string_labels(arr: np.ndarray, n: int, k: int, class_names: Sequence[str] | None, name: str) -> np.ndarray:
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} labels (one per point, shape ({n},)), got shape {arr.shape}")
    if class_names is not None:
        names = [str(c) for c in class_names]
        if len(names) != k or len(set(names)) != k:
            raise ValueError(f"class_names: expected {k} distinct names (one per column), got {len(names)}")
        lookup = {c: j for j, c in enumerate(names)}
        unknown = sorted(set(arr.tolist()) - lookup.keys())
        if unknown:
            raise ValueError(f"{name}: labels {unknown[:5]} are not among the class names {names[:10]}")
        return np.array([lookup[v] for v in arr.tolist()], dtype=np.int64)
    try:
        as_int = np.array([int(v) for v in arr.tolist()], dtype=np.int64)
    except ValueError:
        as_int = None
    if as_int is not None:
        return _integer_labels(as_int, n, k, name)
    distinct, idx = np.unique(arr, return_inverse=True)
    if distinct.size != k:
        raise ValueError(
            f"{name}: {distinct.size} distinct string labels for {k} classes; cannot tell which column is which: "
            "give the class names in column order (class_names, --classes)"
        )
    return idx.astype(np.int64).reshape(n)


def _count(x: object, name: str, *, minimum: int) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {x!r}")
    if x < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {x}")
    return int(x)


def _real(x: object, name: str, *, minimum: float) -> float:
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not np.isfinite(float(x)) or x < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {x!r}")
    return float(x)


def _open_interval(x: object, name: str, low: float, high: float, *, closed_high: bool = False) -> float:
    bad = isinstance(x, bool) or not isinstance(x, numbers.Real) or not np.isfinite(float(x))
    if bad or not (low < x < high or (closed_high and x == high)):
        rng = f"({low:g}, {high:g}{']' if closed_high else ')'}"
        raise ValueError(f"{name} must lie in {rng}, got {x!r}")
    return float(x)
