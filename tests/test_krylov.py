"""Block Lanczos trajectories against independent oracles.

Oracles: the dense eigendecomposition path (:func:`kdtheory.dynamics.train`,
:func:`kdtheory.distill.distill`, numpy ``eigh``) and explicit gradient-descent iterations with
blocked kernel products. Every comparison also checks that the reported error estimate bounds the
observed error (up to the oracle's own round-off, stated per test).
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdtheory import distill as dense_distill
from kdtheory import dynamics
from kdtheory.distill import distill_filter
from kdtheory.dynamics import TestPoints
from kdtheory.eigen import Recipe, Spectrum
from kdtheory.krylov import ConvergenceError, Lanczos, RitzSpectrum
from kdtheory.operators import RBF, FunctionKernel, StoredKernel
from kdtheory.testing import labels, random_orthogonal, spectra

EPS = np.finfo(float).eps
_OPTS = ("tolerance", "max_iterations", "strict", "rank_rtol", "spectrum_floor")


def _split(kw):
    opts = {k: kw.pop(k) for k in _OPTS if k in kw}
    return kw, Lanczos(**opts)


def train(op, y, t=None, **kw):
    """``dynamics.train`` on an operator, solver options given flat (as the tests read best)."""
    kw, solver = _split(kw)
    return dynamics.train(op, y, t, solver=solver, **kw)


def distill(op, y, t, **kw):
    kw, solver = _split(kw)
    return dense_distill.distill(op, y, t, solver=solver, **kw)


def apply_filter(op, y, filt, **kw):
    kw, solver = _split(kw)
    return dynamics.apply_filter(op, y, filt, solver=solver, **kw)


def _oracle_roundoff(spec: Spectrum, filt_a: np.ndarray, y_norm: float) -> np.ndarray:
    """Round-off allowance of the dense oracle per time: ``100 n ε ‖y‖ (1 + λ_1 · max slope of a)``.

    A filter applied through ``eigh`` is accurate to ``n ε ‖K‖`` times its largest divided
    difference on the spectrum; on an ill-conditioned rank-deficient kernel that is large, for
    the oracle as much as for Lanczos.
    """
    lam = spec.evals
    gap = lam[:-1] - lam[1:]
    keep = gap > 0
    a = filt_a.reshape(-1, lam.size)
    slope = np.max(np.abs(a[:, :-1] - a[:, 1:])[:, keep] / gap[keep], axis=1) if keep.any() else np.zeros(len(a))
    return 100 * lam.size * EPS * y_norm * (1.0 + lam[0] * slope)


def _run(fn, *args, **kw):
    """Call a Krylov entry point; a ConvergenceError is accepted only at the round-off floor.

    At these sizes ``max_iterations`` never binds, so the only admissible failure is a complete
    Krylov space whose round-off estimate exceeds the tolerance (e.g. t = ∞ test predictions at
    κ = 1e8 with tolerance 1e-9: ε κ > 1e-9 for any method). The unconverged result is returned and
    its estimate is still checked against the observed error.
    """
    try:
        return fn(*args, **kw)
    except ConvergenceError as exc:
        assert exc.trajectory.solver["exhausted"], str(exc)
        return exc.trajectory


def _check(kr, de, y, spec, *, tol, test=True):
    """Krylov vs dense: error ≤ tolerance (when it claims convergence) and ≤ the reported estimate,
    each up to the oracle's own round-off."""
    ref = np.linalg.norm(y)
    T = kr.loss.size
    allow = _oracle_roundoff(spec, de.filter, ref).reshape(T)
    err = np.linalg.norm((kr.train - de.train).reshape(T, -1), axis=1)
    est = np.asarray(kr.solver["error_train"]).reshape(T)
    if not kr.solver["converged"]:
        tol = np.inf  # it said so (ConvergenceError); the estimate must still bound the error
    assert np.all(err <= tol * ref + allow), (err / ref, allow / ref)
    assert np.all(err <= est + allow), (err, est)
    div = {"sum": 1.0, "mean": y.shape[0], "per_output": y.size}[kr.recipe["normalization"]]
    loss_allow = allow * (np.sqrt(2 * div * de.loss) + allow) / div
    assert np.all(np.abs(kr.loss - de.loss) <= np.asarray(kr.solver["error_loss"]) + loss_allow)
    # the oracle's norm round-off: ε ‖y‖ √(max a/λ · (1 + λ_1 · slope of a)), as the estimate's floor
    lam = spec.evals
    pos = lam > 0
    a = de.filter.reshape(T, -1)
    gmax = np.max(np.abs(a[:, pos]) / lam[pos], axis=1) if pos.any() else np.zeros(T)
    amp = allow / (100 * lam.size * EPS * ref)  # 1 + λ_1 · slope of a
    norm_allow = 100 * lam.size * EPS * (de.norm + ref * np.sqrt(gmax * amp))
    assert np.all(np.abs(kr.norm - de.norm) <= np.asarray(kr.solver["error_norm"]) + norm_allow), (
        kr.norm - de.norm,
        kr.solver["error_norm"],
    )
    if test:
        nt = kr.test.reshape(T, -1).shape[1] // (1 if y.ndim == 1 else y.shape[1])
        goal = tol * ref * np.sqrt(nt / y.shape[0])
        err_t = np.linalg.norm((kr.test - de.test).reshape(T, -1), axis=1)
        est_t = np.asarray(kr.solver["error_test"]).reshape(T)
        allow_t = allow * np.linalg.norm(de.test.reshape(T, -1), axis=1).max() / max(ref, 1e-300) + allow
        assert np.all(err_t <= goal + allow_t), (err_t / ref, goal / ref)
        assert np.all(err_t <= est_t + allow_t), (err_t, est_t)


