r"""Every spectral filter against an mpmath oracle at 60 digits, over the whole valid domain.

The oracle shares no code with :mod:`kdtheory.eigen`: gradient descent and heavy ball are the
per-mode recursion ``(D_{m+1}, D_m, Σ_{k≤m} D_k) ← A (D_m, D_{m−1}, Σ_{k<m} D_k)`` raised to the
``s``-th power by binary exponentiation of its 3 × 3 matrix in mpmath (so ``s`` up to ``1e12``
costs ~80 matrix products), which gives ``e_s = 1 − a_s = D_{s+1} − β D_s`` and
``a_s/q = Σ_{m=1}^{s} D_m`` (``q = ηλ``) with no cancellation; flow and ridge are their formulas
in mpmath. Inputs are the float64 values the library receives, taken exactly.

Tolerance, and why it is tied to the conditioning: the library must round ``q = η λ`` (and
``1 + β``, ``√β``, ``s·θ``), a relative perturbation of size ε of its inputs. A filter value
``f`` with relative condition number ``κ_f = |∂ log f/∂ log q| + |∂ log f/∂ log β|`` therefore
cannot be trusted beyond ``κ_f ε``; the oracle measures ``κ_f`` by differentiating itself (at
90 digits) and each value must agree to

    ``|f − f*| ≤ (1e-12 + C ε κ_f) |f*| + atol``,   ``C = 8``.

``κ`` is large exactly where the issue expected a looser bound: at near-double roots with many
steps (``∂/∂q`` of ``D_s`` grows like ``s²``), for huge ``s θ`` (the phase of an oscillating
mode), near the zeros of an oscillating ``1 − a``, and for ``e = 1 − a`` at ``s q ≫ 1``
(``κ_e = s q``). ``a``, ``1 − a`` and ``a/λ`` are each checked against their own ``κ``, so the
error of whichever is well conditioned stays at 1e-12. ``1 − a`` is formed from the returned
``a`` and carries its rounding, ``atol = ε``; ``a`` carries the rounding of a subnormal ``q`` or ``a``,
``atol = 5e-324 (1 + a/q)``, and ``a/λ`` that atol divided by ``λ``.
"""

from __future__ import annotations

