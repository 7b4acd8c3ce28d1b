"""The compressed time axis gives the same trajectories as the direct products."""

import numpy as np
import pytest

from kdtheory import _synthesis
from kdtheory.data import power_law_kernel
from kdtheory.dynamics import Dense, TestPoints, train
from kdtheory.eigen import Recipe, Spectrum
from kdtheory.testing import assert_close


@pytest.mark.parametrize("method", ["flow", "gd", "momentum"])
def test_compressed_equals_direct(method):
    kern = power_law_kernel(300, exponent=1.2, seed=3)
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((40, 300))
    Kx = Q @ kern.K / 10  # a cross-kernel consistent with K's eigenbasis scale
    y = rng.standard_normal((300, 2))
    spec = Spectrum.from_kernel(kern.K)
    kw = {} if method == "flow" else {"learning_rate": 0.9}
    if method == "momentum":
        kw["momentum"] = 0.8
    steps = np.unique(np.geomspace(1, 1e5, 200).round())
    full = train(spec, y, steps, recipe=Recipe(method, **kw), test=TestPoints(kernel=Kx), solver=Dense(compress=False))
    comp = train(spec, y, steps, recipe=Recipe(method, **kw), test=TestPoints(kernel=Kx), solver=Dense(compress=True))
    for i in range(steps.size):  # every time to relative accuracy, not just on average
        assert_close(comp.train[i], full.train[i], rtol=1e-12)
        assert_close(comp.test[i], full.test[i], rtol=1e-11)


def test_compression_is_used_and_verified():
    rows = np.exp(-np.outer(np.geomspace(0.01, 100, 300), np.geomspace(1e-3, 1, 400)))
    plan = _synthesis._skeleton(rows, None)
    assert plan is not None
    skel, rest, coef = plan
    assert skel.size < 60  # a smooth family of rows has low numerical rank
    assert np.max(np.abs(coef @ rows[skel] - rows[rest])) < 1e-12
    # full-rank rows: compression refused, the exact product is used
    assert _synthesis._skeleton(np.random.default_rng(0).standard_normal((100, 100)), None) is None


def test_features_weights_compressed():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 400)) * np.geomspace(1, 1e-3, 400)
    spec = Spectrum.from_features(X)
    t = np.geomspace(1e-2, 1e6, 150)
    y = rng.standard_normal(200)
    d = train(spec, y, t, solver=Dense(compress=True))
    e = train(spec, y, t, solver=Dense(compress=False))
    for i in range(t.size):
        assert_close(d.weights[i], e.weights[i], rtol=1e-12)
        assert_close(d.train[i], e.train[i], rtol=1e-12, atol=1e-14 * np.linalg.norm(y))
