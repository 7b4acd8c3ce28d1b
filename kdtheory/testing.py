r"""Hypothesis strategies and one tolerance helper, for kdtheory's tests and for yours.

Requires the ``test`` extra (``pip install 'kdtheory[test]'``), which brings Hypothesis.

The strategies draw the *structure* (sizes, spectrum shape, condition number, rank) from
Hypothesis and the dense random parts (orthogonal bases, labels) from a seeded numpy generator
whose seed Hypothesis also draws, so examples shrink to small sizes and simple spectra and stay
reproducible.

Examples:
  >>> from hypothesis import given
  >>> from kdtheory.testing import psd_matrices
  >>> @given(psd_matrices(max_size=6))
  ... def test_symmetric(K):
  ...     assert (K == K.T).all()
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from numpy.typing import ArrayLike

__all__ = [
    "spectra",
    "psd_matrices",
    "kernel_problems",
    "labels",
    "times",
    "stable_learning_rates",
    "tiny_positive",
    "momenta",
    "edge_spectra",
    "step_counts",
    "rate_fractions",
    "near_double_root_rates",
    "random_orthogonal",
    "relative_error",
    "assert_close",
    "KernelProblem",
]

SPECTRUM_KINDS = ("power_law", "gapped", "repeated", "uniform", "ill_conditioned")


def random_orthogonal(n: int, seed: int) -> np.ndarray:
    """A Haar-random ``n × n`` orthogonal matrix (QR of a Gaussian with sign fix).

    Args:
      n: size, a non-negative integer.
      seed: seed of ``numpy.random.default_rng`` (a non-negative integer); the same seed gives
        the same matrix.

    Returns:
      ``Q`` of shape ``(n, n)``, float64, with ``QᵀQ = I`` up to round-off. The signs of ``Q``'s
      columns are fixed by the diagonal of ``R`` so that ``Q`` is Haar-distributed.
    """
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.where(np.diag(r) == 0, 1.0, np.diag(r)))


@st.composite
def spectra(
    draw: st.DrawFn,
    /,
    *,
    size: int | None = None,
    min_size: int = 1,
    max_size: int = 12,
    kinds: tuple[str, ...] = SPECTRUM_KINDS,
    zeros: bool = True,
    scale: tuple[float, float] = (1e-2, 1e2),
) -> np.ndarray:
    r"""Eigenvalue vectors, descending, ``λ ≥ 0``, with the largest eigenvalue positive.

    Before scaling the values lie in ``(0, 1.1]``, by kind: ``power_law`` (``λ_j = j^{−p}``,
    ``p`` in ``[0.5, 3]``), ``gapped`` (the first ``c`` eigenvalues near 1 and the rest a factor
    ``g`` in ``[10, 1000]`` below, ``c`` drawn from ``[0, n]``; a linear ramp from 1.1 to 1 keeps
    the values within a cluster distinct), ``repeated`` (1 to 3 distinct values from
    ``[0.05, 1]``, each repeated ``⌈n/distinct⌉`` times), ``uniform`` (independent draws from
    ``[0.1, 1]``), ``ill_conditioned`` (``10^{−k}`` for ``k`` evenly spaced over ``[0, D]``, ``D``
    in ``[8, 12]`` decades: beyond ~1e12 the numerical rank of a float64 kernel is itself
    ambiguous, so exact comparisons stop making sense).

    Args:
      draw: Hypothesis' draw function, supplied by ``st.composite``; callers do not pass it.
      size: number of eigenvalues ``n``; ``None`` (default) draws it from
        ``[min_size, max_size]``.
      min_size: smallest ``n`` drawn when ``size`` is ``None`` (default 1, at least 1).
      max_size: largest ``n`` drawn when ``size`` is ``None`` (default 12).
      kinds: the spectrum shapes to draw from, a non-empty subset of ``SPECTRUM_KINDS`` (default
        all five); another name raises ``ValueError``.
      zeros: if True (default) and ``n > 1``, set the smallest ``0`` to ``n − 1`` eigenvalues
        (count drawn) to exactly 0 (rank deficiency); the largest stays positive. If False all
        eigenvalues are positive.
      scale: ``(low, high)``, ``0 < low ≤ high``: the whole spectrum is multiplied by a factor
        drawn on a log scale from this range (default ``(1e-2, 1e2)``).

    Returns:
      A strategy for float64 arrays of shape ``(n,)``, sorted descending.
    """
    unknown = sorted(set(kinds) - set(SPECTRUM_KINDS))
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {SPECTRUM_KINDS}, got {tuple(kinds)!r}")
    n = size if size is not None else draw(st.integers(min_size, max_size))
    kind = draw(st.sampled_from(kinds))
    j = np.arange(1, n + 1, dtype=float)
    lam: np.ndarray
    if kind == "power_law":
        lam = j ** -draw(st.floats(0.5, 3.0))
    elif kind == "gapped":
        cut = draw(st.integers(0, n))
        lam = np.where(j <= cut, 1.0, 1.0 / draw(st.floats(10.0, 1000.0)))
        lam = lam * (1 + 0.1 * np.linspace(1, 0, n))
    elif kind == "repeated":
        distinct = draw(st.integers(1, max(1, min(3, n))))
        vals = np.sort(np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=distinct, max_size=distinct))))[::-1]
        lam = np.repeat(vals, -(-n // distinct))[:n]
    elif kind == "uniform":
        lam = np.array(draw(st.lists(st.floats(0.1, 1.0), min_size=n, max_size=n)))
    else:
        decades = draw(st.floats(8.0, 12.0))
        lam = 10.0 ** -np.linspace(0.0, decades, n)
    if zeros and n > 1:
        nz = draw(st.integers(0, n - 1))
        if nz:
            lam = lam.copy()
            lam[np.argsort(lam)[:nz]] = 0.0
    s = 10.0 ** draw(st.floats(np.log10(scale[0]), np.log10(scale[1])))
    return np.sort(lam * s)[::-1]


@st.composite
def psd_matrices(draw: st.DrawFn, /, *, min_size: int = 1, max_size: int = 12, **spectrum_kw: Any) -> np.ndarray:
    r"""Symmetric PSD matrices ``Q diag(λ) Qᵀ`` with ``λ`` from :func:`spectra`.

    Covers full-rank, rank-deficient (exact zero eigenvalues), ill-conditioned and
    repeated-eigenvalue kernels. ``Q`` is :func:`random_orthogonal` with a drawn seed.

    Args:
      draw: Hypothesis' draw function, supplied by ``st.composite``; callers do not pass it.
      min_size: smallest matrix size drawn (default 1).
      max_size: largest matrix size drawn (default 12).
      **spectrum_kw: further keyword arguments of :func:`spectra` (``kinds``, ``zeros``,
        ``scale``, or ``size`` to fix the size).

    Returns:
      A strategy for float64 ``(n, n)`` matrices, exactly symmetric, whose eigenvalues are ``λ``
      up to round-off.
    """
    lam = draw(spectra(min_size=min_size, max_size=max_size, **spectrum_kw))
    Q = random_orthogonal(lam.size, draw(st.integers(0, 2**32 - 1)))
    K = (Q * lam) @ Q.T
    sym: np.ndarray = 0.5 * (K + K.T)
    return sym


@st.composite
def labels(draw: st.DrawFn, /, n: int, *, outputs: int | None | str = "any", one_hot: bool | str = "any") -> np.ndarray:
    """Label vectors ``(n,)`` or matrices ``(n, k)``: Gaussian regression targets or one-hot classes.

    Gaussian values are independent standard normals; one-hot rows put a 1 in a column drawn
    uniformly from ``k``. The dense values come from a numpy generator seeded by a drawn seed.

    Args:
      draw: Hypothesis' draw function, supplied by ``st.composite``; callers do not pass it.
      n: number of rows (sample points), a non-negative integer.
      outputs: ``None`` for a vector ``(n,)``, a positive integer ``k`` for a matrix ``(n, k)``,
        or ``"any"`` (default) to draw one of ``None, 1, 2, 3, 4``.
      one_hot: True for one-hot rows, False for Gaussian values, ``"any"`` (default) to draw
        either. One-hot applies only to matrices with ``k ≥ 2``; otherwise the values are
        Gaussian.

    Returns:
      A strategy for float64 arrays of shape ``(n,)`` or ``(n, k)``.
    """
    if isinstance(outputs, str) and outputs != "any":
        raise ValueError(f"outputs must be None, a positive integer or 'any', got {outputs!r}")
    k = draw(st.sampled_from([None, 1, 2, 3, 4])) if isinstance(outputs, str) else outputs
    hot = draw(st.booleans()) if one_hot == "any" else bool(one_hot)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if k is None:
        return rng.standard_normal(n)
    if hot and k >= 2:
        return np.eye(k)[rng.integers(0, k, n)]
    return rng.standard_normal((n, k))


@st.composite
def kernel_problems(
    draw: st.DrawFn, /, *, min_size: int = 1, max_size: int = 10, max_outputs: int = 3, **spectrum_kw: Any
) -> KernelProblem:
    r"""A kernel regression problem: features ``X`` (``n × d``), ``K = X Xᵀ``, labels, test points.

    ``X = Q_n diag(√λ) Q_dᵀ`` with ``m = min(n, d)`` eigenvalues λ from :func:`spectra` and
    orthonormal columns ``Q_n``, ``Q_d``, so the spectrum (and rank deficiency) is controlled;
    ``K`` has eigenvalues λ and ``n − m`` further zeros. ``n`` is drawn from
    ``[min_size, max_size]`` and ``d`` from ``[1, max_size]``, so ``d`` may be smaller or larger
    than ``n``. Labels are standard normal; the 1 to 4 test points are standard normal scaled by
    ``√λ_max / max(√d, 1)`` (unscaled if ``λ_max = 0``).

    Args:
      draw: Hypothesis' draw function, supplied by ``st.composite``; callers do not pass it.
      min_size: smallest number of training points ``n`` (default 1).
      max_size: largest ``n`` and largest feature dimension ``d`` (default 10).
      max_outputs: labels are drawn as a vector ``(n,)`` or a matrix ``(n, k)`` with ``k`` in
        ``[1, max_outputs]`` (default 3; 0 gives vectors only).
      **spectrum_kw: ``kinds``, ``zeros`` or ``scale`` of :func:`spectra` (not ``size``,
        ``min_size`` or ``max_size``: the size is ``m``).

    Returns:
      A strategy for :class:`KernelProblem` instances, with ``evals`` the ``m`` drawn eigenvalues.
    """
    n = draw(st.integers(min_size, max_size))
    d = draw(st.integers(1, max_size))
    m = min(n, d)
    lam = draw(spectra(size=m, **spectrum_kw))
    seed = draw(st.integers(0, 2**32 - 1))
    Qn = random_orthogonal(n, seed)[:, :m]
    Qd = random_orthogonal(d, seed + 1)[:, :m]
    X = (Qn * np.sqrt(lam)) @ Qd.T
    k = draw(st.sampled_from([None] + list(range(1, max_outputs + 1))))
    rng = np.random.default_rng(seed + 2)
    y = rng.standard_normal((n,) if k is None else (n, k))
    n_test = draw(st.integers(1, 4))
    X_test = rng.standard_normal((n_test, d)) * (np.sqrt(lam[0]) / max(np.sqrt(d), 1) if lam[0] > 0 else 1)
    return KernelProblem(X=X, y=y, X_test=X_test, evals=lam)


class KernelProblem:
    """A generated regression problem (see :func:`kernel_problems`).

    Attributes:
      X: training features, shape ``(n, d)``.
      y: training labels, shape ``(n,)`` or ``(n, k)``.
      X_test: test features, shape ``(n_test, d)``.
      evals: the eigenvalues of ``X Xᵀ`` drawn for ``X`` (some may be 0), descending,
        shape ``(min(n, d),)``.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, evals: np.ndarray):
        """Store the arrays as given (no copies, no checks).

        Args:
          X: training features, shape ``(n, d)``.
          y: training labels, shape ``(n,)`` or ``(n, k)``.
          X_test: test features, shape ``(n_test, d)``.
          evals: eigenvalues of ``X Xᵀ`` used to build ``X``, descending.
        """
        self.X, self.y, self.X_test, self.evals = X, y, X_test, evals

    @property
    def K(self) -> np.ndarray:
        """The exactly symmetric training kernel ``X Xᵀ``."""
        K = self.X @ self.X.T
        sym: np.ndarray = 0.5 * (K + K.T)
        return sym

    @property
    def K_test(self) -> np.ndarray:
        """The cross-kernel ``X_test Xᵀ``."""
        cross: np.ndarray = self.X_test @ self.X.T
        return cross

    def __repr__(self) -> str:
        """Shapes of ``X`` and ``y`` and the eigenvalues, for Hypothesis' falsifying examples."""
        return f"KernelProblem(X{self.X.shape}, y{self.y.shape}, evals={self.evals!r})"


