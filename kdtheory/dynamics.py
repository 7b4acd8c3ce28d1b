r"""Closed-form MSE training dynamics in eigenspace.

A linear model ``f(x) = φ(x)ᵀ w`` (or a kernel machine with kernel ``K``) trained on the squared
loss from an initial output ``f_0`` follows, per eigen-mode of the kernel,

.. math::

    f(t) = f_0 - U\,\mathrm{diag}(a(t))\,U^\top (f_0 - y),\qquad
    \alpha(t) = -U\,\mathrm{diag}(a(t)/\lambda)\,U^\top (f_0 - y),

where ``a(t)`` is the spectral filter of the optimizer (:mod:`kdtheory.eigen`), ``α`` are the
dual coefficients, test predictions are ``f_0(x) + k_x α(t)`` and weights are
``w(t) = w_0 − V diag(s · a/λ) Uᵀ (f_0 − y)`` (``X = U S Vᵀ``).

Conventions:
  * ``loss="sum"``: ``L = ½‖f − y‖²``; ``loss="mean"``: ``L = ½‖f − y‖²/n`` with ``n`` the number
    of training points (not of scalar outputs), which replaces ``λ`` by ``λ/n`` in the filter.
  * ``method="flow"``: ``t`` is continuous time in units of ``learning_rate`` (time ``η t``);
    ``"gd"``/``"momentum"``: ``t`` counts whole steps of size ``learning_rate``.
  * ``t = ∞`` is the exact (minimum-norm, pseudo-inverse) solve.
  * Labels may be ``(n,)`` or multi-output ``(n, k)`` (e.g. one-hot matrices); every output has
    the same shape convention: times first, then points, then outputs.

References:
  Lee et al. (2019), eq. 9–11; Nagarajan et al. (2023), §5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, choice
from kdtheory._synthesis import synthesize
from kdtheory.eigen import Method, Spectrum, filter_pair

__all__ = ["Trajectory", "train", "apply_filter"]


@dataclass(frozen=True, eq=False)
class Trajectory:
    r"""A training trajectory evaluated at given times (all arrays, no hidden state).

    Shapes use ``S`` for the shape of ``times``, ``n`` training points, ``m`` modes,
    ``k`` outputs (absent for 1-D labels).

    Attributes:
      times: the times (or steps) as given, shape ``S``.
      filter: fraction learned per mode ``a_k(t)``, shape ``S + (m,)``.
      train: training predictions ``f(t)``, shape ``S + (n[, k])``.
      modes: residual coordinates ``u_kᵀ (f(t) − y)``, shape ``S + (m[, k])``; each equals
        ``(1 − a_k(t)) u_kᵀ (f_0 − y)``.
      loss: training loss with the stated normalization, shape ``S``.
      norm: ``‖w(t) − w_0‖`` (features) = RKHS norm of ``f(t) − f_0``, shape ``S``.
      test: test predictions, shape ``S + (n_test[, k])``, or ``None``.
      weights: weights ``w(t)``, shape ``S + (d[, k])``, for a features spectrum, else ``None``.
      method, learning_rate, momentum, loss_normalization: the recipe, for the record.
    """

    times: np.ndarray
    filter: np.ndarray
    train: np.ndarray
    modes: np.ndarray
    loss: np.ndarray
    norm: np.ndarray
    test: np.ndarray | None = None
    weights: np.ndarray | None = None
    method: str = "custom"
    learning_rate: float = float("nan")
    momentum: float = 0.0
    loss_normalization: str = "sum"

    def __repr__(self) -> str:
        extra = "".join(
            f", {name}{getattr(self, name).shape}" for name in ("test", "weights") if getattr(self, name) is not None
        )
        return (
            f"Trajectory(method={self.method!r}, times{self.times.shape}, "
            f"train{self.train.shape}{extra}, final loss={np.ravel(self.loss)[-1]:.4g})"
        )


def train(
    spectrum: Spectrum,
    y: ArrayLike,
    t: ArrayLike,
    *,
    method: Method = "flow",
    learning_rate: float = 1.0,
    momentum: float = 0.0,
    loss: str = "sum",
    init: ArrayLike | None = None,
    init_weights: ArrayLike | None = None,
    test_kernel: ArrayLike | None = None,
    test_features: ArrayLike | None = None,
    test_init: ArrayLike | None = None,
    allow_unstable: bool = False,
    compress: bool | None = None,
) -> Trajectory:
    r"""Train a kernel/linear model on ``½‖f − y‖²`` in closed form and return its trajectory.

    Implements ``f(t) = f_0 − U diag(a(t)) Uᵀ (f_0 − y)`` with ``a`` the filter of ``method``
    (:func:`kdtheory.eigen.filter_pair`), plus test predictions, weights, modes, loss and norm.

    Args:
      spectrum: the training kernel's :class:`~kdtheory.eigen.Spectrum`.
      y: labels, shape ``(n,)`` or ``(n, k)``.
      t: times (flow, units of ``learning_rate``) or whole steps (gd, momentum); scalar or array
        of any shape; ``np.inf`` is the exact converged solution.
      method: ``"flow"``, ``"gd"`` or ``"momentum"``.
      learning_rate: η > 0 (gd/momentum: step size; flow: time unit).
      momentum: β in [0, 1) for ``"momentum"``.
      loss: ``"sum"`` (``½‖f − y‖²``) or ``"mean"`` (``½‖f − y‖²/n``).
      init: initial training output ``f_0`` (default 0), shape of ``y``.
      init_weights: initial weights ``w_0`` (features spectrum only); sets ``f_0 = X w_0``.
      test_kernel: cross-kernel ``k(x_test, x_train)``, shape ``(n_test, n)``.
      test_features: test design matrix, shape ``(n_test, d)`` (features spectrum only);
        predictions ``X_test w(t)`` (so the initial test output is ``X_test w_0``).
      test_init: initial test output with ``test_kernel`` (default 0), shape ``(n_test[, k])``.
      allow_unstable: allow learning rates beyond stability at finite steps.
      compress: evaluate many times through a verified interpolative decomposition of the
        time axis (:mod:`kdtheory._synthesis`; agrees with the direct product to ~1e-13 relative
        per time). ``None``: automatically for large problems (≥ 512 times·outputs and
        ``n·m ≥ 65536``); ``False``: always the direct product.

    Returns:
      A :class:`Trajectory`.

    Raises:
      ValueError: shape mismatches, NaN/inf, negative times, unstable learning rates, unknown
        options (each message names the argument).
      TypeError: ``spectrum`` is not a :class:`Spectrum`.

    Examples:
      >>> import numpy as np
      >>> from kdtheory.eigen import Spectrum
      >>> from kdtheory.dynamics import train
      >>> spec = Spectrum.from_kernel(np.diag([2.0, 1.0]))
      >>> train(spec, np.ones(2), [0.0, np.inf]).train
      array([[0., 0.],
             [1., 1.]])
    """
    _check_spectrum(spectrum)
    choice(loss, "loss", ("sum", "mean"))
    choice(method, "method", ("flow", "gd", "momentum"))
    scale = 1.0 / spectrum.n if loss == "mean" else 1.0
    a, g_eff = filter_pair(
        spectrum.evals * scale,
        t,
        method=method,
        learning_rate=learning_rate,
        momentum=momentum,
        allow_unstable=allow_unstable,
    )
    return apply_filter(
        spectrum,
        y,
        a,
        g_eff * scale,
        times=t,
        loss=loss,
        init=init,
        init_weights=init_weights,
        test_kernel=test_kernel,
        test_features=test_features,
        test_init=test_init,
        compress=compress,
        recipe={"method": method, "learning_rate": float(learning_rate), "momentum": float(momentum)},
    )


def apply_filter(
    spectrum: Spectrum,
    y: ArrayLike,
    a: ArrayLike,
    a_over_eval: ArrayLike,
    *,
    times: ArrayLike | None = None,
    loss: str = "sum",
    init: ArrayLike | None = None,
    init_weights: ArrayLike | None = None,
    test_kernel: ArrayLike | None = None,
    test_features: ArrayLike | None = None,
    test_init: ArrayLike | None = None,
    recipe: dict | None = None,
    compress: bool | None = None,
) -> Trajectory:
    r"""Build a :class:`Trajectory` from any spectral filter ``a`` (and its ``a/λ``).

    The common back end of :func:`train` and of the distillation recipes: a filter is any array
    ``a`` of shape ``S + (m,)`` with ``a/λ`` given separately so that λ = 0 is exact. Predictions
    are ``f = f_0 − U diag(a) Uᵀ (f_0 − y)``, dual coefficients
    ``α = −U diag(a/λ) Uᵀ (f_0 − y)``.

    Args:
      spectrum: the training kernel's spectrum.
      y: the targets the filter pulls towards, ``(n[, k])``.
      a: filter values, shape ``S + (m,)``.
      a_over_eval: ``a/λ`` in the units of ``spectrum.evals`` (for ``loss="mean"`` dynamics pass
        ``a(λ/n)/λ``), shape ``S + (m,)``.
      times: labels for the leading axes (default ``arange``), stored in the trajectory.
      loss: normalization of the reported loss, ``"sum"`` or ``"mean"``.
      init, init_weights, test_kernel, test_features, test_init, compress: as in :func:`train`.
      recipe: metadata stored on the trajectory (``method``, ``learning_rate``, ``momentum``).

    Returns:
      A :class:`Trajectory`.
    """
    _check_spectrum(spectrum)
    choice(loss, "loss", ("sum", "mean"))
    m = spectrum.evals.size
    a = as_float_array(a, "a")
    g = as_float_array(a_over_eval, "a_over_eval")
    if a.shape != g.shape or a.ndim == 0 or a.shape[-1] != m:
        raise ValueError(f"a and a_over_eval must share a shape ending in m={m}, got {a.shape} and {g.shape}")
    S = a.shape[:-1]
    a2, g2 = a.reshape(-1, m), g.reshape(-1, m)
    T = a2.shape[0]

    y2, squeeze = _as_2d(spectrum._labels(y, "y"))
    k = y2.shape[1]
    f0 = _initial_output(spectrum, y2, squeeze, init, init_weights)
    r0 = f0 - y2
    c = spectrum.U.T @ r0  # (m, k)
    perp = spectrum.complement(r0, name="init") if spectrum.U.shape[1] < spectrum.n else None

    modes = (1.0 - a2)[:, :, None] * c[None]  # (T, m, k)
    # f(t) = f0 − U diag(a) Uᵀ (f0 − y): exact at t = 0, and the part of f0 − y outside span(U)
    # (features with n > d) is left untouched, as gradient descent leaves it.
    train_pred = f0[None] - _basis(spectrum.U, a2[:, :, None] * c[None], compress)
    sq = np.einsum("tmk,tmk->t", modes, modes)
    if perp is not None:
        sq = sq + float(np.sum(perp * perp))
    loss_val = 0.5 * sq / (spectrum.n if loss == "mean" else 1.0)
    norm = np.sqrt(np.maximum(np.einsum("tm,tm,mk->t", a2, g2, c * c), 0.0))

    dual = -g2[:, :, None] * c[None]  # coordinates of α(t) in the eigenbasis, (T, m, k)
    test = weights = None
    if test_kernel is not None and test_features is not None:
        raise ValueError("give test_kernel or test_features, not both")
    if test_kernel is not None:
        Kx = as_float_array(test_kernel, "test_kernel", ndim=(2,))
        if Kx.shape[1] != spectrum.n:
            raise ValueError(f"test_kernel has {Kx.shape[1]} columns but the spectrum has n={spectrum.n} points")
        base = _test_init(test_init, Kx.shape[0], k, squeeze)
        test = base[None] + _cross(Kx, spectrum.U, dual, compress)
    elif test_features is not None:
        Xt = _features_arg(spectrum, test_features, "test_features")
        if test_init is not None:
            raise ValueError("test_init is implied by init_weights when test_features are given")
    elif test_init is not None:
        raise ValueError("test_init needs test_kernel or test_features")
    if spectrum.V is not None:
        w0 = _weights0(spectrum, init_weights, k, squeeze)
        weights = w0[None] + _basis(spectrum.V, spectrum.singular_values[None, :, None] * dual, compress)
        if test_features is not None:
            test = np.einsum("id,tdk->tik", Xt, weights, optimize=True)

    def shape(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        x = x.reshape(S + x.shape[1:])
        return x[..., 0] if squeeze and x.ndim > len(S) + 1 else x

    rec = {"method": "custom", "learning_rate": float("nan"), "momentum": 0.0, **(recipe or {})}
    return Trajectory(
        times=np.asarray(times, dtype=float) if times is not None else np.arange(T).reshape(S),
        filter=a,
        train=shape(train_pred),
        modes=shape(modes),
        loss=loss_val.reshape(S),
        norm=norm.reshape(S),
        test=shape(test),
        weights=shape(weights),
        loss_normalization=loss,
        **rec,
    )


# ---------------------------------------------------------------------- helpers
def _check_spectrum(spectrum: object) -> None:
    if not isinstance(spectrum, Spectrum):
        raise TypeError(
            "spectrum must be a kdtheory.eigen.Spectrum (use Spectrum.from_kernel(K) or "
            f"Spectrum.from_features(X)), got {type(spectrum).__name__}"
        )


def _as_2d(y: np.ndarray) -> tuple[np.ndarray, bool]:
    return (y[:, None], True) if y.ndim == 1 else (y, False)


def _basis(B: np.ndarray, coeffs: np.ndarray, compress: bool | None) -> np.ndarray:
    """``B @ coeffs[t]`` for every t: (p, m) x (T, m, k) -> (T, p, k); ``B`` has orthonormal columns."""
    return synthesize(lambda R: R @ B.T, coeffs, out_dim=B.shape[0], compress=compress)


def _cross(Kx: np.ndarray, U: np.ndarray, dual: np.ndarray, compress: bool | None) -> np.ndarray:
    """``Kx U dual[t]`` for every t, choosing the cheaper association of the products."""
    nt, n = Kx.shape
    m = U.shape[1]

    def apply(R: np.ndarray) -> np.ndarray:
        r = R.shape[0]
        if nt * n * m + nt * m * r <= n * m * r + nt * n * r:
            return R @ (Kx @ U).T
        return (Kx @ (U @ R.T)).T

    def weights() -> np.ndarray:
        # ‖Kx u_k‖ estimated from a seeded Gaussian sketch of Kx's rows (16 rows)
        sketch = np.random.default_rng(0).standard_normal((16, nt)) @ Kx
        return np.linalg.norm(sketch @ U, axis=0) / 4.0

    return synthesize(apply, dual, out_dim=nt, weights=weights, compress=compress)


def _features_arg(spectrum: Spectrum, X: ArrayLike, name: str) -> np.ndarray:
    if spectrum.V is None:
        raise ValueError(f"{name} needs a features spectrum (Spectrum.from_features)")
    X = as_float_array(X, name, ndim=(2,))
    if X.shape[1] != spectrum.V.shape[0]:
        raise ValueError(f"{name} has {X.shape[1]} columns but the features have d={spectrum.V.shape[0]}")
    return X


def _initial_output(
    spectrum: Spectrum, y2: np.ndarray, squeeze: bool, init: ArrayLike | None, init_weights: ArrayLike | None
) -> np.ndarray:
    if init is not None and init_weights is not None:
        raise ValueError("give init or init_weights, not both")
    if init_weights is not None:
        w0 = _weights0(spectrum, init_weights, y2.shape[1], squeeze)
        # X w0 = U S Vᵀ w0
        return spectrum.U @ (spectrum.singular_values[:, None] * (spectrum.V.T @ w0))
    if init is None:
        return np.zeros_like(y2)
    f0 = as_float_array(init, "init", ndim=(1, 2))
    if f0.shape != (y2[:, 0].shape if squeeze else y2.shape):
        raise ValueError(f"init must have the shape of y {y2.shape if not squeeze else (y2.shape[0],)}, got {f0.shape}")
    return f0.reshape(y2.shape)


def _weights0(spectrum: Spectrum, init_weights: ArrayLike | None, k: int, squeeze: bool) -> np.ndarray:
    if spectrum.V is None:
        if init_weights is not None:
            raise ValueError("init_weights needs a features spectrum (Spectrum.from_features)")
        return None  # pragma: no cover
    d = spectrum.V.shape[0]
    if init_weights is None:
        return np.zeros((d, k))
    w0 = as_float_array(init_weights, "init_weights", ndim=(1, 2))
    want = (d,) if squeeze else (d, k)
    if w0.shape != want:
        raise ValueError(f"init_weights must have shape {want}, got {w0.shape}")
    return w0.reshape(d, k)


def _test_init(test_init: ArrayLike | None, nt: int, k: int, squeeze: bool) -> np.ndarray:
    if test_init is None:
        return np.zeros((nt, k))
    f = as_float_array(test_init, "test_init", ndim=(1, 2))
    want = (nt,) if squeeze else (nt, k)
    if f.shape != want:
        raise ValueError(f"test_init must have shape {want}, got {f.shape}")
    return f.reshape(nt, k)
