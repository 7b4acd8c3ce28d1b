"""Benchmark: the NTK bridge on the whole training set — a network's GD against its linearization.

An MLP ``40 → w → w → 10`` (NTK parameterization, ReLU, float32 network, float64 solver) on
MNIST-1D (``kdtheory.data.mnist1d``, generated offline). The linearized training trajectory
``f_lin(t) = f_0 + F_t(Θ)(y − f_0)`` (gradient descent, MSE, ``normalization="sum"``, step η)
uses the full empirical NTK at initialization ``Θ`` (``n·k × n·k``) only through NTK-vector
products (:class:`kdtheory.operators.NTKOperator`) and the certified block Lanczos solver
(:func:`kdtheory.dynamics.train` on an operator with ``solver=Lanczos(tolerance=)``; the call is
in ``linearized_krylov``, the one place to change when the solver's API changes). The network
itself is trained by full-batch GD (:func:`kdtheory.simulate.train_model`) from the same
initialization, recorded at the same steps.

Reported per width and target (one-hot labels; distillation targets = the softmax of a ridge
teacher's logits): the linearization gap ``‖f_net(t) − f_lin(t)‖ / ‖f_net(t) − f_0‖`` at each
step, the solver's error estimate, solver time and memory (peak RSS), and the network's time.
At small ``n`` (``--check``) the Krylov trajectory is also compared with the dense closed form
(:func:`kdtheory.ntk.linearized`) — the solver's actual error against its estimate.

Run: ``python benchmarks/bench_bridge.py [--n 2000] [--widths 256,1024] [--steps 1,10,100,1000]
[--lr 0.5] [--targets onehot,distill] [--check]``; the issue's target is ``--n 60000``
(≤ 15 min and ≤ 8 GB on 2 cores, to the solver's default tolerance).
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

from kdtheory.data import mnist1d
from kdtheory.dynamics import train
from kdtheory.eigen import Recipe
from kdtheory.krylov import Lanczos
from kdtheory.ntk import linearized
from kdtheory.operators import NTKOperator
from kdtheory.simulate import Loss, Optimizer, Run, mlp, train_model


def linearized_krylov(apply, params, X, Y, steps, learning_rate, f0, tolerance):
    """Linearized GD (MSE, sum normalization) through NTK-vector products and block Lanczos.

    The flattened problem has ``n·k`` rows (point-major, as :func:`kdtheory.ntk.linearized`).
    Returns ``(train (T, n, k), recipe-or-solver statistics dict)``.
    """
    n, k = Y.shape
    op = NTKOperator(apply, params, X, trace=None, dtype=np.float64)
    traj = train(
        op,
        Y.reshape(-1),
        steps,
        recipe=Recipe("gd", learning_rate=learning_rate),
        init=f0.reshape(-1),
        solver=Lanczos(tolerance=tolerance),
    )
    stats = getattr(traj, "solver", None) or traj.recipe
    return np.asarray(traj.train).reshape(len(steps), n, k), stats


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--widths", default="256,1024")
    p.add_argument("--steps", default="1,10,100,1000")
    p.add_argument("--lr", type=float, default=0.5, help="learning rate per example (divided by n: 'sum' loss)")
    p.add_argument("--targets", default="onehot,distill")
    p.add_argument("--tolerance", type=float, default=1e-6)
    p.add_argument("--check", action="store_true", help="compare with the dense closed form (small n only)")
    p.add_argument("--no-network", action="store_true", help="time the linearized trajectory only (no GD run)")
    args = p.parse_args()
    data = mnist1d(args.n, 10)
    X = (data.X - data.X.mean(0)) / data.X.std(0)
    n = X.shape[0]
    steps = [int(s) for s in args.steps.split(",")]
    lr = args.lr / n
    W = np.linalg.lstsq(X, data.Y, rcond=None)[0]  # a ridge-free linear teacher
    logits = X @ W * 5.0
    soft = np.exp(logits - logits.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    targets = {"onehot": data.Y, "distill": soft}
    print(f"MNIST-1D n={n}, MLP 40-w-w-10 (NTK param., ReLU), GD steps {steps}, η = {args.lr}/n, MSE 'sum'")
    for width in [int(w) for w in args.widths.split(",")]:
        model = mlp([40, width, width, 10], parameterization="ntk")
        params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), model.init(jax.random.PRNGKey(0)))
        f0 = np.asarray(model.apply(params, jnp.asarray(X, jnp.float32)), dtype=np.float64)
        for name in args.targets.split(","):
            Y = targets[name]
            t0 = time.perf_counter()
            lin, stats = linearized_krylov(model.apply, params, X, Y, steps, lr, f0, args.tolerance)
            t_lin = time.perf_counter() - t0
            est = stats.get("error_train") if isinstance(stats, dict) else None
            est = None if est is None else float(np.max(est))
            if args.no_network:
                print(f"  width {width:5d} {name:<8} linearized {t_lin:7.1f} s (peak RSS {_rss_gb():.2f} GB, "
                      f"solver's error estimate {est:.2g})")  # fmt: skip
                continue
            t0 = time.perf_counter()
            net = train_model(
                model,
                X,
                Y,
                t=steps,
                run=Run(loss=Loss("mse"), optimizer=Optimizer(learning_rate=lr), params=params),
                dtype=jnp.float32,
            )
            t_net = time.perf_counter() - t0
            F = np.asarray(net.train, dtype=np.float64)
            moved = np.linalg.norm((F - f0).reshape(len(steps), -1), axis=1)
            gap = np.linalg.norm((F - lin).reshape(len(steps), -1), axis=1) / np.maximum(moved, 1e-300)
            est = stats.get("error_train") if isinstance(stats, dict) else None
            est = None if est is None else float(np.max(est))
            print(
                f"  width {width:5d} {name:<8} linearized {t_lin:7.1f} s (peak RSS {_rss_gb():.2f} GB, "
                f"solver's error estimate {est:.2g}), network {t_net:6.1f} s"
            )
            for s, g in zip(steps, gap, strict=True):
                print(f"      step {s:6d}: gap ‖f_net − f_lin‖/‖f_net − f_0‖ = {g:.4f}")
            if args.check:
                p64 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)  # the operator's precision
                with jax.enable_x64(True):
                    dense = linearized(model.apply, p64, X, Y, steps, learning_rate=lr)
                err = np.abs(dense.train - lin).max() / np.abs(Y - f0).max()
                print(f"      Krylov vs dense closed form: max error {err:.2e} (relative to max|y − f0|)")


if __name__ == "__main__":
    main()