def times(*, max_time: float = 1e3, allow_inf: bool = True) -> st.SearchStrategy[float]:
    """Non-negative times: 0, small, moderate, large and (optionally) ``inf``.

    Draws exactly 0, floats in ``[1e-6, 1]`` and in ``[1, max_time]``, and whole numbers 0 to 50
    (as floats). The strategy is unit-free: the values are used in whatever unit the function
    under test takes (continuous time, or steps of a learning rate).

    Args:
      max_time: largest finite time, at least 1 (default ``1e3``).
      allow_inf: also draw ``inf`` (the t = ∞ limit), default True.

    Returns:
      A strategy for floats ``t ≥ 0``.
    """
    finite = st.one_of(st.just(0.0), st.floats(1e-6, 1.0), st.floats(1.0, max_time), st.integers(0, 50).map(float))
    return st.one_of(finite, st.just(float("inf"))) if allow_inf else finite


def stable_learning_rates(lam_max: float, *, monotone: bool = False, momentum: float = 0.0) -> st.SearchStrategy[float]:
    """Learning rates strictly inside the stability region of GD / heavy ball on ``λ_max``.

    ``η λ_max`` is drawn from ``[1e-3, 1]`` when ``monotone``, else from
    ``[1e-3, 2(1 + β)(1 − 1e-3)]`` (a relative margin of 1e-3 below the stability edge
    ``2(1 + β)``).

    Args:
      lam_max: the largest eigenvalue ``λ_max`` of the (scaled) kernel; a value ``≤ 0`` is
        treated as 1.
      monotone: draw only rates with ``η λ_max ≤ 1``, where gradient descent decays monotonically
        in every mode (``momentum`` is then ignored). Default False.
      momentum: heavy-ball momentum β in ``[0, 1)`` (default 0, gradient descent).

    Returns:
      A strategy for learning rates ``η > 0``.
    """
    top = 1.0 if monotone else 2.0 * (1.0 + momentum) * (1 - 1e-3)
    lam_max = lam_max if lam_max > 0 else 1.0
    return st.floats(1e-3, top).map(lambda r: r / lam_max)


