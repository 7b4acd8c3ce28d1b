r"""The structured empirical NTK of dense and convolutional layers (docs/theory.md §10).

For a network whose layer ``l`` computes the pre-activation ``z_l = h̃_{l−1} W_l + s_l b_l`` from
its input ``h̃_{l−1}`` (any parameterization scale folded in, ``s_l`` the bias scale, 0 without
a bias), with outputs ``f ∈ R^k`` and backpropagated errors ``δ_{l,c}(x) = ∂f_c(x)/∂z_l``,
``∂f_c/∂W_l = h̃_{l−1} δ_{l,c}ᵀ`` and ``∂f_c/∂b_l = s_l δ_{l,c}``, so

    ``Θ_cc'(x, x') = Σ_l (h̃_{l−1}(x)·h̃_{l−1}(x') + s_l²) (δ_{l,c}(x)·δ_{l,c'}(x'))``

— Gram matrices of activations and of errors, never the Jacobian ``J`` (``n × k × P``). A
convolution is the same sum over pairs of output positions ``(p, p')``, with ``h̃`` replaced by
the input patch seen at each position (``jax.lax.conv_general_dilated_patches``):
``Θ_cc'(x, x') = Σ_l Σ_{p,p'} (h̃_p(x)·h̃_{p'}(x') + s_l²)(δ_{l,c,p}(x)·δ_{l,c',p'}(x'))``
(Novak, Sohl-Dickstein & Schoenholz, "Fast finite width neural tangent kernel", ICML 2022).
Cost: ``n n' Σ_l P_l² (d_l + k w_l)`` multiply-adds for the traced kernel (``k² w_l`` for the
full one) plus ``k`` backward passes, against ``n n' k P`` for ``J Jᵀ``.

**Declaring the layers.** A network declares its structure as a function
``structure(params, x, taps) -> (outputs, layers)``: the batched forward pass that adds
``taps[l]`` (``None``: nothing) to layer ``l``'s pre-activation and returns one :class:`Layer`
per trainable layer, in order. Every parameter must belong to one such layer (the kernel counts
only the declared layers), and examples must be processed independently (no batch statistics).
:func:`kdtheory.simulate.mlp`, ``linear_model`` and ``random_features_model`` declare theirs
(``Model.structure``); :func:`kdtheory.ntk.empirical_ntk` uses it automatically and falls back
to the generic Jacobian methods for any other function.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import ArrayLike

from kdtheory._checks import positive_integer

__all__ = ["Layer", "structured_ntk", "structured_flops"]


class Layer(NamedTuple):
    r"""One trainable dense or convolutional layer, as a declared structure records it.

    Attributes:
      inputs: what multiplies the weights, scale folded in: dense ``(b, d)``; convolution
        ``(b, *positions, d)``, the input patch at each output position (``d`` = patch size ×
        input channels, in any order).
      preactivation: ``z = inputs · W + s b`` (including the tap): dense ``(b, w)``; convolution
        ``(b, *positions, w)``.
      bias_scale: ``s`` (``∂z/∂b``); 0 for a layer without a bias.
    """

    inputs: Any
    preactivation: Any
    bias_scale: float


Taps = Sequence[jax.Array | None] | None  # one tap per layer, added to its pre-activation; None: no taps
Structure = Callable[[Any, jax.Array, Taps], tuple[jax.Array, Sequence[Layer]]]
"""A declared structure: ``structure(params, x, taps) -> (outputs, layers)`` (module docstring)."""
Features = list[tuple[jax.Array, jax.Array]]  # per layer: inputs ``(b, P, d)`` and errors ``(b, P, k, w)``


def _layer_features(structure: Structure, params: Any, X: jax.Array) -> tuple[Features, tuple[float, ...]]:
    """Per layer: inputs ``(b, P, d)``, errors ``(b, P, k, w)``, and the bias scale."""
    _, layers0 = jax.eval_shape(lambda: structure(params, X, None))
    taps0 = [jnp.zeros(lay.preactivation.shape, lay.preactivation.dtype) for lay in layers0]
    out, vjp_fn, layers = jax.vjp(lambda taps: structure(params, X, taps), taps0, has_aux=True)
    b, k = out.shape
    basis = jnp.broadcast_to(jnp.eye(k, dtype=out.dtype)[:, None, :], (k, b, k))  # e_c at every example
    (deltas,) = jax.vmap(vjp_fn)(basis)  # per layer (k, b, *positions, w): δ_{l,c}(x_i)
    feats = []
    for lay, d in zip(layers, deltas, strict=True):
        H = lay.inputs.reshape(b, -1, lay.inputs.shape[-1])
        D = jnp.moveaxis(d.reshape(k, b, -1, d.shape[-1]), 0, 2)  # (b, P, k, w)
        if H.shape[1] != D.shape[1]:
            raise ValueError(
                f"a declared Layer's inputs {lay.inputs.shape} and preactivation {lay.preactivation.shape} "
                "must share their leading (batch and position) axes"
            )
        feats.append((H, D))
    return feats, tuple(float(lay.bias_scale) for lay in layers)


def _layer_jacobian(H: jax.Array, D: jax.Array, s: float) -> jax.Array:
    """The layer's block of J, ``(n, k, d·w [+ w])``: ``Σ_p h̃_p ⊗ δ_{c,p}`` (and ``s Σ_p δ_{c,p}``)."""
    n, _, d = H.shape
    k, w = D.shape[2], D.shape[3]
    J = jnp.einsum("npd,npcw->ncdw", H, D).reshape(n, k, d * w)
    return jnp.concatenate([J, s * D.sum(axis=1)], axis=-1) if s else J


