"""kdtheory.filters: the filters of flow, GD, heavy-ball momentum and ridge against per-mode
recursions and their limits, the filter algebra (Filter.train_from), recipes and their
normalization, and bad input named. The scalar numerics below the algebra
(kdtheory._filter_numerics) and the argument checks (kdtheory._checks) are tested here; the
60-digit oracle of the same filters is tests/test_filters_oracle.py."""

import numpy as np
import pytest
from bad_input import RAGGED, one_line
from hypothesis import given
from hypothesis import strategies as st

from kdtheory import _checks, _filter_numerics
from kdtheory.dynamics import train
from kdtheory.filters import (
    Filter,
    Recipe,
    flow_filter,
    gd_filter,
    loss_divisor,
    max_learning_rate,
    momentum_filter,
    ridge_filter,
)
from kdtheory.spectrum import Spectrum
from kdtheory.testing import assert_close, spectra, times


def _pair(evals, t, **recipe):
    """``(a, a/λ)`` of a recipe (the former ``filter_pair``)."""
    f = Recipe(**recipe).filter(evals, t)
    return f.a, f.a_over_eval


def _momentum_loop(lam, eta, beta, steps):
    """Per-mode heavy ball with target weight 1 on f = λ w (a) and on dual α (a/λ)."""
    lam = np.asarray(lam, float)
    w = np.zeros_like(lam)
    v = np.zeros_like(lam)
    al = np.zeros_like(lam)
    va = np.zeros_like(lam)
    A, H = [], []
    for _ in range(int(max(steps)) + 1):
        A.append(w.copy())
        H.append(al.copy())
        v = beta * v - eta * lam * (w - 1.0)
        w = w + v
        va = beta * va - eta * (lam * al - 1.0)
        al = al + va
    return np.array(A)[list(steps)], np.array(H)[list(steps)]


@pytest.fixture
def kspec():
    return Spectrum.from_kernel(np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))


# ---------------------------------------------------------------------- filters vs recursions
@given(spectra(max_size=8), st.floats(0.0, 0.99), st.floats(0.01, 0.999), st.integers(0, 60))
def test_momentum_filter_matches_recursion(lam, beta, frac, smax):
    eta = frac * max_learning_rate(lam, method="momentum", momentum=beta)
    if not np.isfinite(eta):
        eta = 1.0
    steps = list(range(smax + 1))
    a, g = _pair(lam, steps, method="momentum", learning_rate=eta, momentum=beta)
    A, H = _momentum_loop(lam, eta, beta, steps)
    # the recursion itself rounds ~ s·ε per step; scale-free comparison per mode
    assert np.abs(a - A).max() <= 1e-10 * max(1.0, smax)
    scale = np.maximum(np.abs(H).max(axis=0), 1e-300)
    assert (np.abs(g - H) / scale).max() <= 1e-10 * max(1.0, smax)


@given(spectra(max_size=8), st.floats(0.01, 0.999), st.integers(0, 80))
def test_gd_filter_matches_recursion_and_momentum_zero(lam, frac, smax):
    eta = frac * max_learning_rate(lam) if lam.max() > 0 else 0.3
    steps = list(range(smax + 1))
    a, g = _pair(lam, steps, method="gd", learning_rate=eta)
    A, H = _momentum_loop(lam, eta, 0.0, steps)
    assert np.abs(a - A).max() <= 1e-12 * max(1.0, smax)
    assert (np.abs(g - H) / np.maximum(np.abs(H).max(axis=0), 1e-300)).max() <= 1e-12 * max(1, smax)
    a0, g0 = _pair(lam, steps, method="momentum", learning_rate=eta, momentum=0.0)
    assert_close(a0, a, rtol=1e-12, atol=1e-300)
    assert_close(g0, g, rtol=1e-12, atol=1e-300)


def test_momentum_double_root_and_near_double_root():
    # ηλ = (1 − √β)² gives a double root; nearby values must be continuous.
    beta = 0.81
    eta = 1.0
    lam = np.array(
        [(1 - 0.9) ** 2, (1 - 0.9) ** 2 * (1 + 1e-9), (1 - 0.9) ** 2 * (1 - 1e-9), (1 + 0.9) ** 2 * (1 - 1e-9)]
    )
    steps = list(range(0, 200))
    a, g = _pair(lam, steps, method="momentum", learning_rate=eta, momentum=beta)
    A, H = _momentum_loop(lam, eta, beta, steps)
    assert np.abs(a - A).max() < 1e-10
    assert (np.abs(g - H) / np.abs(H).max(axis=0)).max() < 1e-10