@st.composite
def problems(draw, max_size=60):
    """A PSD kernel with a drawn spectrum (rank-deficient and ill-conditioned included), labels, a
    cross-kernel ``A K`` (test rows in the range of K, as for features), and the dense spectrum."""
    lam = draw(spectra(min_size=2, max_size=max_size))
    n = lam.size
    seed = draw(st.integers(0, 2**32 - 1))
    Q = random_orthogonal(n, seed)
    K = (Q * lam) @ Q.T
    K = 0.5 * (K + K.T)
    y = draw(labels(n))
    A = np.random.default_rng(seed + 1).standard_normal((3, n)) / np.sqrt(n)
    return K, y, A @ K, Spectrum.from_kernel(K)


def _times(spec, flow=True):
    lam1 = spec.evals[0] if spec.evals[0] > 0 else 1.0
    if flow:
        return np.concatenate([[0.0], np.geomspace(1e-2, 1e3, 9) / lam1, [np.inf]])
    return np.array([0, 1, 2, 7, 30, 200, np.inf])


@settings(max_examples=25)
@given(problems(), st.sampled_from([1e-6, 1e-9]))
def test_flow_equals_dense(problem, tol):
    K, y, Kt, spec = problem
    t = _times(spec)
    kr = _run(train, StoredKernel(K), y, t, test=TestPoints(kernel=Kt), tolerance=tol)
    de = dynamics.train(spec, y, t, test=TestPoints(kernel=Kt))
    _check(kr, de, y, spec, tol=tol)


@settings(max_examples=20)
@given(problems(), st.floats(0.05, 1.9), st.sampled_from(["sum", "mean"]))
def test_gd_equals_dense(problem, eta_lam, normalization):
    K, y, Kt, spec = problem
    n = y.shape[0]
    lam1 = spec.evals[0] / (n if normalization == "mean" else 1)
    eta = eta_lam / lam1 if lam1 > 0 else 1.0
    t = _times(spec, flow=False)
    kw = dict(recipe=Recipe("gd", learning_rate=eta, normalization=normalization), test=TestPoints(kernel=Kt))
    _check(_run(train, StoredKernel(K), y, t, **kw), dynamics.train(spec, y, t, **kw), y, spec, tol=1e-6)


@settings(max_examples=20)
@given(problems(), st.floats(0.05, 3.5), st.floats(0.0, 0.95))
def test_momentum_equals_dense(problem, eta_lam, beta):
    K, y, Kt, spec = problem
    lam1 = spec.evals[0]
    eta = min(eta_lam, 1.99 * (1 + beta)) / lam1 if lam1 > 0 else 1.0
    t = np.array([0, 1, 3, 10, 40, 150])
    kw = dict(recipe=Recipe("momentum", learning_rate=eta, momentum=beta), test=TestPoints(kernel=Kt))
    _check(_run(train, StoredKernel(K), y, t, **kw), dynamics.train(spec, y, t, **kw), y, spec, tol=1e-6)


