"""Kernel operators against independent oracles: explicit dense products, scipy, kdtheory.ntk."""

import jax
import numpy as np
import pytest
import scipy.sparse.linalg
import scipy.spatial.distance
from hypothesis import given, settings
from hypothesis import strategies as st

from kdtheory.ntk import empirical_ntk, relu_ntk
from kdtheory.operators import (
    RBF,
    FeatureKernel,
    FunctionKernel,
    NTKOperator,
    ReluNNGP,
    ReluNTK,
    StoredKernel,
    check_relu_parameters,
)
from kdtheory.simulate import mlp
from kdtheory.testing import assert_close


def _data(n, d, seed=0, n_test=7):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((n_test, d)), rng.standard_normal((n, 3))


@settings(max_examples=8)
@given(n=st.integers(1, 40), p=st.integers(1, 9), b=st.integers(1, 4), block=st.integers(1, 16))
def test_features_equal_explicit_products(n, p, b, block):
    rng = np.random.default_rng(n * 100 + p)
    Phi, T, V = rng.standard_normal((n, p)), rng.standard_normal((3, p)), rng.standard_normal((n, b))
    op = FeatureKernel(Phi, block_size=block)
    assert_close(op.matmat(V), Phi @ Phi.T @ V, rtol=1e-13, what="K V")
    assert_close(op.cross(T).matmat(V), T @ Phi.T @ V, rtol=1e-13, what="K_xX V")
    assert_close(op.matmat(V[:, 0]), Phi @ Phi.T @ V[:, 0], rtol=1e-13, what="K v")
    assert_close(op.diagonal(), np.diag(Phi @ Phi.T), rtol=1e-14)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("block", [None, 5, 64])
def test_rbf_blocks_equal_scipy_distances(block, symmetric):
    X, T, V = _data(53, 4)
    kern = RBF(lengthscale=1.7, variance=2.5)
    K = 2.5 * np.exp(-scipy.spatial.distance.cdist(X, X, "sqeuclidean") / (2 * 1.7**2))
    Kt = 2.5 * np.exp(-scipy.spatial.distance.cdist(T, X, "sqeuclidean") / (2 * 1.7**2))
    op = FunctionKernel(X, kern, block_size=block, symmetric=symmetric)
    assert_close(op.matmat(V), K @ V, rtol=1e-13)
    assert_close(op.cross(T).matmat(V), Kt @ V, rtol=1e-13)
    assert_close(op.dense(block_size=16), K, rtol=1e-13)
    assert np.array_equal(op.diagonal(), np.full(53, 2.5))
    assert np.all(np.diag(op.dense()) == 2.5)  # k(x, x) exact: the distance of a point to itself is 0


@pytest.mark.parametrize("depth", [0, 1, 3])
@pytest.mark.parametrize("kernel_cls, field", [(ReluNNGP, "nngp"), (ReluNTK, "ntk")])
def test_relu_blocks_equal_relu_ntk(kernel_cls, field, depth):
    X, T, V = _data(31, 6, seed=depth)
    kern = kernel_cls(depth=depth, weight_std=1.3, bias_std=0.4)
    K = getattr(relu_ntk(X, depth=depth, weight_std=1.3, bias_std=0.4), field)
    Kt = getattr(relu_ntk(T, X, depth=depth, weight_std=1.3, bias_std=0.4), field)
    op = FunctionKernel(X, kern, block_size=8)
    assert_close(op.dense(), K, rtol=1e-13, what="dense")
    assert_close(op.cross(T).matmat(V), Kt @ V, rtol=1e-13, what="cross")
    assert_close(op.diagonal(), np.diag(K), rtol=1e-14, what="diagonal")
    # on the diagonal the angle is exactly 0, as relu_ntk sets it: the entries agree to the last bits
    assert_close(np.diag(op.dense()), np.diag(K), rtol=4 * np.finfo(float).eps)


