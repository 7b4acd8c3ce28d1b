"""Benchmark: empirical NTK methods against the naive full-Jacobian product.

MLP 64→256→256→10 (85,002 parameters, NTK parameterization, float32). Two shapes: the kernel
traced over outputs on 500 inputs (500 × 500), and the full kernel on 100 inputs (1000 × 1000).
Each method runs in its own subprocess so that its peak resident memory (``ru_maxrss``) can be
measured; the naive baseline forms the whole Jacobian ``J`` (``n × k × P``) with one ``jacrev`` and
multiplies ``J Jᵀ``. Reported: time, peak memory, their ratios to the baseline, the fraction of
the machine's float32 matmul throughput (a numpy product timed in the same run) reached by the
contraction, and the fastest method per shape.

Run: ``python benchmarks/bench_ntk.py [--block 100]``.
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
method, n, trace, block = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
trace = None if trace == "none" else trace
block = None if block == "none" else int(block)
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
t0 = time.perf_counter()
K = naive() if method == "naive" else empirical_ntk(m.apply, p, X, method=method, trace=trace, block_size=block)
K = np.asarray(K)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = {"seconds": dt, "peak_mb": peak / 1024, "extra_mb": (peak - base) / 1024}
print(json.dumps({**res, "checksum": float(np.abs(K).sum())}))
"""


def child(method: str, n: int, trace: str, block: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, method, str(n), trace, block], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--block", type=int, default=100)
    args = p.parse_args()
    peak = matmul_peak_flops()
    P = 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    for n, trace, label in (
        (500, "mean", "traced, 500 inputs (500x500)"),
        (100, "none", "full, 100 inputs (1000x1000)"),
    ):
        flops = 2 * n * n * 10 * P * (1 if trace != "none" else 10)  # the contraction J Jᵀ
        print(f"\n{label}; contraction {flops / 1e9:.0f} GFLOP; matmul peak {peak / 1e9:.0f} GFLOP/s")
        res = {"naive": child("naive", n, trace, "none")}
        for method in ("jacobian", "ntvp", "per_example"):
            res[method] = child(method, n, trace, str(args.block))
        ref = res["naive"]
        for name, r in res.items():
            if "error" in r:
                print(f"  {name:<12} failed: {r['error']}")
                continue
            same = abs(r["checksum"] - ref["checksum"]) <= 1e-3 * ref["checksum"]
            print(
                f"  {name:<12} {r['seconds']:7.2f} s ({ref['seconds'] / r['seconds']:5.2f}x faster)  peak +"
                f"{r['extra_mb']:7.0f} MB ({ref['extra_mb'] / max(r['extra_mb'], 1):5.2f}x less)  "
                f"{100 * flops / r['seconds'] / peak:4.0f}% of peak  same kernel: {same}"
            )
        ok = {k: v for k, v in res.items() if "error" not in v}
        print(f"  fastest: {min(ok, key=lambda k: ok[k]['seconds'])}")


if __name__ == "__main__":
    main()
