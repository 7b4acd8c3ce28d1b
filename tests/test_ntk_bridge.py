"""The NTK bridge: ntk.lag_at_matched_progress against gradient flow's closed-form E2 lag; the rule; the initializer."""

import numpy as np
import pytest

from kdtheory.eigen import flow_filter
from kdtheory.ntk import lag_at_matched_progress


def _e2_oracle(lam, t, T, K):
    # docs/theory.md §3 E2 in closed form: 1 − e^{−λ_1 t'} = a_1(t) a_1(T), lag_k = a_k(t') − a_k(t) a_k(T)
    student = (1 - np.exp(-lam * t)) * (1 - np.exp(-lam * T))
    t_match = -np.log1p(-student[0]) / lam[0]
    return float(np.mean((1 - np.exp(-lam[1:K] * t_match)) - student[1:K])), student, t_match


@pytest.mark.parametrize("t, T", [(1.0, 1.0), (0.5, 3.0), (2.0, 2.0)])
def test_lag_matches_the_closed_form_of_gradient_flow(t, T):
    lam = np.array([1.0, 0.7, 0.3, 0.1, 0.02])
    expected, student, t_match = _e2_oracle(lam, t, T, 4)
    grid = np.linspace(0.0, 10.0, 4001)
    fine = lag_at_matched_progress(flow_filter(lam, grid).a, student, directions=4)
    assert expected > 0 and fine == pytest.approx(expected, rel=1e-5)
    # t' on the grid: exact, no interpolation
    exact = lag_at_matched_progress(flow_filter(lam, np.sort(np.r_[grid[::100], t_match])).a, student, directions=4)
    assert exact == pytest.approx(expected, rel=1e-12)


def test_a_student_that_is_the_reference_itself_has_no_lag():
    lam = np.array([2.0, 1.0, 0.5])
    ref = flow_filter(lam, np.linspace(0, 5, 51)).a
    assert lag_at_matched_progress(ref, ref[17], directions=3) == pytest.approx(0.0, abs=1e-15)


def test_first_crossing_of_a_non_monotone_reference():
    # a reference that overshoots and comes back: the first crossing is used, not a sorted curve
    ref = np.array([[0.0, 0.0], [0.5, 0.2], [1.2, 0.4], [0.6, 0.9]])
    assert lag_at_matched_progress(ref, np.array([0.85, 0.1]), directions=2) == pytest.approx(0.3 - 0.1)


def test_bad_input_is_refused_with_the_argument_named():
    ref = flow_filter(np.array([1.0, 0.5, 0.1]), np.linspace(0, 1, 11)).a
    with pytest.raises(ValueError, match="never reaches"):
        lag_at_matched_progress(ref, np.array([0.99, 0.5, 0.1]), directions=2)
    with pytest.raises(ValueError, match="starts beyond"):
        lag_at_matched_progress(ref[3:], np.array([0.01, 0.0, 0.0]), directions=2)
    with pytest.raises(ValueError, match="directions"):
        lag_at_matched_progress(ref, ref[5], directions=1)
    with pytest.raises(ValueError, match="directions"):
        lag_at_matched_progress(ref, ref[5], directions=4)
    with pytest.raises(ValueError, match="student has 2"):
        lag_at_matched_progress(ref, ref[5, :2], directions=2)
    with pytest.raises(ValueError, match="reference"):
        lag_at_matched_progress(ref[:, :, None], ref[5], directions=2)
    with pytest.raises(ValueError, match="student"):
        lag_at_matched_progress(ref, np.r_[np.nan, ref[5, 1:]], directions=2)


def _runs(measured, predicted):
    return [{"measured": m, "predicted": p, "ntk_change": 0.0} for m, p in zip(measured, predicted, strict=True)]


def test_agreement_rule_has_three_outcomes_against_the_tolerance():
    from kdtheory.experiments.ntk_bridge import TOLERANCE, _agreement

    pred = np.full(6, 0.1)
    close = _agreement(
        "lazy", "mixture", 512, _runs(pred * (1 + np.array([0.01, -0.02, 0.0, 0.01, -0.01, 0.02])), pred)
    )
    far = _agreement("narrow", "mixture", 8, _runs(pred * (1 - np.array([0.3, 0.25, 0.35, 0.28, 0.3, 0.32])), pred))
    mixed = _agreement("narrow", "digits", 8, _runs(pred * (1 - np.array([0.0, 0.3, 0.02, 0.25, 0.01, 0.2])), pred))
    assert close.verdict == "supported" and close.ci_high < TOLERANCE
    assert far.verdict == "not supported" and far.ci_low > TOLERANCE
    assert mixed.verdict == "inconclusive" and mixed.ci_low < TOLERANCE < mixed.ci_high
    # the effect is the absolute relative discrepancy: a lag too large counts as much as one too small
    over = _agreement("narrow", "digits", 8, _runs(pred * 1.3, pred))
    assert over.estimate == pytest.approx(0.3) and far.extra["signed_mean"] < 0
    assert set(close.to_json()) >= {"name", "estimate", "ci_low", "ci_high", "seeds", "control", "rule"}
    with pytest.raises(ValueError, match="E2"):
        _agreement("lazy", "mixture", 512, _runs([0.1, 0.1], [0.1, -0.01]))


def test_initializer_draws_the_ntk_parameterization_from_the_seed():
    import jax

    from kdtheory.experiments.ntk_bridge import _initializer
    from kdtheory.simulate import mlp

    m = mlp([5, 300, 4], parameterization="ntk")
    init = _initializer(m)
    p, again, other = init(3), init(3), init(4)
    ref = m.init(jax.random.PRNGKey(0))
    assert jax.tree_util.tree_structure(p) == jax.tree_util.tree_structure(ref)
    leaves = list(zip(jax.tree.leaves(p), jax.tree.leaves(ref), strict=True))
    assert all(a.shape == b.shape and a.dtype == np.float32 for a, b in leaves)
    w = np.concatenate([a.ravel() for a in jax.tree.leaves(p)])
    assert abs(w.mean()) < 0.05 and w.std() == pytest.approx(1.0, abs=0.03)  # N(0, 1), 2700 draws
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(again), strict=True))
    assert not np.array_equal(jax.tree.leaves(p)[0], jax.tree.leaves(other)[0])
