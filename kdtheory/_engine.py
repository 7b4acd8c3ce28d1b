r"""The compiled training program of :mod:`kdtheory.simulate`: a batch of runs in one ``jax.jit``.

Private: :func:`kdtheory.simulate.train_batch` is the public entry point and states the
conventions (docs/theory.md §10 for the models; the optimizer and loss in
:class:`kdtheory.simulate.Optimizer` and :class:`kdtheory.simulate.Loss`).

Structure. The runs of a batch carry a leading axis ``S`` (parameters, velocities, teachers, the
sampling keys and every traced hyperparameter). The loops over steps sit *outside* ``jax.vmap``:
one update of all ``S`` runs is ``vmap(update)``, so the matrices of the ``S`` networks are
multiplied as one batched product, while what is common to every run — the step counter, the
checkpoints, the epoch structure of the minibatches — stays unbatched. The loop nest is: for each
checkpoint ``t_i`` (``fori_loop``), for each epoch piece up to ``t_i`` (``while_loop``: draw each
run's permutation of the ``n`` points for that epoch, memory ``O(S·n)``), the updates of that piece
(``fori_loop``); then write the records of ``t_i`` — no conditional inside the step loop, so the
parameters are updated in place.

Sharding. When the batch spans ``D > 1`` devices, every batched input is placed with
``NamedSharding(Mesh(devices, ("runs",)), PartitionSpec("runs"))`` and the shared data are
replicated; the runs never communicate, so each device trains its share.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from kdtheory.schedules import multiplier

PyTree = Any  # a JAX pytree of arrays (parameters, velocities)
Hyper = dict[str, Any]  # the traced per-run hyperparameters (arrays; ``schedule`` a pytree of them)
Records = dict[str, jax.Array]  # ``train``, ``loss`` and optionally ``test``, ``proj``


def epoch_keys(key: jax.Array, n: int, batch_size: int, num_steps: int) -> jax.Array:
    """The keys of the per-epoch permutations: ``jax.random.split(key, epochs)``.

    ``epochs = ⌈max(num_steps, 1) / ⌊n/B⌋⌉``; epoch ``e`` permutes the points with key ``e``.

    Args:
      key: the run's sampling key.
      n: number of training points.
      batch_size: ``B`` in ``[1, n]``.
      num_steps: number of updates.

    Returns:
      ``(epochs, 2)`` keys.
    """
    per = n // batch_size
    return jax.random.split(key, -(-max(num_steps, 1) // per))


@functools.lru_cache(maxsize=64)
def compiled(
    model: Any,
    objective: Any,
    batch_size: int | None,
    num_steps: int,
    n: int,
    has_test: bool,
    project: Callable[[PyTree], jax.Array] | None,
) -> Callable[..., tuple[Records, PyTree]]:
    """Build (and cache) the jitted program that trains a batch of runs of one configuration.

    Static: the model (by identity), the objective's kind and normalization (``objective`` is a
    :class:`~kdtheory.simulate.Loss` whose other fields are unused), the batch size, the number of
    steps, ``n``, a test set and the projection. Traced, per run: parameters, teacher, sampling key
    and ``hyper`` (learning rate, momentum, temperature, teacher weights before/after the switch,
    switch step, the schedule's numbers). The batch size ``S`` and the checkpoint count are array
    shapes: ``jax.jit`` compiles once per shape.

    Returns:
      ``run(params, X, Y, T, Xt, ckpts, keys, hyper) -> (records, final params)``; records
      ``train (S, C, n, k)``, ``loss (S, C)``, optionally ``test (S, C, n_test, k)`` and
      ``proj (S, C, …)``.
    """
    B = batch_size

    def weight(h: Hyper, step: jax.Array) -> jax.Array:
        return jnp.where(step < h["switch_t"], h["weight_before"], h["weight_after"])

    def grads(
        params: PyTree, X: jax.Array, Y: jax.Array, T: jax.Array, w: jax.Array, tau: jax.Array, idx: jax.Array | None
    ) -> PyTree:
        if B is not None:
            X, Y, T = X[idx], Y[idx], T[idx]

        def obj(f: jax.Array) -> jax.Array:
            value: jax.Array = objective(f, Y, T, teacher_weight=w, temperature=tau)
            return value

        if model.functional:
            gf = jax.grad(obj)(model.apply(params, X))
            if B is not None:
                gf = jnp.zeros_like(params["alpha"]).at[idx].set(gf)
            return {"alpha": gf}
        return jax.grad(lambda p: obj(model.apply(p, X)))(params)

    def run(
        params: PyTree,
        X: jax.Array,
        Y: jax.Array,
        T: jax.Array,
        Xt: jax.Array,
        ckpts: jax.Array,
        keys: jax.Array,
        hyper: Hyper,
    ) -> tuple[Records, PyTree]:
        C = ckpts.shape[0]
        S = keys.shape[0]

        def observe(p: PyTree, t_: jax.Array, h: Hyper, step: jax.Array) -> Records:
            f = model.apply(p, X)
            value = objective(f, Y, t_, teacher_weight=weight(h, step), temperature=h["temperature"])
            out = {"train": f, "loss": value}
            if has_test:
                out["test"] = model.apply(p, Xt)
            if project is not None:
                out["proj"] = project(p)
            return out

        step_shape = jax.ShapeDtypeStruct((), jnp.int32)  # type: ignore[no-untyped-call]  # unannotated in jax
        obs_shape = jax.eval_shape(jax.vmap(observe, in_axes=(0, 0, 0, None)), params, T, hyper, step_shape)
        rec = {k: jnp.zeros((S, C) + v.shape[1:], v.dtype) for k, v in obs_shape.items()}

        def write(rec: Records, params: PyTree, idx: jax.Array, step: jax.Array) -> Records:
            new = jax.vmap(observe, in_axes=(0, 0, 0, None))(params, T, hyper, step)
            return {k: rec[k].at[:, idx].set(new[k]) for k in rec}

        def one_update(
            p: PyTree, v: PyTree, t_: jax.Array, h: Hyper, idx: jax.Array | None, step: jax.Array
        ) -> tuple[PyTree, PyTree]:
            lr = h["learning_rate"] * multiplier(jnp, h["schedule"], step)
            g = grads(p, X, Y, t_, weight(h, step), h["temperature"], idx)
            v = jax.tree_util.tree_map(lambda v_, g_: h["momentum"] * v_ - lr * g_, v, g)
            return jax.tree_util.tree_map(lambda p_, v_: p_ + v_, p, v), v

        update = jax.vmap(one_update, in_axes=(0, 0, 0, 0, 0 if B is not None else None, None))

        if B is not None:
            ek = jax.vmap(lambda k: epoch_keys(k, n, B, num_steps))(keys)  # (S, epochs, 2)

        def advance(
            carry: tuple[PyTree, PyTree],
            lo: jax.Array | int,
            hi: jax.Array | int,
            batches: jax.Array | None,
            first: jax.Array | int,
        ) -> tuple[PyTree, PyTree]:
            """Updates ``lo … hi − 1``; ``batches[:, j]`` holds update ``first + j``'s minibatch."""

            def one(s: jax.Array, c: tuple[PyTree, PyTree]) -> tuple[PyTree, PyTree]:
                params, vel = c
                idx = None if batches is None else lax.dynamic_index_in_dim(batches, s - first, 1, keepdims=False)
                return update(params, vel, T, hyper, idx, s)

            done: tuple[PyTree, PyTree] = lax.fori_loop(lo, hi, one, carry)
            return done

        def segment(carry: tuple[PyTree, PyTree, jax.Array], target: jax.Array) -> tuple[PyTree, PyTree, jax.Array]:
            """Train from the current step to ``target`` (a checkpoint), epoch by epoch."""
            params, vel, s = carry
            if B is None:
                params, vel = advance((params, vel), s, target, None, 0)
                return params, vel, target
            per = n // B

            def piece(c: tuple[PyTree, PyTree, jax.Array]) -> tuple[PyTree, PyTree, jax.Array]:
                params, vel, s = c
                e = s // per
                perm = jax.vmap(lambda k: jax.random.permutation(k[e], n))(ek)
                batches = perm[:, : per * B].reshape(S, per, B)
                end = jnp.minimum((e + 1) * per, target)
                params, vel = advance((params, vel), s, end, batches, e * per)
                return params, vel, end

            return lax.while_loop(lambda c: c[2] < target, piece, (params, vel, s))

        def checkpoint(
            i: jax.Array, c: tuple[PyTree, PyTree, jax.Array, Records]
        ) -> tuple[PyTree, PyTree, jax.Array, Records]:
            params, vel, s, rec = c
            params, vel, s = segment((params, vel, s), ckpts[i])
            return params, vel, s, write(rec, params, i, ckpts[i])

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        params, _, _, rec = lax.fori_loop(0, C, checkpoint, (params, zeros, jnp.zeros((), jnp.int32), rec))
        return rec, params

    return jax.jit(run)


def placement(size: int) -> tuple[int, Callable[[Any], Any], Callable[[Any], Any]]:
    """How a batch of ``size`` runs is laid out on the JAX devices.

    With ``D`` devices and ``size ≥ D > 1`` the run axis is sharded over all of them (the batch
    padded to a multiple of ``D``); otherwise everything lives on the default device.

    Args:
      size: the number of runs in the batch.

    Returns:
      ``(padded size, put_batched, put_shared)``: the callables place a pytree whose leaves have
      the leading run axis, and one that every run shares.
    """
    devices = jax.devices()
    D = len(devices)
    if D == 1 or size < D:
        return size, jax.device_put, jax.device_put
    mesh = Mesh(np.array(devices), ("runs",))
    batched = NamedSharding(mesh, PartitionSpec("runs"))  # type: ignore[no-untyped-call]  # unannotated in jax
    shared = NamedSharding(mesh, PartitionSpec())  # type: ignore[no-untyped-call]  # unannotated in jax
    return (
        -(-size // D) * D,
        functools.partial(jax.device_put, device=batched),
        functools.partial(jax.device_put, device=shared),
    )
