r"""The ridge / kernel-ridge self-distillation family, in closed form (docs/theory.md §4).

Every filter here is composed by the one rule :meth:`kdtheory.eigen.Filter.train_from`; the
papers' closed sums (Borup's geometric sum, Pareek's polynomials) are the tests' oracles.

* **Borup & Andersen (2021)**: kernel ridge with fixed ridge strength ``c``, rounds on
  ``α y + (1 − α) f^{(τ−1)}(X)`` (α weighs the **ground truth**). With ``A = λ/(λ + c)``:
  ``B^{(1)} = A``, ``B^{(τ)} = A((1 − α) B^{(τ−1)} + α)``; closed sum
  ``B^{(τ)} = α A (1 − x^{τ−1})/(1 − x) + x^{τ−1} A`` with ``x = (1 − α) A``; limit for α > 0:
  ``λ/(λ + c/α)`` (ridge with ``c/α``); α = 0 collapses to 0.
* **Mobahi, Farajtabar, Bartlett (2020)**: each round refits the previous round's predictions
  under ``(1/n)‖f(X) − y_t‖² ≤ ε``; with ``G = K/n = V D Vᵀ`` round t applies ``D (c_t I + D)⁻¹``
  with ``c_t > 0`` solving ``Σ_i (c_t z_{t,i}/(c_t + d_i))² = n ε``; once ``‖y_t‖² ≤ n ε`` the
  solution is ``f ≡ 0`` (collapse).
* **Das & Sanghavi (2023)**: ridge teacher ``θ_T``, student
  ``(XᵀX + c I)⁻¹ Xᵀ(ξ X θ_T + (1 − ξ) y)`` (ξ weighs the **teacher**); per direction the student
  is ``φ_k(ξ) = m_k (1 − ξ (1 − m_k))`` times the least-squares coefficient, ``m = λ/(λ + c)``; the
  estimation error is quadratic in ξ, so ξ* is closed form.
* **Pareek, Du, Oh (2024)**: k steps with free ξ's give the filter ``m p_k(m)``, ``p_k`` of degree
  k with ``p_k(1) = 1``; with as many steps as distinct eigenvalues any filter is reachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from numpy.polynomial import Polynomial
from numpy.typing import ArrayLike

from kdtheory._checks import as_array, as_float_array, positive_scalar
from kdtheory.eigen import Filter, Recipe, Spectrum, ridge_filter

__all__ = [
    "borup_filters",
    "borup_limit",
    "MobahiRounds",
    "mobahi_rounds",
    "DasSanghavi",
    "das_sanghavi",
    "pareek_polynomial",
    "pareek_filter",
    "pareek_weights",
]


def _evals(evals: ArrayLike) -> np.ndarray:
    lam = as_float_array(evals, "evals", ndim=(1,))
    if (lam < 0).any():
        raise ValueError("evals must be >= 0")
    return lam


def _step_weights(teacher_weights: Sequence[float]) -> list[float]:
    """The weights ξ as Python floats (any real values, NaN/inf left to the caller), or a named error."""
    w = as_array(teacher_weights, "teacher_weights")
    if w.ndim != 1 or not (np.issubdtype(w.dtype, np.integer) or np.issubdtype(w.dtype, np.floating)):
        raise TypeError(f"teacher_weights must be a sequence of real numbers, got {teacher_weights!r}")
    return [float(x) for x in w]


def _alpha(truth_weight: float) -> float:
    a = positive_scalar(truth_weight, "truth_weight", allow_zero=True)
    if a > 1:
        raise ValueError(f"truth_weight must lie in [0, 1], got {a!r}")
    return a


# ---------------------------------------------------------------------- Borup & Andersen
def borup_filters(evals: ArrayLike, *, ridge: float, truth_weight: float, rounds: int) -> Filter:
    r"""Filters ``B^{(1)}, …, B^{(rounds)}`` of Borup & Andersen's kernel-ridge rounds.

    Built by the one composition rule (:meth:`kdtheory.eigen.Filter.train_from`) with the ridge
    filter ``A = λ/(λ + c)``: ``B^{(1)} = A.train_from(ZERO, ONE)``,
    ``B^{(τ)} = A.train_from(ZERO, (1 − α) B^{(τ−1)} + α ONE)``, i.e. ``B^{(τ)} = A((1 − α) B^{(τ−1)} + α)``
    and ``B^{(τ)}/λ = ((1 − α) B^{(τ−1)} + α)/(λ + c)`` (exact at λ = 0). The paper's closed sum
    ``α A (1 − x^{τ−1})/(1 − x) + x^{τ−1} A``, ``x = (1 − α) A``, is the tests' oracle.

    Args:
      evals: kernel eigenvalues λ ≥ 0, ``(m,)``.
      ridge: ridge strength ``c > 0``.
      truth_weight: α in ``[0, 1]``, the weight on the **ground truth** labels.
      rounds: number of rounds τ ≥ 1.

    Returns:
      A :class:`~kdtheory.eigen.Filter` of shape ``(rounds, m)``; predictions of round τ are
      ``U diag(B^{(τ)}) Uᵀ y`` (row ``τ − 1``).

    Raises:
      ValueError: ``ridge ≤ 0``, α outside ``[0, 1]``, ``rounds`` not a positive integer.
    """
    lam = _evals(evals)
    c = positive_scalar(ridge, "ridge")
    alpha = _alpha(truth_weight)
    if isinstance(rounds, bool) or int(rounds) != rounds or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    zero, one = Filter.zero(lam.size), Filter.labels(lam)
    A = ridge_filter(lam, c)
    out = [A.train_from(zero, one)]
    for _ in range(1, int(rounds)):
        out.append(A.train_from(zero, (1 - alpha) * out[-1] + alpha * one))
    return Filter.stack(out)


def borup_limit(evals: ArrayLike, *, ridge: float, truth_weight: float) -> Filter:
    r"""``lim_{τ→∞} B^{(τ)}``: the fixed point of one Borup round.

    ``B = A.train_from(ZERO, (1 − α) B + α ONE)`` solves to ``B = α A/(1 − (1 − α) A)``
    ``= λ/(λ + c/α)``: ridge with strength ``c/α`` (α > 0), with ``B/λ = 1/(λ + c/α)``; α = 0
    collapses to ``ZERO``.

    Args:
      evals: kernel eigenvalues λ ≥ 0, ``(m,)``.
      ridge: ridge strength ``c > 0``.
      truth_weight: α in ``[0, 1]``.

    Returns:
      A :class:`~kdtheory.eigen.Filter` of shape ``(m,)``.
    """
    lam = _evals(evals)
    c = positive_scalar(ridge, "ridge")
    alpha = _alpha(truth_weight)
    if alpha == 0:
        return Filter.zero(lam.size)
    return ridge_filter(lam, c / alpha)


# ---------------------------------------------------------------------- Mobahi et al.
@dataclass(frozen=True, eq=False)
class MobahiRounds:
    r"""Result of :func:`mobahi_rounds`.

    Attributes:
      ridge: ``c_t`` per round (NaN after collapse), shape ``(rounds,)``.
      filters: cumulative filter of round t relative to ``y`` (``Π_{s≤t} d/(c_s + d)``, with
        ``a/λ = Π_{s<t} d/(c_s + d) · 1/(λ + n c_t)``), a :class:`~kdtheory.eigen.Filter` of shape
        ``(rounds, m)``, for test predictions through :func:`kdtheory.dynamics.apply_filter`.
      predictions: training predictions after each round, ``(rounds, n[, k])``.
      collapsed_at: index of the first round whose solution is ``f ≡ 0`` (``None`` if none).
      target_norms_sq: ``‖y_t‖²`` of each round's target (round 0: the labels).
    """

    ridge: np.ndarray
    filters: Filter
    predictions: np.ndarray
    collapsed_at: int | None
    target_norms_sq: np.ndarray

    @property
    def rounds_before_collapse(self) -> int:
        """Number of non-collapsed rounds."""
        return self.ridge.size if self.collapsed_at is None else self.collapsed_at


def mobahi_rounds(spectrum: Spectrum, y: ArrayLike, *, epsilon: float, rounds: int) -> MobahiRounds:
    r"""Self-distillation rounds under the fixed constraint ``(1/n)‖f(X) − y_t‖² ≤ ε``.

    With ``d = λ/n`` (eigenvalues of ``K/n``) and ``z_t = Uᵀ y_t``, round t solves
    ``Σ_i (c z_{t,i}/(c + d_i))² = n ε`` for ``c_t`` (Brent on ``log c``), then
    ``y_{t+1} = U diag(d/(c_t + d)) z_t``. If ``‖y_t‖² ≤ n ε`` the round collapses: ``f ≡ 0`` and
    every later round too. Round t's filter is ``R_{c_t}.train_from(ZERO, F_{t−1})`` with
    ``R_c`` the ridge filter of a ``"mean"``-normalized recipe and ``F_{−1} = ONE``.

    Args:
      spectrum: the kernel's spectrum.
      y: labels ``(n,)`` or ``(n, k)``.
      epsilon: ε > 0, the mean squared-error budget.
      rounds: number of rounds.

    Returns:
      A :class:`MobahiRounds`.

    Raises:
      ValueError: the constraint cannot be met at any ``c > 0`` (the label part on zero
        eigenvalues alone exceeds ``n ε``; Mobahi et al. assume a full-rank kernel).
    """
    if not isinstance(spectrum, Spectrum):
        raise TypeError("spectrum must be a kdtheory.eigen.Spectrum")
    eps = positive_scalar(epsilon, "epsilon")
    n = spectrum.n
    ridge_mean = Recipe("ridge", normalization="mean")  # Mobahi's K/n: eigenvalues d = λ/n
    d = spectrum.evals * ridge_mean.eigenvalue_scale(n)
    yt = spectrum.check_labels(y, name="y")
    z = spectrum.U.T @ yt.reshape(n, -1)
    perp = float(np.sum(spectrum.complement(yt) ** 2))
    z2 = np.sum(z * z, axis=1)
    budget = n * eps
    cs, filt, preds, norms = [], [], [], []
    zero = Filter.zero(d.size)
    cum = Filter.labels(spectrum.evals)  # F_{-1} = ONE: round 0 fits the labels
    collapsed = None
    for t in range(rounds):
        norm_sq = float(np.sum(z2) + perp)
        norms.append(norm_sq)
        if collapsed is not None or norm_sq <= budget:
            collapsed = t if collapsed is None else collapsed
            cs.append(np.nan)
            cum = zero
            z2 = np.zeros_like(z2)
            perp = 0.0
        else:
            floor = float(np.sum(z2[d == 0]) + perp)
            if floor > budget:
                raise ValueError(
                    f"round {t}: the labels' part on zero eigenvalues has squared norm {floor:.4g} > n*epsilon "
                    f"= {budget:.4g}; the constraint cannot be met (Mobahi et al. assume a full-rank kernel)"
                )

            def lhs(logc: float, z2: np.ndarray = z2, perp: float = perp) -> float:
                c = np.exp(logc)
                return float(np.sum((c / (c + d)) ** 2 * z2) + perp) - budget

            lo, hi = np.log(max(d.max(), 1e-300)) - 50.0, np.log(max(d.max(), 1e-300)) + 50.0
            while lhs(hi) < 0:
                hi += 50.0
            while lhs(lo) > 0 and lo > -700:
                lo -= 50.0
            c = float(np.exp(scipy.optimize.brentq(lhs, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps)))
            step = ridge_mean.filter(spectrum, c)  # d/(c + d), d = λ/n
            cum = step.train_from(zero, cum)
            z2 = z2 * step.a**2
            perp = 0.0  # the complement of span(U) is not reproduced by the kernel machine
            cs.append(c)
        filt.append(cum)
        preds.append(spectrum.U @ (cum.a[:, None] * (spectrum.U.T @ np.asarray(y, float).reshape(n, -1))))
    P = np.array(preds)
    if np.ndim(y) == 1:
        P = P[..., 0]
    return MobahiRounds(np.array(cs), Filter.stack(filt), P, collapsed, np.array(norms))


# ---------------------------------------------------------------------- Das & Sanghavi
@dataclass(frozen=True)
class DasSanghavi:
    r"""Optimal teacher weight of a ridge student (Das & Sanghavi 2023).

    Attributes:
      xi_star: the minimizer ξ* of the expected estimation error (ξ on the **teacher**).
      risk_teacher: error at ξ = 0 (the ridge teacher itself).
      risk_star: error at ξ*.
      quadratic: coefficients ``(r0, r1, r2)`` of ``risk(ξ) = r0 + r1 ξ + r2 ξ²``.
    """

    xi_star: float
    risk_teacher: float
    risk_star: float
    quadratic: tuple[float, float, float]

    def risk(self, xi: ArrayLike) -> np.ndarray:
        """Expected ``‖θ_S(ξ) − θ*‖²`` at ``xi``.

        Args:
          xi: teacher weights ξ, any shape.

        Returns:
          The risk, shape of ``xi``.
        """
        r0, r1, r2 = self.quadratic
        xi = np.asarray(xi, dtype=float)
        r: np.ndarray = r0 + r1 * xi + r2 * xi * xi
        return r


def das_sanghavi(evals: ArrayLike, theta_star: ArrayLike, *, noise_var: float, ridge: float) -> DasSanghavi:
    r"""ξ* for the student ``(XᵀX + c I)⁻¹ Xᵀ(ξ X θ_T + (1 − ξ) y)``, ``y = X θ* + N(0, σ² I)``.

    In the right-singular basis of X (``λ_k = s_k²``, ``θ*_k`` the coordinates of θ*), the
    student's coefficient is ``φ_k(ξ)(θ*_k + ε_k/s_k)`` with ``φ_k = m_k − ξ m_k (1 − m_k)``,
    ``m_k = λ_k/(λ_k + c)``, so ``E‖θ_S − θ*‖² = Σ_k (φ_k − 1)² θ*_k² + φ_k² σ²/λ_k`` (directions
    with λ_k = 0 contribute ``θ*_k²``): a quadratic in ξ with minimizer
    ``ξ* = Σ [(m_k − 1) q_k θ*_k² + m_k q_k σ²/λ_k] / Σ q_k² (θ*_k² + σ²/λ_k)``, ``q_k = m_k(1 − m_k)``.

    Args:
      evals: eigenvalues of ``XᵀX`` (``s_k²``), ``(m,)``.
      theta_star: θ* in the same basis, ``(m,)``.
      noise_var: σ² ≥ 0.
      ridge: ridge strength c > 0.

    Returns:
      A :class:`DasSanghavi`.

    Raises:
      ValueError: shapes that differ, bad scalars, or a risk that does not depend on ξ.
    """
    lam = _evals(evals)
    th = as_float_array(theta_star, "theta_star", ndim=(1,))
    if th.shape != lam.shape:
        raise ValueError(f"theta_star must have shape {lam.shape}, got {th.shape}")
    s2 = positive_scalar(noise_var, "noise_var", allow_zero=True)
    c = positive_scalar(ridge, "ridge")
    pos = lam > 0
    m = ridge_filter(lam, c).a
    q = m * (1 - m)
    v = np.where(pos, s2 / np.where(pos, lam, 1.0), 0.0)  # variance of the least-squares coefficient
    p = m - 1.0
    # risk(ξ) = Σ (p − ξq)² θ² + (m − ξq)² v  (+ Σ_{λ=0} θ², where m = q = 0 gives exactly θ²)
    r0 = float(np.sum(p * p * th * th + m * m * v))
    r1 = float(np.sum(-2 * p * q * th * th - 2 * m * q * v))
    r2 = float(np.sum(q * q * (th * th + v)))
    if r2 == 0:
        raise ValueError("the risk does not depend on xi (all m_k in {0, 1}); xi* is undefined")
    xi = -r1 / (2 * r2)
    return DasSanghavi(xi, r0, r0 + r1 * xi + r2 * xi * xi, (r0, r1, r2))


# ---------------------------------------------------------------------- Pareek, Du, Oh
def pareek_polynomial(teacher_weights: Sequence[float]) -> Polynomial:
    r"""``p_k`` for steps with teacher weights ``ξ_2, …, ξ_{k+1}``: the k-step filter is ``m p_k(m)``.

    ``p_0 = 1``; ``p_j(m) = ξ_{j+1} m p_{j−1}(m) + 1 − ξ_{j+1}``; always ``p_j(1) = 1``. The
    tests use it as the oracle of :func:`pareek_filter`; :func:`pareek_weights` inverts it.

    Args:
      teacher_weights: ξ of each step after the first.

    Returns:
      The polynomial ``p_k``.
    """
    p = Polynomial([1.0])
    for xi in _step_weights(teacher_weights):
        p = xi * Polynomial([0.0, 1.0]) * p + (1.0 - xi)
    return p


def pareek_filter(evals: ArrayLike, *, ridge: float, teacher_weights: Sequence[float]) -> Filter:
    r"""Filter of k self-distillation steps with free weights, ``m p_k(m)``, ``m = λ/(λ + c)``.

    Composed by the one rule: ``F_0 = M.train_from(ZERO, ONE)``,
    ``F_j = M.train_from(ZERO, ξ_{j+1} F_{j−1} + (1 − ξ_{j+1}) ONE)`` with ``M`` the ridge filter.

    Args:
      evals: eigenvalues λ ≥ 0, ``(m,)``.
      ridge: ridge strength c > 0.
      teacher_weights: ξ of each step after the first (may lie outside [0, 1]).

    Returns:
      A :class:`~kdtheory.eigen.Filter` of shape ``(m,)``.
    """
    lam = _evals(evals)
    M = ridge_filter(lam, positive_scalar(ridge, "ridge"))
    zero, one = Filter.zero(lam.size), Filter.labels(lam)
    F = M.train_from(zero, one)
    for xi in _step_weights(teacher_weights):
        if not np.isfinite(xi):
            raise ValueError(f"teacher_weights must be finite, got {xi!r}")
        F = M.train_from(zero, xi * F + (1.0 - xi) * one)
    return F


def pareek_weights(evals: ArrayLike, *, ridge: float, target: ArrayLike) -> np.ndarray:
    r"""Teacher weights ``ξ`` whose k-step filter equals ``target`` at the given eigenvalues.

    Interpolates ``p`` through ``(m_i, target_i/m_i)`` at the distinct positive eigenvalues and
    ``(1, 1)``, giving degree ``k`` = number of distinct eigenvalues, then peels off
    ``ξ_{j+1} = 1 − p_j(0)``, ``p_{j−1} = (p_j − p_j(0))/(ξ_{j+1} m)``.

    Args:
      evals: eigenvalues λ ≥ 0, ``(m,)``.
      ridge: ridge strength c > 0.
      target: the filter to realize, ``(m,)`` (0 where λ = 0).

    Returns:
      The weights ξ, to pass to :func:`pareek_filter`.

    Raises:
      ValueError: the target is not realizable (a peeled ξ is 0 while the remaining polynomial
        is not constant), or the eigenvalues are not distinct where the targets differ.
    """
    lam = _evals(evals)
    c = positive_scalar(ridge, "ridge")
    tgt = as_float_array(target, "target", ndim=(1,))
    if tgt.shape != lam.shape:
        raise ValueError(f"target must have shape {lam.shape}, got {tgt.shape}")
    pos = lam > 0
    if np.any(tgt[~pos] != 0):
        raise ValueError("a filter is 0 at zero eigenvalues; target must be 0 there")
    m_all = ridge_filter(lam[pos], c).a
    vals = tgt[pos] / m_all
    m_u, inv = np.unique(m_all, return_inverse=True)
    v_u = np.array([vals[inv == i][0] for i in range(m_u.size)])
    if not np.allclose(vals, v_u[inv], rtol=1e-12, atol=1e-14):
        raise ValueError("target differs between equal eigenvalues: no filter can do that")
    xs = np.r_[m_u, 1.0]
    ys = np.r_[v_u, 1.0]
    p = Polynomial.fit(xs, ys, deg=xs.size - 1).convert()
    xis = []
    while p.degree() > 0 or abs(p.coef[0] - 1.0) > 1e-9:
        c0 = float(p.coef[0])
        xi = 1.0 - c0
        if abs(xi) < 1e-14:
            raise ValueError("target filter is not realizable by self-distillation steps")
        rest = Polynomial(p.coef[1:]) if p.coef.size > 1 else Polynomial([0.0])
        p = rest / xi
        xis.append(xi)
        if len(xis) > xs.size + 1:
            raise ValueError("peeling did not terminate; target not realizable")
    return np.array(xis[::-1])
