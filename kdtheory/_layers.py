r"""Finding the dense and convolutional layers of any JAX function from its jaxpr (private).

:func:`analyze` traces ``apply(params, x)`` on one example (``jax.make_jaxpr``; calls to jitted
functions are inlined) and looks for ``dot_general`` and ``conv_general_dilated`` equations one of
whose operands is a parameter leaf — reached from the leaf only through steps that are linear
isometries up to a constant scalar (``convert_element_type``, ``transpose``, ``reshape``,
``squeeze``, ``expand_dims``, size-preserving ``broadcast_in_dim``, ``copy``, ``neg``, and ``mul`` /
``div`` by a constant scalar ``c``), with the leaf used nowhere else. For such a layer
``z = h̃ · W_eff`` with ``W_eff = c · g(W)``, ``g`` a permutation of entries, so
``∂f/∂W = g⁻¹(c h̃ ⊗ ∂f/∂z)`` and the layer's block of the NTK is the Gram form of
``docs/theory.md §10`` with inputs ``c h̃`` (the operand ``h̃`` for a dense layer, the input
patches ``jax.lax.conv_general_dilated_patches`` for a convolution). The result is a declared
structure in the sense of :mod:`kdtheory.structured_ntk` — ``structure(leaves, X, taps)``,
``vmap``-ed over examples, that adds ``taps[l]`` to layer ``l``'s pre-activation — plus the list
of the remaining leaves (biases, norms, embeddings, weights used twice or in anything else),
whose part of the kernel the generic Jacobian method adds.

Every way the analysis can fail is a reason string (``Plan.reason``), logged by the caller;
nothing here raises on a network it cannot read.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from kdtheory.structured_ntk import Layer, Structure

__all__ = ["Plan", "analyze", "network_outputs", "signature"]

log = logging.getLogger("kdtheory.ntk")

_INLINE = ("pjit", "jit", "closed_call", "core_call")
_ISOMETRIES = ("convert_element_type", "transpose", "reshape", "squeeze", "expand_dims", "copy", "copy_p")


class Plan(NamedTuple):
    """What :func:`analyze` found.

    Attributes:
      structure: ``structure(leaves, X, taps) -> (outputs, layers)`` for
        :func:`kdtheory.structured_ntk.structured_ntk`, or ``None`` when no layer was recognized.
      layer_leaves: indices (into the flattened params) of the leaves the structure covers.
      rest: indices of the other leaves (the generic part).
      names: one line per recognized layer (primitive, leaf shape), for the debug log.
      reason: why nothing (or not everything) was recognized; ``""`` when every leaf is a layer.
    """

    structure: Structure | None
    layer_leaves: tuple[int, ...]
    rest: tuple[int, ...]
    names: tuple[str, ...]
    reason: str


def network_outputs(apply: Callable[..., Any], params: Any, x: Any, *, x_name: str) -> jax.ShapeDtypeStruct:
    """The output shape of ``apply(params, x)`` (abstract evaluation), or a ValueError naming what does not fit.

    Args:
      apply: the network.
      params: its parameters.
      x: a batch of inputs (only its shape and dtype are used).
      x_name: the inputs' argument name, for the message.

    Returns:
      The ``jax.ShapeDtypeStruct`` of the outputs, which must be ``(batch, k)``.

    Raises:
      ValueError: ``apply`` fails on these params and inputs, or does not return ``(batch, k)``.
    """
    spec = jax.ShapeDtypeStruct(np.shape(x), getattr(x, "dtype", np.float64))  # type: ignore[no-untyped-call]  # unannotated in jax
    try:
        out = jax.eval_shape(apply, params, spec)
    except Exception as err:  # noqa: BLE001 - any failure of the user's function is reported, named
        shapes = [tuple(np.shape(leaf)) for leaf in jax.tree_util.tree_leaves(params)]
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"apply(params, {x_name}) fails: params (leaf shapes {shapes[:8]}{' …' if len(shapes) > 8 else ''}) "
            f"or {x_name} (shape {tuple(np.shape(x))}) do not fit the network: {type(err).__name__}: {first}"
        ) from err
    if not isinstance(out, jax.ShapeDtypeStruct) or len(out.shape) != 2 or out.shape[0] != np.shape(x)[0]:
        got = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"apply(params, {x_name}) must return (batch, k) = ({np.shape(x)[0]}, k), got {got}")
    return out


# ---------------------------------------------------------------------- the inlined equation list
class _Eqn(NamedTuple):
    eqn: Any  # the original JaxprEqn (primitive and params)
    ins: tuple[Any, ...]  # refs: ("v", scope, Var) or ("lit", value)
    outs: tuple[Any, ...]


def _inline(jaxpr: Any, consts: list[Any], ins: list[Any], eqns: list[_Eqn], scope: list[int]) -> list[Any]:
    """Append ``jaxpr``'s equations to ``eqns`` with calls to jitted functions inlined; its output refs."""
    me = scope[0]
    scope[0] += 1
    alias: dict[Any, Any] = {}

    def ref(v: Any) -> Any:
        if isinstance(v, jcore.Literal):
            return ("lit", v.val)
        return alias.get(v, ("v", me, v))

    for v, r in zip(jaxpr.invars, ins, strict=True):
        alias[v] = r
    for v, c in zip(jaxpr.constvars, consts, strict=True):
        alias[v] = ("lit", c)
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        sub = eqn.params.get("jaxpr") if name in _INLINE else None
        if sub is not None:
            inner = sub.jaxpr if hasattr(sub, "jaxpr") else sub
            inner_consts = list(sub.consts) if hasattr(sub, "consts") else []
            outs = _inline(inner, inner_consts, [ref(v) for v in eqn.invars], eqns, scope)
            for v, r in zip(eqn.outvars, outs, strict=True):
                alias[v] = r
            continue
        eqns.append(_Eqn(eqn, tuple(ref(v) for v in eqn.invars), tuple(("v", me, v) for v in eqn.outvars)))
    return [ref(v) for v in jaxpr.outvars]


