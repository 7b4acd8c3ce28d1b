r"""Confidence deviations between a teacher and a student, on any predictions (claim O1).

For each point, take a reference class ``c`` — the teacher's top-1 class (default) or the true
label — and the probability each model gives it. The *logit confidence*
``φ = log(p_c / (1 − p_c))`` is computed stably from logits as ``z_c − logsumexp_{j≠c} z_j``
(finite whenever the logits are, even when ``p_c`` rounds to 1 in float32), or from
probabilities as ``log p_c − log Σ_{j≠c} p_j`` after clipping to ``[ε, 1 − ε]``.

Measured (Nagarajan et al. 2023, §3–4; Stanton et al. 2021 for fidelity):

* the least-squares slope of ``φ_student`` on ``φ_teacher`` with a bootstrap confidence interval
  (slope > 1: the student *exaggerates* the teacher's confidence levels);
* binned curves: mean ``φ`` of both models per teacher-confidence quantile bin;
* *low-confidence underfitting*: among the fraction ``q`` of points the teacher is least
  confident about, the share where the student is even less confident; *high-confidence
  overfitting*: among the top ``q``, the share where the student is more confident;
* fidelity: top-1 agreement, ``KL(teacher ‖ student)`` (mean over points, nats) and the expected
  calibration error (10 equal-width bins) of each model against the labels.

This module imports numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import log_softmax, logsumexp

from kdtheory._checks import choice

__all__ = [
    "ConfidenceReport",
    "analyze",
    "compare_files",
    "expected_calibration_error",
    "load_array",
    "logit_confidence",
    "validate_predictions",
]


def validate_predictions(x: ArrayLike, name: str, *, logits: bool, sum_atol: float | None = None) -> np.ndarray:
    """Check a predictions array and return it as float64 ``(n, k)``; errors name ``name``.

    Logits: finite, 2-D, at least two classes. Probabilities: additionally non-negative, rows
    summing to one within ``sum_atol`` (default ``1e-6``, ``1e-4`` for float32/16 input).
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover
        raise ValueError(f"{name}: not an array ({exc})") from exc
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (points x classes), got shape {arr.shape}")
    if arr.shape[1] < 2:
        raise ValueError(f"{name}: fewer than two classes (shape {arr.shape})")
    if arr.shape[0] < 1:
        raise ValueError(f"{name}: no points")
    low_precision = np.issubdtype(arr.dtype, np.floating) and np.finfo(arr.dtype).bits < 64
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        kind = "NaN" if np.isnan(arr).any() else "inf"
        raise ValueError(f"{name}: contains {kind} (first at row {i})")
    if not logits:
        if (arr < 0).any():
            i = int(np.argwhere(arr < 0)[0][0])
            raise ValueError(f"{name}: negative probabilities (first at row {i}); pass --logits if these are logits")
        atol = sum_atol if sum_atol is not None else (1e-4 if low_precision else 1e-6)
        sums = arr.sum(axis=1)
        off = np.abs(sums - 1.0) > atol
        if off.any():
            i = int(np.argmax(off))
            raise ValueError(
                f"{name}: rows do not sum to one (row {i} sums to {sums[i]:.6g}; tolerance {atol:g}); "
                "pass --logits if these are logits"
            )
    return arr


