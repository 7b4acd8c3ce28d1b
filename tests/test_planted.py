"""kdtheory.planted: teacher and student chosen on validation data in the planted linear model.

Oracles: weights from ``scipy.linalg.expm`` of the augmented gradient-flow system in weight space
(no eigendecomposition), explicit population risks ``(θ − θ*)ᵀ Σ (θ − θ*)`` and validation errors,
a brute-force argmin over the grid, and Monte Carlo for the link between validation error and risk.
"""

import numpy as np
import pytest
import scipy.linalg
from bad_input import RAGGED, one_line

from kdtheory import planted
from kdtheory.data import planted_linear
from kdtheory.dynamics import train
from kdtheory.eigen import Recipe, Spectrum
from kdtheory.planted import population_risk, search_best, select_on_validation, validation_mse
from kdtheory.testing import assert_close

MEAN = Recipe(normalization="mean")


def _flow_weights(X, target, t):
    """Gradient flow on ½‖Xw − target‖²/n from w = 0 for time t: expm of the augmented system (oracle)."""
    n, d = X.shape
    if np.isinf(t):
        return np.linalg.pinv(X) @ target
    A = np.zeros((d + 1, d + 1))
    A[:d, :d] = -X.T @ X / n
    A[:d, d] = X.T @ target / n
    return (scipy.linalg.expm(A * t) @ np.r_[np.zeros(d), 1.0])[:d]


def _problem(n=12, d=20, noise=0.5, n_val=15, seed=0):
    p = planted_linear(n, d, exponent=1.5, signal_exponent=0.5, noise=noise, seed=seed)
    v = planted_linear(n_val, d, exponent=1.5, signal=p.theta_star, noise=noise, seed=1000 + seed)
    return p, v, Spectrum.from_features(p.X)


def test_selection_matches_a_brute_force_search_over_explicit_weights():
    p, v, spec = _problem()
    Ts, ts, ws = [0.3, 3.0, 30.0], [0.5, 5.0, np.inf], [0.5, 1.0]
    risk = lambda w: float((w - p.theta_star) @ (p.cov_evals * (w - p.theta_star)))  # noqa: E731
    mse = lambda w: float(np.mean((v.X @ w - v.y) ** 2))  # noqa: E731
    teachers = [_flow_weights(p.X, p.y, T) for T in Ts]
    i = int(np.argmin([mse(w) for w in teachers]))
    best = None
    for a, T in enumerate(Ts):
        for wt in ws:
            target = wt * (p.X @ teachers[a]) + (1 - wt) * p.y
            for t in ts:
                w = _flow_weights(p.X, target, t)
                if best is None or mse(w) < best[0]:
                    best = (mse(w), risk(w), T, wt, t)
    sel = select_on_validation(
        spec, p.y, v.X, v.y, p.theta_star, p.cov_evals, teacher_t=Ts, student_t=ts, teacher_weight=ws, recipe=MEAN
    )
    assert sel.teacher_t == Ts[i]
    assert sel.teacher_validation_mse == pytest.approx(mse(teachers[i]), rel=1e-9)
    assert sel.teacher_risk == pytest.approx(risk(teachers[i]), rel=1e-9)
    assert (sel.student_teacher_t, sel.student_teacher_weight, sel.student_t) == best[2:]
    assert sel.student_validation_mse == pytest.approx(best[0], rel=1e-9)
    assert sel.student_risk == pytest.approx(best[1], rel=1e-9)
    assert sel.gain == pytest.approx(risk(teachers[i]) - best[1], rel=1e-9, abs=1e-12)
    # the same grid by truth_weight
    by_truth = select_on_validation(
        spec, p.y, v.X, v.y, p.theta_star, p.cov_evals, teacher_t=Ts, student_t=ts, truth_weight=[0.5, 0.0], recipe=MEAN
    )
    assert by_truth == sel


def test_validation_error_of_a_noiseless_large_sample_is_the_population_risk():
    """Monte Carlo: E (xᵀθ̂ − xᵀθ*)² = (θ̂ − θ*)ᵀ Σ (θ̂ − θ*), within 5 standard errors."""
    p, _, spec = _problem(n=30, d=15)
    big = planted_linear(100_000, 15, exponent=1.5, signal=p.theta_star, noise=0.0, seed=7)
    F = MEAN.filter(spec, np.array([0.1, 2.0, 50.0, np.inf]))
    risk = population_risk(spec, p.y, p.theta_star, p.cov_evals, F)
    mse = validation_mse(spec, p.y, big.X, big.y, F)
    for k, t in enumerate([0.1, 2.0, 50.0, np.inf]):
        sq = (big.X @ (_flow_weights(p.X, p.y, t) - p.theta_star)) ** 2
        assert mse[k] == pytest.approx(sq.mean(), rel=1e-8)
        assert abs(mse[k] - risk[k]) < 5 * sq.std() / np.sqrt(sq.size)


