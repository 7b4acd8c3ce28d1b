"""kdtheory.confidence: stable logit confidences, deviation statistics, fidelity, hardening (issue 11)."""

import tracemalloc

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import softmax
from scipy.stats import theilslopes

from kdtheory import confidence
from kdtheory.confidence import (
    MAX_CLIPPED_SHARE,
    analyses,
    analyze,
    class_indices,
    expected_calibration_error,
    logit_confidence,
    point_confidences,
    validate_predictions,
)


@st.composite
def logit_pairs(draw, max_n=40, max_k=6):
    n = draw(st.integers(2, max_n))
    k = draw(st.integers(2, max_k))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 50.0]))
    t = scale * rng.standard_normal((n, k))
    s = draw(st.floats(0.5, 2.0)) * t + rng.standard_normal((n, k))
    return t, s


def _phi_naive(p, cls):
    pc = p[np.arange(p.shape[0]), cls]
    return np.log(pc) - np.log1p(-pc)


def _phi_mpmath(z, c):
    """φ = log(p_c / (1 − p_c)) of a softmax, naively but at 800 digits (independent oracle)."""
    with mpmath.workdps(800):
        e = [mpmath.exp(mpmath.mpf(float(v))) for v in z]
        p = e[c] / mpmath.fsum(e)
        return float(mpmath.log(p / (1 - p)))


# ---------------------------------------------------------------- properties and known values


@given(logit_pairs())
def test_identical_teacher_and_student(pair):
    t, _ = pair
    r = analyze(t, t, kind="logits", bootstrap=50)
    assert np.array_equal(r.teacher_logit, r.student_logit) and not r.delta.any()
    assert r.low_underfit == 0 and r.high_overfit == 0 and r.agreement == 1.0
    assert r.above == 0 and r.below == 0
    assert r.kl == pytest.approx(0.0, abs=1e-12)
    if r.slope is not None:
        assert r.slope == pytest.approx(1.0, rel=1e-9)
        assert r.intercept == pytest.approx(0.0, abs=1e-7 * (1 + np.abs(r.teacher_logit).max()))
        assert r.robust_slope == pytest.approx(1.0, rel=1e-9)


@given(logit_pairs(), st.integers(0, 1000))
def test_invariant_to_permuting_points_and_classes(pair, seed):
    t, s = pair
    rng = np.random.default_rng(seed)
    pi, pc = rng.permutation(t.shape[0]), rng.permutation(t.shape[1])
    a = analyze(t, s, kind="logits", bootstrap=0)
    b = analyze(t[pi][:, pc], s[pi][:, pc], kind="logits", bootstrap=0)
    assert np.allclose(np.sort(a.teacher_logit), np.sort(b.teacher_logit), rtol=1e-12, atol=1e-12)
    assert np.allclose(a.student_logit[pi], b.student_logit, rtol=1e-12, atol=1e-12) or np.any(
        np.sum(t == t.max(axis=1, keepdims=True), axis=1) > 1
    )  # ties in the teacher's top-1 may pick another (equally confident) class
    for name in ("agreement", "kl", "low_underfit", "high_overfit", "above", "below"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-10, abs=1e-12)
    if a.slope is not None:
        assert a.slope == pytest.approx(b.slope, rel=1e-9)


@given(logit_pairs())
def test_stable_logit_equals_naive_where_naive_is_finite(pair):
    t, _ = pair
    cls = t.argmax(axis=1)
    res = logit_confidence(t, cls, kind="logits")
    assert isinstance(res, confidence.LogitConfidence) and not res.clipped.any()
    with np.errstate(divide="ignore"):
        naive = _phi_naive(softmax(t, axis=1), cls)
    pc = softmax(t, axis=1)[np.arange(t.shape[0]), cls]
    ok = np.isfinite(naive) & (pc < 1 - 1e-6)  # beyond that the naive form has lost its digits
    assert np.allclose(res.logit[ok], naive[ok], rtol=1e-8, atol=1e-8)
    assert np.allclose(res.prob, pc, rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(res.logit))


