"""Benchmark: five distillation recipes and a stopping rule against one ``numpy.linalg.eigh``.

On a random RBF kernel of size n (default 2000), kdtheory computes the spectrum once and then the
training-set predictions of five recipes at 200 times each — teacher (one-hot flow), student,
mixed student (teacher weight 0.5), three rounds of self-distillation (last round at 200 times) and
a late switch — plus one matched-norm stopping rule. The whole is timed against a bare
``numpy.linalg.eigh`` of the same kernel in the same process, interleaved, best of ``--repeats``.
Target (issue 3): ratio ≤ 1.3.

Run: ``python benchmarks/bench_distill.py [--n 2000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.spatial.distance

from kdtheory.distill import distill, late_switch, rounds, student_time
from kdtheory.dynamics import train
from kdtheory.eigen import Spectrum


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, 10))
    K = np.exp(-scipy.spatial.distance.cdist(X, X, "sqeuclidean") / 10)
    y = rng.standard_normal(args.n)
    times = np.geomspace(1e-2, 1e4, 200)
    T = 10.0

    def kd():
        spec = Spectrum.from_kernel(K)
        out = [
            train(spec, y, times).train,
            distill(spec, y, times, teacher_t=T).train,
            distill(spec, y, times, teacher_t=T, teacher_weight=0.5).train,
            rounds(spec, y, [T, T, 0.0], last_round_t=times).train,
            late_switch(spec, y, times, teacher_t=T, switch_t=1.0).train,
        ]
        target = 0.5 * float(distill(spec, y, np.inf, teacher_t=T).norm)
        return out, student_time(spec, y, teacher_t=T, rule="norm", value=target)

    t_kd, t_np = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        np.linalg.eigh(K)
        t_np.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        out, t_stop = kd()
        t_kd.append(time.perf_counter() - t0)
    assert all(o.shape == (200, args.n) for o in out) and np.isfinite(t_stop)
    print(f"n = {args.n}: 5 recipes x 200 times + 1 stopping rule")
    print(f"  kdtheory (spectrum included) {min(t_kd):.3f} s   numpy.linalg.eigh {min(t_np):.3f} s")
    print(f"  ratio {min(t_kd) / min(t_np):.3f}   (target <= 1.3)")


if __name__ == "__main__":
    main()