@settings(max_examples=20)
@given(problems(), st.floats(0.1, 100.0), st.floats(0.0, 1.0))
def test_distillation_composite_equals_dense(problem, teacher_lam_t, weight):
    K, y, Kt, spec = problem
    lam1 = spec.evals[0] if spec.evals[0] > 0 else 1.0
    t = _times(spec)
    kw = dict(teacher_t=teacher_lam_t / lam1, teacher_weight=weight, test=TestPoints(kernel=Kt))
    kr = _run(distill, StoredKernel(K), y, t, **kw)
    de = dense_distill.distill(spec, y, t, **kw)
    _check(kr, de, y, spec, tol=1e-6)


@pytest.mark.slow
@settings(max_examples=10)
@given(
    spectra(size=240, kinds=("power_law", "gapped", "ill_conditioned")),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["flow", "gd", "distill"]),
)
def test_larger_spectra_without_exhaustion(lam, seed, kind):
    """n = 240 with decaying spectra: the estimate, not exhaustion, decides when to stop."""
    Q = random_orthogonal(lam.size, seed)
    K = (Q * lam) @ Q.T
    K = 0.5 * (K + K.T)
    rng = np.random.default_rng(seed)
    y = rng.standard_normal((lam.size, 3))
    Kt = rng.standard_normal((4, lam.size)) @ K / lam.size
    spec = Spectrum.from_kernel(K)
    lam1 = spec.evals[0]
    if kind == "gd":
        t = np.array([0, 3, 30, 300])
        kw = dict(recipe=Recipe("gd", learning_rate=1.0 / lam1))
        kr, de = (
            _run(train, StoredKernel(K), y, t, test=TestPoints(kernel=Kt), **kw),
            dynamics.train(spec, y, t, test=TestPoints(kernel=Kt), **kw),
        )
    elif kind == "flow":
        t = np.geomspace(0.1, 1e3, 12) / lam1
        kr, de = (
            _run(train, StoredKernel(K), y, t, test=TestPoints(kernel=Kt)),
            dynamics.train(spec, y, t, test=TestPoints(kernel=Kt)),
        )
    else:
        t = np.geomspace(0.1, 1e3, 12) / lam1
        kw = dict(teacher_t=10.0 / lam1, test=TestPoints(kernel=Kt))
        kr, de = _run(distill, StoredKernel(K), y, t, **kw), dense_distill.distill(spec, y, t, **kw)
    _check(kr, de, y, spec, tol=1e-6)


@pytest.fixture(scope="module")
def rbf_problem():
    """n = 400 points in 8 dimensions, RBF kernel: the Krylov space does not exhaust (non-trivial estimate)."""
    rng = np.random.default_rng(3)
    X, Xt = rng.standard_normal((400, 8)), rng.standard_normal((50, 8))
    op = FunctionKernel(X, RBF(lengthscale=2.5), block_size=128)
    K, Kt = op.dense(), op.cross(Xt).dense()
    y = np.eye(4)[rng.integers(0, 4, 400)]
    return op, op.cross(Xt), K, Kt, Spectrum.from_kernel(K), y


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe",
    [
        Recipe("flow"),
        Recipe("gd", learning_rate=1.0),
        Recipe("momentum", learning_rate=0.5, momentum=0.9),
        Recipe("flow", normalization="per_output"),
    ],
)
def test_rbf_without_exhaustion_equals_dense(rbf_problem, recipe):
    op, cross, K, Kt, spec, y = rbf_problem
    lam1 = spec.evals[0]
    scale = 400 * 4 if recipe.normalization == "per_output" else 1.0
    if recipe.method == "flow":
        t = np.geomspace(0.1, 1e3, 30) / lam1 * scale
    else:
        t = np.unique(np.geomspace(1, 1e3, 20).round())
        recipe = dataclasses.replace(recipe, learning_rate=recipe.learning_rate / lam1)
    kr = train(op, y, t, test=TestPoints(kernel=cross), recipe=recipe)
    if recipe.method != "momentum":  # flow and gd have residual bounds; momentum only the pair bound
        assert not kr.solver["exhausted"] and kr.solver["basis_size"] < 400
    de = dynamics.train(spec, y, t, test=TestPoints(kernel=Kt), recipe=recipe)
    _check(kr, de, y, spec, tol=1e-6)