class _Weight(NamedTuple):
    leaf: int
    chain: tuple[int, ...]  # equation indices from the leaf to the weight operand
    scales: tuple[tuple[int, int, bool], ...]  # (equation, operand position of the constant, divide)


class _LayerSpec(NamedTuple):
    eqn: int
    weight_pos: int  # 0: lhs, 1: rhs
    leaf: int
    scales: tuple[tuple[int, int, bool], ...]
    bias_leaf: int = -1  # a bias added to the layer's output, folded in (-1: none)
    bias_scale: float = 0.0


class _BiasCandidate(NamedTuple):
    leaf: int
    chain: tuple[int, ...]  # structural equations from the leaf to the add
    scale: float | None  # product of literal scalar factors (None: a factor that is not a literal)
    add: int
    pos: int


def _find_layers(eqns: list[_Eqn], leaf_refs: list[Any], out_refs: list[Any]) -> tuple[list[_LayerSpec], str]:
    """The layer equations whose weight operand is a parameter leaf used nowhere else."""
    uses: dict[Any, list[tuple[int, int]]] = {}
    for i, e in enumerate(eqns):
        for pos, r in enumerate(e.ins):
            if r[0] == "v":
                uses.setdefault(r, []).append((i, pos))
    produced_const: set[Any] = set()  # refs computed from literals only (no leaf, no input)
    for e in eqns:
        if all(r[0] == "lit" or r in produced_const for r in e.ins):
            produced_const.update(e.outs)

    def const_scalar(r: Any) -> bool:
        if r[0] == "lit":
            return int(np.size(r[1])) == 1
        return r in produced_const and math.prod(r[2].aval.shape) == 1

    layers: list[_LayerSpec] = []
    candidates: list[_BiasCandidate] = []
    skipped: list[str] = []
    outs = set(r for r in out_refs if r[0] == "v")
    for leaf, start in enumerate(leaf_refs):
        r = start
        chain: list[int] = []
        scales: list[tuple[int, int, bool]] = []
        why = ""
        while True:
            if r in outs:
                why = "is an output"
                break
            u = uses.get(r, [])
            if len(u) != 1:
                why = "is not used" if not u else f"is used {len(u)} times"
                break
            i, pos = u[0]
            e = eqns[i]
            name = e.eqn.primitive.name
            if name in ("dot_general", "conv_general_dilated"):
                other = e.ins[1 - pos]
                if other == r:
                    why = f"multiplies itself in {name}"
                elif name == "dot_general" and any(e.eqn.params["dimension_numbers"][1]):
                    why = "is batched in dot_general"
                elif name == "conv_general_dilated" and (
                    pos != 1 or e.eqn.params["feature_group_count"] != 1 or e.eqn.params["batch_group_count"] != 1
                ):
                    why = "is not the kernel of an ungrouped convolution"
                elif name == "conv_general_dilated" and list(e.eqn.params["dimension_numbers"].rhs_spec[2:]) != sorted(
                    e.eqn.params["dimension_numbers"].rhs_spec[2:]
                ):
                    why = "is a convolution kernel with permuted spatial axes"
                else:
                    layers.append(_LayerSpec(i, pos, leaf, tuple(scales)))
                break
            if name in _ISOMETRIES or name == "neg":
                pass
            elif name == "broadcast_in_dim" and math.prod(e.outs[0][2].aval.shape) == math.prod(
                e.ins[0][2].aval.shape if e.ins[0][0] == "v" else np.shape(e.ins[0][1])
            ):
                pass
            elif name in ("mul", "div") and len(e.ins) == 2 and const_scalar(e.ins[1 - pos]):
                if name == "div" and pos != 0:
                    why = "divides a constant"
                    break
                scales.append((i, 1 - pos, name == "div"))
            else:
                why = f"enters {name}"
                if name == "add" and len(e.ins) == 2:
                    lits = [eqns[j].ins[cp] for j, cp, _ in scales]
                    scale: float | None = None
                    if all(lit[0] == "lit" for lit in lits):
                        scale = 1.0
                        for (_, _, div), lit in zip(scales, lits, strict=True):
                            c = float(np.reshape(lit[1], ()))
                            scale = scale / c if div else scale * c
                        scale = -scale if sum(eqns[j].eqn.primitive.name == "neg" for j in chain) % 2 else scale
                    candidates.append(_BiasCandidate(leaf, tuple(chain), scale, i, pos))
                break
            chain.append(i)
            r = e.outs[0]
        if why:
            skipped.append(f"leaf {leaf} {why}")
    # two weights of one equation (a product of two parameters): neither is a layer of the input
    by_eqn: dict[int, int] = {}
    for spec in layers:
        by_eqn[spec.eqn] = by_eqn.get(spec.eqn, 0) + 1
    layers = [s for s in layers if by_eqn[s.eqn] == 1]
    layers, folded = _fold_biases(eqns, layers, candidates, uses)
    skipped = [w for w in skipped if int(w.split()[1]) not in folded]
    return layers, "; ".join(skipped[:6]) + (" …" if len(skipped) > 6 else "")


