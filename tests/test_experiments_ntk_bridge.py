"""kdtheory.experiments.ntk_bridge: the agreement rule's three outcomes and the initializer (the lag it
measures, ntk.lag_at_matched_progress, is tested in tests/test_ntk.py)."""

import numpy as np
import pytest


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


def test_width_sweep_measures_a_linearization_gap_that_shrinks_with_width():
    # the sweep trains through simulate.train_model: a call that the library no longer accepts fails here (the
    # one-value API rewrite left it passing the old keywords through **kw, and `kdtheory reproduce` crashed)
    from kdtheory.experiments.ntk_bridge import Config, _sweep

    cfg = Config(n=10, directions=2, widths=(8, 512), sweep_n=12, sweep_steps=30, sweep_seeds=1)
    said: list[str] = []
    gaps = _sweep(cfg, said.append)
    assert set(gaps) == {"one-hot", "distillation"} and len(said) == 1
    for g in gaps.values():
        assert g.shape == (1, 2) and np.all(np.isfinite(g)) and np.all(g > 0)
        assert g[0, 1] < 0.5 * g[0, 0]  # lazy regime: the wide network stays near its linearization (gap ∝ 1/√width)