@pytest.mark.slow
def test_rbf_distillation_equals_dense(rbf_problem):
    op, cross, K, Kt, spec, y = rbf_problem
    lam1 = spec.evals[0]
    t = np.geomspace(0.1, 1e3, 20) / lam1
    gd = Recipe("gd", learning_rate=1.0 / lam1)
    kw = dict(teacher_t=30.0, teacher=gd, student=Recipe("flow"), truth_weight=0.3, test=TestPoints(kernel=Kt))
    # composites are certified by the pair bound alone (pessimistic on this RBF spectrum: it may
    # need the whole space; composing the segments' residual bounds is future work)
    kr = distill(op, y, t, **{**kw, "test": TestPoints(kernel=cross)})
    _check(kr, dense_distill.distill(spec, y, t, **kw), y, spec, tol=1e-6)


@pytest.mark.slow
def test_gd_equals_explicit_blocked_iterations(rbf_problem):
    """GD at step s equals s explicit iterations f ← f − η K (f − y) with blocked products (no eigh)."""
    op, cross, _, _, _, y = rbf_problem
    eta = 1.0 / float(np.max(np.abs(op.dense()).sum(1)))  # 1/‖K‖_∞ ≤ 1/λ_max: stable and monotone
    steps = np.arange(0, 41)
    kr = train(op, y, steps, recipe=Recipe("gd", learning_rate=eta), test=TestPoints(kernel=cross), tolerance=1e-10)
    f = np.zeros_like(y)
    alpha = np.zeros_like(y)  # dual coefficients: test predictions are K_xX α
    ref = np.linalg.norm(y)
    for s in steps:
        err = np.linalg.norm(kr.train[s] - f)
        assert err <= 1e-10 * ref + 1e-12 * ref, (s, err)
        assert err <= kr.solver["error_train"][s] + 1e-12 * ref
        assert np.linalg.norm(kr.test[s] - cross.matmat(alpha)) <= 1e-10 * ref * np.sqrt(50 / 400) + 1e-12 * ref
        r = y - f
        f = f + eta * op.matmat(r)
        alpha = alpha + eta * r


def test_gd_is_exact_once_the_basis_holds_the_polynomial():
    """s steps of GD are a degree-s polynomial in K: Lanczos is exact after s + 2 block products,
    and the estimate says so (residual term exactly 0 for s ≤ m − 2)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    op = FunctionKernel(X, RBF(1.0))
    y = rng.standard_normal((300, 2))
    K = op.dense()
    eta = 1.0 / np.linalg.eigvalsh(K)[-1]
    # 1e-10, not 1e-12: eigenvalues ≤ 10 n ε λ_max count as 0, and an unresolved share of y down
    # there moves s steps by up to 10 n ε η λ_max s relative — the certificate counts it
    kr = train(op, y, [0, 1, 2, 3], recipe=Recipe("gd", learning_rate=eta), tolerance=1e-10)
    f = np.zeros_like(y)
    for s in range(4):
        assert np.linalg.norm(kr.train[s] - f) <= 1e-12 * np.linalg.norm(y)
        f = f + eta * K @ (y - f)
    assert kr.solver["iterations"] <= 6


def test_error_estimate_is_honest_when_the_tolerance_is_not_met(rbf_problem):
    """Too few iterations: strict raises; strict=False returns the estimate, which bounds the error."""
    op, _, _, _, spec, y = rbf_problem
    t = np.array([1e3]) / spec.evals[0]
    with pytest.raises(ConvergenceError, match="could not certify tolerance") as info:
        train(op, y, t, max_iterations=3)
    kr = info.value.trajectory
    assert not kr.solver["converged"] and kr.solver["iterations"] == 3
    assert kr == kr  # the unconverged result is available for inspection
    loose = train(op, y, t, max_iterations=3, strict=False)
    err = np.linalg.norm(loose.train[0] - dynamics.train(spec, y, t).train[0])
    est = loose.solver["error_train"][0]
    assert est > 1e-6 * np.linalg.norm(y)  # it says it failed …
    assert err <= est  # … and by how much, without understating it


@pytest.mark.slow
def test_pseudo_inverse_on_an_ill_conditioned_kernel_converges_or_says_so():
    """t = ∞ test predictions need K⁺: CG-like convergence with √κ. Either the result meets the
    tolerance, or ConvergenceError is raised — never a silent wrong number."""
    n = 300
    lam = 10.0 ** -np.linspace(0, 7, n)
    Q = random_orthogonal(n, 5)
    K = (Q * lam) @ Q.T
    K = 0.5 * (K + K.T)
    y = np.random.default_rng(1).standard_normal(n)
    Kt = np.random.default_rng(2).standard_normal((5, n)) @ K
    de = dynamics.train(Spectrum.from_kernel(K), y, [np.inf], test=TestPoints(kernel=Kt))
    goal = 1e-6 * np.linalg.norm(y) * np.sqrt(5 / n)
    for iters in (10, 40, 100, 200, 400):
        try:
            kr = train(StoredKernel(K), y, [np.inf], test=TestPoints(kernel=Kt), max_iterations=iters)
        except ConvergenceError as exc:
            kr = exc.trajectory
            assert not kr.solver["converged"]
            assert kr.solver["error_test"][0] > goal  # it says it failed, and by how much:
            assert np.linalg.norm(kr.test - de.test) <= kr.solver["error_test"][0] + 1e-9 * np.linalg.norm(y)
            continue
        assert np.linalg.norm(kr.test - de.test) <= goal + 1e-9 * np.linalg.norm(y)  # oracle: ε κ ‖y‖


def test_ritz_summaries():
    """The Ritz values approximate the top of the spectrum; filter = the recipe's filter on them;
    the loss is half the squared norm of the modes."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((250, 6))
    op = FunctionKernel(X, RBF(2.0))
    y = rng.standard_normal(250)
    t = np.array([0.5, 5.0, np.inf])
    kr = train(op, y, t)
    theta = np.asarray(kr.solver["ritz_values"])
    lam = np.linalg.eigvalsh(op.dense())[::-1]
    assert np.all(np.diff(theta) <= 0)
    assert theta[0] == pytest.approx(lam[0], rel=1e-12)
    assert np.all(theta <= lam[0] * (1 + 1e-12))
    ritz = RitzSpectrum.of_values(theta, 250)
    assert ritz.U is None and ritz.V is None and ritz.n == 250 and ritz.rank_tol == 0.0
    assert np.array_equal(kr.filter, Recipe().filter(ritz, t).a)
    assert np.array_equal(kr.filter, Recipe().filter(RitzSpectrum(theta, None, None, 0.0, points=250), t).a)
    assert kr.modes.shape == (3, theta.size)
    np.testing.assert_allclose(kr.loss, 0.5 * np.sum(kr.modes**2, axis=1), rtol=1e-12)