def logit_confidence(
    x: np.ndarray, cls: np.ndarray, *, logits: bool, eps: float = 1e-12
) -> tuple[np.ndarray, np.ndarray, int]:
    r"""``(p_c, φ_c, n_clipped)`` for class ``cls[i]`` of each row.

    From logits: ``φ = z_c − logsumexp_{j≠c} z_j``, ``p = sigmoid(φ)`` — exact and finite.
    From probabilities: ``φ = log p_c − log Σ_{j≠c} p_j`` with both clipped to ``[ε, 1]``;
    ``n_clipped`` counts the rows where clipping changed the value (exact 0 or 1).
    """
    n = x.shape[0]
    rows = np.arange(n)
    if logits:
        zc = x[rows, cls]
        others = x.copy()
        others[rows, cls] = -np.inf
        phi = zc - logsumexp(others, axis=1)
        return _sigmoid(phi), phi, 0
    pc = x[rows, cls]
    others = x.copy()
    others[rows, cls] = 0.0
    rest = others.sum(axis=1)  # summed directly: no cancellation when p_c is close to 1
    clipped = int(np.count_nonzero((pc < eps) | (rest < eps)))
    phi = np.log(np.maximum(pc, eps)) - np.log(np.maximum(rest, eps))
    return pc, phi, clipped


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def _log_probs(x: np.ndarray, logits: bool, eps: float) -> np.ndarray:
    return log_softmax(x, axis=1) if logits else np.log(np.maximum(x, eps))


