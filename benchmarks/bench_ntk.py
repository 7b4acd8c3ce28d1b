"""Benchmark: empirical NTK methods, the structured method (THEORY.md §10) and the naive J Jᵀ.

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

Run: ``python benchmarks/bench_ntk.py [--block 100] [--repeats 2] [--methods naive,jacobian,...]``.
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

GENERIC = ("jacobian", "ntvp", "per_example")


def child(method: str, n: int, trace: str, block: str, repeats: int) -> dict:
    args = [sys.executable, "-c", CHILD, method, str(n), trace, block, str(repeats)]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--block", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--methods", default="naive,jacobian,ntvp,per_example,structured")
    args = p.parse_args()
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