_STRUCTURAL = ("transpose", "reshape", "convert_element_type", "copy", "copy_p", "squeeze", "expand_dims")


def _fold_biases(
    eqns: list[_Eqn], layers: list[_LayerSpec], candidates: list[_BiasCandidate], uses: dict[Any, Any]
) -> tuple[list[_LayerSpec], set[int]]:
    """Fold ``y = T(z) + c·B(b)`` into layer ``z`` (bias scale ``c``) where every output unit gets one bias entry.

    ``T`` is a chain of structural steps of the layer's output (each result used once), ``B`` the
    bias leaf's chain and the add's broadcasting. The alignment is verified on index arrays: the
    layer's output-unit index pushed through ``T`` and the bias entry index pushed through ``B``
    must correspond one to one at every element of ``y``; otherwise the bias stays generic.
    """
    producer = {r: i for i, e in enumerate(eqns) for r in e.outs}
    by_out = {eqns[s.eqn].outs[0]: n for n, s in enumerate(layers)}
    folded: set[int] = set()
    for cand in candidates:
        if cand.scale is None or cand.scale == 0.0:
            continue
        add = eqns[cand.add]
        a = add.ins[1 - cand.pos]
        path: list[int] = []
        while a[0] == "v" and a not in by_out and a in producer and len(uses.get(a, [])) == 1:
            e = eqns[producer[a]]
            if e.eqn.primitive.name not in _STRUCTURAL or len(e.ins) != 1:
                break
            path.insert(0, producer[a])
            a = e.ins[0]
        if a not in by_out or len(uses.get(a, [])) != 1:
            continue
        n = by_out[a]
        spec = layers[n]
        if spec.bias_leaf >= 0:
            continue
        try:
            aligned = _aligned(eqns, spec, path, cand)
        except Exception:  # noqa: BLE001 - an unusual layout is left to the generic method
            aligned = False
        if aligned:
            layers[n] = spec._replace(bias_leaf=cand.leaf, bias_scale=float(cand.scale))
            folded.add(cand.leaf)
    return layers, folded