def test_apply_filter_takes_any_composite_of_the_algebra():
    rng = np.random.default_rng(6)
    n = 120
    K = random_orthogonal(n, 1) * 0.9 ** np.arange(n) @ random_orthogonal(n, 1).T
    K = 0.5 * (K + K.T)
    spec = Spectrum.from_kernel(K)
    y = rng.standard_normal((n, 2))
    t = np.array([0.0, 1.0, 10.0])

    def composite(s):
        return distill_filter(s, t, teacher_t=2.0, teacher=Recipe("ridge"), student=Recipe("flow"))

    kr = apply_filter(StoredKernel(K), y, composite, t=t)
    de = dynamics.apply_filter(spec, y, composite(spec), t=t)
    _check(kr, de, y, spec, tol=1e-6, test=False)


@pytest.mark.slow
def test_init_test_init_ridge_and_vector_labels_match_dense():
    rng = np.random.default_rng(7)
    n = 150
    X = rng.standard_normal((n, 4))
    op = FunctionKernel(X, RBF(1.5))
    K = op.dense()
    spec = Spectrum.from_kernel(K)
    y, f0 = rng.standard_normal(n), rng.standard_normal(n)
    Kt = rng.standard_normal((4, n)) @ K / n
    ft0 = rng.standard_normal(4)
    t = np.array([0.0, 0.3, 3.0, np.inf])
    kw = dict(init=f0, test=TestPoints(kernel=Kt, init=ft0))
    kr = train(op, y, t, **kw)
    assert kr.train.shape == (4, n) and kr.test.shape == (4, 4)
    _check(kr, dynamics.train(spec, y, t, **kw), y - f0, spec, tol=1e-6)
    ridge = np.array([1e-3, 1e-1, 10.0])
    kr = train(op, y, ridge=ridge, test=TestPoints(kernel=Kt))
    assert kr.t is None and np.array_equal(kr.ridge, ridge)
    _check(kr, dynamics.train(spec, y, ridge=ridge, test=TestPoints(kernel=Kt)), y, spec, tol=1e-6)


