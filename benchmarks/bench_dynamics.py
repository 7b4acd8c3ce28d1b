"""Benchmark: kdtheory's closed-form trajectory engine against a bare ``numpy.linalg.eigh``.

For a random RBF kernel of size n, kdtheory's whole call — ``Spectrum.from_kernel`` (checks and
eigendecomposition) plus ``dynamics.train`` at 1000 times with train predictions and test
predictions on 1000 test points — is timed against ``numpy.linalg.eigh`` of the same matrix, in
the same process, interleaved, best of ``--repeats``. The ratio is what matters; the machines are
noisy. Target (issue 2): ratio ≤ 1.15 at n = 4000.

With ``--baseline DIR`` (a checkout of an earlier kdtheory, e.g. ``git worktree add /tmp/v020
5c16615``) each size also runs the same call in a fresh process on both versions, interleaved, and
prints the CPU-time and wall-time ratios this / baseline (the call's API is detected: ``test=`` or
the 0.2.0 ``test_kernel=``).

Run: ``python benchmarks/bench_dynamics.py [--sizes 1000 2000 4000] [--repeats 3] [--baseline DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import scipy.spatial.distance

from kdtheory.dynamics import TestPoints, train
from kdtheory.eigen import Spectrum


def rbf(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    return np.exp(-gamma * scipy.spatial.distance.cdist(A, B, "sqeuclidean"))


def bench(n: int, *, n_test: int = 1000, n_times: int = 1000, repeats: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    d = 10
    X = rng.standard_normal((n, d))
    Xt = rng.standard_normal((n_test, d))
    K = rbf(X, X, 1.0 / d)
    Kx = rbf(Xt, X, 1.0 / d)
    y = rng.standard_normal(n)
    times = np.concatenate([[0.0], np.geomspace(1e-2, 1e4, n_times - 1)])

    def kd():
        spec = Spectrum.from_kernel(K)
        return train(spec, y, times, test=TestPoints(kernel=Kx))

    def baseline():
        return np.linalg.eigh(K)

    t_kd, t_np = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        baseline()
        t_np.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        traj = kd()
        t_kd.append(time.perf_counter() - t0)
    assert traj.train.shape == (n_times, n) and traj.test.shape == (n_times, n_test)
    return {"n": n, "kdtheory_s": min(t_kd), "eigh_s": min(t_np), "ratio": min(t_kd) / min(t_np)}


_VERSION_CALL = """
import json, sys, time
import numpy as np
import scipy.spatial.distance
from kdtheory.eigen import Spectrum
from kdtheory import dynamics
n, n_test, repeats = {n}, 1000, {repeats}
rng = np.random.default_rng(0)
X, Xt = rng.standard_normal((n, 10)), rng.standard_normal((n_test, 10))
rbf = lambda A, B: np.exp(-0.1 * scipy.spatial.distance.cdist(A, B, "sqeuclidean"))
K, Kx, y = rbf(X, X), rbf(Xt, X), rng.standard_normal(n)
times = np.concatenate([[0.0], np.geomspace(1e-2, 1e4, 999)])
if hasattr(dynamics, "TestPoints"):
    call = lambda: dynamics.train(Spectrum.from_kernel(K), y, times, test=dynamics.TestPoints(kernel=Kx))
else:  # 0.2.0 and 0.3.0
    call = lambda: dynamics.train(Spectrum.from_kernel(K), y, times, test_kernel=Kx)
call()
cpu, wall = [], []
for _ in range(repeats):
    c0, w0 = time.process_time(), time.perf_counter()
    call()
    cpu.append(time.process_time() - c0)
    wall.append(time.perf_counter() - w0)
print(json.dumps(dict(cpu=min(cpu), wall=min(wall))))
"""


def versions(n: int, baseline: str, repeats: int) -> dict:
    """The same call on this checkout and on ``baseline``, each in a fresh process, interleaved."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out: dict[str, list[dict]] = {"this": [], "baseline": []}
    for _ in range(2):
        for name, root in (("baseline", os.path.abspath(baseline)), ("this", here)):
            env = {**os.environ, "PYTHONPATH": root}
            code = _VERSION_CALL.format(n=n, repeats=repeats)
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root)
            if res.returncode != 0:
                raise SystemExit(f"{name} ({root}) failed:\n{res.stderr[-2000:]}")
            out[name].append(json.loads(res.stdout.strip().splitlines()[-1]))
    best = {k: {m: min(r[m] for r in v) for m in ("cpu", "wall")} for k, v in out.items()}
    return {
        "n": n,
        **{f"{k}_{m}_s": best[k][m] for k in best for m in ("cpu", "wall")},
        "cpu_ratio": best["this"]["cpu"] / best["baseline"]["cpu"],
        "wall_ratio": best["this"]["wall"] / best["baseline"]["wall"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline", default=None, help="a checkout of an earlier kdtheory to compare with")
    args = p.parse_args()
    print(f"{'n':>6} {'kdtheory [s]':>13} {'eigh [s]':>10} {'ratio':>7}   (1000 times, 1000 test points)")
    for n in args.sizes:
        r = bench(n, repeats=args.repeats)
        print(f"{r['n']:>6} {r['kdtheory_s']:>13.3f} {r['eigh_s']:>10.3f} {r['ratio']:>7.3f}", flush=True)
    if args.baseline:
        print(f"\n{'n':>6} {'CPU this/base [s]':>20} {'ratio':>6} {'wall this/base [s]':>20} {'ratio':>6}")
        for n in args.sizes:
            v = versions(n, args.baseline, args.repeats)
            cpu = f"{v['this_cpu_s']:.2f}/{v['baseline_cpu_s']:.2f}"
            wall = f"{v['this_wall_s']:.2f}/{v['baseline_wall_s']:.2f}"
            print(f"{n:>6} {cpu:>20} {v['cpu_ratio']:>6.3f} {wall:>20} {v['wall_ratio']:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