# ---------------------------------------------------------------------- edges of the closed forms
SMALLEST_SUBNORMAL = float(np.finfo(np.float64).smallest_subnormal)


def tiny_positive(*, max_value: float = 1e-8) -> st.SearchStrategy[float]:
    r"""Tiny positive floats, down to the smallest subnormal, on a log scale over ``[5e-324, max_value]``.

    Also draws exact edge values (``5e-324``, the smallest normal ``2.2e-308``, ``1e-300``,
    ``1e-200``, ``1e-30``, ``1e-17``, ``ε/2``, ``ε``) where intermediate quantities (squares,
    square roots, ``1 + x``) underflow or round away — the values that uniform draws never reach.

    Args:
      max_value: largest value drawn (default ``1e-8``); must be at least ``5e-324`` (the
        smallest subnormal), and edge values above it are left out.

    Returns:
      A strategy for floats in ``[5e-324, max_value]``.
    """
    edges = [SMALLEST_SUBNORMAL, float(np.finfo(np.float64).tiny), 1e-300, 1e-200, 1e-30, 1e-17, 2.0**-53, 2.0**-52]
    edges = [x for x in edges if x <= max_value]
    lo = np.log10(SMALLEST_SUBNORMAL)
    spread = st.floats(lo, np.log10(max_value)).map(lambda k: float(np.clip(10.0**k, SMALLEST_SUBNORMAL, max_value)))
    return st.one_of(st.sampled_from(edges), spread)