def test_finite_at_probabilities_zero_and_one_from_logits():
    t = np.array([[200.0, 0.0, 0.0], [0.0, -300.0, 0.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    r = analyze(t, t * 1.5, kind="logits", bootstrap=20)
    assert np.all(np.isfinite(r.teacher_logit)) and np.all(np.isfinite(r.student_logit))
    assert r.teacher_logit[0] == pytest.approx(200.0 - np.log(2.0))
    assert np.all(np.isfinite([r.kl, r.agreement])) and r.clipped == 0


def test_known_values_and_ece():
    t = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]]))
    s = np.log(np.array([[0.95, 0.05], [0.55, 0.45], [0.1, 0.9], [0.5, 0.5]]))
    r = analyze(t, s, kind="logits", y=np.array([0, 1, 1, 0]), quantile=0.25, bootstrap=0)
    assert np.allclose(r.teacher_prob, [0.9, 0.6, 0.8, 0.5])
    assert np.allclose(r.student_logit, np.log([0.95 / 0.05, 0.55 / 0.45, 0.9 / 0.1, 1.0]))
    assert r.low_underfit == 0.0  # lowest point (p = 0.5): the student equals the teacher
    assert r.high_overfit == 1.0  # highest (p = 0.9): the student is above
    kl = np.sum(np.exp(t) * (t - s), axis=1).mean()
    assert r.kl == pytest.approx(kl)
    ece = expected_calibration_error(np.array([0.9, 0.6, 0.8, 0.5]), np.array([1, 0, 1, 1], bool))
    assert r.ece_teacher == pytest.approx(ece)
    assert ece == pytest.approx((0.1 + 0.6 + 0.2 + 0.5) / 4)


@given(st.integers(1, 200), st.integers(1, 15), st.integers(0, 2**31))
def test_ece_equals_an_explicit_loop(n, bins, seed):
    rng = np.random.default_rng(seed)
    conf = rng.choice([0.0, 0.1, 0.3, 0.5, 0.7, 1.0, 0.3333, 0.9], size=n) if seed % 2 else rng.uniform(0, 1, n)
    hit = rng.uniform(size=n) < conf
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for b in range(bins):
        m = (conf > edges[b]) & (conf <= edges[b + 1]) if b else (conf <= edges[1])
        if m.any():
            total += m.mean() * abs(hit[m].mean() - conf[m].mean())
    assert expected_calibration_error(conf, hit, bins=bins) == pytest.approx(total, abs=1e-12)


def test_reference_label_uses_the_label_class():
    t = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    s = np.log(np.array([[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]]))
    r = analyze(t, s, kind="logits", y=np.array([1, 0]), reference="label", bootstrap=0)
    assert np.array_equal(r.classes, [1, 0])
    assert np.allclose(r.teacher_prob, [0.2, 0.1]) and np.allclose(r.student_prob, [0.4, 0.2])
    with pytest.raises(ValueError, match="reference='label' needs labels y"):
        analyze(t, s, kind="logits", reference="label")


# ---------------------------------------------------------------- O1 additions (issue 10 item 4)


