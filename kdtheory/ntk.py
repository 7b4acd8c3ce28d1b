r"""The NTK bridge: empirical and analytic neural tangent kernels, and linearized dynamics.

* :func:`empirical_ntk` — ``Θ(x, x') = J(x) J(x')ᵀ``, ``J = ∂f/∂θ``, of any JAX function
  ``apply(params, x)`` with pytree parameters, by three methods that must agree:
  ``"jacobian"`` (``jacrev`` of the batched function, then one BLAS product), ``"ntvp"``
  (NTK-vector products: ``vjp`` then ``jvp``, never forming J) and ``"per_example"`` (``vmap`` of a
  per-example ``jacrev``, then one BLAS product); in blocks of ``block_size`` inputs so that at
  most two blocks of J are held at once. ``trace="mean"`` (default) returns the
  ``n × n'`` kernel averaged over the output dimension (``(1/k) Σ_c Θ_cc``), ``"sum"`` its sum,
  ``None`` the full ``(n·k) × (n'·k)`` kernel (row index ``i·k + c``).
* :func:`relu_ntk` — the infinite-width NNGP and NTK of a ReLU MLP in the NTK parameterization
  of :func:`kdtheory.simulate.mlp` (``h_{l+1} = σ_w/√fan_in · h_l W_l + σ_b b_l``, ``W, b ~ N(0,1)``),
  any depth, by the arc-cosine recursion (Cho & Saul 2009; Jacot et al. 2018; Arora et al. 2019):
  ``Σ¹ = σ_w² x·x'/d + σ_b²``, ``Θ¹ = Σ¹``;
  ``Σ^{l+1} = σ_w² √(Σ_xx Σ_x'x')(sin θ + (π − θ) cos θ)/(2π) + σ_b²``,
  ``Σ̇^{l+1} = σ_w² (π − θ)/(2π)``, ``Θ^{l+1} = Θ^l Σ̇^{l+1} + Σ^{l+1}``, θ the angle of layer l.
  THEORY.md's two-layer formula (no ``1/√d`` on the first layer) is this with ``x`` scaled by ``√d``.
* :func:`linearized` — the closed-form dynamics of :mod:`kdtheory.dynamics` with the empirical
  NTK at initialization (MSE, gradient descent), the prediction a wide network should track.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpy.typing import ArrayLike

from kdtheory._checks import as_float_array, choice, positive_scalar
from kdtheory.dynamics import Trajectory, train
from kdtheory.eigen import Spectrum

__all__ = ["empirical_ntk", "relu_ntk", "linearized", "project_residual", "project_first_layer"]

Trace = Literal["mean", "sum"] | None


def empirical_ntk(
    apply,
    params: Any,
    X1: ArrayLike,
    X2: ArrayLike | None = None,
    *,
    method: Literal["jacobian", "ntvp", "per_example"] = "jacobian",
    trace: Trace = "mean",
    block_size: int | None = None,
) -> np.ndarray:
    r"""Empirical NTK ``Θ(X1, X2) = J(X1) J(X2)ᵀ`` of ``apply(params, x) -> (b, k)``.

    Args:
      apply: the network, ``apply(params, x)`` on a batch.
      params: a pytree of parameters.
      X1, X2: input batches (``X2`` defaults to ``X1``).
      method: ``"jacobian"``, ``"ntvp"`` or ``"per_example"`` (see the module docstring).
      trace: ``"mean"`` / ``"sum"`` over outputs, or ``None`` for the full kernel.
      block_size: compute in blocks of this many inputs per side (``None``: one block).

    Returns:
      ``(n1, n2)`` (traced) or ``(n1·k, n2·k)`` (full).
    """
    choice(method, "method", ("jacobian", "ntvp", "per_example"))
    if trace not in ("mean", "sum", None):
        raise ValueError(f"unknown trace {trace!r}; expected 'mean', 'sum' or None")
    A = jnp.asarray(as_float_array(X1, "X1", ndim=(2,)))
    B = A if X2 is None else jnp.asarray(as_float_array(X2, "X2", ndim=(2,)))
    if B.shape[1] != A.shape[1]:
        raise ValueError(f"X1 has {A.shape[1]} features but X2 has {B.shape[1]}")
    dt = ravel_pytree(params)[0].dtype
    A, B = A.astype(dt), B.astype(dt)
    bs = None if block_size is None else int(positive_scalar(block_size, "block_size"))
    blocks1 = [slice(i, i + bs) for i in range(0, A.shape[0], bs)] if bs else [slice(None)]
    blocks2 = [slice(i, i + bs) for i in range(0, B.shape[0], bs)] if bs else [slice(None)]
    rows = []
    if method == "ntvp":
        for s1 in blocks1:
            rows.append([np.asarray(_ntk_ntvp(apply, params, A[s1], B[s2], trace)) for s2 in blocks2])
        return np.block(rows)
    jac = _jacobians_batched if method == "jacobian" else _jacobians_per_example
    same = X2 is None
    for s1 in blocks1:
        J1 = jac(apply, params, A[s1])  # one row block of J in memory, reused for every column block
        rows.append([_contract(J1, J1 if same and s1 == s2 else jac(apply, params, B[s2]), trace) for s2 in blocks2])
    return np.block(rows)


def _contract(J1: np.ndarray, J2: np.ndarray, trace) -> np.ndarray:
    """J1 (n1, k, P), J2 (n2, k, P) -> traced (n1, n2) or full (n1·k, n2·k), as one BLAS product."""
    n1, k, P = J1.shape
    if trace is None:
        return J1.reshape(n1 * k, P) @ J2.reshape(-1, P).T
    K = J1.reshape(n1, k * P) @ J2.reshape(J2.shape[0], k * P).T  # Σ_c J1[a,c]·J2[b,c]
    return K / k if trace == "mean" else K


def _flat_apply(apply, params):
    flat, unravel = ravel_pytree(params)
    return flat, lambda fl, x: apply(unravel(fl), x)


def _jacobians_batched(apply, params, A) -> np.ndarray:
    """``jax.jacrev`` of the batched function: the textbook full Jacobian ``(n, k, P)``."""
    flat, f = _flat_apply(apply, params)
    return np.asarray(jax.jacrev(f)(flat, A))


def _jacobians_per_example(apply, params, A) -> np.ndarray:
    """``vmap`` of a single-input ``jacrev``: cost linear in the number of inputs."""
    flat, f = _flat_apply(apply, params)

    def single(x):
        return jax.jacrev(lambda fl: f(fl, x[None])[0])(flat)

    return np.asarray(jax.vmap(single)(A))


def _ntk_ntvp(apply, params, A, B, trace):
    """Θ(A, B) column by column: u = J(B)ᵀ e (vjp), then J(A) u (jvp); J is never formed."""
    _, vjp_fn = jax.vjp(lambda p: apply(p, B), params)
    n2 = B.shape[0]
    out0 = apply(params, B[:1])
    k = out0.shape[1]
    basis = jnp.eye(n2 * k, dtype=out0.dtype).reshape(n2 * k, n2, k)

    def column(cot):
        (u,) = vjp_fn(cot)
        return jax.jvp(lambda p: apply(p, A), (params,), (u,))[1]  # (n1, k)

    cols = jax.lax.map(column, basis)  # (n2·k, n1, k): Θ[(a, c), (b, c')] at [(b, c'), a, c]
    full = cols.reshape(n2, k, A.shape[0], k).transpose(2, 3, 0, 1)  # (n1, k, n2, k)
    if trace is None:
        return full.reshape(A.shape[0] * k, n2 * k)
    K = jnp.einsum("akbk->ab", full)
    return K / k if trace == "mean" else K


def relu_ntk(
    X1: ArrayLike,
    X2: ArrayLike | None = None,
    *,
    depth: int = 1,
    weight_std: float = 1.0,
    bias_std: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Infinite-width ``(NNGP, NTK)`` of a ReLU MLP with ``depth`` hidden layers (NTK parameterization).

    Per output unit (the kernel of each output; outputs are independent at infinite width),
    matching ``empirical_ntk(..., trace="mean")`` of :func:`kdtheory.simulate.mlp` with
    ``parameterization="ntk"`` as the widths grow.

    Returns:
      ``(Σ, Θ)``, each ``(n1, n2)``.
    """
    A = as_float_array(X1, "X1", ndim=(2,))
    B = A if X2 is None else as_float_array(X2, "X2", ndim=(2,))
    if B.shape[1] != A.shape[1]:
        raise ValueError(f"X1 has {A.shape[1]} features but X2 has {B.shape[1]}")
    if int(depth) != depth or depth < 0:
        raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
    sw2 = positive_scalar(weight_std, "weight_std") ** 2
    sb2 = positive_scalar(bias_std, "bias_std", allow_zero=True) ** 2
    d = A.shape[1]
    cross = sw2 * (A @ B.T) / d + sb2
    diag1 = sw2 * np.sum(A * A, 1) / d + sb2
    diag2 = sw2 * np.sum(B * B, 1) / d + sb2
    theta = cross.copy()
    for _ in range(depth):
        norm = np.sqrt(np.outer(diag1, diag2))
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = np.clip(np.where(norm > 0, cross / np.where(norm > 0, norm, 1.0), 1.0), -1.0, 1.0)
        # θ from atan2: exact 0 on the diagonal, where arccos(1 − δ) loses half the digits
        ang = np.arctan2(np.sqrt(np.maximum(np.outer(diag1, diag2) - cross * cross, 0.0)), cross)
        if X2 is None:  # a point with itself: θ = 0 exactly (the square root would amplify round-off)
            np.fill_diagonal(ang, 0.0)
            np.fill_diagonal(cos, 1.0)
        cross_next = sw2 * norm * (np.sin(ang) + (np.pi - ang) * cos) / (2 * np.pi) + sb2
        dot = sw2 * (np.pi - ang) / (2 * np.pi)
        theta = theta * dot + cross_next
        cross = cross_next
        diag1 = sw2 * diag1 / 2 + sb2  # E[relu(u)²] = Σ_xx / 2
        diag2 = sw2 * diag2 / 2 + sb2
    return cross, theta


