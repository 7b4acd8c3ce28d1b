"""Benchmark: empirical NTK methods, the structured method (docs/theory.md §10) and the naive J Jᵀ.

MLP 64→256→256→10 (85,002 parameters, NTK parameterization, float32). Two shapes: the kernel
traced over outputs on 500 inputs (500 × 500), and the full kernel on 100 inputs (1000 × 1000).
Each method runs in its own subprocess (peak resident memory by ``ru_maxrss``); inside it the
first call (tracing, compilation and one run) and the warm time (best of ``--repeats`` further
calls) are timed apart. The naive baseline forms the whole Jacobian ``J`` (``n × k × P``) with one
``jacrev`` and multiplies ``J Jᵀ``. Reported: compile and warm time, peak memory, the warm ratio to
the baseline and to kdtheory's fastest generic method (the target of issue 12: structured ≥ 10×
on both shapes), and for the structured method the share of the machine's float32 matmul
throughput (a numpy product timed in the same run) reached on its own FLOP count
(:func:`kdtheory.structured_ntk.structured_flops`, the Gram contractions).

Second part (issue 22): the user's own model. The same MLP written in Flax ``nnx`` (float32),
traced over 500 inputs: ``empirical_ntk(apply, params, X)`` with ``method="auto"`` (layers found
by tracing the function) against kdtheory's own ``mlp`` (declared layers) and the generic
Jacobian method on the Flax model (target: auto within 2× of the own ``mlp``); and a Flax CNN
(conv 16 → pool → conv 32 → pool → dense 10, float32) on ``(n, 28, 28, 1)`` inputs, auto against
generic (target ≥ 10×). neural-tangents' fastest, where it is installed, on the Flax MLP.
First call (trace, compile, run) and warm (best of ``--repeats``) apart, each in its own process.

Run: ``python benchmarks/bench_ntk.py [--block 100] [--repeats 2] [--methods naive,jacobian,...]
[--parts declared,user]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import matmul_peak_flops

CHILD = r"""
import json, resource, sys, time
import jax, jax.numpy as jnp, numpy as np
from jax.flatten_util import ravel_pytree
from kdtheory.ntk import empirical_ntk
from kdtheory.simulate import mlp
from kdtheory.structured_ntk import structured_flops
method, n, trace, block, repeats = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
trace = None if trace == "none" else trace
block = None if block == "none" or method == "structured" else int(block)
m = mlp([64, 256, 256, 10], parameterization="ntk")
p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), m.init(jax.random.PRNGKey(0)))
X = np.random.default_rng(0).standard_normal((n, 64)).astype(np.float32)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
def naive():
    flat, unravel = ravel_pytree(p)
    J = jax.jacrev(lambda fl: m.apply(unravel(fl), jnp.asarray(X)))(flat)  # (n, k, P)
    J = np.asarray(J)
    if trace is None:
        Jf = J.reshape(n * 10, -1)
        return Jf @ Jf.T
    Jt = J.reshape(n, -1)
    return Jt @ Jt.T / 10
def call():
    if method == "naive":
        return np.asarray(naive())
    return np.asarray(empirical_ntk(m, p, X, method=method, trace=trace, block_size=block))
t0 = time.perf_counter()
K = call()
first = time.perf_counter() - t0
warm = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter()
    call()
    warm = min(warm, time.perf_counter() - t0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
flops = structured_flops(m.structure, p, X[:1], n, n, trace=trace)
res = {"first": first, "warm": warm, "peak_mb": peak / 1024, "extra_mb": (peak - base) / 1024, "flops": flops}
print(json.dumps({**res, "checksum": float(np.abs(K).sum())}))
"""

USER_CHILD = r"""
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
from flax import nnx
from kdtheory.ntk import empirical_ntk
from kdtheory.simulate import mlp
case, method, n, trace, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
trace = None if trace == "none" else trace
rng = np.random.default_rng(0)
if case == "mlp":
    X = rng.standard_normal((n, 64)).astype(np.float32)
    if method == "own":
        m = mlp([64, 256, 256, 10], parameterization="ntk")
        p = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), m.init(jax.random.PRNGKey(0)))
        fn = m
    else:
        class MLP(nnx.Module):
            def __init__(self, rngs):
                self.l1, self.l2 = nnx.Linear(64, 256, rngs=rngs), nnx.Linear(256, 256, rngs=rngs)
                self.l3 = nnx.Linear(256, 10, rngs=rngs)
            def __call__(self, x):
                return self.l3(jax.nn.relu(self.l2(jax.nn.relu(self.l1(x)))))
        g, p = nnx.split(MLP(nnx.Rngs(0)), nnx.Param)
        fn = lambda p, x: nnx.merge(g, p)(x)
else:
    X = rng.standard_normal((n, 28, 28, 1)).astype(np.float32)
    class CNN(nnx.Module):
        def __init__(self, rngs):
            self.c1, self.c2 = nnx.Conv(1, 16, (3, 3), rngs=rngs), nnx.Conv(16, 32, (3, 3), rngs=rngs)
            self.out = nnx.Linear(32 * 7 * 7, 10, rngs=rngs)
        def __call__(self, x):
            h = nnx.avg_pool(jax.nn.relu(self.c1(x)), (2, 2), strides=(2, 2))
            h = nnx.avg_pool(jax.nn.relu(self.c2(h)), (2, 2), strides=(2, 2))
            return self.out(h.reshape(h.shape[0], -1))
    g, p = nnx.split(CNN(nnx.Rngs(0)), nnx.Param)
    fn = lambda p, x: nnx.merge(g, p)(x)
