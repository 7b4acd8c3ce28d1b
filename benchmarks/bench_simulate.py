"""Benchmark: the JAX training engine — batched runs, minibatch SGD, sweeps, and full-batch GD.

Sections (``--sections``; all by default):

* ``batched`` (issue 18): S ∈ {1, 4, 10, 40} MNIST-1D-sized runs (n = 4000, d = 40, k = 10, MLP
  40-100-100-10 ReLU, SGD batch 100, momentum 0.9, float32, different seeds) trained **batched** —
  one ``kdtheory.simulate.train_batch`` call, one compiled program over the run axis — against
  **the same runs sequential** — S ``train_model`` calls, each the compiled one-run program — in
  one process, compilation excluded (a warm-up call of each shape first). Prints the throughput
  ratio (sequential wall time / batched wall time) and the share of the machine's float32 matmul
  peak each reaches: FLOPs counted from the shapes (forward ``2B Σ d_l d_{l+1}``, weight
  gradients the same, input gradients ``2B Σ_{l≥1} d_l d_{l+1}``: 8.2 MFLOP per SGD step), peak
  from a 2048×2048 ``jnp.dot`` timed in the same run. Targets (issue 18): batched ≥ **4×** the
  throughput of sequential at S = 10 (2 cores); SGD step share of matmul peak ≥ **50 %** at S = 40.
  ``--host-devices N`` splits the CPU into N JAX devices (``XLA_FLAGS=
  --xla_force_host_platform_device_count=N``, set before JAX is imported) so the run axis is
  sharded over them.
* ``sgd``: the per-step cost of one MNIST-1D-sized minibatch run (n = 4000, MLP 40-100-100-10,
  batch 100, momentum 0.9, float32), compilation excluded, in CPU seconds
  (``time.process_time``, best of ``--repeats``). Before the per-epoch sampler (each batch drawn
  by ``jax.random.choice(replace=False)``, a sort of n keys per step): 2.04 ms/step; after:
  0.21 ms/step (2-core machine, November 2026).
* ``sweep``: a sweep of 6 ``Loss`` variants (τ, teacher weight, switch step) on one model; counts
  XLA compilations with ``jax.monitoring``. Before τ, weights and switch step were traced: 6
  compilations (20 s), sweep 12.2 s CPU; after: 1 compilation, 1.9 s CPU.
* ``gd``: 2000 full-batch gradient-descent steps of an MLP 64→512→10 on 1000 points, float32:
  ``train_model`` (one jitted ``lax.scan``) against a hand-written numpy loop with the same
  initialization and updates (checked to agree); speed-up and share of matmul peak of each. No
  target (issue 4's "≥ 3×" was retired by issue 18; measured 1.16× on 2 cores).

Run: ``python benchmarks/bench_simulate.py [--steps 2000] [--repeats 2] [--sections batched sgd sweep gd]
[--batched-steps 400] [--host-devices N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _host_devices_flag() -> None:
    """``--host-devices N``: split the CPU into N JAX devices; must run before JAX is imported."""
    if "--host-devices" in sys.argv:
        count = int(sys.argv[sys.argv.index("--host-devices") + 1])
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


_host_devices_flag()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _common import matmul_peak_flops  # noqa: E402
from jax import monitoring  # noqa: E402

from kdtheory.simulate import Loss, Optimizer, Run, mlp, train_batch, train_model  # noqa: E402

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


def _mnist1d_sized(seed: int = 0):
    """Random data of MNIST-1D's size (n = 4000, d = 40, k = 10), float32, and teacher logits."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((4000, 40)).astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 4000)]
    return X, Y, rng.standard_normal(Y.shape).astype(np.float32)


