r"""The NTK bridge: empirical and analytic neural tangent kernels, and linearized dynamics.

* :func:`empirical_ntk` — ``Θ(x, x') = J(x) J(x')ᵀ``, ``J = ∂f/∂θ``, of any JAX function
  ``apply(params, x)`` with pytree parameters and inputs of any per-example shape (vectors, images
  ``(h, w, c)``, sequences), by four methods that must agree: ``"structured"`` (Gram matrices of
  layer activations and backpropagated errors, docs/theory.md §10, :mod:`kdtheory.structured_ntk`;
  for a :class:`~kdtheory.simulate.Model` that declares its layers), ``"jacobian"`` (``jacrev`` of
  the batched function, then one BLAS product), ``"ntvp"`` (NTK-vector products,
  :func:`kdtheory.operators.ntk_vector_product`: ``vjp`` then ``jvp``, never forming J) and
  ``"per_example"`` (:func:`kdtheory.gradients.per_example_jacobians`, then one BLAS product).
  ``"auto"`` (default) uses a Model's declared layers, and for any other function (Flax ``nnx`` /
  ``linen``, Equinox, plain JAX) finds them by tracing it: every ``dot_general`` /
  ``conv_general_dilated`` whose weight is a parameter leaf gets the structured formula, the other
  parameters (biases, norms, embeddings) the Jacobian method, summed; checked against NTK-vector
  products, with a fallback to ``"jacobian"`` (reason in the ``"kdtheory.ntk"`` debug log). In
  blocks of ``block_size`` inputs so that at most two blocks are held at once. ``trace="mean"``
  (default) returns the ``n × n'`` kernel averaged over the output dimension
  (``(1/k) Σ_c Θ_cc``), ``"sum"`` its sum, ``None`` the full ``(n·k) × (n'·k)`` kernel,
  point-major (row ``i·k + c`` is output ``c`` of point ``i``).

  A Flax or Equinox model becomes ``apply(params, x)`` in one line::

      graphdef, params = nnx.split(model, nnx.Param)           # Flax nnx
      apply = lambda p, x: nnx.merge(graphdef, p)(x)
      apply, params = model.apply, variables                   # Flax linen
      params, static = eqx.partition(model, eqx.is_array)      # Equinox (per-example modules)
      apply = lambda p, x: jax.vmap(eqx.combine(p, static))(x)

* :func:`relu_ntk` — the infinite-width NNGP and NTK of a ReLU MLP in the NTK parameterization
  of :func:`kdtheory.simulate.mlp` (``h_{l+1} = σ_w/√fan_in · h_l W_l + σ_b b_l``, ``W, b ~ N(0,1)``),
  any depth, by the arc-cosine recursion (Cho & Saul 2009; Jacot et al. 2018; Arora et al. 2019):
  ``Σ¹ = σ_w² x·x'/d + σ_b²``, ``Θ¹ = Σ¹``;
  ``Σ^{l+1} = σ_w² √(Σ_xx Σ_x'x')(sin θ + (π − θ) cos θ)/(2π) + σ_b²``,
  ``Σ̇^{l+1} = σ_w² (π − θ)/(2π)``, ``Θ^{l+1} = Θ^l Σ̇^{l+1} + Σ^{l+1}``, θ the angle of layer l.
  docs/theory.md §6's two-layer formula (no ``1/√d`` on the first layer) is this with ``x`` scaled by ``√d``.
* :func:`linearized` — the closed-form dynamics of :mod:`kdtheory.dynamics` with the empirical
  NTK at initialization (MSE, gradient descent), the prediction a wide network should track.
* :func:`lag_at_matched_progress` — docs/theory.md §3's E2 measurement on any filter, closed-form or
  measured on a network (:func:`project_residual`): the student's lag on the lower directions at
  the reference run's time that matches its progress along the top direction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, choice, positive_integer, positive_scalar
from kdtheory._layers import analyze, network_outputs, signature
from kdtheory.dynamics import TestPoints, train
from kdtheory.eigen import NORMALIZATIONS, Normalization, Recipe, Spectrum, loss_divisor
from kdtheory.gradients import per_example_jacobians
from kdtheory.operators import NTKOperator, check_relu_parameters, ntk_vector_product, relu_kernels
from kdtheory.simulate import Model
from kdtheory.structured_ntk import Structure, structured_ntk
from kdtheory.trajectory import Trajectory

__all__ = [
    "empirical_ntk",
    "ReluKernels",
    "relu_ntk",
    "linearized",
    "project_residual",
    "project_first_layer",
    "lag_at_matched_progress",
]

Trace = Literal["mean", "sum"] | None
Network = Model | Callable[..., Any]  # a Model, or any ``apply(params, x) -> (batch, k)``
Jacobians = Callable[[Any, Any, Any], np.ndarray]  # ``(apply, params, X) -> J`` of shape ``(n, k, P)``
METHODS = ("auto", "structured", "jacobian", "ntvp", "per_example")
log = logging.getLogger("kdtheory.ntk")


def _batch(X: ArrayLike, name: str) -> np.ndarray:
    A = as_float_array(X, name)
    if A.ndim < 2:
        raise ValueError(f"{name} must be a batch (n, ...) of inputs with a feature axis, got shape {A.shape}")
    return A


def empirical_ntk(
    apply: Network,
    params: Any,
    X1: ArrayLike,
    X2: ArrayLike | None = None,
    *,
    method: Literal["auto", "structured", "jacobian", "ntvp", "per_example"] = "auto",
    trace: Trace = "mean",
    block_size: int | None = None,
    check: bool = True,
) -> np.ndarray:
    r"""Empirical NTK ``Θ(X1, X2) = J(X1) J(X2)ᵀ`` of ``apply(params, x) -> (b, k)``.

    ``method="auto"`` (default): for a :class:`~kdtheory.simulate.Model` that declares its layers,
    the structured method on them; for any other function (a Flax ``nnx`` / ``linen`` or Equinox
    model wrapped as ``apply(params, x)``, plain JAX) the layers are found by tracing it on one
    example (the dense and convolutional layers whose weight is a parameter leaf,
    :mod:`kdtheory._layers`): the structured formula for those, the generic Jacobian method for the
    other parameters (biases, norms, embeddings), summed. Where no layer is recognized it falls
    back to ``"jacobian"`` and says why in a debug log (``logging.getLogger("kdtheory.ntk")``).
    Examples must be processed independently (no batch statistics). With ``check`` (default) a
    structured result is compared with the generic NTK-vector product on 2 random vectors over up
    to 8 inputs per side: a declared structure that does not match ``apply`` raises, an automatic
    one that does not falls back to ``"jacobian"`` (logged).

    Args:
      apply: the network: a :class:`~kdtheory.simulate.Model` (its declared structure enables
        ``"structured"``) or any function ``apply(params, x)`` on a batch.
      params: a pytree of parameters; the kernel is computed in their dtype.
      X1: inputs ``(n1, …)`` of any per-example shape the network takes (vectors ``(n, d)``,
        images ``(n, h, w, c)``, sequences ``(n, T, d)``).
      X2: inputs ``(n2, …)`` of the same per-example shape (default ``X1``).
      method: ``"auto"``, ``"structured"``, ``"jacobian"``, ``"ntvp"`` or ``"per_example"`` (see
        the module docstring).
      trace: ``"mean"`` / ``"sum"`` over outputs, or ``None`` for the full kernel.
      block_size: compute in blocks of this many inputs per side (``None``: one block).
      check: verify a structured result against NTK-vector products (see above).

    Returns:
      ``(n1, n2)`` (traced) or ``(n1·k, n2·k)`` (full, point-major: row ``i·k + c`` is output ``c``
      of input ``i``, and likewise for columns).

    Raises:
      ValueError: an unknown method or trace; ``"structured"`` for a function without declared
        layers; inputs without a batch axis, of different per-example shapes, or non-finite;
        params that are not finite, do not fit ``apply`` or (for a Model) are not the shapes its
        ``init`` makes; a Model whose declared layers do not match its ``apply``.
    """
    choice(method, "method", METHODS)
    if trace not in ("mean", "sum", None):
        raise ValueError(f"unknown trace {trace!r}; expected 'mean', 'sum' or None")
    model = apply if isinstance(apply, Model) else None
    structure = model.structure if model is not None else None
    fn = apply.apply if isinstance(apply, Model) else apply
    if method == "structured" and structure is None:
        raise ValueError(
            "method='structured' needs a Model that declares its layers (Model.structure, e.g. kdtheory.simulate.mlp); "
            "use method='auto' to find the layers of any function"
        )
    A = _batch(X1, "X1")
    B = A if X2 is None else _batch(X2, "X2")
    if B.shape[1:] != A.shape[1:]:
        raise ValueError(f"X1 has per-example shape {A.shape[1:]} but X2 has {B.shape[1:]}")
    bs = None if block_size is None else positive_integer(block_size, "block_size")
    _check_params(model, fn, params, A, "X1")
    dt = ravel_pytree(params)[0].dtype
    Aj, Bj = jnp.asarray(A, dt), None if X2 is None else jnp.asarray(B, dt)
    if method in ("auto", "structured") and model is not None and model.structure is not None:
        K = structured_ntk(model.structure, params, Aj, Bj, trace=trace, block_size=bs)
        if check:
            gap = _gap(fn, params, Aj, Bj, K, trace)
            if gap is not None:
                raise ValueError(_declared_mismatch(model, model.structure, params, Aj, gap))
        return K
    if method == "auto":
        found = _auto(fn, params, Aj, Bj, trace, bs, check)
        if found is not None:
            return found
        method = "jacobian"
    if method == "ntvp":
        return _ntk_ntvp(fn, params, Aj, Bj, trace, bs)
    jac = _jacobians_batched if method == "jacobian" else per_example_jacobians
    return _generic(fn, params, Aj, Bj, trace, bs, jac)


def _generic(
    fn: Callable[..., Any] | None,
    params: Any,
    A: jax.Array,
    B: jax.Array | None,
    trace: Trace,
    bs: int | None,
    jac: Jacobians,
) -> np.ndarray:
    """``J Jᵀ`` from per-block Jacobians ``(n, k, P)`` (at most two row blocks of ``J`` held at once)."""
    same = B is None
    Bx = A if B is None else B
    blocks1 = [slice(i, i + bs) for i in range(0, A.shape[0], bs)] if bs else [slice(None)]
    blocks2 = [slice(i, i + bs) for i in range(0, Bx.shape[0], bs)] if bs else [slice(None)]
    rows = []
    for s1 in blocks1:
        J1 = jac(fn, params, A[s1])  # one row block of J in memory, reused for every column block
        rows.append([_contract(J1, J1 if same and s1 == s2 else jac(fn, params, Bx[s2]), trace) for s2 in blocks2])
    return np.block(rows)


def _auto(
    fn: Callable[..., Any], params: Any, A: jax.Array, B: jax.Array | None, trace: Trace, bs: int | None, check: bool
) -> np.ndarray | None:
    """Structured on the layers :func:`kdtheory._layers.analyze` finds + generic on the rest; ``None``: fall back."""
    name = getattr(fn, "__qualname__", type(fn).__name__)
    plan = analyze(fn, params, A)
    if plan.structure is None:
        log.debug("empirical_ntk(%s): generic Jacobian method: %s", name, plan.reason)
        return None
    leaves, treedef = jax.tree_util.tree_flatten(params)
    log.debug(
        "empirical_ntk(%s): structured on %d layers (%s); generic on %d other leaves%s",
        name, len(plan.names), ", ".join(plan.names), len(plan.rest),
        f" ({plan.reason})" if plan.reason else "",
    )  # fmt: skip
    try:
        K = structured_ntk(plan.structure, leaves, A, B, trace=trace, block_size=bs)
    except Exception as err:  # noqa: BLE001 - an analysis this module cannot evaluate falls back, logged
        log.debug("empirical_ntk(%s): generic Jacobian method: the structured evaluation failed (%s)", name, err)
        return None
    if plan.rest:
        jac = functools.partial(_rest_jacobian, fn, treedef, plan.rest)
        K = K + _generic(None, leaves, A, B, trace, bs, lambda _, lv, x: np.asarray(jac(lv, x)))
    if check:
        gap = _gap(fn, params, A, B, K, trace)
        if gap is not None:
            log.debug("empirical_ntk(%s): generic Jacobian method: the found structure is off by %.3g", name, gap)
            return None
    return K


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _rest_jacobian(fn: Callable[..., Any], treedef: Any, rest: tuple[int, ...], leaves: list[Any], x: jax.Array) -> Any:
    """``∂f/∂θ_rest`` ``(n, k, P_rest)`` for the leaves ``rest`` (the others held fixed), one example at a time.

    ``vmap`` over examples of the per-example ``jacrev`` (``k`` backward passes per example, as
    the structured errors cost), compiled once per plan.
    """
    index = {j: i for i, j in enumerate(rest)}
    flat, unravel = ravel_pytree([leaves[j] for j in rest])

    def one(fl: jax.Array, xi: jax.Array) -> Any:
        part = unravel(fl)
        merged = [part[index[j]] if j in index else leaf for j, leaf in enumerate(leaves)]
        return fn(jax.tree_util.tree_unflatten(treedef, merged), xi[None])[0]

    return jax.vmap(jax.jacrev(one), in_axes=(None, 0))(flat, x)


_CHECK_POINTS, _CHECK_VECTORS = 8, 2


def _gap(fn: Callable[..., Any], params: Any, A: jax.Array, B: jax.Array | None, K: Any, trace: Trace) -> float | None:
    r"""Relative gap of ``K V`` from the NTK-vector product on up to 8 inputs per side; ``None``: round-off.

    The gap is ``max |K_s V − Θ_s V| / max (|K_s| |V|)`` over a corner ``K_s`` of ``K``; round-off
    allows ``10⁻²`` in float32 (TF32 products on GPUs) and ``10⁶·ε`` in float64 (a structure that
    leaves out a layer or mis-scales a bias is off by 10–40%).
    """
    n1 = min(A.shape[0], _CHECK_POINTS)
    Bx = A if B is None else B
    n2 = min(Bx.shape[0], _CHECK_POINTS)
    K = np.asarray(K)
    k = K.shape[0] // A.shape[0]
    rows, cols = (n1, n2) if trace is not None else (n1 * k, n2 * k)
    Ks = K[:rows, :cols].astype(np.float64)
    V = np.random.default_rng(0).standard_normal((cols, _CHECK_VECTORS))
    Vj = jnp.asarray(V if trace is not None else V.reshape(n2, k, -1), A.dtype)
    want = np.asarray(ntk_vector_product(fn, params, A[:n1], Bx[:n2], Vj, trace=trace), dtype=np.float64)
    want = want.reshape(rows, _CHECK_VECTORS)
    scale = float(np.max(np.abs(Ks) @ np.abs(V)))
    gap = float(np.max(np.abs(Ks @ V - want))) / max(scale, np.finfo(float).tiny)
    # float32: 1e-2, room for TF32 matmuls on GPUs (10-bit mantissas); float64 (and wider): 1e6·ε
    tol = 1e-2 if np.finfo(A.dtype).bits <= 32 else 1e6 * float(np.finfo(A.dtype).eps)
    return gap if gap > tol else None


def _declared_mismatch(model: Model, structure: Structure, params: Any, A: jax.Array, gap: float) -> str:
    """The message for a declared structure that is not the network's: the gap and the parameters it covers."""
    _, layers = structure(params, A[:1], None)  # one example, concretely (bias scales are numbers)
    widths = [(lay.inputs.shape[-1], lay.preactivation.shape[-1], float(lay.bias_scale)) for lay in layers]
    covered = sum(d * w + (w if s else 0) for d, w, s in widths)
    total = int(ravel_pytree(params)[0].size)
    return (
        f"the structured NTK of {model.name} differs from its Jacobian NTK by {gap:.3g} (relative) on random vectors: "
        f"its declared layers (Model.structure) do not match its apply. The {len(layers)} declared layers cover "
        f"{covered} of its {total} parameters (every parameter must belong to one, with the bias scale apply uses); "
        "use method='jacobian' or fix the declaration"
    )


