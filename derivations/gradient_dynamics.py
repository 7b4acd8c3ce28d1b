r"""Derive the per-mode solutions of gradient flow, gradient descent and heavy-ball momentum.

Along an eigendirection with eigenvalue λ of the kernel, training ``½‖f − y‖²`` from ``f = 0``
leaves the remaining fraction ``e = 1 − a`` of the label component, and the dual coefficient
``α`` (``a = λ α`` per unit label) obeys:

* gradient flow:  ``e'(t) = −η λ e``,  ``e(0) = 1``;
* gradient descent:  ``e_{s+1} = (1 − ηλ) e_s``,  ``e_0 = 1``;
* heavy ball (β):  ``e_{s+2} = (1 + β − ηλ) e_{s+1} − β e_s``, ``e_0 = 1``, ``e_1 = 1 − ηλ``, and
  for ``h = α/η``:  ``h_{s+2} = (1 + β − ηλ) h_{s+1} − β h_s + 1``, ``h_0 = 0``, ``h_1 = 1``.

sympy solves each (``dsolve``/``rsolve``), prints the solutions in LaTeX, takes the λ → 0
limits of ``a/λ`` that kdtheory uses for test predictions, and finally evaluates the solutions in
40-digit arithmetic (mpmath) at random points — real and complex characteristic roots — and
compares them with :mod:`kdtheory.eigen`. Run: ``python derivations/gradient_dynamics.py``.
"""

from __future__ import annotations

import sys

import mpmath
import numpy as np
import sympy as sp

from kdtheory.eigen import Recipe

TOL = 1e-10


def derive() -> dict[str, sp.Expr]:
    """Solve the three update rules symbolically; return the expressions by name."""
    t, eta, lam = sp.symbols("t eta lambda", positive=True)
    s = sp.symbols("s", integer=True, nonnegative=True)
    q, beta = sp.symbols("q beta", positive=True)
    e, h = sp.Function("e"), sp.Function("h")

    flow_e = sp.dsolve(sp.Eq(e(t).diff(t), -eta * lam * e(t)), e(t), ics={e(0): 1}).rhs
    gd_e = sp.rsolve(e(s + 1) - (1 - eta * lam) * e(s), e(s), {e(0): 1})
    mom_e = sp.rsolve(e(s + 2) - (1 + beta - q) * e(s + 1) + beta * e(s), e(s), {e(0): 1, e(1): 1 - q})
    mom_h = sp.rsolve(h(s + 2) - (1 + beta - q) * h(s + 1) + beta * h(s) - 1, h(s), {h(0): 0, h(1): 1})
    mom_h0 = sp.rsolve(h(s + 2) - (1 + beta) * h(s + 1) + beta * h(s) - 1, h(s), {h(0): 0, h(1): 1})

    flow_over = sp.limit((1 - flow_e) / lam, lam, 0)
    gd_over = sp.limit(((1 - gd_e) / lam).subs(s, 7), lam, 0)  # at a concrete s; general: η s
    return {
        "flow_e": sp.simplify(flow_e),
        "gd_e": gd_e,
        "momentum_e": mom_e,
        "momentum_h": mom_h,
        "momentum_h_at_zero": sp.factor(sp.simplify(mom_h0)),
        "flow_a_over_lambda_at_0": flow_over,
        "gd_a_over_lambda_at_0_s7": gd_over,
        "_symbols": (t, eta, lam, s, q, beta),
    }


def check(ex: dict[str, sp.Expr], *, seed: int = 0, draws: int = 40) -> dict[str, float]:
    """Largest relative differences between the derived solutions and kdtheory.eigen."""
    t, eta, lam, s, q, beta = ex["_symbols"]
    mpmath.mp.dps = 40
    rng = np.random.default_rng(seed)
    f_flow = sp.lambdify((t, eta, lam), 1 - ex["flow_e"], "mpmath")
    f_gd = sp.lambdify((s, eta, lam), 1 - ex["gd_e"], "mpmath")
    f_me = sp.lambdify((s, q, beta), 1 - ex["momentum_e"], "mpmath")
    f_mh = sp.lambdify((s, q, beta), ex["momentum_h"], "mpmath")
    f_mh0 = sp.lambdify((s, beta), ex["momentum_h_at_zero"], "mpmath")
    errs = {"flow": 0.0, "gd": 0.0, "momentum_a": 0.0, "momentum_a_over_lambda": 0.0, "momentum_limit": 0.0}

    def rel(x, ref):
        ref = complex(ref).real
        return abs(float(x) - ref) / max(abs(ref), 1e-300)

    for _ in range(draws):
        lam_v = float(10 ** rng.uniform(-3, 1))
        eta_v = float(rng.uniform(0.05, 0.95)) / lam_v
        tt = float(rng.uniform(0, 30))
        steps = int(rng.integers(1, 60))
        a = Recipe("flow", learning_rate=eta_v).filter([lam_v], tt).a[0]
        errs["flow"] = max(errs["flow"], rel(a, f_flow(tt, eta_v, lam_v)))
        a = Recipe("gd", learning_rate=eta_v).filter([lam_v], steps).a[0]
        errs["gd"] = max(errs["gd"], rel(a, f_gd(steps, eta_v, lam_v)))
        # momentum: draw q = ηλ across both root regimes (complex when (1-√β)² < q < (1+√β)²)
        b = float(rng.uniform(0.05, 0.95))
        qv = float(rng.uniform(0.01, 2 * (1 + b) * 0.95))
        filt = Recipe("momentum", learning_rate=1.0, momentum=b).filter([qv], steps)
        a, g = filt.a, filt.a_over_eval
        ref_a = f_me(steps, mpmath.mpf(qv), mpmath.mpf(b))
        ref_h = f_mh(steps, mpmath.mpf(qv), mpmath.mpf(b))
        errs["momentum_a"] = max(errs["momentum_a"], rel(a[0], ref_a))
        errs["momentum_a_over_lambda"] = max(errs["momentum_a_over_lambda"], rel(g[0], ref_h))
        g0 = Recipe("momentum", learning_rate=1.0, momentum=b).filter([0.0], steps).a_over_eval[0]
        errs["momentum_limit"] = max(errs["momentum_limit"], rel(g0, f_mh0(steps, mpmath.mpf(b))))
    return errs


def main() -> int:
    ex = derive()
    print("Per-mode solutions (remaining fraction e = 1 − a):")
    for name in ("flow_e", "gd_e", "momentum_e", "momentum_h", "momentum_h_at_zero"):
        print(f"  {name}: $${sp.latex(ex[name])}$$")
    print(f"  lim_(λ→0) a_flow/λ = {ex['flow_a_over_lambda_at_0']}")
    print(f"  lim_(λ→0) a_gd/λ at s = 7 = {ex['gd_a_over_lambda_at_0_s7']}")
    errs = check(ex)
    print("Largest relative difference to kdtheory.eigen (40-digit reference):")
    for k, v in errs.items():
        print(f"  {k}: {v:.2e}")
    t, eta, lam, *_ = ex["_symbols"]
    ok = (
        all(v <= TOL for v in errs.values())
        and sp.simplify(ex["flow_a_over_lambda_at_0"] - eta * t) == 0
        and sp.simplify(ex["gd_a_over_lambda_at_0_s7"] - 7 * eta) == 0
    )
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