def momenta(*, max_momentum: float = 1 - 1e-9) -> st.SearchStrategy[float]:
    r"""Heavy-ball momenta β in ``[0, max_momentum]`` that reach both edges of ``[0, 1)`` on purpose.

    Draws 0 (gradient descent), :func:`tiny_positive` values up to ``1e-8`` (β whose ``√β`` or
    ``β²`` underflow, and ``1 + β = 1``), floats in ``[1e-8, max_momentum]``, ``1 − 10^{−k}`` for
    ``k`` from 1 up to ``−log10(1 − max_momentum)`` (9 by default; β → 1, where ``1 − √β``
    cancels unless computed as ``(1 − β)/(1 + √β)``), and the values 0.3, 0.5, 0.81, 0.9, 0.99,
    0.999.

    Args:
      max_momentum: largest β drawn, in ``[0.9, 1)`` (default ``1 − 1e-9``); below 0.9 the
        ``1 − 10^{−k}`` branch is empty and Hypothesis raises ``InvalidArgument``.

    Returns:
      A strategy for floats β in ``[0, max_momentum]``.
    """
    near_one = st.floats(1.0, -np.log10(1.0 - max_momentum)).map(lambda k: min(1.0 - 10.0**-k, max_momentum))
    return st.one_of(
        st.just(0.0),
        tiny_positive(),
        st.floats(1e-8, max_momentum),
        near_one,
        st.sampled_from([x for x in (0.3, 0.5, 0.81, 0.9, 0.99, 0.999) if x <= max_momentum]),
    )