def test_zero_eigenvalue_limits_exact():
    lam = np.array([2.0, 0.0])
    assert flow_filter(lam, 3.0, learning_rate=0.5).a_over_eval[1] == 1.5
    assert gd_filter(lam, 7, learning_rate=0.25).a_over_eval[1] == 1.75
    beta, eta, s = 0.5, 0.2, 6
    exact = eta * (s - beta * (1 - beta**s) / (1 - beta)) / (1 - beta)
    got = momentum_filter(lam, s, learning_rate=eta, momentum=beta).a_over_eval[1]
    assert got == pytest.approx(exact, rel=1e-14)
    # tiny positive eigenvalues approach the limit continuously (no cancellation)
    tiny = np.array([1e-300, 1e-200, 1e-30])
    assert_close(flow_filter(tiny, 3.0).a_over_eval, np.full(3, 3.0), rtol=1e-14)
    assert_close(gd_filter(tiny, 7, learning_rate=0.25).a_over_eval, np.full(3, 1.75), rtol=1e-14)
    assert_close(momentum_filter(tiny, s, learning_rate=eta, momentum=beta).a_over_eval, np.full(3, exact), rtol=1e-13)


@given(spectra(max_size=8), times())
def test_flow_filter_limits_and_range(lam, t):
    a, g = _pair(lam, t, method="flow")
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(g))
    assert np.all((a >= 0) & (a <= 1))
    if t == 0:
        assert np.all(a == 0) and np.all(g == 0)
    if np.isinf(t):
        assert np.all(a == (lam > 0))
        assert np.all(g[lam > 0] == 1 / lam[lam > 0]) and np.all(g[lam == 0] == 0)
    pos = lam > 0
    assert_close(g[pos] * lam[pos], a[pos], rtol=1e-13, atol=1e-300)


@given(spectra(max_size=8), st.floats(0.0, 50.0), st.floats(0.0, 50.0))
def test_flow_filter_semigroup(lam, t1, t2):
    # 1 − a(t1 + t2) = (1 − a(t1)) (1 − a(t2)); a is in [0, 1], so compare absolutely
    a1, a2, a12 = (flow_filter(lam, t).a for t in (t1, t2, t1 + t2))
    assert np.abs(a12 - (a1 + a2 - a1 * a2)).max() <= 4e-16


@given(spectra(max_size=8, zeros=False), st.floats(0.01, 10.0), st.integers(10, 1000))
def test_gd_approaches_flow_with_explicit_bound(lam, tau, s):
    # η = τ/s; for q = ηλ ≤ 1/2:  0 ≤ a_gd − a_flow ≤ s q²,
    # from e^{−q − q²} ≤ 1 − q ≤ e^{−q}: (1 − q)^s ≤ e^{−qs} and e^{−qs} − (1 − q)^s ≤ 1 − e^{−q² s}.
    eta = tau / s
    q = eta * lam
    keep = q <= 0.5
    a_gd = gd_filter(lam, s, learning_rate=eta, allow_unstable=True).a[keep]
    a_fl = flow_filter(lam, s, learning_rate=eta).a[keep]
    diff = a_gd - a_fl
    assert np.all(diff >= -1e-15)
    assert np.all(diff <= s * q[keep] ** 2 + 1e-15)


def test_gd_converges_to_flow_first_order():
    lam = np.array([3.0, 1.0, 0.1, 0.0])
    errs = [
        np.abs(gd_filter(lam, 10**j, learning_rate=2.0 / 10**j).a - flow_filter(lam, 2.0).a).max() for j in (2, 3, 4)
    ]
    assert errs[1] < 0.15 * errs[0] and errs[2] < 0.15 * errs[1]


def test_array_t_equals_stacked_scalars():
    lam = np.array([4.0, 1.0, 0.25, 0.0])
    t = np.array([[0.0, 1.0, 5.0], [np.inf, 17.0, 3.0]])
    for method, kw in [
        ("flow", {}),
        ("gd", {"learning_rate": 0.2}),
        ("momentum", {"learning_rate": 0.2, "momentum": 0.6}),
    ]:
        a, g = _pair(lam, t, method=method, **kw)
        assert a.shape == (2, 3, 4)
        for idx in np.ndindex(t.shape):
            a1, g1 = _pair(lam, t[idx], method=method, **kw)
            assert np.array_equal(a[idx], a1) and np.array_equal(g[idx], g1)