def _zeros(r: Any) -> Any:
    return jnp.zeros(r[2].aval.shape, r[2].aval.dtype) if r[0] == "v" else jnp.asarray(r[1])


def _aligned(eqns: list[_Eqn], spec: _LayerSpec, path: list[int], cand: _BiasCandidate) -> bool:
    """Whether output unit ``o`` of the layer meets bias entry ``j(o)`` everywhere, ``j`` one to one."""
    e = eqns[spec.eqn]
    vals = [_zeros(r) for r in e.ins]
    out = _zeros(e.outs[0])
    one = jnp.ones((), jnp.float32)
    if e.eqn.primitive.name == "conv_general_dilated":
        _, z, back = _canonical_conv(e.eqn, vals, out, one)
    else:
        _, z, back = _canonical_dense(e.eqn, vals, out, spec.weight_pos, one)
    unit = back(jnp.broadcast_to(jnp.arange(z.shape[1], dtype=jnp.float32), z.shape))
    for i in path:
        unit = _bind(eqns[i].eqn, [unit])
    leaf_ref = eqns[cand.chain[0]].ins[0] if cand.chain else eqns[cand.add].ins[cand.pos]
    entry = jnp.arange(math.prod(leaf_ref[2].aval.shape), dtype=jnp.float32).reshape(leaf_ref[2].aval.shape)
    for i in cand.chain:
        step = eqns[i]
        if step.eqn.primitive.name in ("mul", "div", "neg"):
            continue  # the scale, already in cand.scale
        entry = _bind(step.eqn, [entry])
    y_shape = eqns[cand.add].outs[0][2].aval.shape
    unit_of = np.asarray(jnp.broadcast_to(unit, y_shape)).ravel()
    entry_of = np.asarray(jnp.broadcast_to(entry, y_shape)).ravel()
    if z.shape[1] != math.prod(leaf_ref[2].aval.shape):
        return False
    pairs = np.unique(np.stack([unit_of, entry_of], axis=1), axis=0)
    O = z.shape[1]
    return bool(len(pairs) == O and len(np.unique(pairs[:, 0])) == O and len(np.unique(pairs[:, 1])) == O)


# ---------------------------------------------------------------------- evaluating with taps
def _canonical_dense(e: Any, vals: list[Any], out: Any, wpos: int, scale: Any) -> tuple[Any, Any, Callable[..., Any]]:
    """Inputs ``(P, C)``, pre-activation ``(P, O)`` and the map back to ``out``'s layout."""
    (lc, rc), _ = e.params["dimension_numbers"]
    x = vals[1 - wpos]
    xc = lc if wpos == 1 else rc
    xfree = [a for a in range(x.ndim) if a not in xc]
    inputs = jnp.transpose(x, xfree + list(xc)).reshape(-1, math.prod(x.shape[a] for a in xc)) * scale
    P = inputs.shape[0]
    if wpos == 1:  # out = (x free…, w free…)
        z = out.reshape(P, -1)
        return inputs, z, lambda zc: zc.reshape(out.shape)
    z = out.reshape(-1, P).T  # out = (w free…, x free…)
    return inputs, z, lambda zc: zc.T.reshape(out.shape)


