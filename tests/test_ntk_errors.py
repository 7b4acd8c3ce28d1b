"""Issue 19 rows 4, 5, 6 and 11: no silent wrong NTK, and errors that name the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from kdtheory.ntk import empirical_ntk, linearized
from kdtheory.operators import NTKOperator
from kdtheory.simulate import Model, mlp
from kdtheory.structured_ntk import Layer


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)


def _two_layer_model(declare_first: bool, declared_bias_scale: float) -> Model:
    """A 3-5-2 tanh network whose declared structure may leave out a layer or misstate a bias scale."""

    def init(key):
        k1, k2, k3 = jax.random.split(key, 3)
        w1, w2, b2 = jax.random.normal(k1, (3, 5)), jax.random.normal(k2, (5, 2)), jax.random.normal(k3, (2,))
        return {"w1": w1, "w2": w2, "b2": b2}

    def structure(p, x, taps):
        z1 = x @ p["w1"]
        if taps is not None and declare_first:
            z1 = z1 + taps[0]
        z2 = jnp.tanh(z1) @ p["w2"] + 1.0 * p["b2"]  # apply uses bias scale 1
        if taps is not None:
            z2 = z2 + taps[-1]
        layers = (Layer(x, z1, 0.0),) if declare_first else ()
        return z2, layers + (Layer(jnp.tanh(z1), z2, declared_bias_scale),)

    def apply(p, x):
        return structure(p, x, None)[0]

    return Model("two-layer", init, apply, 2, input_shape=(3,), structure=structure)


@pytest.mark.parametrize("declare_first, bias_scale", [(False, 1.0), (True, 3.0)])
def test_row4_declared_layers_that_do_not_match_apply_are_refused(declare_first, bias_scale):
    model = _two_layer_model(declare_first, bias_scale)
    params = _f64(model.init(jax.random.PRNGKey(0)))
    X = np.random.default_rng(0).standard_normal((6, 3))
    truth = empirical_ntk(model.apply, params, X, method="jacobian")
    silent = empirical_ntk(model, params, X, check=False)  # what the unchecked structure returns
    assert np.abs(silent - truth).max() > 0.05 * np.abs(truth).max()  # the defect is real
    for method in ("auto", "structured"):
        with pytest.raises(ValueError, match="declared layers .* do not match its apply") as err:
            empirical_ntk(model, params, X, method=method)
        covered = 5 * 2 + 2 + (3 * 5 if declare_first else 0)
        assert f"cover {covered} of its 27 parameters" in str(err.value)
    good = _two_layer_model(True, 1.0)  # the honest declaration passes the check and is exact
    assert np.abs(empirical_ntk(good, params, X) - truth).max() <= 1e-12 * np.abs(truth).max()


def test_row5_params_of_another_depth_are_refused():
    model = mlp([4, 8, 3])
    other = _f64(mlp([4, 8, 8, 3]).init(jax.random.PRNGKey(0)))
    X = np.random.default_rng(1).standard_normal((6, 4))
    for method in ("auto", "structured", "jacobian", "ntvp"):
        with pytest.raises(ValueError, match=r"params do not match mlp\(4-8-3, relu\)"):
            empirical_ntk(model, other, X, method=method)
    with pytest.raises(ValueError, match="params do not match"):
        linearized(model, other, X, np.zeros((6, 3)), [1.0], learning_rate=0.1)


def _apply(p, x):
    return jnp.tanh(x @ p["w"]) @ p["v"]


def test_row11_wrong_shaped_params_or_inputs_are_named():
    rng = np.random.default_rng(3)
    params = _f64({"w": rng.standard_normal((4, 6)), "v": rng.standard_normal((6, 2))})
    wrong = _f64({"w": rng.standard_normal((5, 6)), "v": rng.standard_normal((6, 2))})
    X, X5 = rng.standard_normal((7, 4)), rng.standard_normal((7, 5))
    for method in ("auto", "jacobian", "ntvp", "per_example"):
        with pytest.raises(ValueError, match=r"apply\(params, X1\) fails: params .*\(5, 6\).* X1 \(shape \(1, 4\)\)"):
            empirical_ntk(_apply, wrong, X, method=method)
        with pytest.raises(ValueError, match=r"apply\(params, X1\) fails: .*X1 \(shape \(1, 5\)\)"):
            empirical_ntk(_apply, params, X5, method=method)
    with pytest.raises(ValueError, match=r"apply\(params, X\) fails: params .*\(5, 6\)"):
        NTKOperator(_apply, wrong, X)
    with pytest.raises(ValueError, match=r"apply\(params, X\) fails: .*X \(shape \(1, 5\)\)"):
        NTKOperator(_apply, params, X5)
    op = NTKOperator(_apply, params, X)
    with pytest.raises(ValueError, match="V has 3 rows but the operator has 7 columns"):
        op.matmat(np.ones((3, 2)))
    with pytest.raises(ValueError, match="test inputs have shape"):
        op.cross(X5)
    with pytest.raises(ValueError, match=r"apply\(params, X\) fails: params .*\(5, 6\)"):
        linearized(_apply, wrong, X, np.zeros((7, 2)), [1.0], learning_rate=0.1)
    with pytest.raises(ValueError, match=r"must return \(batch, k\)"):
        empirical_ntk(lambda p, x: (x @ p["w"]).sum(), params, X)
    with pytest.raises(ValueError, match="params holds no arrays"):
        empirical_ntk(lambda p, x: x, {}, X)