@st.composite
def edge_spectra(
    draw: st.DrawFn, /, *, min_size: int = 1, max_size: int = 6, top: tuple[float, float] = (1e-100, 1e100)
) -> np.ndarray:
    r"""Descending eigenvalues with the edge cases of the filters: zeros, subnormals, near-ties.

    Covers exact zeros, subnormal values, values ``ε`` below the top, and dynamic ranges up to the
    whole float64 range. The largest eigenvalue ``λ_max`` is drawn on a log scale from ``top``;
    each of the other ``n − 1`` is ``λ_max · 10^{−k}`` (``k`` in ``[0, 330]``, so tiny, subnormal
    and underflowed-to-0 values appear), an exact copy of ``λ_max``, ``λ_max (1 − ε)``, one of
    the absolute values ``5e-324``, ``1e-310`` (subnormal) or ``2.2e-308`` (smallest normal), or
    exactly 0.

    Args:
      draw: Hypothesis' draw function, supplied by ``st.composite``; callers do not pass it.
      min_size: smallest number of eigenvalues ``n`` (default 1, at least 1).
      max_size: largest ``n`` (default 6).
      top: ``(low, high)``, ``0 < low ≤ high`` finite: range of ``λ_max`` (default
        ``(1e-100, 1e100)``).

    Returns:
      A strategy for float64 arrays of shape ``(n,)``, sorted descending, first entry ``λ_max > 0``.
    """
    n = draw(st.integers(min_size, max_size))
    lam_max = 10.0 ** draw(st.floats(np.log10(top[0]), np.log10(top[1])))
    rest = st.one_of(
        st.floats(0.0, 330.0).map(lambda k: lam_max * 10.0**-k),
        st.just(lam_max),
        st.just(lam_max * (1 - 2.0**-52)),
        st.sampled_from([SMALLEST_SUBNORMAL, 1e-310, float(np.finfo(np.float64).tiny)]),
        st.just(0.0),
    )
    lam = np.array([lam_max] + draw(st.lists(rest, min_size=n - 1, max_size=n - 1)), dtype=np.float64)
    return np.sort(lam)[::-1]