if method == "nt":
    import neural_tangents as nt
    best = None
    f = nt.empirical_ntk_fn(fn, trace_axes=() if trace is None else (-1,), vmap_axes=0,
                            implementation=nt.NtkImplementation.STRUCTURED_DERIVATIVES)
    call = lambda: np.asarray(f(X, None, p)) / (1 if trace is None else 10)
else:
    kw = dict(method="auto" if method in ("auto", "own") else method, trace=trace)
    call = lambda: np.asarray(empirical_ntk(fn, p, X, **kw))
t0 = time.perf_counter(); K = call(); first = time.perf_counter() - t0
warm = float("inf")
for _ in range(repeats):
    t0 = time.perf_counter(); call(); warm = min(warm, time.perf_counter() - t0)
print(json.dumps({"first": first, "warm": warm, "checksum": float(np.abs(K).sum())}))
"""

GENERIC = ("jacobian", "ntvp", "per_example")


def child(method: str, n: int, trace: str, block: str, repeats: int) -> dict:
    args = [sys.executable, "-c", CHILD, method, str(n), trace, block, str(repeats)]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def user_child(case: str, method: str, n: int, trace: str, repeats: int) -> dict:
    args = [sys.executable, "-c", USER_CHILD, case, method, str(n), trace, str(repeats)]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def user_models(repeats: int) -> None:
    """The Flax MLP and CNN (module docstring, second part)."""
    import importlib.util

    if importlib.util.find_spec("flax") is None:
        print("\nuser models: skipped (Flax is not installed: pip install flax)")
        return
    methods = ["auto", "own", "per_example"] + (["nt"] if importlib.util.find_spec("neural_tangents") else [])
    for case, n, methods_here, label in (
        ("mlp", 500, methods, "Flax nnx MLP 64-256-256-10 float32, traced, 500 inputs"),
        ("cnn", 100, ["auto", "per_example", "jacobian"], "Flax nnx CNN on (n, 28, 28, 1) float32, traced, 100 inputs"),
    ):
        res = {m: user_child(case, m, n, "mean", repeats) for m in methods_here}
        print(f"\n{label}")
        for m, r in res.items():
            if "error" in r:
                print(f"  {m:<9} failed: {r['error']}")
                continue
            print(f"  {m:<9} warm {r['warm']:8.4f} s  compile+first {r['first']:7.2f} s  checksum {r['checksum']:.6g}")
        ok = {m: r for m, r in res.items() if "error" not in r}
        generic = [m for m in ("jacobian", "per_example") if m in ok]
        if "auto" in ok and generic:
            best = min(generic, key=lambda m: ok[m]["warm"])
            ratio = ok[best]["warm"] / ok["auto"]["warm"]
            print(f"  auto vs kdtheory's fastest generic ({best}), warm: {ratio:.1f}x (target >= 10x on the CNN)")
        if "auto" in ok and "own" in ok:
            print(f"  auto / kdtheory's own mlp, warm: {ok['auto']['warm'] / ok['own']['warm']:.2f} (target <= 2)")
        if "auto" in ok and "nt" in ok:
            print(f"  auto vs neural-tangents structured, warm: {ok['nt']['warm'] / ok['auto']['warm']:.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--block", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--methods", default="naive,jacobian,ntvp,per_example,structured")
    p.add_argument("--parts", default="declared,user")
    args = p.parse_args()
    if "user" in args.parts.split(","):
        user_models(args.repeats)
    if "declared" not in args.parts.split(","):
        return
    chosen = args.methods.split(",")
    peak = matmul_peak_flops()
    P = 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    for n, trace, label in (
        (500, "mean", "traced, 500 inputs (500x500)"),
        (100, "none", "full, 100 inputs (1000x1000)"),
    ):
        jj = 2 * n * n * 10 * P * (1 if trace != "none" else 10)  # the contraction J Jᵀ
        res = {}
        for method in ("naive", *GENERIC, "structured"):
            if method in chosen:
                res[method] = child(method, n, trace, "none" if method == "naive" else str(args.block), args.repeats)
        ok_all = [r for r in res.values() if "error" not in r]
        ref = res.get("naive") if "error" not in res.get("naive", {"error": 1}) else ok_all[0]
        s_flops = res.get("structured", {}).get("flops", float("nan"))
        print(
            f"\n{label}; J Jᵀ {jj / 1e9:.0f} GFLOP, structured Gram form {s_flops / 1e9:.2f} GFLOP; "
            f"matmul peak {peak / 1e9:.0f} GFLOP/s"
        )
        for name, r in res.items():
            if "error" in r:
                print(f"  {name:<12} failed: {r['error']}")
                continue
            same = abs(r["checksum"] - ref["checksum"]) <= 1e-3 * ref["checksum"]
            print(
                f"  {name:<12} warm {r['warm']:8.3f} s  compile+first {r['first']:7.2f} s  "
                f"({ref['warm'] / r['warm']:6.2f}x the first method's warm)  peak +{r['extra_mb']:6.0f} MB  "
                f"same kernel: {same}"
            )
        ok = {k: v for k, v in res.items() if "error" not in v and k in GENERIC}
        if ok and "error" not in res.get("structured", {"error": 1}):
            best = min(ok, key=lambda k: ok[k]["warm"])
            st = res["structured"]
            print(
                f"  structured vs kdtheory's fastest generic ({best}, warm): {ok[best]['warm'] / st['warm']:.1f}x "
                f"(target >= 10x); structured reaches {100 * s_flops / st['warm'] / peak:.1f}% of matmul peak "
                "on its own FLOP count"
            )


if __name__ == "__main__":
    main()