@given(logit_pairs(max_n=60), st.integers(1, 12), st.sampled_from([0.0, 0.05, 0.5]))
def test_delta_bins_and_counts_equal_explicit_loops(pair, bins, tol):
    t, s = pair
    r = analyze(t, s, kind="logits", bins=bins, tol=tol, bootstrap=0)
    cls = t.argmax(axis=1)
    phit = [_phi_mpmath(row, c) for row, c in zip(t, cls, strict=True)]
    assert np.allclose(r.delta, r.student_logit - r.teacher_logit, rtol=0, atol=0)
    assert np.allclose(r.teacher_logit, phit, rtol=1e-7, atol=1e-7)
    order = np.argsort(r.teacher_logit, kind="stable")
    groups = np.array_split(order, min(bins, len(t)))
    assert np.array_equal(r.bin_count, [g.size for g in groups])
    assert np.allclose(r.bin_delta, [r.delta[g].mean() for g in groups], rtol=1e-12, atol=1e-12)
    assert np.allclose(r.bin_teacher, [r.teacher_logit[g].mean() for g in groups], rtol=1e-12, atol=1e-12)
    se = [r.delta[g].std(ddof=1) / np.sqrt(g.size) if g.size > 1 else np.nan for g in groups]
    assert np.allclose(r.bin_delta_se, se, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert r.above == sum(d > tol for d in r.delta) and r.below == sum(d < -tol for d in r.delta)
    m = max(1, round(0.1 * len(t)))
    assert r.low_underfit == pytest.approx(np.mean(r.delta[order[:m]] < -tol))
    assert r.high_overfit == pytest.approx(np.mean(r.delta[order[-m:]] > tol))


def test_robust_slope_is_theil_sen_and_resists_outliers():
    rng = np.random.default_rng(3)
    n = 800
    x = rng.standard_normal(n) * 2
    t = np.stack([x, np.zeros(n)], axis=1)  # φ_t = x for reference class 0
    y = 0.7 * x + 0.05 * rng.standard_normal(n)
    y[:40] += 40.0  # 5% gross outliers pull least squares, not Theil–Sen
    s = np.stack([y, np.zeros(n)], axis=1)
    label = {"y": np.zeros(n, int), "reference": "label"}
    r = analyze(t, s, kind="logits", bootstrap=0, robust_points=n, **label)
    np.testing.assert_allclose(r.teacher_logit, x, rtol=1e-13, atol=1e-13)  # φ = x − log(1 + e⁰ − 1) = x
    np.testing.assert_allclose(r.student_logit, y, rtol=1e-13, atol=1e-13)
    oracle = theilslopes(r.student_logit, r.teacher_logit)
    assert r.robust_slope == pytest.approx(oracle.slope, rel=1e-12)
    assert r.robust_slope_ci == pytest.approx((oracle.low_slope, oracle.high_slope), rel=1e-12)
    assert abs(r.robust_slope - 0.7) < 0.03 < abs(r.slope - 0.7)
    sub = analyze(t, s, kind="logits", bootstrap=0, robust_points=300, seed=5, **label)
    assert sub.robust_points == 300 and abs(sub.robust_slope - 0.7) < 0.05


# ---------------------------------------------------------------- issue 11 row 1: the input kind


def test_row1_kind_is_required_and_probabilities_passed_as_logits_are_refused():
    rng = np.random.default_rng(0)
    z = 2 * rng.standard_normal((300, 5))
    p_t, p_s = softmax(z, 1), softmax(1.5 * z + 0.3 * rng.standard_normal((300, 5)), 1)
    with pytest.raises(TypeError, match="kind"):
        analyze(p_t, p_s)  # old: silently treated as logits, slope 1.026 instead of 0.834
    with pytest.raises(ValueError, match=r"kind='logits' but every row is non-negative and sums to 1"):
        analyze(p_t, p_s, kind="logits")
    with pytest.raises(ValueError, match=r"kind='probabilities' but row 0 has a negative entry"):
        analyze(z, z, kind="probabilities")
    with pytest.raises(ValueError, match=r"kind='probabilities' but row \d+ sums to"):
        analyze(np.abs(z), np.abs(z), kind="probabilities")
    with pytest.raises(ValueError, match="unknown kind 'logit'"):
        analyze(z, z, kind="logit")
    # the same network's probabilities and logits give the same φ and slope
    a = analyze(np.log(p_t), np.log(p_s), kind="logits", bootstrap=0)
    b = analyze(p_t, p_s, kind="probabilities", bootstrap=0)
    assert np.allclose(a.teacher_logit, b.teacher_logit, atol=1e-9) and a.slope == pytest.approx(b.slope, rel=1e-9)
    assert b.kl == pytest.approx(a.kl, rel=1e-9)


# ---------------------------------------------------------------- row 2: clipping is counted and refused


def _saturated_float32(n=1000, seed=0):
    """Float32 softmax of a confident network: many exact 0s and 1s."""
    rng = np.random.default_rng(seed)
    z = 40 * rng.standard_normal((n, 10))  # gaps beyond ~104 underflow float32 to exact 0
    return z, softmax(z, 1).astype(np.float32), softmax(0.5 * z, 1).astype(np.float32)


def test_row2_saturated_probabilities_are_counted_and_refused():
    z, p_t, p_s = _saturated_float32()
    cls = p_t.argmax(1)
    clipped = np.zeros(len(z), bool)
    for p in (p_t, p_s):
        for i, c in enumerate(cls):  # explicit loop: p_c or the sum of the other classes below eps
            rest = sum(float(v) for j, v in enumerate(p[i]) if j != c)
            clipped[i] |= float(p[i, c]) < 1e-12 or rest < 1e-12
    expected = int(clipped.sum())
    assert expected > MAX_CLIPPED_SHARE * len(z)
    with pytest.raises(ValueError, match=rf"{expected} of 1000 points .* exactly 0 or 1 .*accept_clipping=True"):
        analyze(p_t, p_s, kind="probabilities")  # old: clipped silently, slope reversed
    r = analyze(p_t, p_s, kind="probabilities", accept_clipping=True, bootstrap=0)
    assert r.clipped == expected and r.summary()["clipped_points"] == expected
    assert r.summary()["clipped_share"] == expected / 1000
    logits = analyze(z, 0.5 * z, kind="logits", bootstrap=0)
    assert logits.clipped == 0 and abs(logits.slope - 0.5) < 0.01  # φ(z/2) ≈ φ(z)/2 for confident rows
    assert r.slope - logits.slope > 0.2  # what clipping does to the conclusion: why it is refused


def test_row2_few_clipped_points_proceed_and_are_reported():
    rng = np.random.default_rng(1)
    p = softmax(rng.standard_normal((500, 3)), 1)
    p[0] = [1.0, 0.0, 0.0]  # one point of 500 = 0.2% < 1%
    r = analyze(p, p, kind="probabilities", bootstrap=0)
    assert r.clipped == 1 and r.clipped_teacher == 1 and r.summary()["clipped_points"] == 1
    assert np.isfinite(r.teacher_logit).all()


def _teacher_misses_the_controls_top_class(n=200, missed=30, seed=2):
    """Probabilities where the teacher gives exactly 0 to the control's top-1 class on ``missed`` points.

    The teacher's own top class is class 0 everywhere, the control's is class 2 on the first
    ``missed`` points: only the cross-selected φ (the control's class) is clipped there.
    """
    rng = np.random.default_rng(seed)
    t = softmax(rng.standard_normal((n, 3)) * 0.3 + [2.0, 0.0, 0.0], 1)
    s = softmax(rng.standard_normal((n, 3)) * 0.3 + [2.0, 0.0, 0.0], 1)
    c = softmax(rng.standard_normal((n, 3)) * 0.3 + [2.0, 0.0, 0.0], 1)
    t[:missed] = [0.7, 0.3, 0.0]
    c[:missed] = [0.2, 0.2, 0.6]
    return t, s, c


def test_row2_clipping_of_the_cross_selected_phi_is_counted_and_refused():
    t, s, c = _teacher_misses_the_controls_top_class()
    assert (c.argmax(1)[:30] == 2).all() and (t[:30, 2] == 0).all()
    pts = point_confidences(t, s, c, kind="probabilities")
    assert not pts.teacher.clipped.any() and not pts.student.clipped.any() and not pts.control.clipped.any()
    with pytest.raises(ValueError, match=r"30 of 200 points .*any model at control's top-1 class \(30\)"):
        analyze(t, s, kind="probabilities", control=c)  # old: clipped = 0, no refusal, o1_cross from φ = -27.6
    r = analyze(t, s, kind="probabilities", control=c, accept_clipping=True, bootstrap=0)
    assert r.clipped == 30 and r.clipped_teacher == r.clipped_student == r.clipped_control == 0


def test_row2_the_refusal_names_every_clipped_source_and_its_count():
    rng = np.random.default_rng(3)
    t = softmax(rng.standard_normal((200, 3)), 1)
    c = t.copy()
    c[:20] = [1.0, 0.0, 0.0]  # only the control is saturated: 20 of 200 = 10% > 1%
    with pytest.raises(ValueError, match=r"20 of 200 points .*the_control\.npy \(20\)") as err:
        analyze(t, t, kind="probabilities", control=c, names=("t.npy", "s.npy", "the_control.npy"))
    assert "t.npy (0)" in str(err.value) and "s.npy (0)" in str(err.value)


# ---------------------------------------------------------------- row 4: float16 softmax outputs


@given(st.integers(1, 30), st.integers(2, 64), st.sampled_from([0.5, 3.0, 10.0]), st.integers(0, 2**31))
def test_row4_float16_softmax_is_accepted(n, k, scale, seed):
    z = (scale * np.random.default_rng(seed).standard_normal((n, k))).astype(np.float16)
    e = np.exp(z - z.max(axis=1, keepdims=True))  # softmax evaluated in float16 arithmetic
    p16 = e / e.sum(axis=1, keepdims=True, dtype=np.float16)
    assert p16.dtype == np.float16
    validate_predictions(p16, kind="probabilities")
    rounded = softmax(z.astype(np.float64), 1).astype(np.float16)  # softmax rounded to float16
    validate_predictions(rounded, kind="probabilities")


def test_row4_rows_clearly_off_one_are_refused_in_every_precision():
    for dtype in (np.float16, np.float32, np.float64):
        p = np.array([[0.6, 0.6], [0.5, 0.5]], dtype=dtype)
        with pytest.raises(ValueError, match="row 0 sums to 1.2"):
            validate_predictions(p, kind="probabilities")


# ---------------------------------------------------------------- row 7: string labels


def test_row7_string_labels_map_to_classes():
    rng = np.random.default_rng(2)
    t = rng.standard_normal((60, 3))
    names = np.array(["cat", "dog", "emu"])
    idx = rng.integers(0, 3, 60)
    idx[:3] = [0, 1, 2]
    a = analyze(t, t, kind="logits", y=idx, bootstrap=0)
    b = analyze(t, t, kind="logits", y=names[idx], bootstrap=0)  # sorted order = column order
    assert a.ece_teacher == b.ece_teacher
    order = ["emu", "cat", "dog"]  # column j is order[j]
    y = np.array(order)[idx]
    assert np.array_equal(class_indices(y, n=60, k=3, class_names=order), idx)
    assert np.array_equal(class_indices(np.array([str(i) for i in idx]), n=60, k=3), idx)  # "10" is not before "2"
    with pytest.raises(ValueError, match="2 distinct string labels for 3 classes.*class_names"):
        class_indices(np.array(["a", "b"] * 30), n=60, k=3)
    with pytest.raises(ValueError, match=r"labels \['fox'\] are not among the class names"):
        class_indices(np.array(["cat", "fox"] * 30), n=60, k=3, class_names=["cat", "dog", "emu"])
    with pytest.raises(ValueError, match="must be one-hot"):
        class_indices(np.full((60, 3), 1 / 3), n=60, k=3)


# ---------------------------------------------------------------- row 12: memory and the bootstrap


def test_row12_bootstrap_from_counts_equals_explicit_resamples():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(37)
    y = 0.8 * x + rng.standard_normal(37)
    counts = np.concatenate(list(analyses._bootstrap_counts(37, 25, np.random.default_rng(9))))
    assert counts.shape == (25, 37) and np.all(counts.sum(axis=1) == 37)
    slopes = analyses._bootstrap_slopes(x - x.mean(), y - y.mean(), 25, np.random.default_rng(9))
    oracle = [np.polyfit(np.repeat(x, c), np.repeat(y, c), 1)[0] for c in counts]
    assert np.allclose(slopes, oracle, rtol=1e-10, atol=1e-12)


def test_row12_bootstrap_interval_covers_the_sampling_distribution():
    rng = np.random.default_rng(5)
    n = 2000
    x = rng.standard_normal(n)
    y = 1.3 * x + rng.standard_normal(n)
    t, s = np.stack([x, np.zeros(n)], 1), np.stack([y, np.zeros(n)], 1)
    r = analyze(t, s, kind="logits", y=np.zeros(n, int), reference="label", bootstrap=400, robust_points=2)
    lo, hi = r.slope_ci
    se = 1 / np.sqrt(n)  # OLS standard error of the slope (unit noise, unit-variance x)
    assert lo < r.slope < hi and (hi - lo) / (2 * 1.96 * se) == pytest.approx(1.0, abs=0.15)


def test_row12_working_memory_is_linear_in_points():
    # old: idx and two (bootstrap × n) float arrays, 3 × 8 × 300 × 100,000 = 720 MB here
    rng = np.random.default_rng(6)
    n, k = 100_000, 10
    t = rng.standard_normal((n, k), dtype=np.float32)
    s = (1.2 * t + rng.standard_normal((n, k), dtype=np.float32)).astype(np.float32)
    tracemalloc.start()
    try:
        analyze(t, s, kind="logits", bootstrap=300, robust_points=200)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # per-point vectors (~15 × 8 bytes) + row blocks (~6 × 2**16 × k × 8) + bootstrap block (~4 × 8 × 2**20)
    assert peak < 200 * n + 6 * 8 * k * 2**16 + 40 * 2**20, peak / 1e6


# ---------------------------------------------------------------- row 14: messages name the argument


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bins": 0}, "bins must be an integer >= 1, got 0"),
        ({"bootstrap": -5}, "bootstrap must be an integer >= 0, got -5"),
        ({"bootstrap": 2.5}, "bootstrap must be an integer >= 0, got 2.5"),
        ({"quantile": 0.7}, r"quantile must lie in \(0, 0.5\], got 0.7"),
        ({"tol": -1.0}, "tol must be a finite number >= 0"),
        ({"eps": 0.0}, r"eps must lie in \(0, 0.5\)"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"robust_points": 1}, "robust_points must be an integer >= 2"),
        ({"accept_clipping": "yes"}, "accept_clipping must be True or False"),
        ({"reference": "top1"}, "unknown reference 'top1'"),
    ],
)
def test_row14_hyperparameter_errors_name_the_argument_and_range(kwargs, message):
    t = np.random.default_rng(0).standard_normal((10, 3))
    with pytest.raises(ValueError, match=message):
        analyze(t, t, kind="logits", **kwargs)


