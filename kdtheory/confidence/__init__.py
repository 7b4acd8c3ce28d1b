r"""Confidence deviations between a teacher and a student, on any predictions (claim O1).

For each point ``i`` take a reference class ``c_i`` — the teacher's top-1 class (default), the
true label, or a control's top-1 — and the probability each model gives it. The *logit
confidence* of a model is

.. math:: φ = \log\frac{p_c}{1 - p_c} = z_c - \operatorname{logsumexp}_{j \ne c} z_j ,

computed from logits ``z`` in that second form (finite whenever the logits are, even where
``p_c`` rounds to 1 in float32), or from probabilities as ``log p_c − log Σ_{j≠c} p_j`` — which is
infinite where a probability is exactly 0 or 1, so such points are clipped to ``[ε, ·]`` and
*counted*; above :data:`MAX_CLIPPED_SHARE` of the points the analysis refuses unless told
``accept_clipping=True``. The deviation of the student is ``Δφ = φ_student − φ_teacher``.

Measured (Nagarajan et al. 2023, *On student-teacher deviations in distillation*, §3–4;
Stanton et al. 2021 for fidelity; docs/theory.md §1, §7, §11):

* the least-squares slope of ``φ_student`` on ``φ_teacher`` with a bootstrap percentile interval
  (slope > 1: the student *exaggerates* the teacher's confidence levels), and a robust
  Theil–Sen slope with its interval;
* binned curves: mean ``φ_teacher``, ``φ_student`` and ``Δφ`` per teacher-confidence quantile bin;
* *low-confidence underfitting*: among the fraction ``q`` of points the teacher is least
  confident about, the share with ``Δφ < −tol``; *high-confidence overfitting*: among the top
  ``q``, the share with ``Δφ > tol``; counts of ``Δφ > tol``, ``Δφ < −tol`` over all points;
* fidelity: top-1 agreement, ``KL(teacher ‖ student)`` (mean over points, nats; ``+∞`` where
  the student gives probability exactly 0 to a class the teacher supports) and the expected
  calibration error (10 equal-width bins) of each model against the labels;
* with a **control** (a replica of the teacher's recipe from another initialization), the O1
  effects of :mod:`kdtheory.deviation`, and over several seeds (:func:`analyze_seeds`) O1 decided
  with paired intervals. Without one, student-vs-teacher differences are not corrected for
  regression to the mean, and the results say so.

Modules, one job each: :mod:`~kdtheory.confidence.inputs` (checks, labels, sources read in row
blocks), :mod:`~kdtheory.confidence.streaming` (the per-point pass), :mod:`~kdtheory.confidence.analyses`
(slopes, bins, tails, fidelity), :mod:`~kdtheory.confidence.report` (:func:`analyze`,
:func:`analyze_seeds` and their records).

Memory: O(n) — the predictions, in memory or in ``.npy`` files, are read one row block at a time
(a block is about 1 MB of float32), and the bootstrap reduces each resample to sufficient
statistics. This package imports numpy and scipy only; figures live in
:mod:`kdtheory.confidence_figure`, the command in :mod:`kdtheory.cli`.
"""

from kdtheory.confidence.analyses import (
    Bins,
    Fidelity,
    SlopeAnalysis,
    Tails,
    binned,
    confidence_groups,
    expected_calibration_error,
    fidelity,
    least_squares_slope,
    slope_analysis,
    tail_shares,
)
from kdtheory.confidence.inputs import (
    KINDS,
    PredictionSource,
    class_indices,
    open_predictions,
    validate_predictions,
)
from kdtheory.confidence.report import (
    MAX_CLIPPED_SHARE,
    NOT_CORRECTED,
    ConfidenceReport,
    Options,
    SeedsReport,
    analyze,
    analyze_seeds,
)
from kdtheory.confidence.streaming import LogitConfidence, PointConfidences, logit_confidence, point_confidences

__all__ = [
    "KINDS",
    "MAX_CLIPPED_SHARE",
    "NOT_CORRECTED",
    "Bins",
    "ConfidenceReport",
    "Fidelity",
    "LogitConfidence",
    "Options",
    "PointConfidences",
    "PredictionSource",
    "SeedsReport",
    "SlopeAnalysis",
    "Tails",
    "analyze",
    "analyze_seeds",
    "binned",
    "class_indices",
    "confidence_groups",
    "expected_calibration_error",
    "fidelity",
    "least_squares_slope",
    "logit_confidence",
    "open_predictions",
    "point_confidences",
    "slope_analysis",
    "tail_shares",
    "validate_predictions",
]
