"""kdtheory.exaggeration: statements E1-E3 as properties over drawn spectra, the comparison of
student, teacher and matched one-hot runs, the informative grid points (where the compared
remaining fractions are resolved in float64), and bad input named."""

import numpy as np
import pytest
from bad_input import KERNEL3, RAGGED, one_line
from hypothesis import given, settings
from hypothesis import strategies as st

from kdtheory import exaggeration
from kdtheory.exaggeration import RESOLUTION, compare, informative, statement_margin, worst_case
from kdtheory.filters import Recipe
from kdtheory.spectrum import Spectrum
from kdtheory.testing import assert_close, spectra


@given(spectra(max_size=10), st.floats(-2.0, 4.0), st.sampled_from(["flow", "gd"]))
def test_E1_ratio_form_always(lam, log_t, method):
    spec = Spectrum(evals=lam, U=np.eye(lam.size), V=None, rank_tol=0.0)
    lam_max = max(lam[0], 1e-300)
    rec = Recipe(method, learning_rate=(0.9 / lam_max) if method == "gd" else 1.0)
    t = 10**log_t / lam_max if method == "flow" else float(np.ceil(10**log_t))
    assert statement_margin(spec, "E1", teacher_t=1.0, student_t=t, recipe=rec) >= -1e-12


def test_E1_fails_beyond_monotone_learning_rates():
    # a documented boundary: with η λ > 1, GD's filter is not increasing in λ, so E1 can fail
    spec = Spectrum(evals=np.array([1.0, 0.5]), U=np.eye(2), V=None, rank_tol=0.0)
    assert (
        statement_margin(spec, "E1", teacher_t=1.0, student_t=2, recipe=Recipe("gd", learning_rate=1.9)) < 0
    )  # a_2(λ=1) = 0.19 < a_2(λ=0.5)


@settings(max_examples=200)
@given(spectra(max_size=10), st.floats(-2.0, 3.0), st.floats(-2.0, 3.0))
def test_E2_matched_top_progress(lam, log_T, log_t):
    spec = Spectrum(evals=lam, U=np.eye(lam.size), V=None, rank_tol=0.0)
    unit = 1.0 / max(lam[0], 1e-300)
    assert statement_margin(spec, "E2", teacher_t=10**log_T * unit, student_t=10**log_t * unit) >= -1e-12


@settings(max_examples=200)
@given(spectra(max_size=10), st.floats(-2.0, 3.0), st.floats(-2.0, 3.0), st.sampled_from(["E3_norm", "E3_loss"]))
def test_E3_single_crossing(lam, log_T, log_t, statement):
    spec = Spectrum(evals=lam, U=np.eye(lam.size), V=None, rank_tol=0.0)
    unit = 1.0 / max(lam[0], 1e-300)
    assert statement_margin(spec, statement, teacher_t=10**log_T * unit, student_t=10**log_t * unit) >= -1e-12


def test_compare_values_and_worst_case_report():
    lam = np.geomspace(1, 1e-3, 30)
    spec = Spectrum(evals=lam, U=np.eye(30), V=None, rank_tol=0.0)
    c = compare(spec, teacher_t=5.0, student_t=5.0, match="norm")
    assert 0 < c.crossover < 30  # ahead on top directions, behind further down
    assert np.all(c.student_over_onehot[: c.crossover] >= 1 - 1e-12)
    assert np.all(c.student_over_onehot[c.crossover :] < 1)
    assert_close(c.student_over_teacher, 1 - np.exp(-5.0 * lam), rtol=1e-14)
    w = worst_case(spec, "E2", teacher_t=[0.1, 1, 10], student_t=[0.1, 1, 10])
    assert w.checked == 9 and w.fraction_holding == 1.0 and w.margin >= -1e-12


def test_E2_regression_underflow_is_not_a_counterexample():
    # Found by a random search: with T = 744/λ_1, e^{−λ_1 T} is subnormal, and a first version
    # matched the one-hot time from that rounded value, reporting a spurious margin of −4e-5.
    lam = np.array([1.0, 0.87821351, 0.62171172, 0.11597885, 0.00313445])
    spec = Spectrum(evals=lam, U=np.eye(5), V=None, rank_tol=0.0)
    assert statement_margin(spec, "E2", teacher_t=743.9216747162632, student_t=3531.857097486672) >= -1e-12
    c = compare(spec, teacher_t=743.9216747162632, student_t=3531.857097486672)
    assert c.onehot_t == pytest.approx(743.9216747162632, rel=1e-12)  # t' = T when t ≫ T


