"""kdtheory.structured_ntk: the Gram form of the NTK of declared dense and convolutional layers
equals the explicit Jacobian product (tests/cnn_oracle.py); bad inputs and parameters are named;
structured_flops counts the cheaper form of each layer from the architecture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cnn_oracle import _cnn_apply, _cnn_init, _cnn_structure, _explicit_ntk, _rel, _traces

from kdtheory.ntk import empirical_ntk
from kdtheory.simulate import mlp
from kdtheory.structured_ntk import structured_flops, structured_ntk


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)


@pytest.mark.slow
def test_structured_ntk_of_a_cnn_equals_its_jacobian_product():
    from kdtheory.structured_ntk import structured_ntk

    rng = np.random.default_rng(21)
    X1, X2 = rng.standard_normal((4, 8, 8, 1)), rng.standard_normal((3, 8, 8, 1))
    p = _f64(_cnn_init(jax.random.PRNGKey(1)))
    want = _traces(_explicit_ntk(_cnn_apply, p, X1, X2), 4, 3, 3)
    for form in ("auto", "gram", "jacobian"):
        for trace in ("mean", "sum", None):
            got = structured_ntk(_cnn_structure, p, X1, X2, trace=trace, form=form)
            assert _rel(got, want[trace]) <= 1e-12, (form, trace)
    same = _traces(_explicit_ntk(_cnn_apply, p, X1, X1), 4, 4, 3)
    assert _rel(structured_ntk(_cnn_structure, p, X1, trace=None, block_size=3), same[None]) <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize(
    "sizes, kw",
    [
        ([5, 7, 6, 4], dict(parameterization="standard", bias=True, activation="relu")),
        ([5, 9, 1], dict(parameterization="standard", bias=False, activation="tanh")),
        ([5, 7, 6, 4], dict(parameterization="ntk", bias_std=0.4, weight_std=1.3, activation="erf")),
        ([5, 8, 3], dict(parameterization="ntk", bias_std=0.0, activation="gelu")),
    ],
)
def test_structured_ntk_of_mlps_equals_the_jacobian_product(sizes, kw):
    rng = np.random.default_rng(22)
    X1, X2 = rng.standard_normal((6, 5)), rng.standard_normal((4, 5))
    m = mlp(sizes, **kw)
    p = _f64(m.init(jax.random.PRNGKey(len(sizes))))
    if kw.get("bias", True) and kw["parameterization"] == "standard":  # nonzero biases matter to δ
        p = [{**layer, "b": layer["b"] + 0.2} for layer in p]
    k = sizes[-1]
    want = _traces(_explicit_ntk(m.apply, p, X1, X2), 6, 4, k)
    for trace in ("mean", "sum", None):
        got = empirical_ntk(m, p, X1, X2, method="structured", trace=trace)
        assert _rel(got, want[trace]) <= 1e-12, (sizes, trace)
    want_sym = _explicit_ntk(m.apply, p, X1, X1)
    assert _rel(empirical_ntk(m, p, X1, trace=None, block_size=4), want_sym) <= 1e-12


def test_row6_nan_inputs_and_params_are_named():
    model = mlp([3, 4, 2])
    params = _f64(model.init(jax.random.PRNGKey(0)))
    X = np.random.default_rng(2).standard_normal((5, 3))
    bad = X.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="X1 contains NaN"):
        structured_ntk(model.structure, params, bad)
    with pytest.raises(ValueError, match="X2 contains inf"):
        structured_ntk(model.structure, params, X, np.where(np.isnan(bad), np.inf, bad))
    with pytest.raises(ValueError, match="X1 contains NaN"):
        empirical_ntk(model, params, bad)
    nan_params = [dict(layer) for layer in params]
    nan_params[1]["w"] = nan_params[1]["w"].at[0, 0].set(jnp.nan)
    with pytest.raises(ValueError, match=r"params\[1\]\['w'\] \(shape \(4, 2\)\) contains NaN"):
        empirical_ntk(model, nan_params, X)
    with pytest.raises(ValueError, match=r"params\[1\]\['w'\]"):
        structured_ntk(model.structure, nan_params, X)


# ---------------------------------------------------------------------- the operation count
def _cheaper(P, d, w, kk):
    """Per pair of points: the Gram form P²(d + κ w) or the layer-Jacobian form κ(d w + w), multiply-adds."""
    return min(P * P * (d + kk * w), kk * (d * w + w))


@pytest.mark.parametrize("trace, kk", [("mean", 3), ("sum", 3), (None, 9)])
def test_flops_of_an_mlp_and_a_cnn_follow_from_their_architecture(trace, kk):
    X = np.zeros((2, 5))
    m = mlp([5, 7, 3])  # dense 5 → 7 → 3 (k = 3): one position per layer
    want = 2.0 * 4 * 6 * (_cheaper(1, 5, 7, kk) + _cheaper(1, 7, 3, kk))
    assert structured_flops(m.structure, m.init(jax.random.PRNGKey(0)), X, 4, 6, trace=trace) == want
    # the CNN of cnn_oracle on 8 × 8 × 1 images: 3 × 3 SAME convolutions (stride 1 → 64 positions of
    # 9-entry patches, 3 channels; stride 2 → 16 positions of 9·3 entries, 4 channels), then dense 64 → 3
    cnn = _cnn_init(jax.random.PRNGKey(0))
    images = np.zeros((2, 8, 8, 1))
    want = 2.0 * 5 * 2 * (_cheaper(64, 9, 3, kk) + _cheaper(16, 27, 4, kk) + _cheaper(1, 64, 3, kk))
    # (the convolutions are cheaper as layer Jacobians, the dense layers as Gram matrices: a count
    # that always took one form would differ)
    assert structured_flops(_cnn_structure, cnn, images, 5, 2, trace=trace) == want


@pytest.mark.parametrize("bad", [0.5, 2.5])
def test_fractional_block_size_is_refused_by_name(bad):
    """``block_size`` is validated as a positive integer, not truncated (2.5 ran as 2, 0.5 crashed in range)."""
    X = np.random.default_rng(3).standard_normal((4, 8, 8, 1))
    p = _f64(_cnn_init(jax.random.PRNGKey(1)))
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        structured_ntk(_cnn_structure, p, X, trace="mean", block_size=bad)
    m = mlp([3, 5, 2])
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        empirical_ntk(m, m.init(jax.random.PRNGKey(0)), np.ones((4, 3)), block_size=bad)