def expected_calibration_error(probs_max: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    r"""``Σ_b (n_b/n) |accuracy_b − confidence_b|`` over ``bins`` equal-width confidence bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(probs_max, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - probs_max[m].mean())
    return float(total)


@dataclass(frozen=True, eq=False)
class ConfidenceReport:
    r"""Per-point confidences and the summary statistics of :func:`analyze`.

    Attributes:
      reference: ``"teacher_top1"`` or ``"label"``; ``classes``: the reference class per point.
      teacher_prob, student_prob: probability of the reference class, ``(n,)``.
      teacher_logit, student_logit: logit confidences φ, ``(n,)``.
      slope, intercept: least squares ``φ_s ≈ slope φ_t + intercept`` (``None`` if all ``φ_t``
        are equal); ``slope_ci``: bootstrap percentile interval (``None`` likewise).
      quantile: the fraction ``q`` defining the low/high-confidence groups.
      low_underfit: share of the lowest-``q`` teacher-confidence points with ``φ_s < φ_t``.
      high_overfit: share of the highest-``q`` points with ``φ_s > φ_t``.
      bin_teacher, bin_student, bin_count: mean φ per teacher-confidence quantile bin.
      agreement: top-1 agreement; kl: mean ``KL(p_t ‖ p_s)`` in nats.
      ece_teacher, ece_student: calibration errors against the labels (``None`` without labels).
      clipped: rows whose probabilities were clipped (probability inputs only).
    """

    reference: str
    classes: np.ndarray
    teacher_prob: np.ndarray
    student_prob: np.ndarray
    teacher_logit: np.ndarray
    student_logit: np.ndarray
    slope: float | None
    intercept: float | None
    slope_ci: tuple[float, float] | None
    quantile: float
    low_underfit: float
    high_overfit: float
    bin_teacher: np.ndarray
    bin_student: np.ndarray
    bin_count: np.ndarray
    agreement: float
    kl: float
    ece_teacher: float | None = None
    ece_student: float | None = None
    clipped: int = 0

    def summary(self) -> dict[str, float | None]:
        """The scalar statistics, for tables and JSON."""
        return {
            "points": int(self.teacher_logit.size),
            "slope": self.slope,
            "slope_ci_low": None if self.slope_ci is None else self.slope_ci[0],
            "slope_ci_high": None if self.slope_ci is None else self.slope_ci[1],
            "low_confidence_underfit": self.low_underfit,
            "high_confidence_overfit": self.high_overfit,
            "agreement": self.agreement,
            "kl_teacher_student": self.kl,
            "ece_teacher": self.ece_teacher,
            "ece_student": self.ece_student,
            "mean_logit_teacher": float(self.teacher_logit.mean()),
            "mean_logit_student": float(self.student_logit.mean()),
        }

    def table(self) -> str:
        """A plain-text table of :meth:`summary`."""
        rows = []
        for k, v in self.summary().items():
            rows.append(f"{k:<26} {'—' if v is None else (f'{v:.4g}' if isinstance(v, float) else v)}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        s = "undefined" if self.slope is None else f"{self.slope:.3f}"
        return (
            f"ConfidenceReport(n={self.teacher_logit.size}, reference={self.reference}, slope={s}, "
            f"low-confidence underfit={self.low_underfit:.3f}, agreement={self.agreement:.3f})"
        )


def analyze(
    teacher: ArrayLike,
    student: ArrayLike,
    *,
    logits: bool = True,
    labels: ArrayLike | None = None,
    reference: Literal["teacher_top1", "label"] = "teacher_top1",
    quantile: float = 0.1,
    bins: int = 10,
    bootstrap: int = 1000,
    seed: int = 0,
    eps: float = 1e-12,
    names: tuple[str, str] = ("teacher", "student"),
) -> ConfidenceReport:
    r"""Compare teacher and student confidences on the same points.

    Args:
      teacher, student: logits (``logits=True``) or probabilities, shape ``(n, k)``.
      logits: whether the inputs are logits.
      labels: integer labels ``(n,)`` or one-hot ``(n, k)`` (needed for ``reference="label"`` and ECE).
      reference: the class whose confidence is compared: the teacher's top-1 or the true label.
      quantile: fraction q of lowest/highest teacher-confidence points for the two shares.
      bins: number of teacher-confidence quantile bins for the binned curves.
      bootstrap: bootstrap resamples for the slope interval (0 to skip).
      seed: bootstrap seed.
      eps: clipping level for probability inputs.
      names: names used in error messages (the CLI passes file names).

    Returns:
      A :class:`ConfidenceReport`.

    Raises:
      ValueError: malformed input, naming the offending array and the problem.
    """
    choice(reference, "reference", ("teacher_top1", "label"))
    t = validate_predictions(teacher, names[0], logits=logits)
    s = validate_predictions(student, names[1], logits=logits)
    if t.shape != s.shape:
        raise ValueError(f"{names[0]} has shape {t.shape} but {names[1]} has shape {s.shape}; they must match")
    if not 0 < quantile <= 0.5:
        raise ValueError(f"quantile must lie in (0, 0.5], got {quantile!r}")
    n, k = t.shape
    y = None if labels is None else _labels(labels, n, k)
    if reference == "label" and y is None:
        raise ValueError("reference='label' needs labels")
    cls = t.argmax(axis=1) if reference == "teacher_top1" else y
    pt, phit, ct = logit_confidence(t, cls, logits=logits, eps=eps)
    ps, phis, cs = logit_confidence(s, cls, logits=logits, eps=eps)

    slope = intercept = ci = None
    var = np.var(phit)
    if var > 0 and n >= 2:
        slope, intercept = _ols(phit, phis)
        if bootstrap:
            rng = np.random.default_rng(seed)
            idx = rng.integers(0, n, size=(bootstrap, n))
            xb, yb = phit[idx], phis[idx]
            xm, ym = xb.mean(axis=1, keepdims=True), yb.mean(axis=1, keepdims=True)
            vx = np.sum((xb - xm) ** 2, axis=1)
            sl = np.sum((xb - xm) * (yb - ym), axis=1)[vx > 0] / vx[vx > 0]
            ci = (float(np.percentile(sl, 2.5)), float(np.percentile(sl, 97.5))) if sl.size else None

    order = np.argsort(phit, kind="stable")
    m = max(1, int(round(quantile * n)))
    low, high = order[:m], order[-m:]
    low_underfit = float(np.mean(phis[low] < phit[low]))
    high_overfit = float(np.mean(phis[high] > phit[high]))
    groups = np.array_split(order, min(bins, n))
    bin_t = np.array([phit[g].mean() for g in groups])
    bin_s = np.array([phis[g].mean() for g in groups])
    bin_c = np.array([g.size for g in groups])

    lt, ls = _log_probs(t, logits, eps), _log_probs(s, logits, eps)
    p_t = np.exp(lt)
    kl = float(np.mean(np.sum(np.where(p_t > 0, p_t * (lt - ls), 0.0), axis=1)))
    agreement = float(np.mean(t.argmax(axis=1) == s.argmax(axis=1)))
    ece_t = ece_s = None
    if y is not None:
        p_s = np.exp(ls)
        ece_t = expected_calibration_error(p_t.max(axis=1), p_t.argmax(axis=1) == y)
        ece_s = expected_calibration_error(p_s.max(axis=1), p_s.argmax(axis=1) == y)
    return ConfidenceReport(
        reference=reference,
        classes=cls,
        teacher_prob=pt,
        student_prob=ps,
        teacher_logit=phit,
        student_logit=phis,
        slope=slope,
        intercept=intercept,
        slope_ci=ci,
        quantile=quantile,
        low_underfit=low_underfit,
        high_overfit=high_overfit,
        bin_teacher=bin_t,
        bin_student=bin_s,
        bin_count=bin_c,
        agreement=agreement,
        kl=max(kl, 0.0),
        ece_teacher=ece_t,
        ece_student=ece_s,
        clipped=ct + cs,
    )


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    xm, ym = x.mean(), y.mean()
    slope = float(np.sum((x - xm) * (y - ym)) / np.sum((x - xm) ** 2))
    return slope, float(ym - slope * xm)


def _labels(labels: ArrayLike, n: int, k: int, name: str = "labels") -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim == 2:
        if y.shape != (n, k):
            raise ValueError(f"{name}: one-hot labels must have shape {(n, k)}, got {y.shape}")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name}: contains NaN or inf")
        return y.argmax(axis=1)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name}: expected {n} integer labels, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"{name}: labels must be whole numbers")
        y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= k:
        raise ValueError(f"{name}: labels must lie in [0, {k - 1}], got range [{y.min()}, {y.max()}]")
    return y


def load_array(path: str) -> np.ndarray:
    """Load ``.npy``, or ``.npz`` (its only array, or ``FILE.npz:KEY``); errors name the file."""
    from pathlib import Path

    key = None
    if ".npz:" in path:
        path, key = path.rsplit(":", 1)
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{path}: no such file")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read as .npy/.npz ({type(exc).__name__}: {exc})") from exc
    if isinstance(data, np.ndarray):
        return data
    with data:
        keys = list(data.keys())
        if key is None:
            if len(keys) != 1:
                raise ValueError(f"{path}: holds arrays {keys}; choose one as {path}:KEY")
            key = keys[0]
        if key not in keys:
            raise ValueError(f"{path}: no array named {key!r} (has {keys})")
        return np.asarray(data[key])


def compare_files(
    teacher_path: str,
    student_path: str,
    *,
    labels_path: str | None = None,
    logits: bool = False,
    reference: Literal["teacher_top1", "label"] = "teacher_top1",
    out_dir: str | None = None,
) -> ConfidenceReport:
    """:func:`analyze` on arrays stored in files; writes ``confidence.png`` and ``summary.json``.

    Every error names the file it comes from and the problem.
    """
    import json
    from pathlib import Path

    t = load_array(teacher_path)
    s = load_array(student_path)
    labels = None
    if labels_path is not None:
        labels = load_array(labels_path)
        n = np.asarray(t).shape[0] if np.ndim(t) else 0
        k = np.asarray(t).shape[1] if np.ndim(t) == 2 else 0
        labels = _labels(labels, n, k, name=labels_path)
    report = analyze(t, s, logits=logits, labels=labels, reference=reference, names=(teacher_path, student_path))
    if out_dir is not None:
        from kdtheory import plotting
        from kdtheory._io import write_text_atomic

        out = Path(out_dir)
        plotting.confidence_figure({"predictions": report}, path=out / "confidence.png")
        payload = {"teacher": teacher_path, "student": student_path, "labels": labels_path, **report.summary()}
        write_text_atomic(out / "summary.json", json.dumps(payload, indent=2) + "\n")
    return report