# ---------------------------------------------------------------------- informative grid points
def _power_spectrum(n=40, exponent=1.5):
    lam = np.arange(1, n + 1, dtype=float) ** -exponent
    return Spectrum(evals=lam, U=np.eye(n), V=None, rank_tol=0.0)


def test_informative_is_the_round_off_threshold_on_the_top_direction():
    spec = _power_spectrum()  # λ_1 = 1
    edge = -np.log(RESOLUTION)  # 52 log 2
    m = informative(spec, teacher_t=[0.0, edge * (1 - 1e-9), edge * (1 + 1e-9)], student_t=[1.0, np.inf])
    assert m.tolist() == [[True, False], [True, False], [False, False]]
    gd = Recipe("gd", learning_rate=0.5)  # remaining (1 − 0.5)^s > 2^-52 iff s < 52
    assert informative(spec, teacher_t=[51, 52], student_t=[0], recipe=gd)[:, 0].tolist() == [True, False]
    assert informative(spec, teacher_t=3.0, student_t=4.0).shape == ()


@given(st.floats(-2, np.log10(36.0)), st.floats(-2, np.log10(36.0)))
def test_at_informative_points_every_compared_remaining_fraction_is_resolved(log_T, log_t):
    spec = _power_spectrum(30)
    T, t = 10.0**log_T, 10.0**log_t
    assert informative(spec, teacher_t=T, student_t=t)
    for match in ("top_progress", "norm", "loss"):
        c = compare(spec, teacher_t=T, student_t=t, match=match)
        assert c.student_remaining.min() > RESOLUTION and c.onehot_remaining.min() > RESOLUTION
    for statement in ("E1", "E2"):  # resolved, so strictly positive (the statements hold)
        assert statement_margin(spec, statement, teacher_t=T, student_t=t) > 0


def test_saturated_points_give_margins_of_exactly_zero_and_are_skipped():
    """The referee's finding (issue 10): E2's worst margin 0 came from saturated grid points."""
    spec = _power_spectrum()
    grid = np.geomspace(1e-2, 1e4, 9)
    mask = informative(spec, teacher_t=grid, student_t=grid)
    e2 = np.array([[statement_margin(spec, "E2", teacher_t=T, student_t=t) for t in grid] for T in grid])
    assert np.all(e2[mask] > 0) and np.any(e2[~mask] == 0)
    every = worst_case(spec, "E2", teacher_t=grid, student_t=grid)
    only = worst_case(spec, "E2", teacher_t=grid, student_t=grid, informative_only=True)
    assert every.margin == 0 and every.checked == 81 and every.informative == mask.sum()
    assert only.checked == mask.sum() == only.informative and only.margin == e2[mask].min() > 0
    with pytest.raises(ValueError, match="no informative point"):
        worst_case(spec, "E2", teacher_t=[1e3], student_t=grid, informative_only=True)
    osc = Recipe("gd", learning_rate=1.5)  # ηλ_1 > 1: oscillating modes, no criterion
    assert worst_case(spec, "E1", teacher_t=[1], student_t=[2, 3], recipe=osc).informative is None
    with pytest.raises(ValueError, match="monotone"):
        worst_case(spec, "E1", teacher_t=[1], student_t=[2], recipe=osc, informative_only=True)


# ---------------------------------------------------------------------- bad input, named


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: exaggeration.compare(KERNEL3, teacher_t=1.0, student_t=2.0, label_energy=RAGGED), ValueError, "^lab"),
        (lambda: exaggeration.informative(KERNEL3, teacher_t=RAGGED, student_t=[1.0]), ValueError, r"^teacher_t must"),
        (lambda: exaggeration.informative(KERNEL3, teacher_t=[1.0], student_t=[-1.0]), ValueError, r"^student_t must"),
    ],
)
def test_bad_input_is_named_in_the_modules_built_on_the_core(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    one_line(info)
