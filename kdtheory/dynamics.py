r"""Closed-form squared-loss training dynamics in eigenspace.

A linear model ``f(x) = φ(x)ᵀ w`` (or a kernel machine with kernel ``K``) trained on the squared
loss from an initial output ``f_0`` follows, per eigen-mode of the kernel,

.. math::

    f(t) = f_0 - U\,\mathrm{diag}(a(t))\,U^\top (f_0 - y),\qquad
    \alpha(t) = -U\,\mathrm{diag}(a(t)/\lambda)\,U^\top (f_0 - y),

where ``a`` is the spectral filter of the recipe (:class:`kdtheory.eigen.Filter`,
:class:`kdtheory.eigen.Recipe`), ``α`` are the dual coefficients, test predictions are
``f_0(x) + k_x α(t)`` and weights are ``w(t) = w_0 − V diag(s · a/λ) Uᵀ (f_0 − y)``
(``X = U S Vᵀ``). Results are :class:`kdtheory.trajectory.Trajectory` values; names and
conventions (``t``, ``ridge``, ``normalization``) are the vocabulary of :mod:`kdtheory`.

References:
  Lee et al. (2019), eq. 9–11; Nagarajan et al. (2023), §5.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, cast

import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, as_times, choice
from kdtheory._synthesis import synthesize
from kdtheory.eigen import GRADIENT_FLOW, NORMALIZATIONS, Filter, Normalization, Recipe, Spectrum, loss_divisor
from kdtheory.krylov import Lanczos, RitzSpectrum, StructuredFilter, check, is_operator, recipe_structure, solve
from kdtheory.trajectory import Trajectory

if TYPE_CHECKING:  # the operators need JAX; the closed forms on a Spectrum do not
    from kdtheory.operators import KernelOperator

__all__ = ["train", "apply_filter", "Dense", "TestPoints", "Source", "FilterArg"]


@dataclass(frozen=True)
class Dense:
    r"""Options of the exact (eigendecomposition) evaluator, the ``solver=`` of a Spectrum source.

    Attributes:
      compress: evaluate many times through a verified interpolative decomposition of the time
        axis (:mod:`kdtheory._synthesis`; agrees with the direct product to ~1e-13 relative per
        time). ``None``: automatically for large problems (≥ 512 times·outputs and
        ``n·m ≥ 65536``); ``False``: always the direct product.
    """

    compress: bool | None = None


@dataclass(frozen=True, eq=False)
class TestPoints:
    r"""Held-out points a closed-form trajectory also predicts on.

    The ``test=`` of :func:`train`, :func:`apply_filter` and the :mod:`kdtheory.distill` composites.

    Give exactly one of ``kernel`` (test predictions ``f_0(x) + k_x α(t)``, ``α`` the dual
    coefficients) or ``features`` (a features spectrum: ``X_test w(t)``, whose initial value
    ``X_test w_0`` follows from ``init_weights``).

    Attributes:
      kernel: cross-kernel ``k(x_test, x_train)``, shape ``(n_test, n)``; on a kernel-operator
        source also an operator (``op.cross(X_test)``).
      features: test design matrix ``(n_test, d)`` (features spectrum only).
      init: initial test output ``f_0(x_test)`` with ``kernel`` (default 0), ``(n_test[, k])``.

    Raises:
      ValueError: neither or both of ``kernel`` and ``features``; ``init`` with ``features``.
    """

    __test__: ClassVar[bool] = False  # a value, not a pytest test class
    kernel: Any = None
    features: ArrayLike | None = None
    init: ArrayLike | None = None

    def __post_init__(self) -> None:
        """Check that exactly one kind of test input is given."""
        if (self.kernel is None) == (self.features is None):
            raise ValueError(
                "TestPoints needs kernel= (a cross-kernel) or features= (a test design matrix), exactly one"
            )
        if self.init is not None and self.kernel is None:
            raise ValueError(
                "TestPoints(init=) goes with kernel=; with features= the initial test output is "
                "X_test w_0 (init_weights)"
            )


#: What the closed forms evaluate on: a dense :class:`~kdtheory.spectrum.Spectrum`, or a kernel
#: operator (then the certified block-Lanczos solver of :mod:`kdtheory.krylov` evaluates the filter).
Source: TypeAlias = "Spectrum | KernelOperator"
#: A filter already evaluated on a spectrum, or a function ``Spectrum -> Filter`` (needed on operators).
FilterArg = Filter | Callable[[Spectrum], Filter]


def train(
    spectrum: Source,
    y: ArrayLike,
    t: ArrayLike | None = None,
    *,
    ridge: ArrayLike | None = None,
    recipe: Recipe = GRADIENT_FLOW,
    init: ArrayLike | None = None,
    init_weights: ArrayLike | None = None,
    test: TestPoints | None = None,
    solver: Lanczos | Dense | None = None,
) -> Trajectory:
    r"""Train a kernel/linear model on the squared loss in closed form and return its trajectory.

    Implements ``f(t) = f_0 − U diag(a(t)) Uᵀ (f_0 − y)`` with ``a`` the filter of the recipe
    (:meth:`kdtheory.eigen.Recipe.filter`), plus test predictions, weights, modes, loss and norm.
    How the model trains is one value, the ``recipe`` (method, learning rate, momentum, loss
    normalization), as for the teacher and student of :mod:`kdtheory.distill`. With ``ridge``
    instead of ``t`` (or ``recipe=Recipe("ridge")`` and the strengths as ``t``) it is kernel ridge
    regression ``min ½‖f − y‖² + ½ c‖f − f_0‖²_H`` at each strength ``c`` (the trajectory's
    ``ridge`` is set and its ``t`` is ``None``).

    Args:
      spectrum: the training kernel's :class:`~kdtheory.eigen.Spectrum`, or the kernel as a
        :class:`~kdtheory.operators.KernelOperator` (large n: the filter goes to the certified
        block-Lanczos solver, :mod:`kdtheory.krylov`; ``filter``/``modes`` are then along the
        Ritz vectors and ``Trajectory.solver`` holds the certificate).
      y: labels, shape ``(n,)`` or ``(n, k)``.
      t: times (flow, learning-rate units) or whole steps (gd, momentum), or ridge strengths for
        a ridge recipe; scalar or array of any shape; ``np.inf`` is the exact converged solution.
      ridge: ridge strengths ``c ≥ 0`` instead of ``t`` (any shape); the recipe then only
        contributes its ``normalization`` (its method must be ``"flow"`` with the default
        learning rate, or ``"ridge"``).
      recipe: a :class:`~kdtheory.eigen.Recipe`: ``method`` (``"flow"``, ``"gd"``,
        ``"momentum"``, ``"ridge"``), ``learning_rate`` η > 0 (gd/momentum: step size; flow: time
        unit), ``momentum`` β, ``normalization`` (``"sum"``: ``½‖f − y‖²``, ``"mean"``:
        ``½‖f − y‖²/n``, ``"per_output"``: ``½‖f − y‖²/(n·k)``, neural-tangents' convention) and
        ``allow_unstable`` (learning rates beyond stability at finite steps). Default: gradient
        flow, η = 1, ``"sum"``.
      init: initial training output ``f_0`` (default 0), shape of ``y``.
      init_weights: initial weights ``w_0`` (features spectrum only); sets ``f_0 = X w_0``.
      test: held-out points to predict on, :class:`TestPoints` (a cross-kernel, or test features
        on a features spectrum, and the initial test output).
      solver: how to evaluate: on a Spectrum :class:`Dense` (default ``Dense()``), on an operator
        the Krylov solver's :class:`kdtheory.krylov.Lanczos` (default ``Lanczos()``: tolerance
        1e-6, strict).

    Returns:
      A :class:`~kdtheory.trajectory.Trajectory`.

    Raises:
      ValueError: shape mismatches, NaN/inf, negative times, unstable learning rates, unknown
        options (each message names the argument).
      TypeError: ``spectrum`` is neither a Spectrum nor a kernel operator.
      kdtheory.krylov.ConvergenceError: on an operator, the tolerance was not certified
        (``solver.strict``).

    Examples:
      >>> import numpy as np
      >>> from kdtheory.eigen import Spectrum
      >>> from kdtheory.dynamics import train
      >>> spec = Spectrum.from_kernel(np.diag([2.0, 1.0]))
      >>> train(spec, np.ones(2), [0.0, np.inf]).train
      array([[0., 0.],
             [1., 1.]])
    """
    if not is_operator(spectrum):
        _check_spectrum(spectrum)
    if (t is None) == (ridge is None):
        raise ValueError("give the time axis t or the ridge strengths ridge (exactly one)")
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a kdtheory.eigen.Recipe, got {type(recipe).__name__}")
    if ridge is not None:
        if recipe.method != "ridge" and (recipe.method, recipe.learning_rate) != ("flow", 1.0):
            raise ValueError(
                f"ridge= is kernel ridge regression; recipe has method={recipe.method!r}, "
                f"learning_rate={recipe.learning_rate!r} (only its normalization is used: pass "
                "recipe=Recipe('ridge', normalization=...))"
            )
        recipe = Recipe("ridge", normalization=recipe.normalization)
    at = cast(ArrayLike, t if ridge is None else ridge)  # exactly one is given (checked above)
    k = _outputs(y)
    if is_operator(spectrum):
        # validate the recipe and the axis before any kernel product
        recipe.filter(RitzSpectrum.of_values(np.zeros(1), spectrum.n), at, outputs=k)
        filt: FilterArg = StructuredFilter(
            lambda spec: recipe.filter(spec, at, outputs=k), recipe_structure(recipe, at, spectrum.n, k)
        )
    else:
        filt = recipe.filter(_check_spectrum(spectrum), at, outputs=k)
    return apply_filter(
        spectrum, y, filt, t=at, init=init, init_weights=init_weights, test=test, recipe=recipe, solver=solver
    )


def apply_filter(
    spectrum: Source,
    y: ArrayLike,
    filter: FilterArg,
    *,
    t: ArrayLike | None = None,
    ridge: ArrayLike | None = None,
    init: ArrayLike | None = None,
    init_weights: ArrayLike | None = None,
    test: TestPoints | None = None,
    recipe: Recipe | Mapping[str, Any] | None = None,
    solver: Lanczos | Dense | None = None,
) -> Trajectory:
    r"""Build a :class:`~kdtheory.trajectory.Trajectory` from any spectral filter.

    The common back end of :func:`train` and of the distillation recipes. Predictions are
    ``f = f_0 − U diag(a) Uᵀ (f_0 − y)``, dual coefficients ``α = −U diag(a/λ) Uᵀ (f_0 − y)``.

    Args:
      spectrum: the training kernel's spectrum, or the kernel as a
        :class:`~kdtheory.operators.KernelOperator` (certified block Lanczos, :mod:`kdtheory.krylov`).
      y: the targets the filter pulls towards, ``(n[, k])``.
      filter: a :class:`~kdtheory.eigen.Filter` of shape ``S + (m,)``, ``a/λ`` in units of
        ``spectrum.evals`` (as :meth:`~kdtheory.eigen.Recipe.filter` returns it), or a function
        ``Spectrum -> Filter`` (required on an operator: it is called with the Ritz values, e.g.
        ``lambda s: Recipe("gd", learning_rate=0.1).filter(s, t)``).
      t: the time axis stored in the trajectory, shape ``S`` (default ``arange`` when
        ``ridge`` is not given either).
      ridge: the ridge strengths stored instead of ``t`` (ridge recipes), shape ``S``.
      init: initial training output ``f_0`` (default 0), shape of ``y``.
      init_weights: initial weights ``w_0`` (features spectrum only).
      test: held-out points, :class:`TestPoints` (cross-kernel or test features, initial output).
      recipe: the :class:`~kdtheory.eigen.Recipe` the filter comes from, or metadata stored on
        the trajectory (``method``, ``learning_rate``, ``momentum``, ``normalization``, as
        :meth:`kdtheory.filters.Recipe.record` gives it); default a ``"custom"`` recipe. Its
        ``normalization`` (``"sum"``, ``"mean"`` or ``"per_output"``, default ``"sum"``)
        normalizes the reported loss. A ridge ``Recipe`` stores an axis given as ``t`` as the
        trajectory's ``ridge`` (its strengths), as :func:`train` and the distill composites do.
      solver: :class:`Dense` on a Spectrum, :class:`kdtheory.krylov.Lanczos` on an operator.

    Returns:
      A :class:`~kdtheory.trajectory.Trajectory`.

    Raises:
      ValueError: a filter whose last axis is not the spectrum's ``m``, shape mismatches, bad
        options (each message names the argument).
      TypeError: ``spectrum`` is not a Spectrum or operator, or ``filter`` is not a Filter.
      kdtheory.krylov.ConvergenceError: on an operator, the tolerance was not certified.
    """
    if isinstance(recipe, Recipe):
        if recipe.method == "ridge" and ridge is None:
            t, ridge = None, t
        recipe = recipe.record()
    normalization = cast(
        Normalization, choice((recipe or {}).get("normalization", "sum"), "normalization", NORMALIZATIONS)
    )
    if t is not None and ridge is not None:
        raise ValueError("a trajectory is indexed by t or by ridge, not both")
    if test is not None and not isinstance(test, TestPoints):
        raise TypeError(
            "test must be a kdtheory.dynamics.TestPoints(kernel=... | features=..., init=...), "
            f"got {type(test).__name__}"
        )
    test_kernel, test_features, test_init = (
        (None, None, None) if test is None else (test.kernel, test.features, test.init)
    )
    if is_operator(spectrum):
        if init_weights is not None or test_features is not None:
            raise ValueError("init_weights and test.features need a features spectrum (Spectrum.from_features)")
        if isinstance(solver, Dense):
            raise ValueError("solver=Dense(...) applies to a Spectrum; on an operator pass solver=Lanczos(...)")
        return _apply_operator(
            spectrum, y, filter, (t, ridge), normalization, (init, test_kernel, test_init), recipe, solver
        )
    spectrum = _check_spectrum(spectrum)
    if solver is None:
        solver = Dense()
    if not isinstance(solver, Dense):
        raise ValueError(
            "solver= on a Spectrum must be kdtheory.dynamics.Dense(...); Lanczos(...) is for a kernel operator"
        )
    compress = solver.compress
    if callable(filter) and not isinstance(filter, Filter):
        filter = filter(spectrum)
    if not isinstance(filter, Filter):
        raise TypeError(f"filter must be a kdtheory.eigen.Filter, got {type(filter).__name__}")
    m = spectrum.evals.size
    a, g = filter.a, filter.a_over_eval
    if a.shape[-1] != m:
        raise ValueError(f"filter must have shape S + (m,) with m={m} modes, got {a.shape}")
    S = a.shape[:-1]
    a2, g2 = a.reshape(-1, m), g.reshape(-1, m)
    axis, ridge_axis = _axes(t, ridge, S)

    y2, squeeze = _as_2d(spectrum.check_labels(y, name="y"))
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
    loss_val = 0.5 * sq / loss_divisor(normalization, spectrum.n, k)
    norm = np.sqrt(np.maximum(np.einsum("tm,tm,mk->t", a2, g2, c * c), 0.0))

    dual = -g2[:, :, None] * c[None]  # coordinates of α(t) in the eigenbasis, (T, m, k)
    test_pred: np.ndarray | None = None
    weights: np.ndarray | None = None
    if test_kernel is not None:
        Kx = as_float_array(test_kernel, "test.kernel", ndim=(2,))
        if Kx.shape[1] != spectrum.n:
            raise ValueError(f"test.kernel has {Kx.shape[1]} columns but the spectrum has n={spectrum.n} points")
        base = _test_init(test_init, Kx.shape[0], k, squeeze)
        test_pred = base[None] + _cross(Kx, spectrum.U, dual, compress)
    elif test_features is not None:
        Xt = _features_arg(spectrum, test_features, "test.features")
    if spectrum.V is not None:
        w0 = _start(init_weights, "init_weights", spectrum.V.shape[0], k, squeeze)
        weights = w0[None] + _basis(spectrum.V, spectrum.singular_values[None, :, None] * dual, compress)
        if test_features is not None:
            test_pred = np.einsum("id,tdk->tik", Xt, weights, optimize=True)

    return _close(
        (axis, ridge_axis),
        S,
        squeeze,
        dict(filter=a, train=train_pred, modes=modes, loss=loss_val, norm=norm, test=test_pred, weights=weights),
        recipe,
        normalization,
    )


def _axes(
    t: ArrayLike | None, ridge: ArrayLike | None, S: tuple[int, ...]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The trajectory's ``t`` and ``ridge`` checked against the filter's leading shape ``S``."""
    axis = None if t is None else as_times(t, "t")
    ridge_axis = None if ridge is None else as_times(ridge, "ridge")
    for arr, name in ((axis, "t"), (ridge_axis, "ridge")):
        if arr is not None and arr.shape != S:
            raise ValueError(f"{name} has shape {arr.shape} but the filter's leading shape is {S}")
    if axis is None and ridge_axis is None:
        axis = np.arange(int(np.prod(S)), dtype=float).reshape(S)
    return axis, ridge_axis