def test_ridge_filter():
    lam = np.array([3.0, 1.0, 0.0])
    assert_close(ridge_filter(lam, 1.0).a, [0.75, 0.5, 0.0], rtol=1e-15)
    assert_close(ridge_filter(lam, 1.0).a_over_eval, [0.25, 0.5, 1.0], rtol=1e-15)
    assert np.array_equal(ridge_filter(lam, 0.0).a, [1.0, 1.0, 0.0])
    assert np.array_equal(ridge_filter(lam, 0.0).a_over_eval, [1 / 3, 1.0, 0.0])
    assert ridge_filter(lam, [0.5, 2.0]).a.shape == (2, 3)


def test_max_learning_rate():
    lam = np.array([4.0, 1.0])
    assert max_learning_rate(lam) == 0.5
    assert max_learning_rate(lam, monotone=True) == 0.25
    assert max_learning_rate(lam, method="momentum", momentum=0.5) == 0.75
    assert max_learning_rate(lam, method="flow") == np.inf
    assert max_learning_rate(np.zeros(3)) == np.inf


# ---------------------------------------------------------------------- the filter algebra
def test_filter_constants_and_train_from_rule():
    lam = np.array([2.0, 0.5, 0.0])
    zero, one = Filter.zero(3), Filter.labels(lam)
    assert np.array_equal(one.a, [1.0, 1.0, 1.0]) and np.array_equal(one.a_over_eval, [0.5, 2.0, 0.0])
    S = flow_filter(lam, 1.5)
    # from scratch towards the labels is the recipe itself, exactly
    f = S.train_from(zero, one)
    assert np.array_equal(f.a, S.a) and np.array_equal(f.a_over_eval, S.a_over_eval)
    # training further along the same labels composes times (flow: a semigroup), a/λ included
    g = flow_filter(lam, 2.0).train_from(S, one)
    ref = flow_filter(lam, 3.5)
    assert_close(g.a, ref.a, rtol=1e-15)
    assert_close(g.a_over_eval, ref.a_over_eval, rtol=1e-15)
    # affine targets: w T + (1 − w) ONE has a = w a_T + 1 − w (a = 1 − w at λ = 0)
    T = flow_filter(lam, 0.7)
    mix = 0.3 * T + 0.7 * one
    assert_close(mix.a, 0.3 * T.a + 0.7, rtol=1e-15)
    stacked = Filter.stack([S, T])
    assert stacked.shape == (2, 3) and np.array_equal(stacked[1].a, T.a)
    with pytest.raises(ValueError, match="a and a_over_eval must share a shape"):
        Filter(np.ones(3), np.ones(2))
    with pytest.raises(TypeError, match="target must be a Filter"):
        S.train_from(zero, np.ones(3))


@given(spectra(max_size=8), times(), times(), st.floats(-1.0, 2.0))
def test_train_from_matches_per_mode_dual_flow(lam, t, s, w):
    """The rule against a per-mode explicit solve: f = a_s + (a_tgt − a_s)(1 − e^{−λt}), g likewise / λ."""
    scale = 1.0 / max(lam[0], 1e-300)
    t, s = t * scale, s * scale
    one = Filter.labels(lam)
    start, T = flow_filter(lam, s), flow_filter(lam, 2 * s)
    target = w * T + (1 - w) * one
    got = flow_filter(lam, t).train_from(start, target)
    gap = target.a - start.a
    learned = -np.expm1(-lam * t) if np.isfinite(t) else (lam > 0).astype(float)  # 1 − e^{−λt}
    assert_close(got.a, start.a + gap * learned, rtol=1e-12, atol=1e-15 * (1 + np.abs(gap)).max())
    pos = lam > 0
    want_g = np.where(pos, start.a_over_eval + gap * learned / np.where(pos, lam, 1.0), 0.0)
    want_g = np.where(pos, want_g, start.a_over_eval + gap * (t if np.isfinite(t) else 0.0))
    assert_close(got.a_over_eval, want_g, rtol=1e-10, atol=1e-300)


def test_recipe_owns_the_normalization():
    lam = np.array([6.0, 3.0, 0.0])
    spec = Spectrum(evals=lam, U=np.eye(3), V=None, rank_tol=0.0)
    mean = Recipe(normalization="mean").filter(spec, 2.0)
    assert_close(mean.a, flow_filter(lam / 3, 2.0).a, rtol=1e-15)
    assert_close(mean.a_over_eval, flow_filter(lam / 3, 2.0).a_over_eval / 3, rtol=1e-15)
    per = Recipe(normalization="per_output").filter(spec, 2.0, outputs=2)
    assert_close(per.a, flow_filter(lam / 6, 2.0).a, rtol=1e-15)
    with pytest.raises(ValueError, match="needs outputs"):
        Recipe(normalization="per_output").filter(spec, 2.0)
    with pytest.raises(ValueError, match="needs a Spectrum"):
        Recipe(normalization="mean").filter(lam, 2.0)
    with pytest.raises(ValueError, match="unknown normalization"):
        Recipe(normalization="avg")
    assert Recipe("gd", learning_rate=0.5).record() == {
        "method": "gd",
        "learning_rate": 0.5,
        "momentum": 0.0,
        "normalization": "sum",
    }