def _check_params(model: Model | None, fn: Callable[..., Any], params: Any, A: Any, x_name: str) -> None:
    """Params finite, of the shapes ``model.init`` makes (a Model), and fitting ``apply`` on ``A[:1]``."""
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("params holds no arrays: the NTK needs trainable parameters")
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        where, dtype, shape = f"params{jax.tree_util.keystr(path)}", jnp.result_type(leaf), np.shape(leaf)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise ValueError(f"{where} (shape {shape}) has dtype {dtype}; the NTK needs float parameters")
        if not bool(jnp.all(jnp.isfinite(leaf))):  # reduced where the leaf lives, no copy to the host
            raise ValueError(f"{where} (shape {shape}) contains {'NaN' if bool(jnp.any(jnp.isnan(leaf))) else 'inf'}")
    try:
        key = (model, signature(fn, params, A))
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _FITS:
        return
    if model is not None:
        want = jax.eval_shape(model.init, jax.random.PRNGKey(0))
        want_leaves, want_def = jax.tree_util.tree_flatten(want)
        got_def = jax.tree_util.tree_structure(params)
        shapes = [tuple(np.shape(leaf)) for leaf in leaves]
        want_shapes = [tuple(w.shape) for w in want_leaves]
        if got_def != want_def or shapes != want_shapes:  # type: ignore[operator]  # jaxlib has no PyTreeDef stub
            raise ValueError(
                f"params do not match {model.name}: its init makes {len(want_shapes)} leaves of shapes {want_shapes}, "
                f"got {len(shapes)} of shapes {shapes}"
            )
    network_outputs(fn, params, jnp.asarray(A[:1], ravel_pytree(params)[0].dtype), x_name=x_name)
    if key is not None:
        if len(_FITS) >= 256:
            _FITS.clear()
        _FITS.add(key)