def _canonical_conv(e: Any, vals: list[Any], out: Any, scale: Any) -> tuple[Any, Any, Callable[..., Any]]:
    p = e.params
    dn = p["dimension_numbers"]
    lhs, rhs = vals
    patches = jax.lax.conv_general_dilated_patches(
        lhs,
        tuple(rhs.shape[a] for a in dn.rhs_spec[2:]),
        p["window_strides"],
        p["padding"],
        lhs_dilation=p["lhs_dilation"],
        rhs_dilation=p["rhs_dilation"],
        dimension_numbers=dn,
        precision=jax.lax.Precision.HIGHEST,
    )
    perm = [dn.out_spec[0], *dn.out_spec[2:], dn.out_spec[1]]  # (N, spatial…, feature)
    inputs = jnp.transpose(patches, perm).reshape(-1, patches.shape[dn.out_spec[1]]) * scale
    zt = jnp.transpose(out, perm)
    inv = tuple(int(a) for a in np.argsort(perm))
    return inputs, zt.reshape(inputs.shape[0], -1), lambda zc: jnp.transpose(zc.reshape(zt.shape), inv)


def _bind(eqn: Any, vals: list[Any]) -> Any:
    """``eqn``'s primitive applied to ``vals`` (as ``jax.core.eval_jaxpr`` does)."""
    bound = eqn.primitive.get_bind_params(eqn.params)
    subfuns, params = bound if isinstance(bound, tuple) else ((), bound)
    ctx = getattr(getattr(eqn, "ctx", None), "manager", None)
    if ctx is None:
        return eqn.primitive.bind(*subfuns, *vals, **params)
    with ctx:
        return eqn.primitive.bind(*subfuns, *vals, **params)


def _evaluate(eqns: list[_Eqn], specs: list[_LayerSpec], env: dict[Any, Any], taps: Any) -> list[tuple[Any, Any]]:
    """Run the equations in ``env``; per layer, record (inputs, pre-activation) and add its tap."""
    at = {s.eqn: (n, s) for n, s in enumerate(specs)}
    records: list[tuple[Any, Any]] = [(None, None)] * len(specs)

    def read(r: Any) -> Any:
        return r[1] if r[0] == "lit" else env[r]

    for i, e in enumerate(eqns):
        vals = [read(r) for r in e.ins]
        out = _bind(e.eqn, vals)
        if i in at:
            n, s = at[i]
            scale = jnp.ones((), out.dtype)
            for j, cpos, div in s.scales:
                c = jnp.reshape(read(eqns[j].ins[cpos]), ()).astype(out.dtype)
                scale = scale / c if div else scale * c
            if e.eqn.primitive.name == "conv_general_dilated":
                inputs, z, back = _canonical_conv(e.eqn, vals, out, scale)
            else:
                inputs, z, back = _canonical_dense(e.eqn, vals, out, s.weight_pos, scale)
            if taps is not None:
                z = z + taps[n]
            records[n] = (inputs.astype(out.dtype), z)
            out = back(z)
        if e.eqn.primitive.multiple_results:
            for r, v in zip(e.outs, out, strict=True):
                env[r] = v
        else:
            env[e.outs[0]] = out
    return records


# ---------------------------------------------------------------------- the analysis
def signature(apply: Callable[..., Any], params: Any, x: Any) -> Any:
    """A hashable key of a network call: ``apply``, the params' tree and leaf shapes and dtypes, the input shape.

    Args:
      apply: the network.
      params: its parameters.
      x: a batch of inputs.

    Returns:
      A tuple (hashable when ``apply`` is); the caches of :func:`analyze` and the callers' checks use it.
    """
    leaves, treedef = jax.tree_util.tree_flatten(params)
    shapes = tuple((tuple(np.shape(leaf)), str(jnp.result_type(leaf))) for leaf in leaves)
    return apply, treedef, shapes, tuple(np.shape(x)[1:]), str(jnp.result_type(x))