# ---------------------------------------------------------------------- learning rates and eigenvalues
def test_learning_rates(kspec):
    lam_max = kspec.evals[0]
    with pytest.raises(ValueError, match=r"learning_rate=.* is beyond stability.*allow_unstable=True"):
        train(kspec, np.ones(3), 10, recipe=Recipe("gd", learning_rate=2.0 / lam_max))
    with pytest.raises(ValueError, match="beyond stability"):
        momentum_filter(kspec.evals, 3, learning_rate=2 * 1.5 / lam_max, momentum=0.5)
    # explicitly allowed: diverging modes at finite steps, computed exactly
    a = gd_filter(kspec.evals, 3, learning_rate=2.5 / lam_max, allow_unstable=True).a
    assert a[0] == pytest.approx(1 - (1 - 2.5) ** 3)
    with pytest.raises(ValueError, match="t = inf has no limit"):
        gd_filter(kspec.evals, np.inf, learning_rate=2.5 / lam_max, allow_unstable=True)
    with pytest.raises(ValueError, match="learning_rate must be finite and > 0"):
        gd_filter(kspec.evals, 3, learning_rate=0.0)
    with pytest.raises(ValueError, match="learning_rate must be finite and > 0"):
        gd_filter(kspec.evals, 3, learning_rate=np.nan)
    with pytest.raises(ValueError, match=r"momentum must lie in \[0, 1\)"):
        momentum_filter(kspec.evals, 3, learning_rate=0.1, momentum=1.0)
    with pytest.raises(ValueError, match="only used with method='momentum'"):
        _pair(kspec.evals, 3, method="gd", learning_rate=0.1, momentum=0.5)
    # the "mean" loss divides eigenvalues by n, so the stable range grows by n
    train(kspec, np.ones(3), 5, recipe=Recipe("gd", learning_rate=1.9 * 3 / lam_max, normalization="mean"))


def test_bad_eigenvalues():
    with pytest.raises(ValueError, match="evals must be >= 0"):
        flow_filter([1.0, -0.5], 1.0)
    with pytest.raises(ValueError, match="ridge must be >= 0"):
        ridge_filter([1.0], -1.0)
    with pytest.raises(ValueError, match="ridge must be finite"):
        ridge_filter([1.0], np.inf)


# ---------------------------------------------------------------------- bad input, named