def sgd_step_time(steps: int, repeats: int) -> None:
    """CPU time per step of minibatch SGD at MNIST-1D size (compilation excluded)."""
    X, Y, _ = _mnist1d_sized()
    model = mlp([40, 100, 100, 10])
    opt = Optimizer(learning_rate=0.05, momentum=0.9, batch_size=100)
    ce = Loss("ce", normalization="mean")
    train_model(model, X, Y, t=[0, steps], run=Run(loss=ce, optimizer=opt))  # compile
    best = float("inf")
    for r in range(repeats):
        t0 = time.process_time()
        train_model(model, X, Y, t=[0, steps], run=Run(loss=ce, optimizer=opt, init_seed=r))
        best = min(best, time.process_time() - t0)
    print(f"SGD, MLP 40-100-100-10, n=4000, batch 100, momentum 0.9, float32, {steps} steps:")
    print(f"  {1e3 * best / steps:.3f} ms/step CPU (best of {repeats})")


def loss_sweep_compiles(steps: int = 300) -> None:
    """XLA compilations and CPU time of a sweep over 6 ``Loss`` variants on one model."""
    X, Y, Z = _mnist1d_sized()
    compiles: list[float] = []

    def listen(event: str, duration: float, **_) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    monitoring.register_event_duration_secs_listener(listen)
    model = mlp([40, 100, 100, 10])
    opt = Optimizer(learning_rate=0.05, momentum=0.9, batch_size=100)
    variants = [Loss("ce", normalization="mean", teacher_weight=1.0, temperature=tau) for tau in (1.0, 2.0, 4.0)]
    variants += [
        Loss("ce", normalization="mean", teacher_weight=0.0, teacher_weight_after=1.0, switch_t=s) for s in (100, 200)
    ]
    variants.append(Loss("ce", normalization="mean", teacher_weight=0.5, temperature=2.0))
    first = len(compiles)
    t0 = time.process_time()
    for loss in variants:
        train_model(model, X, Y, t=[0, steps], run=Run(loss=loss, optimizer=opt, teacher=Z))
    cpu = time.process_time() - t0
    print(f"Sweep of {len(variants)} Loss variants (τ, weight, switch step), {steps} SGD steps each:")
    print(
        f"  {len(compiles) - first} XLA compilation(s), {sum(compiles[first:]):.2f} s compiling; sweep {cpu:.2f} s CPU"
    )


def sgd_flops(sizes, batch: int) -> int:
    """FLOPs of one SGD step of an MLP from its shapes: forward, weight gradients, input gradients."""
    pairs = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return 2 * batch * (2 * sum(pairs) + sum(pairs[1:]))