_FITS: set[Any] = set()  # network calls whose params and inputs have been checked to fit (shapes only)


def _contract(J1: np.ndarray, J2: np.ndarray, trace: Trace) -> np.ndarray:
    """J1 (n1, k, P), J2 (n2, k, P) -> traced (n1, n2) or full (n1·k, n2·k), as one BLAS product."""
    n1, k, P = J1.shape
    if trace is None:
        full: np.ndarray = J1.reshape(n1 * k, P) @ J2.reshape(-1, P).T
        return full
    K: np.ndarray = J1.reshape(n1, k * P) @ J2.reshape(J2.shape[0], k * P).T  # Σ_c J1[a,c]·J2[b,c]
    return K / k if trace == "mean" else K


def _jacobians_batched(apply: Callable[..., Any], params: Any, A: Any) -> np.ndarray:
    """``jax.jacrev`` of the batched function: the textbook full Jacobian ``(n, k, P)``."""
    flat, unravel = ravel_pytree(params)
    return np.asarray(jax.jacrev(lambda fl, x: apply(unravel(fl), x))(flat, A))


def _ntk_ntvp(
    apply: Callable[..., Any], params: Any, A: jax.Array, B: jax.Array | None, trace: Trace, block_size: int | None
) -> np.ndarray:
    """Θ(A, B) as the dense form of :class:`~kdtheory.operators.NTKOperator` (its NTK-vector products)."""
    dt = A.dtype
    op = NTKOperator(apply, params, A if B is None else B, trace=trace, block_size=block_size, dtype=dt)
    target = op if B is None else op.cross(np.asarray(A))
    per_column = op.outputs * int(ravel_pytree(params)[0].size)  # tangent entries one column of V makes
    cols = max(1, min(op.n, 2**25 // max(per_column, 1)))
    return target.dense(block_size=cols).astype(dt)


class ReluKernels(NamedTuple):
    """The infinite-width kernels of a ReLU MLP (:func:`relu_ntk`), each ``(n1, n2)``."""

    nngp: np.ndarray
    ntk: np.ndarray


def relu_ntk(
    X1: ArrayLike,
    X2: ArrayLike | None = None,
    *,
    depth: int = 1,
    weight_std: float = 1.0,
    bias_std: float = 0.0,
) -> ReluKernels:
    r"""Infinite-width ``(NNGP, NTK)`` of a ReLU MLP with ``depth`` hidden layers (NTK parameterization).

    Per output unit (the kernel of each output; outputs are independent at infinite width),
    matching ``empirical_ntk(..., trace="mean")`` of :func:`kdtheory.simulate.mlp` with
    ``parameterization="ntk"`` as the widths grow.

    Args:
      X1: inputs ``(n1, d)``.
      X2: inputs ``(n2, d)`` (default ``X1``).
      depth: number of hidden layers (0: the linear kernel).
      weight_std: σ_w > 0.
      bias_std: σ_b ≥ 0.

    Returns:
      :class:`ReluKernels` ``(nngp, ntk)`` = ``(Σ, Θ)``, each ``(n1, n2)``.

    Raises:
      ValueError: widths differ, a negative, fractional or bool depth, bad standard deviations.
    """
    A = as_float_array(X1, "X1", ndim=(2,))
    B = A if X2 is None else as_float_array(X2, "X2", ndim=(2,))
    if B.shape[1] != A.shape[1]:
        raise ValueError(f"X1 has {A.shape[1]} features but X2 has {B.shape[1]}")
    depth = check_relu_parameters(depth, weight_std, bias_std)
    same = np.eye(A.shape[0], dtype=bool) if X2 is None else None  # a point with itself: θ = 0 exactly
    nngp, theta = relu_kernels(A, B, depth=depth, weight_std=weight_std, bias_std=bias_std, same=same, xp=np)
    return ReluKernels(nngp, theta)


def linearized(
    apply: Network,
    params: Any,
    X: ArrayLike,
    y: ArrayLike,
    t: ArrayLike,
    *,
    learning_rate: float,
    X_test: ArrayLike | None = None,
    normalization: Normalization = "sum",
) -> Trajectory:
    r"""Closed-form gradient descent of the network linearized at ``params`` (Lee et al. 2019).

    ``f_lin(t) = f_0 − Θ-filter · (f_0 − y)`` with the full empirical NTK ``Θ`` (``n·k × n·k``,
    point-major) at initialization, the MSE loss of :class:`kdtheory.simulate.Loss` with the same
    ``normalization`` (``"sum"`` ``½‖f − y‖²``, ``"mean"`` ``/n`` with n points, ``"per_output"``
    ``/(n·k)``) and step ``learning_rate``: the trajectory a wide network trained with
    :func:`kdtheory.simulate.train_model` should track.

    Args:
      apply: the network (a :class:`~kdtheory.simulate.Model` or ``apply(params, x)``).
      params: the parameters at initialization.
      X: training inputs ``(n, …)``, any per-example shape.
      y: targets ``(n, k)``.
      t: whole steps (any shape; ``np.inf``: converged).
      learning_rate: η > 0.
      X_test: test inputs ``(n_test, …)``.
      normalization: the loss normalization.

    Returns:
      A :class:`~kdtheory.trajectory.Trajectory` with ``train`` ``t.shape + (n, k)`` and ``test``
      ``t.shape + (n_test, k)``; ``loss`` in the given normalization.

    Raises:
      ValueError: bad shapes (params or inputs that do not fit ``apply`` are named), a
        non-positive learning rate, an unknown normalization.
    """
    choice(normalization, "normalization", NORMALIZATIONS)
    fn = apply.apply if isinstance(apply, Model) else apply
    Xn = _batch(X, "X")
    Y = as_float_array(y, "y", ndim=(2,))
    n, k = Y.shape
    if Xn.shape[0] != n:
        raise ValueError(f"y has {n} rows but X has {Xn.shape[0]}")
    eta = positive_scalar(learning_rate, "learning_rate")
    _check_params(apply if isinstance(apply, Model) else None, fn, params, Xn, "X")
    K = empirical_ntk(apply, params, Xn, trace=None)
    f0 = np.asarray(fn(params, jnp.asarray(Xn, ravel_pytree(params)[0].dtype)))
    test = None
    if X_test is not None:
        Xt = _batch(X_test, "X_test")
        test = TestPoints(
            kernel=empirical_ntk(apply, params, Xt, Xn, trace=None),
            init=np.asarray(fn(params, jnp.asarray(Xt, f0.dtype))).reshape(-1),
        )
    div = loss_divisor(normalization, n, k)
    # the flattened problem has n·k "points": scale the step by hand, keep the loss's divisor
    spec = Spectrum.from_kernel(K)
    tr = train(spec, Y.reshape(-1), t, recipe=Recipe("gd", learning_rate=eta / div), init=f0.reshape(-1), test=test)
    shape = np.shape(t)
    return Trajectory(
        t=tr.t,
        train=tr.train.reshape(shape + (n, k)),
        loss=tr.loss / div,
        test=None if tr.test is None else tr.test.reshape(shape + (-1, k)),
        filter=tr.filter,
        modes=tr.modes,
        norm=tr.norm,
        recipe={"method": "gd", "learning_rate": eta, "momentum": 0.0, "normalization": normalization},
    )


def project_residual(spectrum: Spectrum, outputs: ArrayLike, init: ArrayLike, y: ArrayLike) -> np.ndarray:
    r"""Fraction of each eigendirection's target component learned by a network.

    Summed over outputs: ``a_k = Σ_c z_kc (u_kᵀ(f_c − f0_c)) / Σ_c z_kc²`` with ``z = Uᵀ(y − f_0)``.
    For a network following its kernel dynamics this is the spectral filter. Directions where the
    target has no component (``Σ_c z_kc² = 0``) give 0.

    Args:
      spectrum: spectrum of the (traced) NTK on the training inputs, ``m`` modes.
      outputs: network outputs on the training inputs, shape ``(…, n, k)`` (e.g. a trajectory's
        ``train``).
      init: the initial outputs ``f_0``, shape ``(n, k)``.
      y: the targets the network was trained towards, shape ``(n, k)``.

    Returns:
      The measured filter, shape ``(…, m)``.
    """
    F = np.asarray(outputs, dtype=float)
    f0 = np.asarray(init, dtype=float)
    z = spectrum.U.T @ (np.asarray(y, float) - f0)
    proj = np.einsum("nm,...nk->...mk", spectrum.U, F - f0)
    den = np.sum(z * z, axis=1)
    learned: np.ndarray = np.sum(proj * z, axis=-1) / np.where(den > 0, den, 1.0)
    return learned


def project_first_layer(W: ArrayLike, X: ArrayLike) -> np.ndarray:
    r"""Energy of first-layer weights ``W`` along the input covariance eigendirections.

    Computes ``‖v_jᵀ W‖²`` for the eigenvectors ``v_j`` of ``XᵀX/n`` (descending eigenvalues).

    Args:
      W: first-layer weights, shape ``(d, h)``.
      X: inputs, shape ``(n, d)``.

    Returns:
      The energies, shape ``(min(n, d),)``.

    Raises:
      ValueError: ``W`` and ``X`` disagree on ``d``, or are not finite 2-D arrays.
    """
    Wn = as_float_array(W, "W", ndim=(2,))
    Xn = as_float_array(X, "X", ndim=(2,))
    if Wn.shape[0] != Xn.shape[1]:
        raise ValueError(f"W has {Wn.shape[0]} rows but X has {Xn.shape[1]} features")
    V = Spectrum.from_features(Xn).V
    assert V is not None  # from_features always gives the weight-space vectors
    energies: np.ndarray = np.sum((V.T @ Wn) ** 2, axis=1)
    return energies


def lag_at_matched_progress(reference: ArrayLike, student: ArrayLike, *, directions: int) -> float:
    r"""The student's mean lag on directions ``2..K`` at the reference's matched top-direction progress.

    docs/theory.md §3, E2 (matched progress): with ``r(t)`` the reference run's filter (the one-hot
    twin) along its time axis and ``s`` the student's filter at its time, ``t'`` is the first time
    the reference reaches the student's progress along the top direction, ``r_1(t') = s_1``, and

        lag = (1/(K − 1)) Σ_{k=2..K} (r_k(t') − s_k).

    ``t'`` is located between the two recorded rows that bracket the first crossing, and every
    direction is interpolated linearly in ``r_1`` between them (exact where the reference is
    recorded at ``t'``; otherwise the error is second order in the spacing of the rows). For the
    composed filter of a distilled student the lag is positive (docs/theory.md §3, E2); for a student
    that is itself a reference run it is 0. The filters may be closed forms
    (:meth:`kdtheory.eigen.Recipe.filter`, :func:`kdtheory.distill.distill_filter`) or measured
    on a network (:func:`project_residual`), so the same function gives a prediction and a
    measurement.

    Args:
      reference: the reference run's filter, shape ``(T, m)``, rows in increasing time, columns
        the directions in order of decreasing eigenvalue.
      student: the student's filter at its time, shape ``(m,)``.
      directions: ``K``, the number of top directions compared, ``2 ≤ K ≤ m``.

    Returns:
      The mean lag over directions ``2..K`` (positive: the student lags behind the reference).

    Raises:
      ValueError: shapes that do not match, non-finite values, ``K`` outside ``[2, m]``, or a
        student top-direction progress the reference never reaches within its rows (or starts
        above): extend the reference's time axis.
    """
    R = as_float_array(reference, "reference", ndim=(2,))
    S = as_float_array(student, "student", ndim=(1,))
    if R.shape[1] != S.shape[0]:
        raise ValueError(f"reference has {R.shape[1]} directions but student has {S.shape[0]}")
    if isinstance(directions, bool) or int(directions) != directions or not 2 <= directions <= S.shape[0]:
        raise ValueError(f"directions must be an integer in [2, {S.shape[0]}], got {directions!r}")
    K = int(directions)
    top, target = R[:, 0], S[0]
    if top[0] > target:
        raise ValueError(
            f"the reference starts beyond the student's top-direction progress ({top[0]:.4g} > {target:.4g})"
        )
    reached = np.flatnonzero(top >= target)
    if reached.size == 0:
        raise ValueError(
            f"the reference never reaches the student's top-direction progress {target:.4g} (its largest is "
            f"{top.max():.4g}): extend the reference's time axis"
        )
    j = int(reached[0])
    if j == 0 or top[j] == target:
        matched = R[j, :K]
    else:
        w = (target - top[j - 1]) / (top[j] - top[j - 1])
        matched = R[j - 1, :K] + w * (R[j, :K] - R[j - 1, :K])
    return float(np.mean(matched[1:] - S[1:K]))