def test_bad_input_names_the_argument():
    op = StoredKernel(np.eye(3))
    y = np.ones(3)
    with pytest.raises(ValueError, match="y has 2 rows"):
        train(op, np.ones(2), [1.0])
    with pytest.raises(ValueError, match="tolerance must lie in"):
        train(op, y, [1.0], tolerance=2.0)
    with pytest.raises(ValueError, match="rank_rtol must lie in"):  # issue 19 row 2
        train(op, y, [1.0], rank_rtol=2.0)
    with pytest.raises(ValueError, match="max_iterations"):
        train(op, y, [1.0], max_iterations=0)
    with pytest.raises(ValueError, match="square KernelOperator"):
        train(StoredKernel(np.ones((2, 3)), check=False), np.ones(2), [1.0])
    with pytest.raises(ValueError, match="exactly one"):
        train(op, y)
    with pytest.raises(ValueError, match="steps|t "):
        train(op, y, [1.5], recipe=Recipe("gd", learning_rate=0.1))
    with pytest.raises(ValueError, match="nothing to train"):
        train(op, y, [1.0], init=y)
    with pytest.raises(ValueError, match="test.kernel has 2 columns"):
        train(op, y, [1.0], test=TestPoints(kernel=np.ones((4, 2))))
    with pytest.raises(TypeError, match="Filter"):
        apply_filter(op, y, lambda s: (s.evals, s.evals))
    with pytest.raises(TypeError, match="function Spectrum -> kdtheory.filters.Filter"):
        apply_filter(op, y, Recipe().filter(Spectrum.from_kernel(np.eye(3)), [1.0]))


@pytest.mark.slow
def test_empirical_ntk_operator_trajectory_equals_dense():
    """End to end: NTK-vector products (never forming J) drive the same trajectory as the dense NTK."""
    from ntk_problem import ntk_problem

    op, spec, y, Xt, Kt = ntk_problem()
    t = np.array([0.0, 0.5, 5.0, 50.0]) / spec.evals[0]
    kr = train(op, y, t, test=TestPoints(kernel=op.cross(Xt)))
    de = dynamics.train(spec, y, t, test=TestPoints(kernel=Kt))
    _check(kr, de, y, spec, tol=1e-6)


def test_issue19_example_raises_or_is_right():
    """The issue's five lines: rank-50 features, t = ∞ (and 1e6): certified only when right."""
    from kdtheory.operators import FeatureKernel

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((1000, 50)), rng.standard_normal(1000)
    truth = X @ np.linalg.lstsq(X, y, rcond=None)[0]
    for t in ([np.inf], [1e6]):
        try:
            traj = train(FeatureKernel(X), y, t)
        except ConvergenceError:
            continue
        assert np.linalg.norm(traj.train[0] - truth) <= 1e-6 * np.linalg.norm(y)
        assert np.linalg.norm(traj.train[0] - truth) <= traj.solver["error_train"][0] + 1e-12 * np.linalg.norm(y)


def test_max_iterations_at_infinity_is_not_certified():
    """Issue 19 row 3: three products at t = ∞ cannot resolve a rank-50 kernel's null space."""
    from kdtheory.operators import FeatureKernel

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((1000, 50)), rng.standard_normal(1000)
    with pytest.raises(ConvergenceError, match="could not certify"):
        train(FeatureKernel(X), y, [np.inf], max_iterations=3)
    loose = train(FeatureKernel(X), y, [np.inf], max_iterations=3, strict=False)
    truth = X @ np.linalg.lstsq(X, y, rcond=None)[0]
    assert not loose.solver["converged"] and "max_iterations" in loose.solver["reason"]
    assert np.linalg.norm(loose.train[0] - truth) <= loose.solver["error_train"][0]


def test_indefinite_stored_matrix_is_refused():
    """Issue 19 row 1: a symmetric matrix with eigenvalue −10 is not a training kernel."""
    n = 40
    Q = random_orthogonal(n, 3)
    lam = np.linspace(1.0, 5.0, n)
    lam[-1] = -10.0
    K = (Q * lam) @ Q.T
    K = 0.5 * (K + K.T)
    y = np.random.default_rng(0).standard_normal(n)
    with pytest.raises(ValueError, match="not positive semi-definite.*Ritz value"):
        train(StoredKernel(K), y, [1.0, np.inf])


