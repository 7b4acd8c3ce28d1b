"""The small empirical-NTK problem both Krylov suites drive through NTK-vector products."""

import jax
import numpy as np

from kdtheory.eigen import Spectrum
from kdtheory.ntk import empirical_ntk
from kdtheory.operators import NTKOperator
from kdtheory.simulate import mlp


def ntk_problem():
    """``(op, spec, y, Xt, Kt)``: the NTK operator of a 4-32-2 MLP on 60 points, its dense spectrum,
    labels, 5 test points and their dense cross-NTK."""
    model = mlp([4, 32, 2], parameterization="ntk")
    params = model.init(jax.random.PRNGKey(1))
    rng = np.random.default_rng(2)
    X, Xt = rng.standard_normal((60, 4)), rng.standard_normal((5, 4))
    y = rng.standard_normal((60, 2))
    op = NTKOperator(model.apply, params, X, block_size=16)
    spec = Spectrum.from_kernel(empirical_ntk(model.apply, params, X))
    return op, spec, y, Xt, empirical_ntk(model.apply, params, Xt, X)