def _close(
    axes: tuple[np.ndarray | None, np.ndarray | None],
    S: tuple[int, ...],
    squeeze: bool,
    fields: Mapping[str, Any],
    recipe: Mapping[str, Any] | None,
    normalization: Normalization,
    solver: Mapping[str, Any] | None = None,
) -> Trajectory:
    """The one closing step of both back ends: reshape to the axis, squeeze 1-D labels, record."""

    def shape(x: np.ndarray | None) -> np.ndarray | None:
        if x is None:
            return None
        x = x.reshape(S + x.shape[1:])
        return x[..., 0] if squeeze and x.ndim > len(S) + 1 else x

    rec = {"method": "custom", "learning_rate": float("nan"), "momentum": 0.0, **(recipe or {})}
    rec["normalization"] = normalization
    out: dict[str, Any] = {
        name: (shape(v) if name in ("train", "modes", "test", "weights") else v) for name, v in fields.items()
    }
    for name, tail in (("filter", fields["filter"].shape[-1:]), ("loss", ()), ("norm", ())):
        out[name] = fields[name].reshape(S + tail)
    return Trajectory(t=axes[0], ridge=axes[1], recipe=rec, solver=solver, **out)


def _apply_operator(
    operator: KernelOperator,
    y: ArrayLike,
    filter: FilterArg,
    axes: tuple[ArrayLike | None, ArrayLike | None],
    normalization: Normalization,
    starts: tuple[ArrayLike | None, ArrayLike | None, ArrayLike | None],
    recipe: Mapping[str, Any] | None,
    solver: Lanczos | None,
) -> Trajectory:
    """:func:`apply_filter` on a kernel operator: the filter goes to :func:`kdtheory.krylov.solve`."""
    opts = Lanczos() if solver is None else solver
    if not isinstance(opts, Lanczos):
        raise TypeError(f"solver must be a kdtheory.krylov.Lanczos, got {type(opts).__name__}")
    if isinstance(filter, Filter) or not callable(filter):
        raise TypeError(
            "on a kernel operator, filter must be a function Spectrum -> kdtheory.filters.Filter "
            "(it is evaluated on the Ritz values), e.g. lambda s: Recipe().filter(s, t)"
        )
    init, test_kernel, test_init = starts
    n = operator.shape[0]
    if operator.shape[0] != operator.shape[1]:
        raise ValueError(f"operator must be a square KernelOperator, got {operator!r}")
    Y = as_float_array(y, "y", ndim=(1, 2))
    if Y.shape[0] != n:
        raise ValueError(f"y has {Y.shape[0]} rows but the operator has n={n}")
    y2, squeeze = _as_2d(Y)
    k = y2.shape[1]
    f0 = np.zeros_like(y2)
    if init is not None:
        f0 = as_float_array(init, "init", ndim=(1, 2))
        if f0.shape != Y.shape:
            raise ValueError(f"init must have the shape of y {Y.shape}, got {f0.shape}")
        f0 = f0.reshape(y2.shape)
    R = y2 - f0
    if not np.any(R):
        raise ValueError("y − init is zero: there is nothing to train (every filter leaves f = init)")
    res = solve(operator, R, filter, opts, test_kernel=test_kernel, structure=getattr(filter, "structure", None))
    S = res.axis_shape
    axes_checked = _axes(axes[0], axes[1], S)
    test = None
    if res.test_change is not None:
        test = _test_init(test_init, res.test_change.shape[1], k, squeeze)[None] + res.test_change
    modes = -(1.0 - res.filter)[:, :, None] * res.coords[None]  # (V s_i)ᵀ (f − y)
    div = loss_divisor(normalization, n, k)
    loss = 0.5 * np.einsum("tmk,tmk->t", modes, modes) / div
    stats = dict(res.stats)
    err = np.asarray(stats["error_train"])
    # |½‖r + δ‖² − ½‖r‖²| ≤ ‖δ‖ (‖r‖ + ‖δ‖): the loss bound follows from the train bound
    stats["error_loss"] = (err * (np.sqrt(2 * div * loss) + err) / div).tolist()
    for key in ("error_train", "error_test", "error_loss", "error_norm"):
        if stats.get(key) is not None:
            stats[key] = np.asarray(stats[key]).reshape(S).tolist()
    traj = _close(
        axes_checked,
        S,
        squeeze,
        dict(filter=res.filter, train=f0[None] + res.change, modes=modes, loss=loss, norm=res.norm, test=test),
        recipe,
        normalization,
        solver=stats,
    )
    checked: Trajectory = check(traj, opts)
    return checked