def linearized(
    apply,
    params: Any,
    X: ArrayLike,
    targets: ArrayLike,
    steps: ArrayLike,
    *,
    learning_rate: float,
    X_test: ArrayLike | None = None,
    loss_normalization: Literal["mean", "sum"] = "mean",
) -> Trajectory:
    r"""Closed-form gradient descent of the network linearized at ``params`` (Lee et al. 2019).

    ``f_lin(t) = f_0 − Θ-filter · (f_0 − y)`` with the full empirical NTK ``Θ`` (``n·k × n·k``) at
    initialization, the MSE loss of :class:`kdtheory.simulate.Loss` (``"mean"``: ``½‖f − y‖²/n``,
    n points) and step ``learning_rate``: the trajectory a wide network trained with
    :func:`kdtheory.simulate.train_model` should track. Train and test outputs are flattened per
    time as ``(n·k,)`` and reshaped back to ``(…, n, k)`` in the returned trajectory.
    """
    Xn = as_float_array(X, "X", ndim=(2,))
    Y = as_float_array(targets, "targets", ndim=(2,))
    n, k = Y.shape
    K = empirical_ntk(apply, params, Xn, trace=None)
    f0 = np.asarray(apply(params, jnp.asarray(Xn, ravel_pytree(params)[0].dtype)))
    eta = positive_scalar(learning_rate, "learning_rate") / (n if loss_normalization == "mean" else 1.0)
    spec = Spectrum.from_kernel(K)
    kw = {}
    if X_test is not None:
        Xt = as_float_array(X_test, "X_test", ndim=(2,))
        kw["test_kernel"] = empirical_ntk(apply, params, Xt, Xn, trace=None)
        kw["test_init"] = np.asarray(apply(params, jnp.asarray(Xt, f0.dtype))).reshape(-1)
    tr = train(spec, Y.reshape(-1), steps, method="gd", learning_rate=eta, init=f0.reshape(-1), **kw)
    shape = np.shape(steps)
    return Trajectory(
        times=tr.times,
        filter=tr.filter,
        train=tr.train.reshape(shape + (n, k)),
        modes=tr.modes,
        loss=tr.loss / (n if loss_normalization == "mean" else 1.0),
        norm=tr.norm,
        test=None if tr.test is None else tr.test.reshape(shape + (-1, k)),
        method="gd",
        learning_rate=float(learning_rate),
        loss_normalization=loss_normalization,
    )