def jnp_matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """The float32 matmul throughput (FLOP/s) of a large ``jnp.dot`` on the default device, best of ``repeats``."""
    A = jnp.asarray(np.random.default_rng(0).standard_normal((size, size)), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(A, A).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dot(A, A).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best


def batched_vs_sequential(steps: int, repeats: int, sizes=(1, 4, 10, 40)) -> None:
    """Issue 18: S runs in one ``train_batch`` program against the same S runs one after another."""
    X, Y, _ = _mnist1d_sized()
    layers = [40, 100, 100, 10]
    model = mlp(layers)
    opt = Optimizer(learning_rate=0.05, momentum=0.9, batch_size=100)
    ce = Loss("ce", normalization="mean")
    flop = sgd_flops(layers, 100)
    peak = jnp_matmul_peak()
    devices = f"{jax.device_count()} JAX device(s) ({jax.devices()[0].platform})"
    print(f"Batched vs sequential: MLP {'-'.join(map(str, layers))}, n=4000, SGD batch 100, momentum 0.9, "
          f"float32, {steps} steps per run, {devices}")  # fmt: skip
    print(f"  {flop / 1e6:.1f} MFLOP per SGD step; matmul peak (2048^3 jnp.dot) {peak / 1e9:.1f} GFLOP/s")
    print("     S   batched s  sequential s   ratio   batched %peak   sequential %peak")
    train_model(model, X, Y, t=[0, steps], run=Run(loss=ce, optimizer=opt))  # compile the one-run program
    for S in sizes:
        runs = [Run(init_seed=s, loss=ce, optimizer=opt) for s in range(S)]
        train_batch(model, X, Y, runs, t=[0, steps])  # compile this batch size
        tb, ts = float("inf"), float("inf")
        for _ in range(repeats):  # interleaved, best of repeats: a loaded machine inflates both alike
            t0 = time.perf_counter()
            batch = train_batch(model, X, Y, runs, t=[0, steps])
            tb = min(tb, time.perf_counter() - t0)
            t0 = time.perf_counter()
            seq = [
                train_model(model, X, Y, t=[0, steps], run=Run(loss=ce, optimizer=opt, init_seed=s)) for s in range(S)
            ]
            ts = min(ts, time.perf_counter() - t0)
        # median over runs: a float32 run can amplify round-off on its own (see the note in README_engine)
        diff = float(np.median([np.max(np.abs(a.train - b.train)) for a, b in zip(batch, seq, strict=True)]))
        work = S * steps * flop
        print(f"  {S:4d}  {tb:10.2f}  {ts:12.2f}  {ts / tb:6.2f}x  {100 * work / tb / peak:13.1f}  "
              f"{100 * work / ts / peak:17.1f}   (median max|batched - sequential| {diff:.1e})")  # fmt: skip
    print("  targets (issue 18): ratio >= 4x at S = 10; batched >= 50% of peak at S = 40")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batched-steps", type=int, default=400)
    p.add_argument("--host-devices", type=int, default=None, help="split the CPU into N JAX devices")
    sections = ("batched", "gd", "sgd", "sweep")
    p.add_argument("--sections", nargs="+", choices=sections, default=list(sections))
    args = p.parse_args()
    if "batched" in args.sections:
        batched_vs_sequential(args.batched_steps, max(args.repeats, 1))
    if "sgd" in args.sections:
        sgd_step_time(args.steps, max(args.repeats, 1))
    if "sweep" in args.sections:
        loss_sweep_compiles()
    if "gd" in args.sections:
        full_batch_vs_numpy(args.steps, args.repeats)


def full_batch_vs_numpy(steps: int, repeats: int) -> None:
    """The full-batch engine against the numpy loop (issue 4's comparison; no target since issue 18)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N, D)).astype(np.float32)
    Y = np.eye(K, dtype=np.float32)[rng.integers(0, K, N)]
    model = mlp([D, H, K])
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), model.init(jax.random.PRNGKey(0)))
    lr = 0.1
    ce = Loss("ce", normalization="mean")  # the numpy loop's gradient (p − y)/n
    opt = Optimizer(learning_rate=lr)
    flops = 2 * steps * (2 * N * D * H + 2 * N * H * K + N * H * K + N * D * H)  # fwd + bwd matmuls

    peak = matmul_peak_flops()

    # warm-up compile (excluded), then timed runs
    train_model(model, X, Y, t=[0, steps], run=Run(loss=ce, optimizer=opt, params=params))
    t_kd, t_np = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        train_model(model, X, Y, t=[0, steps], run=Run(loss=ce, optimizer=opt, params=params))
        t_kd.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        numpy_loop(params, X, Y, steps, lr)
        t_np.append(time.perf_counter() - t0)
    # the two loops compute the same thing: compare after 20 steps
    short = train_model(model, X, Y, t=[0, 20], run=Run(loss=ce, optimizer=opt, params=params))
    diff = float(np.max(np.abs(short.params[0]["w"] - numpy_loop(params, X, Y, 20, lr)[0])))
    kd, npy = min(t_kd), min(t_np)
    print(f"MLP {D}-{H}-{K}, {N} points, {steps} full-batch GD steps, float32")
    print(f"  kdtheory.simulate: {kd:.2f} s  ({steps / kd:.0f} steps/s, {flops / kd / 1e9:.1f} GFLOP/s, "
          f"{100 * flops / kd / peak:.0f}% of matmul peak)")  # fmt: skip
    print(f"  numpy loop:        {npy:.2f} s  ({steps / npy:.0f} steps/s, {flops / npy / 1e9:.1f} GFLOP/s, "
          f"{100 * flops / npy / peak:.0f}% of matmul peak)")  # fmt: skip
    print(f"  machine float32 matmul peak (1024^3 numpy): {peak / 1e9:.1f} GFLOP/s")
    print(f"  speed-up {npy / kd:.2f}x")
    print(f"  same computation: max |W1 difference| after 20 steps {diff:.1e} (float32)")


if __name__ == "__main__":
    main()