F2 = Filter(np.ones(2), np.ones(2))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: Filter(RAGGED, np.ones(2)), ValueError, r"^a must be a rectangular array of real numbers"),
        (lambda: Filter(np.ones(2), RAGGED), ValueError, r"^a_over_eval must be a rectangular array"),
        (lambda: Filter(np.ones(2), ["x", "y"]), ValueError, r"^a_over_eval must be a rectangular array"),
        (lambda: Filter(np.ones(2), np.ones(3)), ValueError, r"^a and a_over_eval must share a shape"),
        (lambda: Filter.zero(2.5), ValueError, r"^m must be a whole number of modes"),
        (lambda: Filter.zero(-1), ValueError, r"^m must be a whole number of modes"),
        (lambda: Filter.labels(RAGGED), ValueError, r"^evals must be a rectangular array"),
        (lambda: Filter.labels(np.ones((2, 2))), ValueError, r"^evals must be 0-D or 1-D"),
        (lambda: Filter.stack([]), ValueError, r"^filters must hold at least one Filter"),
        (lambda: Filter.stack([F2, Filter.zero(3)]), ValueError, r"^filters must share one shape"),
        (lambda: Filter.stack([F2, np.ones(2)]), TypeError, r"^filters must hold Filter values"),
        (lambda: Recipe().filter(RAGGED, 1.0), ValueError, r"^evals must be a rectangular array"),
        (lambda: Recipe().filter([1.0, 0.5], RAGGED), ValueError, r"^t must be a rectangular array"),
        (lambda: Recipe("ridge").filter([1.0], RAGGED), ValueError, r"^ridge must be a rectangular array"),
        (lambda: Recipe().log_remaining([1.0], RAGGED), ValueError, r"^t must be a rectangular array"),
        (lambda: flow_filter(RAGGED, 1.0), ValueError, r"^evals must be a rectangular array"),
        (lambda: flow_filter([1.0], RAGGED), ValueError, r"^t must be a rectangular array"),
        (lambda: gd_filter(np.ones((2, 2)), 1, learning_rate=0.5), ValueError, r"^evals must be 0-D or 1-D"),
        (lambda: gd_filter([1.0], RAGGED, learning_rate=0.5), ValueError, r"^t must be a rectangular array"),
        (lambda: momentum_filter(RAGGED, 1, learning_rate=0.5, momentum=0.5), ValueError, r"^evals must be a rect"),
        (lambda: momentum_filter([1.0], 1, learning_rate=0.5, momentum=1.0), ValueError, r"^momentum must lie in"),
        (lambda: ridge_filter([1.0], RAGGED), ValueError, r"^ridge must be a rectangular array"),
        (lambda: ridge_filter(RAGGED, 1.0), ValueError, r"^evals must be a rectangular array"),
        (lambda: max_learning_rate(RAGGED), ValueError, r"^evals must be a rectangular array"),
        (lambda: max_learning_rate(np.ones((2, 2))), ValueError, r"^evals must be 0-D or 1-D"),
        (lambda: loss_divisor("mean", "10"), ValueError, r"^n must be a positive integer, got '10'"),
        (lambda: loss_divisor("mean", None), ValueError, r"^n must be a positive integer, got None"),
        (lambda: loss_divisor("mean", float("nan")), ValueError, r"^n must be a positive integer, got nan"),
        (lambda: loss_divisor("mean", 2.5), ValueError, r"^n must be a positive integer, got 2.5"),
        (lambda: loss_divisor("per_output", 4, [3]), ValueError, r"^outputs must be a positive integer"),
        (lambda: loss_divisor("per_output", 4, True), ValueError, r"^outputs must be a positive integer"),
        (lambda: Recipe(normalization="mean").eigenvalue_scale("4"), ValueError, r"^n must be a positive integer"),
    ],
)
def test_bad_input_names_the_argument_in_one_line(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    one_line(info)


def test_whole_numbers_of_every_kind_are_accepted_where_counts_are_asked():
    assert loss_divisor("per_output", np.int64(4), np.float64(3.0)) == 12.0
    assert loss_divisor("mean", np.array(5)) == 5.0  # a 0-d array, as numpy reductions return
    assert Filter.zero(np.int64(3)).shape == (3,)
    assert Filter.zero(0).shape == (0,)
    assert Filter.stack(iter([F2, F2])).shape == (2, 2)  # any iterable, read once


def test_as_array_keeps_other_conversion_errors_typed():
    with pytest.raises(ValueError, match=r"^w must be a rectangular array") as info:
        _checks.as_float_array([[1.0], [2.0, 3.0]], "w")
    one_line(info)
    with pytest.raises(TypeError, match="w must hold real numbers"):
        _checks.as_float_array([object()], "w")
    assert _checks.below_one(0.0, "beta") == 0.0
    with pytest.raises(ValueError, match=r"beta must lie in \[0, 1\), got 1.0"):
        _checks.below_one(1.0, "beta")


def test_numerics_stability_bound_is_the_one_max_learning_rate_uses():
    lam = np.array([4.0, 1.0, 0.0])
    for beta in (0.0, 0.5, 0.9):
        eta = max_learning_rate(lam, method="momentum", momentum=beta)
        assert eta * lam.max() == _filter_numerics.stability_bound(beta)
        with pytest.raises(ValueError, match="beyond stability"):
            momentum_filter(lam, 3, learning_rate=eta, momentum=beta)
        momentum_filter(lam, 3, learning_rate=np.nextafter(eta, 0), momentum=beta)  # just inside: fine


def test_filters_scale_by_real_scalars_only():
    assert np.array_equal((np.float64(2.0) * F2).a, 2 * F2.a) and np.array_equal((F2 * 2).a_over_eval, 2 * F2.a)
    for bad in (1j, np.complex128(1.0), True, np.ones(2), float("inf"), "2"):
        with pytest.raises(TypeError):
            F2 * bad


def test_scalars_are_real_numbers_not_strings():
    with pytest.raises(TypeError, match=r"^learning_rate must be a real number, got '1.5'"):
        Recipe(learning_rate="1.5")
    with pytest.raises(TypeError, match=r"^momentum must be a real number"):
        Recipe("momentum", momentum=0.5 + 0j)
    assert Recipe(learning_rate=np.float32(0.5)).learning_rate == 0.5
