"""Benchmark: training trajectories at n = 60,000 by block Lanczos, without an eigendecomposition.

Data: MNIST-1D (``kdtheory.data.mnist1d``, 40 features, 10 classes, one-hot labels), generated at
the size asked; an RBF kernel ``exp(−‖x − x'‖²/(2ℓ²))`` with ℓ the median pairwise distance of a
1000-point subsample, evaluated block by block (:class:`kdtheory.operators.FunctionKernel`), never
stored. Times: 100 log-spaced gradient-flow times with ``t λ_1 ∈ [1e-1, 1e3]`` (four decades of
the top eigendirection's time scale ``1/λ_1``); λ_1 is estimated from a 2000-point subsample as
``(n/2000) λ_1(K_sub)`` (only the time axis depends on it). Tolerance 1e-6 relative to ‖y‖.

Each case is the same call ``kdtheory.dynamics.train(op, Y, t, test=TestPoints(kernel=op.cross(X_test)),
solver=Lanczos(tolerance=1e-6))`` — since issue 19 the result is *certified* (docs/theory.md §12):
the reported bound is a proof, up to the measured round-off floor, not a change between checkpoints.

* ``cost`` (n = 4000 by default): the price of the certificate — block products, basis size,
  wall time, the bound and the observed error (dense oracle) — and, with ``--baseline DIR`` (a
  checkout of the pre-certificate code, e.g. ``git archive f945269 | tar -x -C /tmp/base``), the same numbers
  of its uncertified ``krylov.train`` in a child process, with the ratios certified/before.

* ``small`` (n = 4000, 1000 test points): agreement with the dense path
  (``Spectrum.from_kernel`` + ``dynamics.train``) per time, and the time ratio to one dense
  ``numpy.linalg.eigh`` of the (pre-formed) kernel, in the same process, best of ``--repeats``.
  Target (issue 12): ratio ≤ 0.5, agreement within the tolerance.
* ``large`` (n = 60,000, 10,000 test points; run in a child process so that its peak RSS is its
  own): wall time, peak RSS, the error estimates, iterations. Target: ≤ 15 minutes, ≤ 16 GB.

Measured (2026-11-28, the 2-core / 24 GB development machine shared with other jobs, load 6-11,
``nice``; JAX 0.10.2, float64):

* n = 4000: Krylov 11.8 s vs one ``eigh`` 119.6 s, ratio 0.098; 13 block products, basis 130;
  vs dense train 3.2e-13, test 1.1e-13 relative (estimates 7.6e-7, 7.5e-8; they bound the observed).
* n = 60,000, 10,000 test points: 377 s (6.3 min) for the call plus 137 s setup (MNIST-1D
  generation, the λ_1 estimate), peak RSS 1.63 GB; 13 block products, basis 130, converged;
  estimated error train 3.6e-7, test 3.6e-8 relative to ‖y‖. Time is the n² kernel evaluation of
  13 products (tiles, ≈ 20 s each here) and one cross-kernel product; it grows as n² · products.
* Before the tiled products (row blocks of 2²⁴ entries): n = 20,000 took 258 s for the same 13
  products, ≈ 39 min extrapolated to n = 60,000.

Run: ``python benchmarks/bench_scale.py [--case small|large|both|cost] [--n 4000] [--large-n 60000]
[--baseline DIR]``.
On a shared machine run it with ``nice``. Several JAX devices (GPUs) are used automatically.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.spatial.distance

from kdtheory.data import mnist1d
from kdtheory.dynamics import TestPoints
from kdtheory.dynamics import train as _train
from kdtheory.krylov import Lanczos
from kdtheory.operators import RBF, FunctionKernel

TOLERANCE = 1e-6
EPS = np.finfo(float).eps


def train(op, Y, t, *, test=None, tolerance: float = TOLERANCE):
    """The certified Krylov call (strict=False: an uncertified result is reported, not raised)."""
    return _train(op, Y, t, test=test, solver=Lanczos(tolerance=tolerance, strict=False))


def problem(n: int, n_test: int, seed: int = 0):
    """MNIST-1D at size n, the RBF operator, one-hot labels and the 100 times."""
    data = mnist1d(n, n_test, seed=seed)
    X, Xt, Y = data.X, data.X_test, data.Y
    rng = np.random.default_rng(seed)
    sub = X[rng.choice(n, min(n, 1000), replace=False)]
    ls = float(np.median(scipy.spatial.distance.pdist(sub)))
    op = FunctionKernel(X, RBF(lengthscale=ls))
    m = min(n, 2000)
    idx = rng.choice(n, m, replace=False)
    lam1 = (n / m) * float(np.linalg.eigvalsh(FunctionKernel(X[idx], RBF(lengthscale=ls)).dense())[-1])
    t = np.geomspace(1e-1, 1e3, 100) / lam1
    return op, X, Xt, Y, t, ls, lam1


def summary(traj, Y, n_test: int) -> dict:
    rec = traj.solver
    ref = float(np.linalg.norm(Y))
    return {
        "iterations": rec["iterations"],
        "basis_size": rec["basis_size"],
        "converged": rec["converged"],
        "error_train_rel": max(rec["error_train"]) / ref,
        "error_test_rel": max(rec["error_test"]) / (ref * np.sqrt(n_test / Y.shape[0])),
        "top_ritz_value": rec["ritz_values"][0],
    }


def small(n: int, n_test: int, repeats: int) -> dict:
    from kdtheory.dynamics import train as dense_train
    from kdtheory.eigen import Spectrum

    op, X, Xt, Y, t, ls, lam1 = problem(n, n_test)
    cross = op.cross(Xt)
    K = op.dense()
    Kx = cross.dense()
    train(op, Y, t[:3], test=TestPoints(kernel=cross))  # compile the block products once (not timed)
    best_kr = best_eigh = np.inf
    for _ in range(repeats):  # interleaved, best of `repeats`
        t0 = time.perf_counter()
        kr = train(op, Y, t, test=TestPoints(kernel=cross), tolerance=TOLERANCE)
        best_kr = min(best_kr, time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.linalg.eigh(K)
        best_eigh = min(best_eigh, time.perf_counter() - t0)
    de = dense_train(Spectrum.from_kernel(K), Y, t, test=TestPoints(kernel=Kx))
    ref = np.linalg.norm(Y)
    err_train = np.linalg.norm((kr.train - de.train).reshape(len(t), -1), axis=1)
    err_test = np.linalg.norm((kr.test - de.test).reshape(len(t), -1), axis=1)
    est_train = np.asarray(kr.solver["error_train"])
    est_test = np.asarray(kr.solver["error_test"])
    return {
        "case": "small",
        "n": n,
        "n_test": n_test,
        "lengthscale": ls,
        "lambda_1_estimate": lam1,
        "krylov_s": best_kr,
        "eigh_s": best_eigh,
        "ratio": best_kr / best_eigh,
        "observed_train_rel": float(err_train.max() / ref),
        "observed_test_rel": float(err_test.max() / (ref * np.sqrt(n_test / n))),
        # up to the dense oracle's own round-off, 100 n ε ‖y‖ (eigh of a 4000 × 4000 kernel)
        "estimate_bounds_observed": bool(
            np.all(err_train <= est_train + 100 * n * EPS * ref) and np.all(err_test <= est_test + 100 * n * EPS * ref)
        ),
        **summary(kr, Y, n_test),
    }


def large(n: int, n_test: int) -> dict:
    t0 = time.perf_counter()
    op, X, Xt, Y, t, ls, lam1 = problem(n, n_test)
    setup = time.perf_counter() - t0
    t0 = time.perf_counter()
    kr = train(op, Y, t, test=TestPoints(kernel=op.cross(Xt)), tolerance=TOLERANCE)
    wall = time.perf_counter() - t0
    return {
        "case": "large",
        "n": n,
        "n_test": n_test,
        "lengthscale": ls,
        "lambda_1_estimate": lam1,
        "setup_s": setup,
        "krylov_s": wall,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        **summary(kr, Y, n_test),
    }


_BASELINE = """
import json, sys, time
import numpy as np
sys.path.insert(0, {bench!r})
from bench_scale import problem  # the baseline's own copy (same problem)
from kdtheory.krylov import train
op, X, Xt, Y, t, ls, lam1 = problem({n}, {n_test})
cross = op.cross(Xt)
train(op, Y, t[:3], test_kernel=cross)
t0 = time.perf_counter()
kr = train(op, Y, t, test_kernel=cross, tolerance={tol}, strict=False)
wall = time.perf_counter() - t0
rec = kr.recipe
print(json.dumps(dict(iterations=rec["iterations"], basis_size=rec["basis_size"], krylov_s=wall,
                      converged=rec["converged"], train=kr.train.tolist() if {keep} else None,
                      error_train_rel=max(rec["error_train"]) / float(np.linalg.norm(Y)))))