@functools.partial(jax.jit, static_argnums=(0, 3, 4))
def _block(
    structure: Structure, params: Any, X1X2: tuple[jax.Array, jax.Array | None], trace: str | None, form: str
) -> jax.Array | float:
    X1, X2 = X1X2
    f1, scales = _layer_features(structure, params, X1)
    f2 = f1 if X2 is None else _layer_features(structure, params, X2)[0]
    theta: jax.Array | float = 0.0  # an array once a layer is added
    for (H1, D1), (H2, D2), s in zip(f1, f2, scales, strict=True):
        n1, P, d = H1.shape
        n2, k, w = H2.shape[0], D1.shape[2], D1.shape[3]
        kk = k if trace is not None else k * k
        # per pair of points: Gram form P·P'·(d + kk·w) multiply-adds, layer-Jacobian form kk·(d·w + w)
        jac = form == "jacobian" or (form == "auto" and P * H2.shape[1] * (d + kk * w) > kk * (d * w + w))
        if jac:
            J1 = _layer_jacobian(H1, D1, s)
            J2 = J1 if X2 is None else _layer_jacobian(H2, D2, s)
            rows = (n1 * k, n2 * k) if trace is None else (n1, n2)
            theta = theta + J1.reshape(rows[0], -1) @ J2.reshape(rows[1], -1).T
            continue
        HH = H1.reshape(n1 * P, -1) @ H2.reshape(n2 * H2.shape[1], -1).T  # (n1 P, n2 P')
        if s:
            HH = HH + s * s
        if trace is None:  # (n1 P k, n2 P' k): δ_c(x_a, p)·δ_c'(x_b, p')
            DD = D1.reshape(n1 * P * k, w) @ D2.reshape(-1, w).T
            DD = DD.reshape(n1, P, k, n2, -1, k) * HH.reshape(n1, P, 1, n2, -1, 1)
            theta = theta + DD.sum(axis=(1, 4)).reshape(n1 * k, n2 * k)
        else:  # Σ_c δ_c(x_a, p)·δ_c(x_b, p')
            DD = D1.reshape(n1 * P, k * w) @ D2.reshape(-1, k * w).T
            theta = theta + (HH * DD).reshape(n1, P, n2, -1).sum(axis=(1, 3))
    if trace == "mean":
        theta = theta / f1[0][1].shape[2]
    return theta


