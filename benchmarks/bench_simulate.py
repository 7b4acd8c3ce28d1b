"""Benchmark: the JAX training engine against a plain numpy forward/backward loop.

2000 full-batch gradient-descent steps of an MLP 64→512→10 (ReLU, softmax cross-entropy) on 1000
points, float32, in the same process: ``kdtheory.simulate.train_model`` (one jitted ``lax.scan``)
against a hand-written numpy loop with the same initialization and updates (checked to agree).
Also reports steps per second and the fraction of the machine's float32 matmul throughput
(a numpy 1024×1024 product timed in the same run) that each reaches. Target (issue 4): ≥ 3×.

Run: ``python benchmarks/bench_simulate.py [--steps 2000] [--repeats 2]``.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np
from _common import matmul_peak_flops

from kdtheory.simulate import Loss, Optimizer, mlp, train_model

N, D, H, K = 1000, 64, 512, 10


def numpy_loop(params, X, Y, steps: int, lr: float):
    (W1, b1), (W2, b2) = ((p["w"].copy(), p["b"].copy()) for p in params)
    n = X.shape[0]
    for _ in range(steps):
        z = X @ W1 + b1
        h = np.maximum(z, 0)
        f = h @ W2 + b2
        f = f - f.max(axis=1, keepdims=True)
        p = np.exp(f)
        p /= p.sum(axis=1, keepdims=True)
        gf = (p - Y) / n
        gW2, gb2 = h.T @ gf, gf.sum(0)
        gh = (gf @ W2.T) * (z > 0)
        gW1, gb1 = X.T @ gh, gh.sum(0)
        W1 -= lr * gW1
        b1 -= lr * gb1
        W2 -= lr * gW2
        b2 -= lr * gb2
    return W1, b1, W2, b2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D)).astype(np.float32)
    Y = np.eye(K, dtype=np.float32)[rng.integers(0, K, N)]
    model = mlp([D, H, K])
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), model.init(jax.random.PRNGKey(0)))
    lr = 0.1
    ce = Loss("ce", normalization="mean")  # the numpy loop's gradient (p − y)/n
    opt = Optimizer(learning_rate=lr)
    flops = 2 * args.steps * (2 * N * D * H + 2 * N * H * K + N * H * K + N * D * H)  # fwd + bwd matmuls

    peak = matmul_peak_flops()

    # warm-up compile (excluded), then timed runs
    train_model(model, X, Y, t=[0, args.steps], loss=ce, optimizer=opt, params=params)
    t_kd, t_np = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        train_model(model, X, Y, t=[0, args.steps], loss=ce, optimizer=opt, params=params)
        t_kd.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        numpy_loop(params, X, Y, args.steps, lr)
        t_np.append(time.perf_counter() - t0)
    # the two loops compute the same thing: compare after 20 steps
    short = train_model(model, X, Y, t=[0, 20], loss=ce, optimizer=opt, params=params)
    diff = float(np.max(np.abs(short.params[0]["w"] - numpy_loop(params, X, Y, 20, lr)[0])))
    kd, npy = min(t_kd), min(t_np)
    print(f"MLP {D}-{H}-{K}, {N} points, {args.steps} full-batch GD steps, float32")
    print(f"  kdtheory.simulate: {kd:.2f} s  ({args.steps / kd:.0f} steps/s, {flops / kd / 1e9:.1f} GFLOP/s, "
          f"{100 * flops / kd / peak:.0f}% of matmul peak)")  # fmt: skip
    print(f"  numpy loop:        {npy:.2f} s  ({args.steps / npy:.0f} steps/s, {flops / npy / 1e9:.1f} GFLOP/s, "
          f"{100 * flops / npy / peak:.0f}% of matmul peak)")  # fmt: skip
    print(f"  machine float32 matmul peak (1024^3 numpy): {peak / 1e9:.1f} GFLOP/s")
    print(f"  speed-up {npy / kd:.2f}x   (target >= 3x)")
    print(f"  same computation: max |W1 difference| after 20 steps {diff:.1e} (float32)")


if __name__ == "__main__":
    main()