"""


def cost(n: int, n_test: int, baseline: str | None) -> dict:
    """The certified call's products and time, against the dense oracle and (optionally) the old code."""
    import os

    from kdtheory.eigen import Spectrum

    op, X, Xt, Y, t, ls, lam1 = problem(n, n_test)
    cross = op.cross(Xt)
    train(op, Y, t[:3], test=TestPoints(kernel=cross))  # compile once
    t0 = time.perf_counter()
    kr = train(op, Y, t, test=TestPoints(kernel=cross))
    wall = time.perf_counter() - t0
    ref = float(np.linalg.norm(Y))
    out = {"case": "cost", "n": n, "n_test": n_test, "krylov_s": wall, **summary(kr, Y, n_test)}
    if n <= 6000:
        de = _train(Spectrum.from_kernel(op.dense()), Y, t)
        out["observed_train_rel"] = float(
            np.max(np.linalg.norm((kr.train - de.train).reshape(len(t), -1), axis=1)) / ref
        )
    if baseline:
        base = os.path.abspath(baseline)
        code = _BASELINE.format(bench=os.path.join(base, "benchmarks"), n=n, n_test=n_test, tol=TOLERANCE, keep=False)
        env = {**os.environ, "PYTHONPATH": base}
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=base, check=True
        )
        before = json.loads(res.stdout.strip().splitlines()[-1])
        out["before"] = before
        out["products_ratio"] = out["iterations"] / before["iterations"]
        out["time_ratio"] = wall / before["krylov_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=["small", "large", "both", "cost"], default="both")
    ap.add_argument("--baseline", default=None, help="a checkout of the pre-certificate code (cost case)")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--large-n", type=int, default=60000)
    ap.add_argument("--large-n-test", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.case == "cost":
        r = cost(args.n, args.n_test, args.baseline)
        line = (
            f"n={r['n']}: certified {r['iterations']} block products, basis {r['basis_size']}, {r['krylov_s']:.2f} s, "
            f"converged {r['converged']}, bound train {r['error_train_rel']:.2e}"
        )
        if "observed_train_rel" in r:
            line += f", observed {r['observed_train_rel']:.2e}"
        if "before" in r:
            b = r["before"]
            line += (
                f"; before: {b['iterations']} products, {b['krylov_s']:.2f} s; ratios products "
                f"{r['products_ratio']:.2f}, time {r['time_ratio']:.2f}"
            )
        print(line)
        print(json.dumps({k: v for k, v in r.items() if k != "before"}))
        return
    if args.case in ("small", "both"):
        r = small(args.n, args.n_test, args.repeats)
        print(
            f"n={r['n']}: krylov {r['krylov_s']:.2f} s, eigh {r['eigh_s']:.2f} s, ratio {r['ratio']:.3f} "
            f"(target <= 0.5); {r['iterations']} block products, basis {r['basis_size']}; "
            f"vs dense: train {r['observed_train_rel']:.2e}, test {r['observed_test_rel']:.2e} "
            f"(estimates {r['error_train_rel']:.2e}, {r['error_test_rel']:.2e}; tolerance {TOLERANCE:g}; "
            f"estimate bounds observed: {r['estimate_bounds_observed']})"
        )
        print(json.dumps(r))
    if args.case == "large":
        print(json.dumps(large(args.large_n, args.large_n_test)))
    elif args.case == "both":
        cmd = [sys.executable, __file__, "--case", "large", "--large-n", str(args.large_n)]
        cmd += ["--large-n-test", str(args.large_n_test)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(
            f"n={r['n']}: {r['krylov_s'] / 60:.1f} min (target <= 15), peak RSS {r['peak_rss_gb']:.2f} GB "
            f"(target <= 16); {r['iterations']} block products, basis {r['basis_size']}, converged "
            f"{r['converged']}; estimated error train {r['error_train_rel']:.2e}, test {r['error_test_rel']:.2e}"
        )
        print(json.dumps(r))


if __name__ == "__main__":
    main()