def step_counts(*, max_steps: int = 10**12, allow_inf: bool = True) -> st.SearchStrategy[float]:
    r"""Whole numbers of steps as floats, from 0 up to ``max_steps``, and optionally ``inf``.

    Draws the exact counts 0, 1, 2, 3, 4, 7, 64, ``2^20``, ``10^6``, ``10^9``, ``2^40``,
    ``10^12`` (those ``≤ max_steps``), every integer up to ``min(200, max_steps)``, and
    ``⌊10^k⌋`` for ``k`` in ``[0, log10(max_steps)]``. Huge counts reach the regime where
    ``s · log μ`` must be formed from ``log1p`` (``μ^s`` by repeated rounding loses ``s ε``) and
    ``s θ`` needs full relative precision.

    Args:
      max_steps: largest finite count, at least 1 (default ``10^12``).
      allow_inf: also draw ``inf`` (the t = ∞ limit), default True.

    Returns:
      A strategy for floats ``s ≥ 0`` with integer values (or ``inf``).
    """
    exact = [float(k) for k in (0, 1, 2, 3, 4, 7, 64, 2**20, 10**6, 10**9, 2**40, 10**12) if k <= max_steps]
    spread = st.floats(0.0, np.log10(max_steps)).map(lambda k: float(np.floor(10.0**k)))
    finite = st.one_of(st.sampled_from(exact), st.integers(0, min(200, max_steps)).map(float), spread)
    return st.one_of(finite, st.just(float("inf"))) if allow_inf else finite


def rate_fractions(*, max_fraction: float = 1 - 1e-9) -> st.SearchStrategy[float]:
    r"""Fractions ``η/η_max`` of the stability bound, from ``1e-12`` up to the edge of stability.

    Draws ``10^k`` for ``k`` in ``[−12, log10(max_fraction)]``, ``1 − 10^{−k}`` for ``k`` from 1
    up to ``−log10(1 − max_fraction)`` (9 by default), and the exact values ¼, ½ and ¾. Multiply
    by :func:`kdtheory.eigen.max_learning_rate` to get tiny, moderate and edge-of-stability
    learning rates.

    Args:
      max_fraction: largest fraction drawn, in ``[0.9, 1)`` (default ``1 − 1e-9``); below 0.9 the
        ``1 − 10^{−k}`` branch is empty and Hypothesis raises ``InvalidArgument``.

    Returns:
      A strategy for floats in ``[1e-12, max_fraction]``.
    """
    near_one = st.floats(1.0, -np.log10(1.0 - max_fraction)).map(lambda k: min(1.0 - 10.0**-k, max_fraction))
    spread = st.floats(-12.0, np.log10(max_fraction)).map(lambda k: min(10.0**k, max_fraction))
    return st.one_of(spread, near_one, st.sampled_from([0.25, 0.5, 0.75]))


@st.composite
def near_double_root_rates(draw: st.DrawFn, /, lam: float, momentum: float, *, max_offset: float = 1e-6) -> float:
    r"""Learning rates η putting ``η λ`` at or near a double root of heavy ball.

    ``η λ = (1 ± √β)² (1 + δ)`` with ``δ = 0`` or ``|δ|`` on a log scale in
    ``[1e-16, max_offset]`` (either sign). There the two characteristic roots merge and
    root-based closed forms divide ``0/0``. ``(1 − √β)²`` is formed as ``((1 − β)/(1 + √β))²``,
    exact as β → 1. The upper root ``(1 + √β)² < 2(1 + β)`` lies inside the stability region, and
    ``η λ`` is capped at ``2(1 + β)(1 − 2^{−50})`` so that ``δ > 0`` keeps it there.

    Args:
      draw: Hypothesis' draw function, supplied by ``st.composite``; callers do not pass it.
      lam: the eigenvalue λ, ``> 0``.
      momentum: heavy-ball momentum β, in ``(0, 1)``.
      max_offset: largest relative offset ``|δ|``, at least ``1e-16`` (default ``1e-6``).

    Returns:
      A strategy for learning rates ``η > 0``.

    Raises:
      ValueError: ``lam ≤ 0`` or ``momentum`` outside ``(0, 1)``, when an example is drawn.
    """
    if not lam > 0 or not 0 < momentum < 1:
        raise ValueError(f"near_double_root_rates needs lam > 0 and 0 < momentum < 1, got {lam!r}, {momentum!r}")
    r = np.sqrt(momentum)
    q0 = ((1.0 - momentum) / (1.0 + r)) ** 2 if draw(st.booleans()) else (1.0 + r) ** 2
    offset = draw(st.one_of(st.just(0.0), st.floats(-16.0, np.log10(max_offset)).map(lambda k: 10.0**k)))
    sign = draw(st.sampled_from([-1.0, 1.0]))
    q = min(q0 * (1.0 + sign * offset), 2.0 * (1.0 + momentum) * (1.0 - 2.0**-50))  # stay stable
    return float(q / lam)


