"""kdtheory.testing: the Hypothesis strategies draw what they promise (shapes, edge values, the
valid domain) and refuse what they do not know; assert_close refuses an infinite reference."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdtheory.testing import (
    edge_spectra,
    momenta,
    near_double_root_rates,
    rate_fractions,
    step_counts,
    tiny_positive,
)

TINY = float(np.finfo(np.float64).smallest_subnormal)


@given(st.data())
def test_label_strategy_shapes(data):
    from kdtheory.testing import labels

    y = data.draw(labels(7))
    assert y.shape[0] == 7 and y.ndim in (1, 2) and np.all(np.isfinite(y))
    Y = data.draw(labels(5, outputs=3, one_hot=True))
    assert Y.shape == (5, 3) and np.all(Y.sum(1) == 1) and set(np.unique(Y)) <= {0.0, 1.0}


def test_label_strategy_names_a_bad_outputs():
    from hypothesis import find

    from kdtheory.testing import labels

    with pytest.raises(ValueError, match="outputs must be None, a positive integer or 'any', got 'bogus'"):
        find(labels(3, outputs="bogus"), lambda y: True)
    assert find(labels(3, outputs=2, one_hot=True), lambda y: True).shape == (3, 2)


def test_edge_strategies_reach_their_edges():
    """The strategies of kdtheory.testing draw the edge values they promise (a search finds each)."""
    from hypothesis import find

    assert 0 < find(momenta(), lambda b: 0 < b <= 1e-300) <= 1e-300
    assert find(momenta(), lambda b: b >= 1 - 1e-8) < 1
    assert find(tiny_positive(), lambda x: x < np.finfo(np.float64).tiny) >= TINY  # subnormal
    lam = find(edge_spectra(), lambda v: ((v > 0) & (v < np.finfo(np.float64).tiny)).any())
    assert (np.diff(lam) <= 0).all()
    assert find(step_counts(), lambda s: 1e11 <= s < np.inf) <= 1e12
    assert find(rate_fractions(), lambda f: f <= 1e-11) >= 1e-12
    assert find(rate_fractions(), lambda f: f >= 1 - 1e-8) < 1
    beta, eta = find(
        momenta().filter(lambda b: b > 0).flatmap(lambda b: near_double_root_rates(1.0, b).map(lambda e: (b, e))),
        lambda be: be[0] > 0.5 and be[1] < 1,
    )
    assert eta == pytest.approx(((1 - beta) / (1 + np.sqrt(beta))) ** 2, rel=1e-6)


@given(momenta(), edge_spectra(), step_counts(), rate_fractions(), st.data())
def test_edge_strategies_stay_in_the_valid_domain(beta, lam, s, frac, data):
    assert 0 <= beta < 1
    assert lam.ndim == 1 and (lam >= 0).all() and lam[0] > 0 and (np.diff(lam) <= 0).all()
    assert s == np.inf or (s >= 0 and s == np.floor(s) and s <= 1e12)
    assert 0 < frac < 1
    if beta > 0:
        eta = data.draw(near_double_root_rates(float(lam[0]), beta))
        assert 0 < eta * lam[0] < 2 * (1 + beta)


def test_assert_close_refuses_an_infinite_reference():
    """An infinite ``expected`` made every bound infinite: ``assert_close(1.0, inf)`` used to pass."""
    from kdtheory.testing import assert_close

    with pytest.raises(AssertionError, match="non-finite"):
        assert_close(1.0, np.inf)


def test_spectra_refuses_unknown_kinds():
    """An unknown kind used to fall through silently to ``ill_conditioned``."""
    from hypothesis import find

    from kdtheory.testing import spectra

    with pytest.raises(ValueError, match="kinds"):
        find(spectra(kinds=("power-law",)), lambda v: True)
