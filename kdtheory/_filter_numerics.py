r"""The scalar numerics of the optimizers' filters: ``(a, a/λ)`` per mode, without cancellation.

For each eigenvalue ``λ`` (``q = η λ``) and time or step count ``t``, the fraction ``a`` of the
label component learned and the stable ``a/λ``, exact at ``λ = 0`` and ``t = ∞``: gradient flow
(``−expm1``), gradient descent (``log1p`` on monotone modes), heavy-ball momentum in
cancellation-free closed forms for every ``β ∈ [0, 1)`` (separated, near-double and complex
roots), kernel ridge; and the stability bound ``η λ_max < 2(1 + β)``.

Private on purpose: the functions here take eigenvalues that are already float64, ``≥ 0`` and
finite, and return raw arrays. The public faces are :class:`kdtheory.filters.Recipe` and
:func:`kdtheory.filters.flow_filter` & co., which validate their input and wrap the arrays in a
:class:`~kdtheory.filters.Filter`; this module sits below them and imports neither (no cycle).
Imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import as_times, below_one, positive_scalar

if TYPE_CHECKING:
    from kdtheory.filters import Method

__all__ = ["momentum_coefficient", "pinv", "ridge_pair", "stability_bound", "time_pair"]


def pinv(lam: np.ndarray) -> np.ndarray:
    """``1/λ`` on ``λ > 0`` and ``0`` on ``λ = 0`` (the pseudo-inverse of ``diag(λ)``).

    Args:
      lam: eigenvalues ``λ ≥ 0``.

    Returns:
      Same shape as ``lam``.
    """
    pos = lam > 0
    return np.where(pos, 1.0 / np.where(pos, lam, 1.0), 0.0)


def momentum_coefficient(momentum: float) -> float:
    """Heavy ball's β, checked to lie in ``[0, 1)``.

    Args:
      momentum: β.

    Returns:
      ``float(momentum)``.

    Raises:
      TypeError: not a real number.
      ValueError: outside ``[0, 1)``.
    """
    return below_one(momentum, "momentum")


def stability_bound(beta: float) -> float:
    """``2(1 + β)``: gradient descent (β = 0) and heavy ball are stable iff ``η λ_max`` is below it.

    Args:
      beta: momentum β in ``[0, 1)`` (0 for gradient descent).

    Returns:
      The bound on ``η λ_max``.
    """
    return 2.0 * (1.0 + beta)


def ridge_pair(lam: np.ndarray, ridge: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Kernel ridge's ``(a, a/λ) = (λ/(λ + c), 1/(λ + c))``, the ``c = 0`` limit the pseudo-inverse.

    Args:
      lam: eigenvalues ``λ ≥ 0`` (validated), shape ``(m,)``.
      ridge: ridge strengths ``c ≥ 0``, any shape (validated here).

    Returns:
      ``(a, a/λ)``, shape ``ridge.shape + (m,)``.

    Raises:
      ValueError: a negative, NaN or infinite ridge strength.
    """
    c = as_times(ridge, "ridge")[..., None]
    if np.isinf(c).any():
        raise ValueError("ridge must be finite")
    denom = lam + c
    safe = np.where(denom > 0, denom, 1.0)
    a = np.where(lam > 0, lam / safe, 0.0)
    with np.errstate(over="ignore"):  # 1/λ of a subnormal λ at c = 0 is +inf, as the exact value overflows
        g = np.where(denom > 0, 1.0 / safe, 0.0)
    return a, g


