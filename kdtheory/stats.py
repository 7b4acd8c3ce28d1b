r"""Statistics for paired experiments over seeds: intervals, a ratio of means, a three-outcome rule.

The design is the one of docs/theory.md §8. For each seed ``s`` a treatment (the distilled student)
and its paired control (the one-hot twin from the same initialization, same budget, same data
order) are measured; the per-seed effect is ``d_s = metric(treatment_s) − metric(control_s)``.
Over the seeds:

* :func:`t_interval` — the Student-t interval ``d̄ ± t_{1−α/2, S−1} · sd(d)/√S``;
* :func:`bootstrap_interval` — the percentile bootstrap over seeds: resample the ``S`` seeds with
  replacement (≥ 10,000 resamples, vectorised), take the ``α/2`` and ``1 − α/2`` quantiles of the
  resampled means. With few seeds it is too narrow (measured coverage of a nominal 95% interval:
  ≈ 91% at S = 10 for normal effects, tests/test_stats.py); prefer the t interval for a mean and
  keep the bootstrap for statistics without a t interval, such as a ratio;
* :func:`ratio_interval` — a ratio of means ``Σ a_s / Σ b_s`` (O2's recovered share: the late
  switch's paired gain over distillation's paired gain) with Fieller's interval (default) or a
  paired percentile bootstrap over seeds; it is *undefined* (inconclusive) when the interval of
  the denominator's mean contains 0;
* :func:`decide` — the three-outcome rule. A claim states a side (``"greater"`` or ``"less"``) of a
  threshold fixed before the run. *Supported*: the whole interval lies strictly on the claim's
  side; *not supported*: the whole interval lies strictly on the other side (evidence against
  the claim); *inconclusive*: the interval contains or touches the threshold. Every outcome
  comes with a reason that quotes the numbers;
* :func:`all_hold` — the verdict of a claim whose parts must all hold (the intersection–union
  rule): supported when every part is, not supported when one part is not.

Degenerate and extreme inputs (issue 19 row 7):

* **Zero variance across seeds** (every per-seed effect equal, up to rounding: spread ≤ ``16 ε
  · max |d_s|``): the interval collapses to a point. That is not evidence — the seeds did not vary
  the outcome, so nothing measures its uncertainty (a seed that changes neither the data nor
  the initialization, or a metric that saturates). The interval functions return the point with
  ``degenerate=True`` and say so in ``method``; :func:`decide` with ``degenerate=True``,
  :func:`paired_effect` and :func:`ratio_effect` give **inconclusive** with the reason "zero
  variance across seeds". A ratio is degenerate when ``a_s − ρ̂ b_s`` has no spread.
* **Effects near the float64 maximum**: the intervals are computed on the values scaled by a
  power of two (exact), so sums of squares and means do not overflow; an interval end that is
  itself beyond the float64 range is refused with a ``ValueError`` naming the argument (never an
  ``inf``/``nan`` end). So is a per-seed difference ``treatment − control`` that overflows.

:class:`Effect` is the record of one decided effect, as written to ``results.json``.

This module imports numpy and scipy only.

References:
  Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13 (percentile interval);
  Hesterberg (2015), *What teachers should know about the bootstrap* (narrowness at small n).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _sps

from kdtheory._checks import as_float_array

__all__ = [
    "Interval",
    "RatioInterval",
    "Rule",
    "Decision",
    "Effect",
    "paired_differences",
    "t_interval",
    "bootstrap_interval",
    "ratio_interval",
    "decide",
    "all_hold",
    "paired_effect",
    "ratio_effect",
]

Side = Literal["greater", "less"]
Outcome = Literal["supported", "not supported", "inconclusive"]

#: the default number of bootstrap resamples (the issue asks for at least 10,000).
RESAMPLES = 10_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided interval.

    Attributes:
      estimate: the point estimate (the mean over seeds).
      low: lower end.
      high: upper end.
      level: the confidence level, e.g. 0.95.
      seeds: the number of seeds ``S``.
      method: how the interval was computed, in words.
      degenerate: every seed gave the same value (up to rounding): the interval is the point
        ``[estimate, estimate]`` and measures no uncertainty (see the module docstring).
    """

    estimate: float
    low: float
    high: float
    level: float
    seeds: int
    method: str
    degenerate: bool = False