def test_basis_that_cannot_fit_is_refused_up_front(monkeypatch):
    """Issue 19 row 10: refused before any product, naming the bytes."""
    from kdtheory import krylov

    monkeypatch.setattr(krylov, "_available_bytes", lambda: 1e6)
    calls = []

    class Counting(StoredKernel):
        def _matmat(self, V):
            calls.append(1)
            return super()._matmat(V)

    op = Counting(np.eye(500))
    with pytest.raises(ValueError, match=r"needs .* GiB \(\d+ bytes\).*lower max_iterations"):
        train(op, np.ones(500), [1.0])
    assert not calls
    assert krylov.basis_bytes(500, 1, 500) == 8 * (500 * 500 + 500 * 500)


def _bulk_outlier(n=160, seed=1):
    rng = np.random.default_rng(seed)
    lam = np.sort(np.concatenate([[1e3, 3e2], 1.0 + 0.1 * rng.random(n - 2)]))[::-1]
    Q = random_orthogonal(n, seed)
    K = (Q * lam) @ Q.T
    return 0.5 * (K + K.T), rng.standard_normal(n)


def test_residual_bound_is_tight_for_flow():
    """Flow's residual bound: certified well before the space is exhausted, within 3x of the error."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 8))
    op = FunctionKernel(X, RBF(lengthscale=2.5), block_size=128)
    y = np.eye(4)[rng.integers(0, 4, 400)]
    spec = Spectrum.from_kernel(op.dense())
    t = np.geomspace(0.1, 1e3, 30) / spec.evals[0]
    kr = train(op, y, t)
    de = dynamics.train(spec, y, t)
    err = np.linalg.norm((kr.train - de.train).reshape(len(t), -1), axis=1)
    bound = np.asarray(kr.solver["error_train"])
    assert kr.solver["converged"] and kr.solver["iterations"] <= 40
    big = err > 1e-12 * np.linalg.norm(y)  # above the oracle's round-off
    assert np.all(err <= bound) and np.all(bound[big] <= 3 * err[big] + 1e-12 * np.linalg.norm(y))


def test_radau_certifies_the_pseudo_inverse_on_a_full_rank_kernel():
    """t = ∞ on a well-conditioned kernel: the answer is y itself, proved by the Radau mass bound."""
    K, y = _bulk_outlier()
    kr = train(StoredKernel(K), y, [np.inf], max_iterations=12)
    assert kr.solver["converged"] and not kr.solver["exhausted"]
    assert np.linalg.norm(kr.train[0] - y) <= kr.solver["error_train"][0] + 1e-12 * np.linalg.norm(y)


def test_spectrum_floor_certifies_test_predictions_at_infinity():
    """Test predictions at t = ∞ need λ_min: refused without it, certified with a true floor."""
    n = 160
    Q = random_orthogonal(n, 4)
    K = (Q * np.linspace(1.0, 2.0, n)) @ Q.T
    K = 0.5 * (K + K.T)
    y = np.random.default_rng(4).standard_normal(n)
    A = np.random.default_rng(2).standard_normal((5, n)) / np.sqrt(n)
    Kt = A @ K
    with pytest.raises(ConvergenceError, match="spectrum_floor"):
        train(StoredKernel(K), y, [np.inf], test=TestPoints(kernel=Kt), max_iterations=30)
    plain = train(StoredKernel(K), y, [np.inf], test=TestPoints(kernel=Kt), max_iterations=30, strict=False)
    kr = train(
        StoredKernel(K), y, [np.inf], test=TestPoints(kernel=Kt), max_iterations=30, spectrum_floor=0.99, strict=False
    )
    de = dynamics.train(Spectrum.from_kernel(K), y, [np.inf], test=TestPoints(kernel=Kt))
    err_t = np.linalg.norm(kr.test - de.test)
    # the floor tightens the bound (the grid still runs to tr K, so polynomial candidates stay
    # pessimistic here: certifying needs more products), and the bound stays honest
    assert kr.solver["error_test"][0] < plain.solver["error_test"][0]
    assert err_t <= kr.solver["error_test"][0] + 1e-10 * np.linalg.norm(y)


def test_solver_options_match_the_source():
    from kdtheory.dynamics import Dense

    K, y = _bulk_outlier(20)
    with pytest.raises(ValueError, match="Lanczos"):
        dynamics.train(Spectrum.from_kernel(K), y, [1.0], solver=Lanczos())
    with pytest.raises(ValueError, match="Dense"):
        dynamics.train(StoredKernel(K), y, [1.0], solver=Dense())
    with pytest.raises(ValueError, match="spectrum_floor"):
        Lanczos(spectrum_floor=-1.0)