import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from kdtheory import eigen
from kdtheory.testing import (
    edge_spectra,
    momenta,
    near_double_root_rates,
    rate_fractions,
    step_counts,
    tiny_positive,
)

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).smallest_subnormal)
HUGE = float(np.finfo(np.float64).max)
C_COND = 8.0
DPS = 60
# mpmath is slow: a fifth of the profile's examples (20 in "ci", 400 in "thorough").
ORACLE = settings(max_examples=max(10, settings.default.max_examples // 5))


def filters(method: str, evals, t, **kw) -> tuple[np.ndarray, np.ndarray]:
    """Adapter to the public API (the one place to change if it is renamed): ``(a, a/λ)``."""
    f = {
        "flow": eigen.flow_filter,
        "gd": eigen.gd_filter,
        "momentum": eigen.momentum_filter,
        "ridge": eigen.ridge_filter,
    }[method](evals, t, **kw)
    return f.a, f.a_over_eval


# ---------------------------------------------------------------------- the oracle
def _matmul(X, Y):
    return [[mp.fsum(X[i][k] * Y[k][j] for k in range(3)) for j in range(3)] for i in range(3)]


def heavy_ball(q, beta, s: int):
    """``(e_s, a_s/q)`` of heavy ball (β = 0: gradient descent) at exact ``q``, ``β``.

    ``e_s = D_{s+1} − β D_s`` cancels when ``e_s`` is tiny next to ``D``; the working precision is
    then raised by the digits lost (``e_s = −β²`` at ``q = 1``, ``β = 1e-300``, ``s = 3``).
    """
    q, beta = mp.mpf(q), mp.mpf(beta)
    if s == 0:
        return mp.mpf(1), mp.mpf(0)
    extra = 0
    while True:
        with mp.workdps(mp.mp.dps + extra):
            one, zero = mp.mpf(1), mp.mpf(0)
            A = [[1 + beta - q, -beta, zero], [one, zero, zero], [one, zero, one]]
            R, k = None, s
            while k:
                if k & 1:
                    R = A if R is None else _matmul(R, A)
                k >>= 1
                if k:
                    A = _matmul(A, A)
            e, h = R[0][0] + R[0][1], R[2][0]
            big = max(abs(R[0][0]), abs(R[0][1]))
            lost = int(mp.log10(big / abs(e))) + 1 if e != 0 and big > 0 else (0 if big == 0 else 10**6)
        if lost <= 20 + extra or extra > 4000:
            return +e, +h
        extra = min(lost + 20, 4001)


def _exact(method: str, lam: float, t: float, eta: float, beta: float, dq=0, db=0):
    """``(a, e, a/λ)`` exactly (mpf), inputs optionally perturbed: ``q(1 + dq)``, ``β(1 + db)``."""
    lam, eta, beta = mp.mpf(lam), mp.mpf(eta), mp.mpf(beta) * (1 + db)
    if method == "ridge":
        c = mp.mpf(t)
        lam = lam * (1 + dq)
        if lam == 0:
            return mp.mpf(0), mp.mpf(1), (1 / c if c > 0 else mp.mpf(0))
        return lam / (lam + c), c / (lam + c), 1 / (lam + c)
    if mp.isinf(t):
        return (mp.mpf(1), mp.mpf(0), 1 / lam) if lam > 0 else (mp.mpf(0), mp.mpf(1), mp.mpf(0))
    q = eta * lam * (1 + dq)
    if method == "flow":
        x = q * mp.mpf(t)
        h = -mp.expm1(-x) / q if q > 0 else mp.mpf(t)
        return q * h, mp.exp(-x), eta * h
    e, h = heavy_ball(q, beta, int(t))
    return q * h, e, eta * h


def _kappa(method, lam, t, eta, beta, exact):
    """Relative condition numbers of ``(a, e, a/λ)`` w.r.t. relative changes of ``q`` and ``β``."""
    if method == "ridge" or mp.isinf(t) or lam == 0:
        return (0.0, 0.0, 0.0)
    d = mp.mpf(10) ** -40
    kap = [mp.mpf(0)] * 3
    for kw in ({"dq": d}, {"db": d}) if method == "momentum" and beta > 0 else ({"dq": d},):
        for i, (f1, f0) in enumerate(zip(_exact(method, lam, t, eta, beta, **kw), exact, strict=True)):
            if f0 != 0:
                kap[i] += abs((f1 - f0) / (d * f0))
    return tuple(min(float(k), HUGE) for k in kap)


def check_against_oracle(method: str, evals, t, *, eta: float = 1.0, beta: float = 0.0) -> float:
    """Compare the library with the oracle mode by mode; return the worst error / tolerance ratio."""
    evals, t = np.asarray(evals, float), np.asarray(t, float)
    kw = {} if method == "ridge" else {"learning_rate": eta}
    if method == "momentum":
        kw["momentum"] = beta
    a, g = filters(method, evals, t, **kw)
    assert a.shape == g.shape == t.shape + evals.shape
    worst = 0.0
    with mp.workdps(DPS):
        for idx in np.ndindex(a.shape):
            lam, tt = float(evals[idx[-1]]), float(t[idx[:-1]])
            where = f"{method} lam={lam!r} t={tt!r} eta={eta!r} beta={beta!r}"
            A, E, G = _exact(method, lam, tt, eta, beta)
            with mp.workdps(90):
                ka, ke, kg = _kappa(method, lam, tt, eta, beta, _exact(method, lam, tt, eta, beta))
            got_a, got_g = float(a[idx]), float(g[idx])
            assert np.isfinite(got_a), f"a = {got_a} at {where}"
            h = float(G / mp.mpf(eta)) if method != "ridge" and not mp.isinf(tt) else 0.0
            for name, got, exact, kappa, atol in (
                ("a", got_a, A, ka, TINY * (1 + abs(h))),
                ("1 - a", 1.0 - got_a, E, ke, EPS),
                ("a/lambda", got_g, G, kg, TINY * (1 + abs(h)) / lam if lam > 0 else 0.0),
            ):
                if abs(exact) > HUGE:  # the exact value overflows float64 (1/λ at subnormal λ)
                    assert got == np.inf, f"{name} = {got!r}, exact {mp.nstr(exact, 5)} overflows, at {where}"
                    continue
                assert np.isfinite(got), f"{name} = {got!r} at {where}"
                # every output rounds to a float64: subnormal and underflowed values err by ≤ 5e-324
                bound = float((1e-12 + C_COND * EPS * mp.mpf(kappa)) * abs(exact)) + atol + TINY
                err = float(abs(mp.mpf(got) - exact))
                assert err <= bound, (
                    f"{name}: got {got!r}, exact {mp.nstr(exact, 17)}, error {err:.3e} > bound {bound:.3e}"
                    f" (kappa {kappa:.3g}) at {where}"
                )
                worst = max(worst, err / bound if bound > 0 else 0.0)
    return worst


# ---------------------------------------------------------------------- properties
@st.composite
def momentum_cases(draw):
    beta = draw(momenta())
    lam = draw(edge_spectra(max_size=4))
    bound = eigen.max_learning_rate(lam, method="momentum", momentum=beta)
    if beta > 0 and draw(st.booleans()):
        eta = draw(near_double_root_rates(float(lam[0]), beta))
    else:
        eta = draw(rate_fractions()) * bound
    t = draw(st.lists(step_counts(), min_size=1, max_size=3))
    return lam, t, eta, beta


@ORACLE
@given(momentum_cases())
@example((np.array([1.0]), [1.0], 0.5, 1.66e-22))  # issue 14's reported example (recursion: a = 0.5)
@example((np.array([1.0, 0.3, 0.0]), [1.0, 5.0, 120.0], 0.5, 2.3e-25))  # issue 14, via dynamics.train
@example((np.array([1.0, 0.5, 0.1]), [7.0, 120.0], 1.8, 1e-30))  # the sweep's NaN at β = 1e-30
@example((np.array([1.0, 0.5, 0.1]), [120.0], 1.998, 1e-17))  # ... and at β = 1e-17
@example((np.array([2.5e-19, 1e-20, 1e-3]), [1e12, 100.0], 1.0, 1 - 1e-9))  # β → 1, huge s
def test_momentum_matches_oracle(case):
    lam, t, eta, beta = case
    assume(eta * lam.max() < 2 * (1 + beta) and np.isfinite(eta))
    check_against_oracle("momentum", lam, t, eta=eta, beta=beta)


@ORACLE
@given(edge_spectra(max_size=4), rate_fractions(), st.lists(step_counts(), min_size=1, max_size=3))
def test_gd_matches_oracle(lam, frac, t):
    eta = frac * eigen.max_learning_rate(lam)
    check_against_oracle("gd", lam, t, eta=eta)


@ORACLE
@given(
    edge_spectra(max_size=4),
    st.one_of(rate_fractions(), st.floats(1.0, 1e6)),
    st.lists(st.one_of(step_counts(), st.floats(0.0, 1e3), tiny_positive()), min_size=1, max_size=3),
)
def test_flow_matches_oracle(lam, scale, t):
    eta = scale / lam[0]
    check_against_oracle("flow", lam, t, eta=eta)


@ORACLE
@given(
    edge_spectra(max_size=4),
    st.lists(
        st.one_of(st.just(0.0), tiny_positive(), st.floats(-300.0, 300.0).map(lambda k: 10.0**k)),
        min_size=1,
        max_size=3,
    ),
)
def test_ridge_matches_oracle(lam, c):
    # 1/(λ + c) overflows to inf below 1/HUGE (test_ridge_subnormal_eigenvalue_overflow_is_silent);
    # the oracle's finite value is not representable there
    denom = lam[None, :] + np.asarray(c)[:, None]
    assume(not ((denom > 0) & (denom < 1 / HUGE)).any())
    check_against_oracle("ridge", lam, c)


def test_near_double_roots_many_modes():
    """η λ = (1 ± √β)²(1 + δ) for δ from 0 to 1e-4 on both sides, with long runs."""
    for beta in (1e-30, 1e-10, 0.25, 0.81, 0.999, 1 - 1e-9):
        r = np.sqrt(beta)
        roots = [((1 - beta) / (1 + r)) ** 2, (1 + r) ** 2]
        deltas = [0.0] + [s * 10.0**-k for k in (16, 12, 8, 4) for s in (-1, 1)]
        q = np.array([q0 * (1 + d) for q0 in roots for d in deltas])
        q = q[q < 2 * (1 + beta)]
        check_against_oracle("momentum", q, [1.0, 2.0, 10.0, 120.0, 4321.0], eta=1.0, beta=beta)


# ---------------------------------------------------------------------- the sweep of issue 14
SWEEP_MOMENTA = (0.0, 1e-300, 1e-200, 1e-30, 1e-20, 1e-17, 1e-16, 1e-10, 0.3, 0.9, 0.999, 1 - 1e-9)


def sweep_cases():
    """Issue 14's sweep: momenta, five learning-rate fractions, eigenvalues 0..1 and the four
    near-double roots ``η λ = (1 ± √β)²(1 ± 1e-9)`` (those inside the stability region)."""
    for beta in SWEEP_MOMENTA:
        r = np.sqrt(beta)
        for frac in (0.01, 0.25, 0.5, 0.9, 0.999):
            eta = frac * 2 * (1 + beta)
            lam = list(np.linspace(0.0, 1.0, 11))
            roots = (((1 - beta) / (1 + r)) ** 2, (1 + r) ** 2)
            lam += [q0 * (1 + d) / eta for q0 in roots for d in (-1e-9, 0, 1e-9)]
            yield beta, eta, np.array([x for x in lam if x * eta < 2 * (1 + beta)])


@pytest.mark.slow
def test_issue14_sweep_no_nan_and_agrees():
    steps = np.arange(121.0)
    for beta, eta, lam in sweep_cases():
        a, g = filters("momentum", lam, steps, learning_rate=eta, momentum=beta)
        assert np.isfinite(a).all() and np.isfinite(g).all(), (beta, eta)
        check_against_oracle("momentum", lam, [1.0, 7.0, 120.0], eta=eta, beta=beta)


# ---------------------------------------------------------------------- regressions
def test_issue14_falsifying_example_eigen():
    """``lam=[1.0]``, ``momentum=1.66e-22``, ``η = ¼ · max_learning_rate``, one step: ``a = 0.5``."""
    eta = 0.25 * eigen.max_learning_rate([1.0], method="momentum", momentum=1.66e-22)
    a, g = filters("momentum", [1.0], [1.0], learning_rate=eta, momentum=1.66e-22)
    assert a[0, 0] == 0.5 and g[0, 0] == 0.5


def test_ridge_subnormal_eigenvalue_overflow_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a, g = filters("ridge", [1.0, TINY], [0.0])
    assert a[0, 1] == 1.0 and g[0, 1] == np.inf


def test_inf_limit_when_learning_rate_times_eval_underflows():
    """λ > 0 learns everything at t = ∞ (``a = 1``, ``a/λ = 1/λ``) even where ``η λ`` underflows."""
    for method, kw in (("flow", {}), ("gd", {}), ("momentum", {"momentum": 0.5})):
        a, g = filters(method, [1.0, 1e-310], [np.inf], learning_rate=1e-20, **kw)
        assert a[0, 1] == 1.0, method