def project_residual(spectrum: Spectrum, outputs: ArrayLike, init: ArrayLike, targets: ArrayLike) -> np.ndarray:
    r"""Fraction of each eigendirection's target component learned by a network.

    Summed over outputs: ``a_k = Σ_c z_kc (u_kᵀ(f_c − f0_c)) / Σ_c z_kc²`` with ``z = Uᵀ(y − f_0)``.
    For a network following its kernel dynamics this is the spectral filter.

    Args:
      spectrum: spectrum of the (traced) NTK on the training inputs.
      outputs: network outputs ``(…, n, k)``; init: ``f_0`` ``(n, k)``; targets: ``y`` ``(n, k)``.

    Returns:
      ``(…, m)``.
    """
    F = np.asarray(outputs, dtype=float)
    f0 = np.asarray(init, dtype=float)
    z = spectrum.U.T @ (np.asarray(targets, float) - f0)
    proj = np.einsum("nm,...nk->...mk", spectrum.U, F - f0)
    den = np.sum(z * z, axis=1)
    return np.sum(proj * z, axis=-1) / np.where(den > 0, den, 1.0)


def project_first_layer(W: ArrayLike, X: ArrayLike) -> np.ndarray:
    r"""Energy of first-layer weights ``W`` (``d × h``) along the input covariance eigendirections.

    Returns ``‖v_jᵀ W‖²`` for the eigenvectors ``v_j`` of ``XᵀX/n`` (descending eigenvalues).
    """
    Wn = as_float_array(W, "W", ndim=(2,))
    Xn = as_float_array(X, "X", ndim=(2,))
    if Wn.shape[0] != Xn.shape[1]:
        raise ValueError(f"W has {Wn.shape[0]} rows but X has {Xn.shape[1]} features")
    V = Spectrum.from_features(Xn).V
    return np.sum((V.T @ Wn) ** 2, axis=1)