def _norm(x: np.ndarray) -> float:
    """Frobenius norm of ``x`` scaled by its largest entry, so that it neither underflows nor overflows.

    ``numpy.linalg.norm`` sums squares: below ``~1e-154`` they underflow to 0 (two different arrays
    then have error 0) and above ``~1e154`` they overflow to ``inf``. NaN stays NaN.
    """
    flat = np.abs(np.ravel(x))
    top = float(np.max(flat, initial=0.0))
    if top == 0.0 or not np.isfinite(top):
        return top
    return top * float(np.linalg.norm(flat / top))


def relative_error(actual: ArrayLike, expected: ArrayLike) -> float:
    r"""Norm-wise relative error ``‖actual − expected‖ / ‖expected‖`` (Frobenius; 0 if equal).

    Args:
      actual: the computed values, array-like of real numbers.
      expected: the reference values, same shape as ``actual``.

    Returns:
      The relative error, exactly 0 when the arrays are equal. The denominator is floored at the
      smallest normal float, so a nonzero ``actual`` against ``expected = 0`` gives a huge
      value; NaN in either array gives NaN.

    Raises:
      AssertionError: the shapes differ.
    """
    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    if a.shape != e.shape:
        raise AssertionError(f"shape mismatch: {a.shape} vs {e.shape}")
    diff = _norm(a - e)
    if diff == 0.0:
        return 0.0
    return diff / max(_norm(e), np.finfo(float).tiny)


def assert_close(
    actual: ArrayLike, expected: ArrayLike, *, rtol: float = 1e-10, atol: float = 0.0, what: str = ""
) -> None:
    r"""Assert ``‖actual − expected‖ ≤ atol + rtol ‖expected‖`` (Frobenius norms over the array).

    The one tolerance rule of kdtheory's test suite: errors are measured norm-wise over the whole
    array, relative to the size of the expected value, with ``atol`` for quantities that may
    vanish. NaN or inf in either array always fail; shapes must match.

    Args:
      actual: the computed values, array-like of real numbers.
      expected: the reference values, same shape as ``actual``.
      rtol: relative tolerance, ``≥ 0`` (default ``1e-10``).
      atol: absolute tolerance in the units of the values, ``≥ 0`` (default 0).
      what: name of the quantity, used in the failure message (default: "values"/"actual").

    Raises:
      AssertionError: the shapes differ, ``actual`` or ``expected`` is not finite (an infinite
        reference would make every bound infinite), or the bound is exceeded (the
        message gives the error, the bound and the relative error).
    """
    a = np.asarray(actual, dtype=float)
    e = np.asarray(expected, dtype=float)
    if a.shape != e.shape:
        raise AssertionError(f"{what or 'values'}: shape mismatch {a.shape} vs {e.shape}")
    if not np.all(np.isfinite(a)):
        raise AssertionError(f"{what or 'actual'} has non-finite values")
    if not np.all(np.isfinite(e)):
        raise AssertionError(f"{what or 'expected'}: the reference has non-finite values; compare them apart")
    diff = _norm(a - e)
    bound = atol + rtol * _norm(e)
    if not diff <= bound:
        raise AssertionError(
            f"{what or 'values'}: |actual - expected| = {diff:.3e} > atol + rtol|expected| = {bound:.3e}"
            f" (relative error {relative_error(a, e):.3e})"
        )