@dataclass(frozen=True)
class RatioInterval:
    """A ratio of means with its bootstrap interval and the interval of its denominator.

    Attributes:
      estimate: ``mean(a)/mean(b)`` (``nan`` when ``mean(b) = 0``).
      low, high: percentile bootstrap interval of the ratio (meaningful only when ``defined``).
      denominator: the bootstrap :class:`Interval` of ``mean(b)`` from the same resamples.
      defined: ``False`` when the denominator's interval contains (or touches) 0: the ratio is
        then not estimable and any rule on it is inconclusive.
      level: the confidence level.
      seeds: the number of seeds.
      method: how the interval was computed, in words.
      degenerate: ``a_s − ρ̂ b_s`` is the same (zero, up to rounding) for every seed: the
        per-seed ratios agree and the interval is a point that measures no uncertainty.
    """

    estimate: float
    low: float
    high: float
    denominator: Interval
    defined: bool
    level: float
    seeds: int
    method: str
    degenerate: bool = False


@dataclass(frozen=True)
class Rule:
    """A decision rule fixed before the run: the claim is ``effect > threshold`` or ``< threshold``.

    Attributes:
      threshold: the value the interval is compared with (e.g. 0 for "a positive paired gain").
      side: ``"greater"`` (the claim is that the effect exceeds the threshold) or ``"less"``.
      level: the confidence level of the interval the rule reads (default 0.95).
    """

    threshold: float
    side: Side = "greater"
    level: float = 0.95

    def __post_init__(self) -> None:
        if self.side not in ("greater", "less"):
            raise ValueError(f"side must be 'greater' or 'less', got {self.side!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold!r}")
        _level(self.level)

    def __str__(self) -> str:
        rel = ">" if self.side == "greater" else "<"
        other = "<" if self.side == "greater" else ">"
        pct = f"{100 * self.level:g}%"
        return (
            f"supported if the {pct} interval lies {rel} {self.threshold:g}; not supported if it lies "
            f"{other} {self.threshold:g}; inconclusive otherwise"
        )


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide` and why.

    Attributes:
      verdict: ``"supported"``, ``"not supported"`` or ``"inconclusive"``.
      reason: one sentence quoting the interval, the threshold and the side.
    """

    verdict: Outcome
    reason: str


@dataclass(frozen=True)
class Effect:
    """One decided effect of a claim, the record written to ``results.json``.

    Attributes:
      name: what is measured, in words (e.g. ``"digits: test accuracy, student − one-hot twin"``).
      estimate: the point estimate.
      ci_low: lower end of the interval (``None`` when no interval exists).
      ci_high: upper end of the interval (``None`` when no interval exists).
      seeds: the number of seeds the estimate and interval are computed over.
      control: the paired control arm (or the fixed reference when there is none), in words.
      rule: the decision rule, in words (``str(Rule)``).
      interval: how the interval was computed, in words.
      verdict: the rule's outcome.
      reason: why, quoting the numbers.
      extra: further JSON-ready values (e.g. per-seed effects), written after the fixed keys.
    """

    name: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    seeds: int
    control: str
    rule: str
    interval: str = ""
    verdict: Outcome = "inconclusive"
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    #: the keys every effect in results.json has, in this order.
    KEYS = ("name", "estimate", "ci_low", "ci_high", "seeds", "control", "rule")

    def to_json(self) -> dict[str, Any]:
        """The effect as a strict-JSON dict.

        Returns:
          A dict with exactly the keys ``name, estimate, ci_low, ci_high, seeds, control, rule``
          followed by ``interval, verdict, reason`` and the keys of ``extra``; non-finite floats
          become ``None`` (strict JSON has no NaN or infinity), numpy values Python values.

        Raises:
          ValueError: when a key of ``extra`` collides with a fixed key.
        """
        out: dict[str, Any] = {k: _plain(getattr(self, k)) for k in self.KEYS}
        out.update(interval=self.interval, verdict=self.verdict, reason=self.reason)
        for k, v in self.extra.items():
            if k in out:
                raise ValueError(f"extra key {k!r} collides with a fixed key of Effect")
            out[k] = _plain(v)
        return out


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _level(level: float) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    return float(level)


def _seed_values(x: ArrayLike, name: str) -> np.ndarray:
    arr = as_float_array(x, name, ndim=(1,))
    if arr.size < 2:
        raise ValueError(f"{name} needs at least 2 seeds for an interval, got {arr.size}")
    return arr


#: relative spread (in units of ε · max |value|) at or below which per-seed values count as equal.
_TIES = 16


def _pow2_scale(x: np.ndarray) -> float:
    """A power of two near ``max |x|`` (1 for all zeros): dividing by it is exact and keeps sums finite."""
    top = float(np.max(np.abs(x)))
    if top == 0:
        return 1.0
    return math.ldexp(1.0, math.frexp(top)[1] - 1)  # max |x| / scale in [1, 2)


def _no_spread(x: np.ndarray) -> bool:
    """Whether the values ``x`` are all equal up to rounding."""
    top = float(np.max(np.abs(x)))
    with np.errstate(over="ignore"):
        spread = float(np.max(x) - np.min(x))
    return bool(spread <= _TIES * np.finfo(float).eps * top)


def _finite_ends(low: float, high: float, name: str) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(
            f"{name}: an end of the interval lies beyond the float64 range ({low:g}, {high:g}); "
            "express the values in a larger unit"
        )


def _resamples(resamples: int) -> int:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 1000:
        raise ValueError(f"resamples must be an integer >= 1000, got {resamples!r}")
    return int(resamples)


def paired_differences(treatment: ArrayLike, control: ArrayLike) -> np.ndarray:
    """Per-seed paired effects ``d_s = treatment_s − control_s``.

    Args:
      treatment: the metric of the treatment arm per seed, shape ``(S,)``.
      control: the metric of the paired control arm per seed, shape ``(S,)`` (same seed order).

    Returns:
      ``(S,)`` float64 differences.

    Raises:
      ValueError: non-finite values, not 1-D, different lengths, or a difference beyond the
        float64 range.
    """
    a = as_float_array(treatment, "treatment", ndim=(1,))
    b = as_float_array(control, "control", ndim=(1,))
    if a.shape != b.shape:
        raise ValueError(f"treatment and control must pair up seed by seed, got {a.size} and {b.size} values")
    with np.errstate(over="ignore"):
        d: np.ndarray = a - b
    if not np.all(np.isfinite(d)):
        s = int(np.flatnonzero(~np.isfinite(d))[0])
        raise ValueError(
            f"treatment − control overflows float64 at seed {s} ({a[s]:g} − {b[s]:g}); "
            "express the metric in a larger unit"
        )
    return d


def t_interval(effects: ArrayLike, *, level: float = 0.95) -> Interval:
    r"""Student-t interval of the mean of per-seed effects.

    ``d̄ ± t_{(1+level)/2, S−1} · s/√S`` with ``s`` the sample standard deviation (``ddof=1``),
    computed on the effects scaled by a power of two (exact; no overflow near the float64
    maximum). Exact coverage for normal effects. All seeds equal (up to rounding) gives the point
    interval flagged ``degenerate`` (no uncertainty is measured; see the module docstring).

    Args:
      effects: per-seed effects, shape ``(S,)``, ``S ≥ 2``.
      level: confidence level in ``(0, 1)``.

    Returns:
      :class:`Interval`.

    Raises:
      ValueError: fewer than 2 seeds, non-finite effects, ``level`` outside ``(0, 1)``, or an
        interval end beyond the float64 range.
    """
    d = _seed_values(effects, "effects")
    lv = _level(level)
    S = d.size
    scale = _pow2_scale(d)
    u = d / scale
    mu = float(u.mean())
    half = float(_sps.t.ppf(0.5 + lv / 2, S - 1) * u.std(ddof=1) / math.sqrt(S))
    with np.errstate(over="ignore"):
        m, low, high = mu * scale, (mu - half) * scale, (mu + half) * scale
    _finite_ends(low, high, "effects")
    flat = _no_spread(d)
    if flat:
        low = high = m
    method = f"Student t over {S} seeds ({100 * lv:g}%)" + ("; zero variance across seeds: a point" if flat else "")
    return Interval(m, low, high, lv, S, method, flat)


def _boot_index(S: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, S, size=(resamples, S))


def bootstrap_interval(
    effects: ArrayLike, *, level: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> Interval:
    r"""Percentile bootstrap interval of the mean of per-seed effects.

    Resample the ``S`` seeds with replacement ``resamples`` times (one ``(resamples, S)`` index
    array, vectorised), and take the ``(1 − level)/2`` and ``(1 + level)/2`` quantiles of the
    resampled means (numpy's linear interpolation). Deterministic given ``seed``. Means are
    taken of the effects scaled by a power of two (no overflow); all seeds equal gives the point
    flagged ``degenerate``.

    Args:
      effects: per-seed effects, shape ``(S,)``, ``S ≥ 2``.
      level: confidence level in ``(0, 1)``.
      resamples: number of bootstrap resamples, ≥ 1000 (default 10,000).
      seed: seed of the resampling.

    Returns:
      :class:`Interval` whose estimate is the plain mean.

    Raises:
      ValueError: fewer than 2 seeds, non-finite effects, bad ``level`` or ``resamples``.
    """
    d = _seed_values(effects, "effects")
    lv = _level(level)
    R = _resamples(resamples)
    scale = _pow2_scale(d)
    u = d / scale
    means = u[_boot_index(d.size, R, seed)].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - lv) / 2, (1 + lv) / 2])
    m = float(u.mean()) * scale
    lo, hi = float(lo) * scale, float(hi) * scale
    flat = _no_spread(d)
    if flat:
        lo = hi = m
    method = f"percentile bootstrap over {d.size} seeds, {R} resamples ({100 * lv:g}%)"
    return Interval(m, lo, hi, lv, d.size, method + ("; zero variance across seeds: a point" if flat else ""), flat)


def ratio_interval(
    numerator: ArrayLike,
    denominator: ArrayLike,
    *,
    method: Literal["fieller", "bootstrap"] = "fieller",
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> RatioInterval:
    r"""Ratio of means ``ρ = mean(a)/mean(b)`` of paired per-seed values, with an interval.

    ``method="fieller"`` (default): Fieller's interval, the set of ρ for which the one-sample
    t-test of ``a_s − ρ b_s`` does not reject at ``1 − level``. With means ``ā, b̄``, the
    covariances of the means ``v₁₁, v₁₂, v₂₂`` (sample covariances over ``S``), ``t`` the
    ``(1 + level)/2`` quantile of t with ``S − 1`` degrees of freedom and ``g = t² v₂₂ / b̄²``:

        ρ ∈ [ρ̂ − g v₁₂/v₂₂ ± (t/|b̄|) √(v₁₁ − 2ρ̂ v₁₂ + ρ̂² v₂₂ − g (v₁₁ − v₁₂²/v₂₂))] / (1 − g).

    It is a bounded interval iff ``g < 1``, i.e. iff the t interval of ``mean(b)`` excludes 0;
    otherwise the ratio is not estimable (``defined=False``, ends NaN). Exact coverage for normal
    pairs (Fieller 1954).

    ``method="bootstrap"``: each resample draws ``S`` seed indices with replacement and uses them
    for both ``a`` and ``b`` (pairs stay together); the interval is the ``(1 ∓ level)/2`` order
    statistics of the resampled ``Σ a_I / Σ b_I`` (``Σ b_I = 0`` maps to ±∞ by the sign of
    ``Σ a_I``, no interpolation, so no NaN); ``defined`` iff the percentile interval of
    ``mean(b)`` from the same resamples excludes 0. Too narrow with few seeds (module docstring).

    Used for O2's recovered share: ``a_s`` = late switch − one-hot twin, ``b_s`` = full
    distillation − one-hot twin (paired gains per seed).

    Both are computed on ``a`` and ``b`` scaled by powers of two (exact; no overflow), the ratio
    scaled back; a ratio or an interval end beyond the float64 range is refused. When the
    per-seed ratios agree (``a_s − ρ̂ b_s`` has no spread) the interval is the point, flagged
    ``degenerate``.

    Args:
      numerator: per-seed ``a_s``, shape ``(S,)``.
      denominator: per-seed ``b_s``, shape ``(S,)``.
      method: ``"fieller"`` or ``"bootstrap"``.
      level: confidence level in ``(0, 1)``.
      resamples: number of bootstrap resamples, ≥ 1000 (bootstrap only).
      seed: seed of the resampling (bootstrap only).

    Returns:
      :class:`RatioInterval`.

    Raises:
      ValueError: fewer than 2 seeds, lengths that differ, non-finite values, bad ``method``,
        ``level`` or ``resamples``, or a ratio or interval end beyond the float64 range.

    References:
      Fieller (1954), *Some problems in interval estimation*, JRSS B 16:175–185.
    """
    a0 = _seed_values(numerator, "numerator")
    b0 = _seed_values(denominator, "denominator")
    if a0.shape != b0.shape:
        raise ValueError(f"numerator and denominator must pair up seed by seed, got {a0.size} and {b0.size}")
    if method not in ("fieller", "bootstrap"):
        raise ValueError(f"method must be 'fieller' or 'bootstrap', got {method!r}")
    lv = _level(level)
    sa, sb = _pow2_scale(a0), _pow2_scale(b0)
    a, b = a0 / sa, b0 / sb  # the ratio of the scaled means is rho · sb / sa
    back = sa / sb
    ri = _ratio_scaled(a, b, method, lv, resamples, seed)
    d = ri.denominator
    den = Interval(d.estimate * sb, d.low * sb, d.high * sb, d.level, d.seeds, d.method, d.degenerate)
    with np.errstate(over="ignore"):
        est, lo, hi = ri.estimate * back, ri.low * back, ri.high * back
    if math.isinf(est) or (ri.defined and method == "fieller" and not (math.isfinite(lo) and math.isfinite(hi))):
        raise ValueError(
            f"numerator/denominator: the ratio ({ri.estimate:g} × {back:g}) or an end of its interval lies beyond "
            "the float64 range; express the values in comparable units"
        )
    flat = bool(ri.defined and _no_spread(a - ri.estimate * b))
    if flat:
        lo = hi = est
    method_text = ri.method + ("; the per-seed ratios agree: a point" if flat else "")
    return RatioInterval(est, lo, hi, den, ri.defined, lv, ri.seeds, method_text, flat)


def _ratio_scaled(a: np.ndarray, b: np.ndarray, method: str, lv: float, resamples: int, seed: int) -> RatioInterval:
    """:func:`ratio_interval` on values of order 1 (the caller scales them)."""
    S = a.size
    bm = float(b.mean())
    est = float(a.mean() / bm) if bm != 0 else math.nan
    if method == "fieller":
        den = t_interval(b, level=lv)
        C = np.cov(np.stack([a, b]), ddof=1) / S
        v11, v12, v22 = float(C[0, 0]), float(C[0, 1]), float(C[1, 1])
        t = float(_sps.t.ppf(0.5 + lv / 2, S - 1))
        defined = bool(den.low > 0 or den.high < 0)
        lo = hi = math.nan
        if defined:
            g = t * t * v22 / (bm * bm)
            shift = g * v12 / v22 if v22 > 0 else 0.0
            cond = v11 - v12 * v12 / v22 if v22 > 0 else v11
            disc = max(v11 - 2 * est * v12 + est * est * v22 - g * cond, 0.0)
            half = t / abs(bm) * math.sqrt(disc)
            lo, hi = (est - shift - half) / (1 - g), (est - shift + half) / (1 - g)
        desc = f"Fieller interval of a ratio of paired means over {S} seeds ({100 * lv:g}%)"
        return RatioInterval(est, lo, hi, den, defined, lv, S, desc)
    R = _resamples(resamples)
    idx = _boot_index(S, R, seed)
    sa, sb = a[idx].sum(axis=1), b[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(sb != 0, sa / np.where(sb != 0, sb, 1.0), np.where(sa < 0, -np.inf, np.inf))
    lo, hi = np.quantile(r, [(1 - lv) / 2, (1 + lv) / 2], method="inverted_cdf")
    blo, bhi = np.quantile(sb / S, [(1 - lv) / 2, (1 + lv) / 2])
    den = Interval(bm, float(blo), float(bhi), lv, S, "percentile bootstrap of the denominator's mean")
    defined = bool(blo > 0 or bhi < 0)
    desc = f"paired percentile bootstrap of a ratio of means over {S} seeds, {R} resamples ({100 * lv:g}%)"
    return RatioInterval(est, float(lo), float(hi), den, defined, lv, S, desc)


def decide(low: float, high: float, rule: Rule, *, what: str = "the interval", degenerate: bool = False) -> Decision:
    r"""The three-outcome rule on an interval ``[low, high]`` and a rule fixed in advance.

    For ``side="greater"`` and threshold ``c``: *supported* if ``low > c``; *not supported* if
    ``high < c``; *inconclusive* otherwise (the interval contains or touches ``c``). ``"less"``
    mirrors it. A NaN end (an undefined interval) is inconclusive, and so is a degenerate
    interval (zero variance across seeds: pass ``degenerate=interval.degenerate``).

    Args:
      low: lower end of the interval.
      high: upper end (``high ≥ low``).
      rule: the :class:`Rule`.
      what: how the reason names the interval.
      degenerate: the interval is a point because every seed gave the same value
        (:attr:`Interval.degenerate`): inconclusive, whatever its position.

    Returns:
      :class:`Decision` with the verdict and a reason quoting the numbers.

    Raises:
      ValueError: ``low > high``.

    Examples:
      >>> decide(0.01, 0.03, Rule(0.0)).verdict
      'supported'
      >>> decide(-0.01, 0.03, Rule(0.0)).verdict
      'inconclusive'
      >>> decide(-0.03, -0.01, Rule(0.0)).verdict
      'not supported'
    """
    lo, hi = float(low), float(high)
    if lo > hi:
        raise ValueError(f"low must not exceed high, got [{lo:g}, {hi:g}]")
    c = rule.threshold
    span = f"{what} [{lo:.4g}, {hi:.4g}]"
    if math.isnan(lo) or math.isnan(hi):
        return Decision("inconclusive", f"{what} is undefined")
    if degenerate:
        return Decision(
            "inconclusive",
            f"zero variance across seeds: {span} is a point, not an interval (the seeds did not vary the outcome); "
            "no verdict",
        )
    above, below = lo > c, hi < c
    claim_side, other = (above, below) if rule.side == "greater" else (below, above)
    rel = ">" if rule.side == "greater" else "<"
    if claim_side:
        return Decision("supported", f"{span} lies entirely on the claim's side ({rel} {c:g})")
    if other:
        return Decision("not supported", f"{span} lies entirely on the other side of {c:g}: evidence against the claim")
    return Decision("inconclusive", f"{span} contains {c:g}")


def all_hold(verdicts: Iterable[Outcome]) -> Outcome:
    """The verdict of a claim made of parts that must all hold (the intersection–union rule).

    *Supported* when there is a part and every part is supported; *not supported* when some part
    is not supported; *inconclusive* otherwise (some part inconclusive and none refuted, or no
    parts at all). Each part keeps its own level: the claim is decided at that level, no
    multiplicity correction is needed.

    Args:
      verdicts: the parts' verdicts (each ``"supported"``, ``"not supported"`` or ``"inconclusive"``).

    Returns:
      The claim's verdict.

    Examples:
      >>> all_hold(["supported", "supported"]), all_hold(["supported", "inconclusive"])
      ('supported', 'inconclusive')
      >>> all_hold(["inconclusive", "not supported"]), all_hold([])
      ('not supported', 'inconclusive')
    """
    parts = list(verdicts)
    if parts and all(v == "supported" for v in parts):
        return "supported"
    return "not supported" if "not supported" in parts else "inconclusive"


def paired_effect(
    name: str,
    treatment: ArrayLike,
    control_values: ArrayLike,
    *,
    control: str,
    rule: Rule,
    method: Literal["t", "bootstrap"] = "t",
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Effect:
    """Decide a paired effect: per-seed differences, their interval, the rule, one :class:`Effect`.

    Args:
      name: what is measured, in words.
      treatment: the treatment arm's metric per seed, ``(S,)``.
      control_values: the paired control arm's metric per seed, ``(S,)``.
      control: the control arm, in words (e.g. ``"one-hot twin, same init and budget"``).
      rule: the :class:`Rule` fixed before the run (its level sets the interval's level).
      method: ``"t"`` (:func:`t_interval`) or ``"bootstrap"`` (:func:`bootstrap_interval`).
      resamples: bootstrap resamples.
      seed: bootstrap seed.

    Returns:
      The :class:`Effect`, with the per-seed differences in ``extra["per_seed"]``.

    Raises:
      ValueError: as :func:`paired_differences` and the interval functions; an unknown method.

    Examples:
      >>> e = paired_effect("acc", [0.80, 0.82, 0.79], [0.70, 0.71, 0.70], control="twin", rule=Rule(0.0))
      >>> round(e.estimate, 4), e.verdict
      (0.1, 'supported')
    """
    d = paired_differences(treatment, control_values)
    if method == "t":
        iv = t_interval(d, level=rule.level)
    elif method == "bootstrap":
        iv = bootstrap_interval(d, level=rule.level, resamples=resamples, seed=seed)
    else:
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
    dec = decide(iv.low, iv.high, rule, degenerate=iv.degenerate)
    return Effect(
        name, iv.estimate, iv.low, iv.high, iv.seeds, control, str(rule), iv.method, dec.verdict, dec.reason,
        {"per_seed": d.tolist()},
    )  # fmt: skip


def ratio_effect(
    name: str,
    numerator: ArrayLike,
    denominator: ArrayLike,
    *,
    control: str,
    rule: Rule,
    method: Literal["fieller", "bootstrap"] = "fieller",
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> Effect:
    """Decide a ratio of paired gains (O2's recovered share) with :func:`ratio_interval`.

    Inconclusive, whatever the ratio's interval, when the denominator's interval contains 0.

    Args:
      name: what is measured, in words.
      numerator: per-seed numerator gains, ``(S,)``.
      denominator: per-seed denominator gains, ``(S,)``.
      control: the control arm, in words.
      rule: the :class:`Rule`.
      method: ``"fieller"`` or ``"bootstrap"`` (:func:`ratio_interval`).
      resamples: bootstrap resamples.
      seed: bootstrap seed.

    Returns:
      The :class:`Effect`; ``extra`` holds the denominator's estimate and interval.
    """
    ri = ratio_interval(numerator, denominator, method=method, level=rule.level, resamples=resamples, seed=seed)
    d = ri.denominator
    extra = {"denominator": d.estimate, "denominator_ci": [d.low, d.high]}
    if not ri.defined:
        dec = Decision(
            "inconclusive",
            f"the denominator's interval [{d.low:.4g}, {d.high:.4g}] contains 0: the ratio is not estimable",
        )
        return Effect(
            name, ri.estimate, None, None, ri.seeds, control, str(rule), ri.method, dec.verdict, dec.reason, extra
        )
    dec = decide(ri.low, ri.high, rule, degenerate=ri.degenerate)
    return Effect(
        name, ri.estimate, ri.low, ri.high, ri.seeds, control, str(rule), ri.method, dec.verdict, dec.reason, extra
    )
