"""Issue 19 row 7: zero variance across seeds is no evidence; effects near the float64 maximum.

Three identical seeds used to give "supported" on a zero-width interval without a word; per-seed
effects near the float64 maximum gave interval ends inf/nan. Now: a degenerate interval is
flagged and decided inconclusive with the reason; extreme values are computed on exactly scaled
numbers, and an end beyond the float64 range is refused naming the argument.
"""

import math
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from kdtheory import stats as ks

BIG = sys.float_info.max


def test_three_identical_seeds_are_inconclusive_with_the_reason():
    rule = ks.Rule(0.0)
    # old: supported on [0.1, 0.1] without a word
    e = ks.paired_effect("acc", [0.8, 0.8, 0.8], [0.7, 0.7, 0.7], control="twin", rule=rule)
    assert e.verdict == "inconclusive" and "zero variance across seeds" in e.reason
    assert e.estimate == pytest.approx(0.1) and e.ci_low == e.ci_high == e.estimate
    assert "zero variance" in e.interval
    for f in (ks.t_interval, ks.bootstrap_interval):
        iv = f([0.25, 0.25, 0.25])
        assert iv.degenerate and iv.low == iv.high == 0.25
        assert ks.decide(iv.low, iv.high, rule, degenerate=iv.degenerate).verdict == "inconclusive"
    # equal up to rounding counts as equal: 0.1 + 0.2 and 0.3 differ in the last bit
    assert ks.t_interval([0.1 + 0.2, 0.3, 0.3]).degenerate
    # a genuine tiny spread is not degenerate, whatever the scale
    for scale in (1e-300, 1.0, 1e300):
        iv = ks.t_interval(np.array([1.0, 1.0 + 1e-9, 1.0 - 1e-9]) * scale)
        assert not iv.degenerate and iv.low < iv.estimate < iv.high
    assert ks.t_interval([0.0, 0.0, 0.0]).degenerate


def test_a_ratio_whose_per_seed_ratios_agree_is_inconclusive():
    b = np.array([4.0, 4.2, 4.4])
    for method in ("fieller", "bootstrap"):
        e = ks.ratio_effect("share", b / 2, b, control="twin", rule=ks.Rule(0.25), method=method)
        assert e.verdict == "inconclusive" and "zero variance across seeds" in e.reason, e
        assert e.estimate == pytest.approx(0.5)
        ri = ks.ratio_interval(b / 2 + [0, 0.1, 0], b, method=method)
        assert not ri.degenerate and ri.low < ri.estimate < ri.high


@pytest.mark.parametrize("scale", [1e-300, 1.0, 1e300, BIG / 4])
def test_scaled_effects_give_scaled_intervals_without_overflow(scale):
    x = np.array([0.3, -0.1, 0.5, 0.2, 0.9])
    ref = ks.t_interval(x)
    lo, hi = sps.ttest_1samp(x, 0.0).confidence_interval(confidence_level=0.95)
    assert ref.low == pytest.approx(lo, rel=1e-12) and ref.high == pytest.approx(hi, rel=1e-12)
    for f in (ks.t_interval, ks.bootstrap_interval):
        iv, base = f(x * scale), f(x)
        assert all(math.isfinite(v) for v in (iv.estimate, iv.low, iv.high))
        assert iv.low == pytest.approx(base.low * scale, rel=1e-12)
        assert iv.high == pytest.approx(base.high * scale, rel=1e-12)
    r = ks.ratio_interval(x + 2, (x + 3) * scale)
    r0 = ks.ratio_interval(x + 2, x + 3)
    assert r.estimate == pytest.approx(r0.estimate / scale, rel=1e-12)
    assert r.low == pytest.approx(r0.low / scale, rel=1e-12) and r.high == pytest.approx(r0.high / scale, rel=1e-12)


def test_effects_near_the_float64_maximum():
    # old: inf/nan interval ends
    near = np.array([0.90, 0.91, 0.92]) * BIG
    iv = ks.t_interval(near)
    assert math.isfinite(iv.low) and math.isfinite(iv.high) and iv.low < iv.estimate < iv.high <= BIG
    e = ks.paired_effect("huge", near, np.zeros(3), control="zero", rule=ks.Rule(0.0))
    assert e.verdict == "supported" and math.isfinite(e.ci_low) and math.isfinite(e.ci_high)
    # an interval whose end is itself beyond float64: refused, naming the argument
    with pytest.raises(ValueError, match="effects: an end of the interval lies beyond the float64 range"):
        ks.t_interval([BIG, -BIG, BIG])
    # a difference that overflows: refused
    with pytest.raises(ValueError, match="treatment − control overflows float64 at seed 1"):
        ks.paired_differences([1.0, BIG, 2.0], [0.0, -BIG, 1.0])
    with pytest.raises(ValueError, match="numerator/denominator: the ratio"):
        ks.ratio_interval([BIG, BIG / 2, BIG / 3], [1e-300, 2e-300, 1.5e-300])


@given(
    st.lists(st.integers(-(10**6), 10**6).map(lambda k: k / 1000), min_size=2, max_size=12),
    st.sampled_from([2.0**-1000, 1.0, 2.0**1000, 2.0**1013]),
)
def test_property_interval_is_exactly_scaled_or_refused(values, scale):
    # scaling by a power of two is exact: the interval of x·2^k is the interval of x times 2^k,
    # unless an end of it lies beyond float64 — then (and only then) it is refused
    x = np.array(values)
    base = ks.t_interval(x)
    beyond = any(math.isinf(v * scale) for v in (base.low, base.high))
    try:
        iv = ks.t_interval(x * scale)
    except ValueError as exc:
        assert beyond and "beyond the float64 range" in str(exc)
        return
    assert not beyond and iv.degenerate == base.degenerate
    assert (iv.estimate, iv.low, iv.high) == (base.estimate * scale, base.low * scale, base.high * scale)
    if iv.degenerate:
        assert iv.low == iv.high == iv.estimate