def _outputs(y: ArrayLike) -> int:
    """Number of outputs ``k`` of labels ``(n,)`` (1) or ``(n, k)``."""
    shape = np.shape(y)
    return int(shape[1]) if len(shape) == 2 else 1


# ---------------------------------------------------------------------- helpers
def _check_spectrum(spectrum: object) -> Spectrum:
    """``spectrum`` itself, or a TypeError naming what a source may be."""
    if not isinstance(spectrum, Spectrum):
        raise TypeError(
            "spectrum must be a kdtheory.eigen.Spectrum (use Spectrum.from_kernel(K) or "
            "Spectrum.from_features(X)) or a kdtheory.operators.KernelOperator, "
            f"got {type(spectrum).__name__}"
        )
    return spectrum


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
            out: np.ndarray = R @ (Kx @ U).T
            return out
        out = (Kx @ (U @ R.T)).T
        return out

    def weights() -> np.ndarray:
        # ‖Kx u_k‖ estimated from a seeded Gaussian sketch of Kx's rows (16 rows)
        sketch = np.random.default_rng(0).standard_normal((16, nt)) @ Kx
        norms: np.ndarray = np.linalg.norm(sketch @ U, axis=0) / 4.0
        return norms

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
        if spectrum.V is None:
            raise ValueError("init_weights needs a features spectrum (Spectrum.from_features)")
        w0 = _start(init_weights, "init_weights", spectrum.V.shape[0], y2.shape[1], squeeze)
        # X w0 = U S Vᵀ w0
        f0: np.ndarray = spectrum.U @ (spectrum.singular_values[:, None] * (spectrum.V.T @ w0))
        return f0
    if init is None:
        return np.zeros_like(y2)
    f0 = as_float_array(init, "init", ndim=(1, 2))
    if f0.shape != (y2[:, 0].shape if squeeze else y2.shape):
        raise ValueError(f"init must have the shape of y {y2.shape if not squeeze else (y2.shape[0],)}, got {f0.shape}")
    return f0.reshape(y2.shape)


def _test_init(test_init: ArrayLike | None, nt: int, k: int, squeeze: bool) -> np.ndarray:
    return _start(test_init, "test.init", nt, k, squeeze)


def _start(value: ArrayLike | None, name: str, rows: int, k: int, squeeze: bool) -> np.ndarray:
    """A starting value ``(rows, k)`` given as ``(rows,)`` for 1-D labels or ``(rows, k)``; default zeros."""
    if value is None:
        return np.zeros((rows, k))
    f = as_float_array(value, name, ndim=(1, 2))
    want = (rows,) if squeeze else (rows, k)
    if f.shape != want:
        raise ValueError(f"{name} must have shape {want}, got {f.shape}")
    return f.reshape(rows, k)