@pytest.mark.parametrize(
    "teacher, message",
    [
        ([[1.0, 2.0], [3.0]], "teacher: expected an \\(n, k\\) array of numbers"),
        ([1.0, 2.0, 3.0], r"teacher: expected a 2-D array \(points x classes\), got shape \(3,\)"),
        ([[1.0], [2.0]], "teacher: needs at least 2 classes"),
        ([["a", "b"]], "teacher: expected real numbers, got dtype <U1"),
        ([[np.nan, 1.0]], "teacher: contains nan at row 0, column 0"),
        (np.zeros((0, 3)), "teacher: no points"),
    ],
)
def test_row14_malformed_predictions_name_the_array(teacher, message):
    with pytest.raises(ValueError, match=message):
        analyze(teacher, [[0.0, 1.0]], kind="logits")


def test_row14_labels_are_checked_after_the_teacher():
    with pytest.raises(ValueError, match="teacher: expected a 2-D array"):
        analyze(np.ones(4), np.ones(4), kind="logits", y=np.zeros(4, int))  # old: blamed the labels
    t = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(ValueError, match=r"y: expected 4 labels \(one per point, shape \(4,\)\), got shape \(5,\)"):
        analyze(t, t, kind="logits", y=np.zeros(5, int))
    with pytest.raises(ValueError, match=r"y: class labels must lie in \[0, 2\]"):
        analyze(t, t, kind="logits", y=np.array([0, 1, 2, 3]))