def analyze(apply: Callable[..., Any], params: Any, x: Any) -> Plan:
    """Find the layers of ``apply`` (module docstring); cached per network, parameter and input shapes.

    Args:
      apply: the network ``apply(params, x) -> (batch, k)``, examples processed independently.
      params: its parameters (a pytree).
      x: a batch of inputs (shape and dtype are used).

    Returns:
      A :class:`Plan`.
    """
    try:
        key = signature(apply, params, x)
        hash(key)
    except TypeError:
        return _analyze(apply, params, x)
    return _cached(key, apply, params, x)


_CACHE: dict[Any, Plan] = {}


def _cached(key: Any, apply: Callable[..., Any], params: Any, x: Any) -> Plan:
    plan = _CACHE.get(key)
    if plan is None:
        plan = _analyze(apply, params, x)
        if len(_CACHE) >= 64:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = plan
    return plan


def _analyze(apply: Callable[..., Any], params: Any, x: Any) -> Plan:
    leaves, treedef = jax.tree_util.tree_flatten(params)
    n_leaves = len(leaves)
    everything = tuple(range(n_leaves))
    x1 = jax.ShapeDtypeStruct(tuple(np.shape(x)[1:]), jnp.result_type(x))  # type: ignore[no-untyped-call]  # unannotated in jax

    def one(lv: list[Any], xi: Any) -> Any:
        return apply(jax.tree_util.tree_unflatten(treedef, lv), xi[None])[0]

    specs_in = [
        jax.ShapeDtypeStruct(np.shape(leaf), jnp.result_type(leaf))  # type: ignore[no-untyped-call]  # unannotated in jax
        for leaf in leaves
    ]
    try:
        closed = jax.make_jaxpr(one)(specs_in, x1)
    except Exception as err:  # noqa: BLE001 - a network that cannot be traced on one example
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return Plan(None, (), everything, (), f"cannot trace apply on one example ({type(err).__name__}: {first})")
    jaxpr = closed.jaxpr
    eqns: list[_Eqn] = []
    in_refs = [("v", -1, v) for v in jaxpr.invars]
    out_refs = _inline(jaxpr, list(closed.consts), in_refs, eqns, [0])
    if len(out_refs) != 1 or len(jaxpr.outvars[0].aval.shape) != 1:
        return Plan(None, (), everything, (), "apply's output on one example is not a vector (k,)")
    specs, skipped = _find_layers(eqns, in_refs[:n_leaves], out_refs)
    if not specs:
        return Plan(None, (), everything, (), f"no dense or convolutional layer with a parameter operand ({skipped})")
    layer_leaves = tuple(s.leaf for s in specs) + tuple(s.bias_leaf for s in specs if s.bias_leaf >= 0)
    rest = tuple(i for i in everything if i not in set(layer_leaves))
    names = tuple(
        f"{eqns[s.eqn].eqn.primitive.name} with leaf {s.leaf} {tuple(np.shape(leaves[s.leaf]))}"
        + (f" + bias leaf {s.bias_leaf} (scale {s.bias_scale:g})" if s.bias_leaf >= 0 else "")
        for s in specs
    )

    def structure1(lv: list[Any], xi: Any, taps: Any) -> Any:
        env = dict(zip(in_refs, [*lv, xi], strict=True))
        records = _evaluate(eqns, specs, env, taps)
        out = env[out_refs[0]] if out_refs[0][0] == "v" else out_refs[0][1]
        return out, tuple(r[0] for r in records), tuple(r[1] for r in records)

    def structure(lv: list[Any], X: Any, taps: Any) -> Any:
        if taps is None:
            out, ins, zs = jax.vmap(lambda xi: structure1(lv, xi, None))(X)
        else:
            out, ins, zs = jax.vmap(lambda xi, t: structure1(lv, xi, t))(X, tuple(taps))
        return out, tuple(Layer(h, z, s.bias_scale) for h, z, s in zip(ins, zs, specs, strict=True))

    return Plan(structure, layer_leaves, rest, names, skipped)