def test_the_validation_gain_is_not_positive_by_construction():
    """Chosen on 15 noisy validation points, the student loses to the teacher in some seeds (and wins in others);
    chosen on the population (search_best) it never loses: the grid contains the teacher."""
    gains, ceilings = [], []
    grid = dict(teacher_t=np.geomspace(0.01, 1e4, 12), teacher_weight=[0.5, 1.0], recipe=MEAN)
    for seed in range(8):
        p, v, spec = _problem(n=40, d=60, seed=seed)
        ts = np.r_[np.geomspace(0.01, 1e4, 12), np.inf]
        sel = select_on_validation(spec, p.y, v.X, v.y, p.theta_star, p.cov_evals, student_t=ts, **grid)
        gains.append(sel.gain)
        ceilings.append(search_best(spec, p.y, p.theta_star, p.cov_evals, student_t=ts, **grid).gain)
    assert min(gains) < 0 < max(gains)
    assert min(ceilings) >= -1e-12


def test_a_student_that_can_only_copy_its_teacher_is_the_teacher():
    p, v, spec = _problem()
    Ts = [0.1, 1.0, 10.0, 100.0]
    sel = select_on_validation(
        spec, p.y, v.X, v.y, p.theta_star, p.cov_evals, teacher_t=Ts, student_t=[np.inf], recipe=MEAN
    )
    assert sel.student_is_teacher and sel.student_teacher_t == sel.teacher_t
    assert sel.gain == 0.0 and sel.relative_gain == 0.0


def test_bad_inputs_name_the_argument():
    p, v, spec = _problem()
    F = MEAN.filter(spec, 1.0)
    kern = Spectrum.from_kernel(p.X @ p.X.T)
    with pytest.raises(ValueError, match="features spectrum"):
        validation_mse(kern, p.y, v.X, v.y, F)
    with pytest.raises(ValueError, match="X_val"):
        validation_mse(spec, p.y, v.X[:, :5], v.y, F)
    with pytest.raises(ValueError, match="y_val"):
        validation_mse(spec, p.y, v.X, v.y[:-1], F)
    with pytest.raises(ValueError, match="y must have shape"):
        validation_mse(spec, p.y[:-1], v.X, v.y, F)
    with pytest.raises(TypeError, match="filter"):
        validation_mse(spec, p.y, v.X, v.y, F.a)
    with pytest.raises(TypeError, match="Filter"):
        population_risk(spec, p.y, p.theta_star, p.cov_evals, F.a_over_eval)
    with pytest.raises(ValueError, match="cov"):
        population_risk(spec, p.y, p.theta_star, p.cov_evals[:-1], F)
    kw = dict(teacher_t=[1.0], student_t=[1.0], recipe=MEAN)
    with pytest.raises(ValueError, match="not both"):
        select_on_validation(spec, p.y, v.X, v.y, p.theta_star, p.cov_evals, teacher_weight=[1], truth_weight=[0], **kw)
    with pytest.raises(ValueError, match="weights must not be empty"):
        select_on_validation(spec, p.y, v.X, v.y, p.theta_star, p.cov_evals, teacher_weight=[], **kw)
    with pytest.raises(ValueError, match="must not be empty"):
        search_best(spec, p.y, p.theta_star, p.cov_evals, teacher_t=[], student_t=[1.0], recipe=MEAN)
    with pytest.raises(ValueError, match="teacher_t"):
        search_best(spec, p.y, p.theta_star, p.cov_evals, teacher_t=[-1.0], student_t=[1.0], recipe=MEAN)


def test_planted_population_risk_matches_explicit_weights():
    p = planted_linear(40, 60, exponent=1.5, signal_exponent=0.5, noise=0.3, seed=1)
    spec = Spectrum.from_features(p.X)
    rec = Recipe(normalization="mean")
    ts = np.array([0.5, 5.0, 50.0, np.inf])
    risk = population_risk(spec, p.y, p.theta_star, p.cov_evals, rec.filter(spec, ts))
    w = train(spec, p.y, ts, recipe=Recipe(normalization="mean")).weights
    explicit = np.einsum("td,d,td->t", w - p.theta_star, p.cov_evals, w - p.theta_star)
    assert_close(risk, explicit, rtol=1e-10)
    res = search_best(spec, p.y, p.theta_star, np.diag(p.cov_evals), teacher_t=ts[:-1], student_t=ts, recipe=rec)
    assert res.student_risk <= res.teacher_risk * (1 + 1e-12)  # t = ∞ reproduces the teacher
    kw = {"teacher_t": ts[:-1], "student_t": ts, "recipe": rec}
    by_truth = search_best(spec, p.y, p.theta_star, p.cov_evals, truth_weight=[0.0, 0.6], **kw)
    by_teacher = search_best(spec, p.y, p.theta_star, p.cov_evals, teacher_weight=[1.0, 0.4], **kw)
    assert by_truth == by_teacher


# ---------------------------------------------------------------------- bad input, named


FEATURES = Spectrum.from_features(np.random.default_rng(0).standard_normal((4, 3)))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (
            lambda: planted.population_risk(FEATURES, np.ones(4), RAGGED, np.ones(3), Recipe().filter(FEATURES, 1.0)),
            ValueError,
            r"^theta_star must be a rectangular",
        ),
    ],
)
def test_bad_input_is_named_in_the_modules_built_on_the_core(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    one_line(info)