def time_pair(
    lam: np.ndarray,
    t: ArrayLike,
    *,
    method: Method,
    learning_rate: float = 1.0,
    momentum: float = 0.0,
    allow_unstable: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The engine behind the flow, gd and momentum filters: ``(a, a/λ)`` at each time.

    Args:
      lam: eigenvalues ``λ ≥ 0`` (validated), shape ``(m,)``.
      t: times (flow) or whole steps (gd, momentum), any shape, ``np.inf`` the converged limit.
      method: ``"flow"``, ``"gd"`` or ``"momentum"``.
      learning_rate: η > 0.
      momentum: β in ``[0, 1)`` (``"momentum"`` only).
      allow_unstable: permit ``η λ_max ≥ 2(1 + β)`` at finite steps.

    Returns:
      ``(a, a/λ)``, shape ``t.shape + (m,)``, ``a/λ`` in the units of ``lam``.

    Raises:
      ValueError: bad times, learning rate or momentum; an unstable learning rate unless
        ``allow_unstable``; with it, ``t = ∞`` or a filter that overflows float64.
    """
    eta = positive_scalar(learning_rate, "learning_rate")
    t = as_times(t, "t", integer=method != "flow")
    beta = momentum_coefficient(momentum) if method == "momentum" else 0.0
    if method != "momentum" and momentum != 0.0:
        raise ValueError(f"momentum={momentum!r} is only used with method='momentum'")
    q = eta * lam
    q_max = float(q.max()) if q.size else 0.0
    unstable = False
    if method != "flow":
        bound = stability_bound(beta)
        if q_max >= bound:
            unstable = True
            msg = (
                f"learning_rate={eta!r} is beyond stability: learning_rate * lambda_max = "
                f"{q_max:.6g} >= {bound:g}" + (" (2(1 + momentum))" if method == "momentum" else "")
            )
            if not allow_unstable:
                raise ValueError(msg + "; pass allow_unstable=True to compute diverging modes")
            if np.isinf(t).any():
                raise ValueError(msg + ", so t = inf has no limit")
    tt = t[..., None]
    with np.errstate(over="ignore", invalid="ignore"):
        if method == "flow":
            a, h = _flow(q, tt)
        elif method == "gd":
            a, h = _gd(q, tt)
        else:
            a, h = _momentum(q, tt, beta)
        # Exact limits at t = inf: a = 1[λ > 0], a/λ = 1/λ or 0 (pseudo-inverse).
        inf = np.isinf(tt) & np.ones_like(q, dtype=bool)
        a = np.where(inf, np.where(lam > 0, 1.0, 0.0), a)  # λ > 0, even where η λ underflows
        g = np.where(inf, pinv(lam), eta * h)
    if unstable and not (np.all(np.isfinite(a)) and np.all(np.isfinite(g))):
        bad = np.asarray(t)[~np.all(np.isfinite(a) & np.isfinite(g), axis=-1)]
        raise ValueError(
            f"with allow_unstable=True, learning_rate={eta!r} diverges beyond float64 range by "
            f"t={float(np.min(bad)):g} steps; use fewer steps t or a smaller learning_rate"
        )
    return a, g


def _geom(delta: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``(1 − (1 − δ)^m)/δ`` for ``0 ≤ δ ≤ 1`` and finite ``m ≥ 0``, limit ``m`` at δ = 0."""
    delta = np.clip(delta, 0.0, 1.0)  # round-off may push δ past 1, where log1p(−δ) is NaN
    with np.errstate(divide="ignore", invalid="ignore"):
        num = -np.expm1(m * np.log1p(-delta))
        out = np.where(delta > 0, num / np.where(delta > 0, delta, 1.0), m)
    return np.where(m == 0, 0.0, out)


def _flow(q: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tf = np.where(np.isinf(t), 0.0, t)
    a = -np.expm1(-q * tf)
    return a, _geom_exp(q, tf)


def _geom_exp(q: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``(1 − e^{−q t})/q`` with limit ``t`` at q = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(q > 0, -np.expm1(-q * t) / np.where(q > 0, q, 1.0), t)
    return out


def _gd(q: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.where(np.isinf(s), 0.0, s)
    mono = q <= 1.0
    qm = np.where(mono, q, 0.0)
    # Monotone modes (q ≤ 1): a = −expm1(s log1p(−q)) and a/q = G_s(q), no cancellation.
    # Oscillating modes (1 < q < 2): a = 1 − (1 − q)^s, a/q has no cancellation since q > 1.
    a_osc = 1.0 - np.power(1.0 - np.where(mono, 2.0, q), s)
    a = np.where(mono, qm * _geom(qm, s), a_osc)
    h = np.where(mono, _geom(qm, s), a_osc / np.where(mono, 1.0, q))
    return a, h


def _momentum(q: np.ndarray, s: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Heavy-ball ``(a, a/q)`` per mode, for every ``β ∈ [0, 1)`` (issue 14: no NaN, no underflow).

    ``e = 1 − a`` comes from :func:`_momentum_remainder`, a closed form without cancellation or
    intermediate under/overflow for every β, including β whose square root or square underflows.
    Where ``1 − e < 1/4`` would cancel, ``a = q · (a/q)`` with ``a/q`` from :func:`_momentum_sum`
    (when it has a cancellation-free form there); elsewhere ``a/q = (1 − e)/q``. β = 0 is
    gradient descent, exactly.

    Args:
      q: ``η λ ≥ 0`` per mode.
      s: whole numbers of steps (``inf`` is a placeholder, replaced by the caller), broadcast
        against ``q``.
      beta: momentum β in ``[0, 1)``.

    Returns:
      ``(a, a/q)``, broadcast shape of ``q`` and ``s``.
    """
    s = np.where(np.isinf(s), 0.0, s)
    q, s = np.broadcast_arrays(q, s)
    if beta == 0.0:
        return _gd(q, s)
    shape = q.shape
    q, s = (np.ravel(x).astype(np.float64) for x in (q, s))
    with np.errstate(all="ignore"):  # branches pick their entries with masks; the rest is discarded
        roots = _momentum_roots(q, beta)
        e = _momentum_remainder(q, s, beta, roots)
        h, ok = _momentum_sum(q, s, beta, roots)
        a_e = 1.0 - e
        use_h = ok & (a_e < 0.25)
        a = np.where(use_h, q * h, a_e)
        h = np.where(use_h, h, a_e / np.where(q > 0, q, 1.0))
    a, h = np.where(s == 0, 0.0, a), np.where(s == 0, 0.0, h)
    return a.reshape(shape), h.reshape(shape)


@dataclass(frozen=True)
class _Roots:
    """Root geometry of ``μ² − b μ + β``, ``b = 1 + β − q`` (see :func:`_momentum_roots`)."""

    r: float  # √β, the modulus of complex roots
    pos: np.ndarray  # b ≥ 0
    b: np.ndarray  # 1 + β − q, as (1 − q) + β
    p: np.ndarray  # δ_1 + δ_2 = 1 − β + q, where δ = 1 − μ
    disc: np.ndarray  # b² − 4β = (q − (1 − r)²)(q − (1 + r)²)
    dev: np.ndarray  # |b|/2 − r: ≥ 0 real roots, < 0 complex roots


def _momentum_roots(q: np.ndarray, beta: float) -> _Roots:
    r"""Root geometry of heavy ball's characteristic polynomial, without cancellation.

    ``(1 − √β)²`` is formed as ``((1 − β)/(1 + √β))²`` (exact as β → 1); the discriminant as the
    product ``(q − (1 − r)²)(q − (1 + r)²)``, so it vanishes exactly at double roots, and
    ``|b|/2 − r`` as ``((1 − r)² − q)/2`` (``b ≥ 0``) or ``(q − (1 + r)²)/2`` (``b < 0``), the
    distance to the double root in the scale of ``q``. ``b = (1 − q) + β`` is exact where it
    is small (Sterbenz).

    Args:
      q: ``η λ ≥ 0``.
      beta: ``β ∈ (0, 1)``.

    Returns:
      The :class:`_Roots`.
    """
    r = float(np.sqrt(beta))
    lo = ((1.0 - beta) / (1.0 + r)) ** 2
    hi = (1.0 + r) ** 2
    pos = q <= 1.0 + beta
    dev = np.where(pos, 0.5 * (lo - q), 0.5 * (q - hi))
    return _Roots(r, pos, (1.0 - q) + beta, (1.0 - beta) + q, (q - lo) * (q - hi), dev)


def _momentum_remainder(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> np.ndarray:
    r"""``e_s = 1 − a_s`` of heavy ball (``β > 0``) in one of three cancellation-free forms.

    * Well-separated real roots ``μ_1`` (larger modulus), ``μ_2``, ``ρ = μ_2/μ_1 ∈ [0, 1)``:
      ``e_s = μ_1^s [1 + (1 − μ_1) ρ (1 − ρ^s)/(1 − ρ)]`` (all terms of one sign), with
      ``log μ_1 = log1p(−δ_1)``, ``δ_1 = q/δ_2``, ``δ_2 = (1 − β + q + √disc)/2`` where ``μ_1 > ½``
      (so ``s`` up to 1e12 keeps relative accuracy) and ``ρ = β/μ_1²`` (no ``√β`` to underflow).
    * Near-double real roots (``disc < 8 β q``), ``μ = ±r e^{±φ}``, ``cosh φ = |b|/2r``:
      ``e_s = r^s [cosh((s + ½)φ)/cosh(φ/2) + (1 − r) sinh(sφ)/sinh φ]`` (``b ≥ 0``) or
      ``(−r)^s [sinh((s + ½)φ)/sinh(φ/2) − (1 − r) sinh(sφ)/sinh φ]`` (``b < 0``), in
      exponentials of ``−φ`` times ``exp(s(log r + φ))``.
    * Complex roots ``±r e^{±iθ}``: the same with ``φ = iθ``; ``θ`` and the phases ``mθ`` are
      formed as ``m π/2 − m ψ``, ``ψ = asin(|b|/2r)``, when ``θ > π/3`` (the phase near a zero
      of ``cos`` keeps its relative accuracy).

    ``φ = 2 asinh(√(u/2))``, ``θ = 2 asin(√(v/2))``, ``u = −v = (|b|/2 − r)/r``: relative accuracy
    as the roots merge. ``1 − r = (1 − β)/(1 + r)``.

    Args:
      q: ``η λ ≥ 0``.
      s: whole numbers of steps, same shape as ``q``.
      beta: ``β ∈ (0, 1)``.
      g: :func:`_momentum_roots` of ``q``.

    Returns:
      ``e_s``, same shape as ``q``.
    """
    real = g.disc >= 0
    near = real & (g.disc < 8.0 * beta * q)
    sign = np.where(~g.pos & (np.mod(s, 2.0) == 1.0), -1.0, 1.0)  # (sign of the roots)^s
    e = np.ones_like(q)
    for form, mask in ((_remainder_separated, real & ~near), (_remainder_near, near), (_remainder_complex, ~real)):
        i = np.flatnonzero(mask & (s > 0))
        if i.size:
            sub = _Roots(g.r, g.pos[i], g.b[i], g.p[i], g.disc[i], g.dev[i])
            e[i] = sign[i] * form(q[i], s[i], beta, sub)
    return e


def _remainder_separated(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> np.ndarray:
    """``e_s`` (up to the sign ``(±1)^s`` of the roots) for well-separated real roots."""
    pos, b, p = g.pos, g.b, g.p
    sq = np.sqrt(g.disc)
    mu1 = np.where(pos, 0.5 * (b + sq), 0.5 * (b - sq))
    d1 = q / (0.5 * (p + sq))  # 1 − μ_1 when b ≥ 0
    close = pos & (mu1 > 0.5)
    log_mu1 = np.where(close, np.log1p(-d1), np.log(np.abs(mu1)))
    one_m_mu1 = np.where(close, d1, 1.0 - mu1)
    one_m_rho = np.clip(sq / np.abs(mu1), 0.0, 1.0)
    rho = np.minimum(beta / mu1**2, 1.0)
    log_rho = np.where(one_m_rho < 0.5, np.log1p(-one_m_rho), np.log(rho))
    geo = np.where(one_m_rho > 0, -np.expm1(s * log_rho) / np.where(one_m_rho > 0, one_m_rho, 1.0), s)
    e: np.ndarray = np.exp(s * log_mu1) * (1.0 + one_m_mu1 * rho * geo)
    return e


def _remainder_near(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> np.ndarray:
    """``e_s`` (up to the sign ``(±1)^s`` of the roots) for near-double real roots (hyperbolic)."""
    r = g.r
    omr = (1.0 - beta) / (1.0 + r)  # 1 − r
    phi = 2.0 * np.arcsinh(np.sqrt(g.dev / r / 2.0))
    pp = np.where(phi > 0, phi, 1.0)
    sinh_ratio = np.where(phi > 0, np.expm1(-2.0 * s * pp) / np.expm1(-2.0 * pp), s)  # e^{−(s−1)φ} sinh sφ/sinh φ
    cosh_half = np.where(phi > 0, (1.0 + np.exp(-(2.0 * s + 1.0) * phi)) / (1.0 + np.exp(-phi)), 1.0)
    sinh_half = np.where(phi > 0, np.expm1(-(2.0 * s + 1.0) * pp) / np.expm1(-pp), 2.0 * s + 1.0)
    tail = omr * np.exp(-phi) * sinh_ratio
    e: np.ndarray = np.exp(s * (0.5 * np.log(beta) + phi)) * np.where(g.pos, cosh_half + tail, sinh_half - tail)
    return e


def _remainder_complex(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> np.ndarray:
    """``e_s`` (up to the sign ``(±1)^s`` of the roots) for complex roots (trigonometric)."""
    r = g.r
    omr = (1.0 - beta) / (1.0 + r)  # 1 − r
    v = np.clip(-g.dev / r, 0.0, 2.0)
    wide = v > 0.5
    th = np.where(wide, 0.0, 2.0 * np.arcsin(np.sqrt(v / 2.0)))
    psi = np.where(wide, np.arcsin(np.clip(np.abs(g.b) / (2.0 * r), 0.0, 1.0)), 0.0)
    _, sin_s = _quarter_turns(np.where(wide, 2.0 * s, 0.0), s * psi, s * th)
    cos_h, sin_h = _quarter_turns(np.where(wide, 2.0 * s + 1.0, 0.0), (s + 0.5) * psi, (s + 0.5) * th)
    cos_1, sin_1 = _quarter_turns(np.where(wide, 1.0, 0.0), 0.5 * psi, 0.5 * th)
    _, sin_th = _quarter_turns(np.where(wide, 2.0, 0.0), psi, th)
    sin_ratio = sin_s / sin_th
    bracket = np.where(g.pos, cos_h / cos_1 + omr * sin_ratio, sin_h / sin_1 - omr * sin_ratio)
    e: np.ndarray = np.exp(s * 0.5 * np.log(beta)) * bracket
    return e


def _momentum_sum(q: np.ndarray, s: np.ndarray, beta: float, g: _Roots) -> tuple[np.ndarray, np.ndarray]:
    r"""``a_s/q = Σ_{m=1}^{s} D_m`` where it has a cancellation-free form, and where that is.

    With ``δ_{1,2} = 1 − μ_{1,2}`` (``δ_1 + δ_2 = 1 − β + q``, ``δ_1 δ_2 = q``) and ``n = s + 1``:

    * ``n · max|δ| ≤ ½``: the series ``Σ_{j≥1} (−1)^{j+1} C(n, j+1) h_{j−1}(δ_1, δ_2)``
      (``h_k`` the complete homogeneous symmetric polynomials, real for complex roots too; terms
      fall by ``n max|δ|/(j + 2)``, 24 terms reach ``1e-30``);
    * real roots in ``[0, 1]`` with ``δ_1 ≤ δ_2/2`` and ``n δ_2 > ½``: the divided difference
      ``[G(δ_1) − G(δ_2)]/(δ_2 − δ_1)``, ``G(δ) = (1 − (1 − δ)^n)/δ``.

    Args:
      q: ``η λ ≥ 0``.
      s: whole numbers of steps, same shape as ``q``.
      beta: ``β ∈ (0, 1)``.
      g: :func:`_momentum_roots` of ``q``.

    Returns:
      ``(h, ok)``: the sum (NaN where ``ok`` is False), and where it is valid.
    """
    pos, p, disc = g.pos, g.p, g.disc
    real = disc >= 0
    n = s + 1.0
    sq = np.sqrt(np.where(real, disc, 0.0))
    d2 = np.where(real, 0.5 * (p + sq), np.sqrt(q))  # max |δ| (b ≥ 0)
    d1 = q / d2
    ser = n * np.where(real & ~pos, np.inf, d2) <= 0.5
    dd = real & pos & ~ser & (d1 <= 0.5 * d2)

    h = np.full_like(q, np.nan)

    # series in units of d = max|δ|: c_j = C(n, j+1) d^{j−1}, hh_k = h_k/d^k
    i = np.flatnonzero(ser)
    d, ni = d2[i], n[i]
    pd, qd = p[i] / d, (q[i] / d) / d
    c = 0.5 * ni * (ni - 1.0)
    hh_prev, hh = np.zeros_like(d), np.ones_like(d)
    total = c * hh
    for j in range(1, 24):
        c = c * np.maximum(ni - j - 1.0, 0.0) / (j + 2.0) * d
        hh_prev, hh = hh, pd * hh - qd * hh_prev
        total = total + (-1.0) ** j * c * hh
    h[i] = total

    # divided difference of G at δ_1 < δ_2 (both roots in [0, 1]); log μ_2 = log(β/μ_1) if μ_2 < ½
    i = np.flatnonzero(dd)
    d1, d2, ni = d1[i], d2[i], n[i]
    l1 = np.log1p(-d1)
    l2 = np.where(d2 < 0.5, np.log1p(-np.minimum(d2, 0.5)), np.log(beta) - l1)
    G1 = np.where(d1 > 0, -np.expm1(ni * l1) / np.where(d1 > 0, d1, 1.0), ni)
    G2 = -np.expm1(ni * l2) / d2
    h[i] = (G1 - G2) / sq[i]
    return h, ser | dd


_HALF_SQRT2 = float(np.sqrt(0.5))
_COS_QUARTER = np.array([1.0, _HALF_SQRT2, 0.0, -_HALF_SQRT2, -1.0, -_HALF_SQRT2, 0.0, _HALF_SQRT2])
_SIN_QUARTER = np.roll(_COS_QUARTER, 2)  # sin(kπ/4) = cos((k − 2)π/4)


def _quarter_turns(n: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cos`` and ``sin`` of ``n π/4 − x + y`` for whole ``n ≥ 0``, with ``n π/4`` reduced exactly.

    Args:
      n: whole numbers of eighth turns.
      x: angle subtracted.
      y: angle added.

    Returns:
      ``(cos, sin)``, broadcast shape.
    """
    k = np.mod(n, 8.0).astype(np.intp)
    c, s = _COS_QUARTER[k], _SIN_QUARTER[k]
    alpha = y - x
    ca, sa = np.cos(alpha), np.sin(alpha)
    return c * ca - s * sa, s * ca + c * sa