def test_stored_float32_memmap_is_the_stored_values(tmp_path):
    X, _, V = _data(40, 5)
    K32 = (X @ X.T).astype(np.float32)
    mm = np.memmap(tmp_path / "K.f32", dtype=np.float32, mode="w+", shape=K32.shape)
    mm[:] = K32
    mm.flush()
    K = np.memmap(tmp_path / "K.f32", dtype=np.float32, mode="r", shape=K32.shape)
    exact = K32.astype(np.float64) @ V
    for op in (StoredKernel(K, block_size=7), StoredKernel(K, block_size=7, on_device=True)):
        assert_close(op.matmat(V), exact, rtol=1e-14)
    assert op.trace() == pytest.approx(float(np.trace(K32.astype(np.float64))), rel=1e-14)
    Kt = np.asarray(X[:3] @ X.T, dtype=np.float32)
    assert_close(op.cross(Kt).matmat(V), Kt.astype(np.float64) @ V, rtol=1e-14)


def test_stored_rejects_asymmetric_and_non_finite():
    K = np.eye(4)
    K[0, 1] = 1.0
    with pytest.raises(ValueError, match="not symmetric"):
        StoredKernel(K)
    K = np.eye(4)
    K[2, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        StoredKernel(K)
    with pytest.raises(ValueError, match="float32 or float64"):
        StoredKernel(np.eye(3, dtype=np.int64))


@pytest.mark.parametrize("trace", ["mean", "sum", None])
def test_ntk_products_equal_empirical_ntk(trace):
    model = mlp([5, 16, 3], parameterization="ntk")
    params = model.init(jax.random.PRNGKey(0))
    X, T, _ = _data(13, 5)
    op = NTKOperator(model.apply, params, X, trace=trace, block_size=4)
    K = empirical_ntk(model.apply, params, X, trace=trace)
    Kt = empirical_ntk(model.apply, params, T, X, trace=trace)
    V = np.random.default_rng(1).standard_normal((op.n, 2))
    assert op.shape == K.shape
    assert_close(op.matmat(V), K @ V, rtol=1e-12)
    assert_close(op.cross(T).matmat(V), Kt @ V, rtol=1e-12)


def test_linear_operator_top_eigenvalue_matches_eigh():
    X, _, _ = _data(60, 3)
    op = FunctionKernel(X, RBF(lengthscale=2.0))
    top = scipy.sparse.linalg.eigsh(op.as_linear_operator(), k=1, which="LA", return_eigenvectors=False)[0]
    assert top == pytest.approx(np.linalg.eigvalsh(op.dense())[-1], rel=1e-10)


def test_float32_arithmetic_is_close_to_float64():
    X, _, V = _data(50, 4)
    exact = FunctionKernel(X, RBF(2.0)).matmat(V)
    single = FunctionKernel(X, RBF(2.0), dtype=np.float32).matmat(V)
    assert single.dtype == np.float64
    assert_close(single, exact, rtol=1e-5)
    assert not np.array_equal(single, exact)  # it really ran in float32


def test_bad_input_names_the_argument():
    X, _, V = _data(10, 3)
    op = FeatureKernel(X)
    with pytest.raises(ValueError, match="V has 4 rows"):
        op.matmat(np.ones((4, 2)))
    with pytest.raises(ValueError, match="test has 2 features but the operator has p=3"):
        op.cross(np.ones((3, 2)))
    with pytest.raises(ValueError, match="test has 2 features but X has d=3"):
        FunctionKernel(X, RBF()).cross(np.ones((3, 2)))
    with pytest.raises(ValueError, match="kernel must be callable"):
        FunctionKernel(X, "rbf")
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        FunctionKernel(X, RBF(), dtype=np.float16)
    with pytest.raises(ValueError, match="lengthscale"):
        RBF(lengthscale=0.0)
    with pytest.raises(ValueError, match="depth"):
        ReluNTK(depth=-1)
    with pytest.raises(ValueError, match="X contains NaN"):
        FunctionKernel(np.full((2, 2), np.nan), RBF())
    with pytest.raises(ValueError, match="unknown trace"):
        NTKOperator(lambda p, x: x, {}, X, trace="max")


@pytest.mark.parametrize("depth", [0, 2])
def test_relu_kernels_one_formula_in_numpy_and_jax(depth):
    from kdtheory.operators import relu_kernels

    X, T, _ = _data(9, 4, seed=depth)
    kw = dict(depth=depth, weight_std=1.2, bias_std=0.3)
    with jax.enable_x64(True):
        jx = [np.asarray(a) for a in relu_kernels(jax.numpy.asarray(T), jax.numpy.asarray(X), **kw)]
    npy = relu_kernels(T, X, xp=np, **kw)
    for a, b in zip(jx, npy, strict=True):
        assert_close(a, b, rtol=1e-13)
    full = relu_kernels(X, X, same=np.eye(9, dtype=bool), xp=np, **kw)
    pair = relu_kernels(X, X, same=True, pairwise=True, xp=np, **kw)
    for a, b in zip(pair, full, strict=True):
        assert_close(a, np.diag(b), rtol=4 * np.finfo(float).eps)


@pytest.mark.parametrize("trace", ["mean", None])
def test_ntk_vector_product_equals_the_dense_kernel(trace):
    from kdtheory.operators import ntk_vector_product

    model = mlp([4, 7, 3], activation="tanh")
    init = model.init(jax.random.PRNGKey(1))
    params = jax.tree_util.tree_map(lambda a: jax.numpy.asarray(a, jax.numpy.float64), init)
    X, T, _ = _data(6, 4, seed=5, n_test=4)
    K = empirical_ntk(model.apply, params, T, X, method="jacobian", trace=trace)
    V = np.random.default_rng(2).standard_normal((K.shape[1], 2))
    Vj = V if trace is not None else V.reshape(6, 3, 2)
    got = np.asarray(ntk_vector_product(model.apply, params, T, X, Vj, trace=trace)).reshape(K.shape[0], 2)
    assert_close(got, K @ V, rtol=1e-12)


@pytest.mark.parametrize("depth", [True, False, 1.5, -1, np.inf, np.nan, "2"])
def test_relu_depth_is_refused_the_same_way_by_the_operators_and_relu_ntk(depth):
    """One parameter check for both ReLU kernel front ends: relu_ntk took depth=True as 1 before."""
    X = np.random.default_rng(0).standard_normal((4, 3))
    for make in (lambda: ReluNNGP(depth=depth), lambda: ReluNTK(depth=depth), lambda: relu_ntk(X, depth=depth)):
        with pytest.raises(ValueError, match="depth must be a non-negative integer"):
            make()
    assert check_relu_parameters(np.int64(3), 1.0, 0.0) == 3 and check_relu_parameters(2.0, 1.0, 0.0) == 2


@pytest.mark.parametrize("bad", [0.5, 2.5])
def test_fractional_block_size_is_refused_by_name(bad):
    """``block_size`` is validated as a positive integer, not truncated (2.5 ran as 2, 0.5 crashed in range)."""
    X, _, _ = _data(6, 3)
    K = X @ X.T
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        StoredKernel(K, block_size=bad)
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        FeatureKernel(X, block_size=bad)
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        StoredKernel(K).dense(block_size=bad)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_stored_cross_refuses_non_finite_entries(bad):
    """A NaN/inf cross matrix is refused naming ``test`` (it gave NaN predictions silently); a square one
    is not required to be symmetric."""
    X, _, _ = _data(6, 3)
    op = StoredKernel(X @ X.T)
    Kt = X[:4] @ X.T
    Kt[1, 2] = bad
    with pytest.raises(ValueError, match="test contains non-finite values"):
        op.cross(Kt)
    asym = np.arange(36.0).reshape(6, 6)
    assert_close(op.cross(asym).matmat(np.eye(6)), asym, rtol=0)
