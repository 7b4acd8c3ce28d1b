"""Benchmark: kdtheory's closed-form trajectory engine against a bare ``numpy.linalg.eigh``.

For a random RBF kernel of size n, kdtheory's whole call — ``Spectrum.from_kernel`` (checks and
eigendecomposition) plus ``dynamics.train`` at 1000 times with train predictions and test
predictions on 1000 test points — is timed against ``numpy.linalg.eigh`` of the same matrix, in
the same process, interleaved, best of ``--repeats``. The ratio is what matters; the machines are
noisy. Target (issue 2): ratio ≤ 1.15 at n = 4000.

Run: ``python benchmarks/bench_dynamics.py [--sizes 1000 2000 4000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 4000])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(f"{'n':>6} {'kdtheory [s]':>13} {'eigh [s]':>10} {'ratio':>7}   (1000 times, 1000 test points)")
    for n in args.sizes:
        r = bench(n, repeats=args.repeats)
        print(f"{r['n']:>6} {r['kdtheory_s']:>13.3f} {r['eigh_s']:>10.3f} {r['ratio']:>7.3f}", flush=True)


if __name__ == "__main__":
    main()