_X = np.linspace(-2.0, 2.0, 10)
_SLOPE = {"bootstrap": 0, "robust_points": 100, "seed": 0}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: analyses.binned(_X, np.ones(12), 3), r"phi_teacher and phi_student must be non-empty 1-D of one"),
        (lambda: analyses.binned(np.empty(0), np.empty(0), 3), r"non-empty 1-D of one length, got shapes \(0,\)"),
        (lambda: analyses.binned(_X, np.full(10, np.inf), 3), "phi_teacher and phi_student must be finite"),
        (lambda: analyses.tail_shares(_X, np.ones(12), 0.2, 0.0), "phi_teacher and delta must be non-empty 1-D"),
        (lambda: analyses.tail_shares(_X, np.ones((10, 1)), 0.2, 0.0), "phi_teacher and delta must be"),
        (lambda: analyses.tail_shares(_X, _X, 0.2, -1.0), "tol must be a finite number >= 0, got -1.0"),
        (lambda: analyses.slope_analysis(_X, _X, **{**_SLOPE, "bootstrap": -3}), "bootstrap must be an integer >= 0"),
        (lambda: analyses.slope_analysis(_X, _X, **{**_SLOPE, "robust_points": 0}), "robust_points must be an int"),
        (lambda: analyses.slope_analysis(_X, _X, **{**_SLOPE, "seed": 1.5}), "seed must be an integer >= 0"),
        (lambda: analyses.slope_analysis(_X, _X[:9], **_SLOPE), "phi_teacher and phi_student must be 1-D of one"),
        (lambda: analyses.slope_analysis(_X, _X * np.nan, **_SLOPE), "phi_teacher and phi_student must be finite"),
        (lambda: analyses.least_squares_slope(_X, _X[:9]), r"x and y must be 1-D of one length"),
    ],
)
def test_analyses_refuse_bad_input_naming_it(call, message):
    with pytest.raises(ValueError, match=message):
        call()  # old: binned and tail_shares read a longer second array's first n entries or counted all of
        # them, bootstrap=-3 passed, robust_points=0 and empty bins failed inside numpy or with ZeroDivisionError


def test_shapes_must_match():
    with pytest.raises(ValueError, match=r"teacher has shape \(4, 3\) but student has shape \(5, 3\)"):
        analyze(np.zeros((4, 3)), np.ones((5, 3)), kind="logits")


# ---------------------------------------------------------------- KL is +∞ where the student rules out a class


def test_kl_is_infinite_where_the_student_gives_zero_to_a_teacher_class():
    p_t = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.9, 0.1, 0.0]] * 100)
    p_s = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.8, 0.1, 0.1]] * 100)
    r = analyze(p_t, p_s, kind="probabilities", accept_clipping=True, bootstrap=0)
    assert r.kl == np.inf and r.kl_infinite == 100  # old: a clipped finite number
    assert r.summary()["kl_teacher_student"] == np.inf
    # a class the teacher rules out costs nothing: 0 · log(0 / q) = 0
    finite = analyze(p_t[1:3], p_s[1:3], kind="probabilities", bootstrap=0)
    expected = np.mean([0.0, 0.9 * np.log(0.9 / 0.8)])
    assert finite.kl == pytest.approx(expected, rel=1e-12) and finite.kl_infinite == 0
