r"""Derive the Bayes-teacher variance identity used by kdtheory.noise (claim T2).

For one point with logit Jacobian ``J`` (``K × P``), teacher probabilities ``q`` and a label
``y ~ Categorical(q)``, the one-hot logit gradient ``p − e_y`` has mean ``p − q`` (the
distillation gradient) and

    ``E‖Jᵀ(p − e_y)‖² − ‖Jᵀ(p − q)‖² = E‖Jᵀ(q − e_y)‖² = tr(Jᵀ (diag q − q qᵀ) J)``,

which is ``1 − ‖q‖²`` in logit space (``J = I``) and ``2 q (1 − q)`` for two classes. sympy
verifies this for K = 2 and K = 3 with a symbolic ``J`` (P = 2) by summing over the labels, then
checks kdtheory.noise.bayes_excess_second_moment on random values (n points: the identity over
``n`` independent points divides by ``n²``; with temperature τ it gains ``τ²``).
Run: ``python derivations/bayes_teacher.py``.
"""

from __future__ import annotations

import sys

import numpy as np
import sympy as sp

from kdtheory.noise import bayes_excess_second_moment


def identity_holds(K: int, P: int = 2) -> bool:
    """Symbolic check of the per-point identity for K classes and a K × P Jacobian."""
    q = list(sp.symbols(f"q1:{K}", positive=True))
    q.append(1 - sum(q))
    p = sp.symbols(f"p1:{K + 1}")
    J = sp.Matrix(K, P, lambda i, j: sp.Symbol(f"J{i}{j}"))
    qv, pv = sp.Matrix(q), sp.Matrix(p)

    def sq(v):
        w = J.T * v
        return (w.T * w)[0, 0]

    expected_sq = sum(q[c] * sq(pv - sp.eye(K)[:, c]) for c in range(K))
    lhs = expected_sq - sq(pv - qv)
    rhs = (J.T * (sp.diag(*q) - qv * qv.T) * J).trace()
    return sp.expand(lhs - rhs) == 0


def main() -> int:
    ok = {f"K={K}": identity_holds(K) for K in (2, 3)}
    q = sp.symbols("q", positive=True)
    binary = sp.simplify((1 - q**2 - (1 - q) ** 2) - 2 * q * (1 - q)) == 0
    ok["binary logit space 2q(1-q)"] = binary
    print("E‖Jᵀ(q − e_y)‖² = tr(Jᵀ(diag q − q qᵀ)J):")
    for k, v in ok.items():
        print(f"  {k}: {v}")
    print(f"  logit space: $$1 - \\|q\\|^2$$; binary: $${sp.latex(sp.factor(1 - q**2 - (1 - q) ** 2))}$$")
    rng = np.random.default_rng(0)
    errs = {}
    for K in (2, 3, 10):
        z = rng.standard_normal((7, K)) * 2
        J = rng.standard_normal((7, K, 4))
        tau = 1.7
        a = z / tau
        qn = np.exp(a - a.max(1, keepdims=True))
        qn /= qn.sum(1, keepdims=True)
        by_hand = (
            tau**2 * sum(np.trace(J[i].T @ (np.diag(qn[i]) - np.outer(qn[i], qn[i])) @ J[i]) for i in range(7)) / 49
        )
        errs[f"K={K}"] = abs(bayes_excess_second_moment(z, J, temperature=tau) - by_hand) / by_hand
        logit = tau**2 * np.sum(1 - np.sum(qn * qn, 1)) / 49
        errs[f"K={K} logit"] = abs(bayes_excess_second_moment(z, temperature=tau) - logit) / logit
    print("Largest relative difference to kdtheory.noise:")
    for k, v in errs.items():
        print(f"  {k}: {v:.2e}")
    good = all(ok.values()) and all(v < 1e-12 for v in errs.values())
    print("OK" if good else "MISMATCH")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