def structured_ntk(
    structure: Structure,
    params: Any,
    X1: ArrayLike,
    X2: ArrayLike | None = None,
    *,
    trace: Literal["mean", "sum"] | None = "mean",
    block_size: int | None = None,
    form: Literal["auto", "gram", "jacobian"] = "auto",
) -> np.ndarray:
    r"""Empirical NTK ``Θ(X1, X2)`` from the Gram matrices of activations and errors (module docstring).

    Each layer's term is computed in one of two exact forms: the Gram form
    ``Σ_{p,p'} (h̃_p·h̃'_{p'} + s²)(δ_p·δ'_{p'})`` (``P² (d + k w)`` multiply-adds per pair of points,
    cheapest for dense layers) or the layer-Jacobian form ``J_l J_lᵀ`` with
    ``J_l = Σ_p h̃_p ⊗ δ_p`` built from the same activations and errors (``k d w`` per pair,
    cheapest for convolutions with many positions and few channels); ``"auto"`` picks the
    cheaper per layer.

    Args:
      structure: the network's declared structure, ``structure(params, x, taps) -> (outputs,
        layers)`` (module docstring).
      params: its parameters (a pytree); the computation runs in their dtype.
      X1: inputs ``(n1, …)``, any per-example shape the network takes.
      X2: inputs ``(n2, …)`` (default: ``X1``).
      trace: ``"mean"`` (``(1/k) Σ_c Θ_cc``), ``"sum"``, or ``None`` for the full kernel of shape
        ``(n1·k, n2·k)``, rows point-major: row ``i·k + c`` is output ``c`` of point ``i``.
      block_size: compute in blocks of this many inputs per side (``None``: one block).
      form: ``"auto"`` (default), ``"gram"`` or ``"jacobian"`` (see above).

    Returns:
      ``(n1, n2)`` (traced) or ``(n1·k, n2·k)`` (full), numpy.

    Raises:
      ValueError: an unknown trace or form, non-finite inputs (``X1``/``X2`` named) or params, or
        a declared layer whose inputs and pre-activation disagree.
    """
    if trace not in ("mean", "sum", None):
        raise ValueError(f"unknown trace {trace!r}; expected 'mean', 'sum' or None")
    if form not in ("auto", "gram", "jacobian"):
        raise ValueError(f"unknown form {form!r}; expected 'auto', 'gram' or 'jacobian'")
    dt = jax.tree_util.tree_leaves(params)[0].dtype
    A = jnp.asarray(X1, dt)
    B = None if X2 is None else jnp.asarray(X2, dt)
    for name, arr in (("X1", A), ("X2", B)):
        if arr is not None and not bool(jnp.all(jnp.isfinite(arr))):
            raise ValueError(f"{name} contains {'NaN' if bool(jnp.any(jnp.isnan(arr))) else 'inf'} values")
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if not bool(jnp.all(jnp.isfinite(leaf))):
            raise ValueError(f"params{jax.tree_util.keystr(path)} (shape {jnp.shape(leaf)}) contains NaN or inf")
    if block_size is None:
        return np.asarray(_block(structure, params, (A, B), trace, form))
    bs = positive_integer(block_size, "block_size")
    Bx = A if B is None else B
    rows = []
    for i in range(0, A.shape[0], bs):
        row = []
        for j in range(0, Bx.shape[0], bs):
            pair = (A[i : i + bs], None if B is None and i == j else Bx[j : j + bs])
            row.append(np.asarray(_block(structure, params, pair, trace, form)))
        rows.append(row)
    return np.block(rows)


def structured_flops(
    structure: Structure, params: Any, x: Any, n1: int, n2: int, *, trace: str | None = "mean"
) -> float:
    r"""Floating-point operations of the contractions of :func:`structured_ntk` (``form="auto"``, 2 per multiply-add).

    Per layer the cheaper of the Gram form ``2 n1 n2 P_l² (d_l + κ w_l)`` and the layer-Jacobian
    form ``2 n1 n2 κ (d_l w_l + w_l)``, with ``κ = k`` traced and ``k²`` full (the backward passes
    and building the layer Jacobians, ``O(n k P d w)``, are not counted).

    Args:
      structure: the declared structure.
      params: parameters.
      x: one batch of inputs (its per-example shape is what matters).
      n1: rows of the kernel (points).
      n2: columns (points).
      trace: as in :func:`structured_ntk`.

    Returns:
      The count.
    """
    out, layers = jax.eval_shape(lambda: structure(params, jnp.asarray(x), None))
    k = out.shape[1]
    total = 0.0
    for lay in layers:
        P = int(np.prod(lay.inputs.shape[1:-1], dtype=np.int64))
        d, w = lay.inputs.shape[-1], lay.preactivation.shape[-1]
        kk = k if trace is not None else k * k
        total += 2.0 * n1 * n2 * min(P * P * (d + kk * w), kk * (d * w + w))
    return total
