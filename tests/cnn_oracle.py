"""A small CNN that declares its layers, and the explicit Jacobian-product NTK: shared by the tests
of kdtheory.ntk (tests/test_ntk.py) and kdtheory.structured_ntk (tests/test_structured_ntk.py).

The oracle ``_explicit_ntk`` forms ``J_i`` by forward mode one example at a time and contracts
``Σ_p J1[i,c,p] J2[j,c',p]``: it shares no code with kdtheory. Names keep the leading underscore
they had in tests/test_ntk.py, so the tests that use them read as before.
"""

import jax
import jax.numpy as jnp
import numpy as np

_DN = ("NHWC", "HWIO", "NHWC")


def _cnn_init(key, c1=3, c2=4, k=3):
    k1, k2, k3, k4, k5 = jax.random.split(key, 5)
    return {
        "c1": jax.random.normal(k1, (3, 3, 1, c1)) / 3.0,
        "b1": 0.3 * jax.random.normal(k2, (c1,)),
        "c2": jax.random.normal(k3, (3, 3, c1, c2)) / np.sqrt(9 * c1),
        "b2": 0.3 * jax.random.normal(k4, (c2,)),
        "w": jax.random.normal(k5, (4 * 4 * c2, k)) / np.sqrt(16 * c2),
    }


def _cnn_structure(p, x, taps):
    """conv 3×3 (SAME) → tanh → conv 3×3 stride 2 (SAME) → tanh → dense, on (n, 8, 8, 1) images."""
    from jax import lax

    from kdtheory.structured_ntk import Layer

    tap = (lambda i: 0.0) if taps is None else (lambda i: taps[i])
    pat1 = lax.conv_general_dilated_patches(x, (3, 3), (1, 1), "SAME", dimension_numbers=_DN)
    z1 = lax.conv_general_dilated(x, p["c1"], (1, 1), "SAME", dimension_numbers=_DN) + p["b1"] + tap(0)
    h1 = jnp.tanh(z1)
    pat2 = lax.conv_general_dilated_patches(h1, (3, 3), (2, 2), "SAME", dimension_numbers=_DN)
    z2 = lax.conv_general_dilated(h1, p["c2"], (2, 2), "SAME", dimension_numbers=_DN) + p["b2"] + tap(1)
    h2 = jnp.tanh(z2).reshape(x.shape[0], -1)
    z3 = h2 @ p["w"] + tap(2)
    return z3, (Layer(pat1, z1, 1.0), Layer(pat2, z2, 1.0), Layer(h2, z3, 0.0))


def _cnn_apply(p, x):
    return _cnn_structure(p, x, None)[0]


def _explicit_ntk(apply, params, X1, X2):
    """Oracle: J_i by forward mode, one example at a time, then Σ_p J1[i,c,p] J2[j,c',p] (full kernel)."""
    from jax.flatten_util import ravel_pytree

    flat, unravel = ravel_pytree(params)
    jac = jax.jit(lambda x: jax.jacfwd(lambda fl: apply(unravel(fl), x[None])[0])(flat))
    J1 = np.stack([np.asarray(jac(x)) for x in X1])
    J2 = np.stack([np.asarray(jac(x)) for x in X2])
    return np.einsum("icp,jdp->icjd", J1, J2).reshape(J1.shape[0] * J1.shape[1], -1)


def _traces(full, n1, n2, k):
    blocks = full.reshape(n1, k, n2, k)
    s = np.einsum("icjc->ij", blocks)
    return {None: full, "sum": s, "mean": s / k}


def _rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()
