"""The paired design of O1, O2 and T2 (kdtheory.experiments.paired) on tiny sizes."""

import dataclasses
import itertools

import numpy as np
import pytest

from kdtheory.experiments import paired
from kdtheory.experiments.result import VERDICTS
from kdtheory.stats import Rule

TINY = paired.Design(
    n=60, n_test=100, validation=30, hidden=(8,), teacher_t=20, student_t=20, points=8, gradient_points=20,
    switch_fractions=(0.5,),
)  # fmt: skip


@pytest.fixture(scope="module")
def rows():
    return paired.collect(TINY, 2)


@pytest.mark.slow  # trains the tiny design once per module (about 5 s on 2 cores)
def test_student_and_twin_share_init_and_budget(rows):
    arms = [paired.arm_run(TINY, a, 0) for a in ("student", "twin", "late:0.5", "reverse:0.5")]
    s, t = arms[0], arms[1]
    np.testing.assert_array_equal(s.params[0], t.params[0])  # one initialization
    assert not np.array_equal(s.params[-1], t.params[-1])  # and different training
    assert all(a.t[-1] == TINY.student_t for a in arms)
    assert all(np.array_equal(a.t, s.t) for a in arms)


@pytest.mark.slow  # trains the tiny design once per module (about 5 s on 2 cores)
def test_switches_follow_their_first_phase_exactly(rows):
    s, t = paired.arm_run(TINY, "student", 1), paired.arm_run(TINY, "twin", 1)
    late, rev = paired.arm_run(TINY, "late:0.5", 1), paired.arm_run(TINY, "reverse:0.5", 1)
    before = s.t <= 0.5 * TINY.student_t
    assert before.sum() >= 3
    np.testing.assert_array_equal(late.val_accuracy[before], t.val_accuracy[before])
    np.testing.assert_array_equal(rev.val_accuracy[before], s.val_accuracy[before])


@pytest.mark.slow  # trains the tiny design once per module (about 5 s on 2 cores)
def test_twin_is_shared_across_teachers_and_temperatures(rows):
    hot = dataclasses.replace(TINY, temperature=2.0, teacher_stop="last")
    assert paired.arm_run(hot, "twin", 0) is paired.arm_run(TINY, "twin", 0)
    assert paired.arm_run(hot, "student", 0) is not paired.arm_run(TINY, "student", 0)


@pytest.mark.slow  # trains the tiny design once per module (about 5 s on 2 cores)
def test_teacher_is_the_earliest_argmax_of_noisy_validation_accuracy(rows):
    tr = paired.teacher_run(TINY, 0)
    i = paired.teacher_index(TINY, tr)
    assert tr.val_accuracy[i] == tr.val_accuracy.max()
    assert np.all(tr.val_accuracy[:i] < tr.val_accuracy[i])
    assert rows[0]["teacher_stop"] == tr.t[i]
    fake = paired.TeacherRun(np.arange(5), None, None, np.array([0.1, 0.5, 0.3, 0.5, 0.2]), None)
    assert paired.teacher_index(TINY, fake) == 1
    assert paired.teacher_index(dataclasses.replace(TINY, teacher_stop="last"), fake) == 4
    assert paired.teacher_index(dataclasses.replace(TINY, teacher_stop=3), fake) == 3


def test_validation_accuracy_is_against_the_noisy_labels(rows):
    data = paired.load(TINY, 0)
    assert data.Y_val.shape[0] == TINY.validation
    assert np.mean(data.Y_val.argmax(1) != data.clean_val) > 0  # noisy, as the early stopping sees it


def test_batch_distance_formula_matches_enumeration():
    rng = np.random.default_rng(0)
    n, B = 6, 2
    V = rng.normal(size=(n, 3))
    brute = np.mean([np.sum(V[list(c)].mean(0) ** 2) for c in itertools.combinations(range(n), B)])
    m2, e2 = np.sum(V.mean(0) ** 2), np.mean(np.sum(V**2, 1))
    assert paired._batch_sq(np.array(m2), np.array(e2), B, n) == pytest.approx(brute, rel=1e-12)
    assert paired._batch_sq(np.array(m2), np.array(e2), n, n) == pytest.approx(m2, rel=1e-12)
    assert paired._batch_sq(np.array(m2), np.array(e2), 1, n) == pytest.approx(e2, rel=1e-12)


@pytest.mark.slow  # trains the tiny design once per module (about 5 s on 2 cores)
def test_metrics_and_effects_schema(rows):
    r = rows[0]
    for key in (
        "acc_student",
        "acc_twin",
        "acc_late_0.5",
        "acc_reverse_0.5",
        "target_ratio",
        "gradient_ratio_b1",
        "gradient_ratio_bn",
        "test_slope_student",
        "train_low_student_twin",
    ):
        assert np.isfinite(r[key]), key  # fmt: skip
    assert len(r["test_bins_student_twin"]) == paired.BINS
    assert len(r["gradient_t"]) == 8  # 4 times on each of the two trajectories
    eff = paired.difference_effect("gain", rows, "acc_student", "acc_twin", Rule(0.0), "twin")
    share = paired.share_effect("share", rows, 0.5, Rule(0.5), "twin")
    for e in (eff, share):
        js = e.to_json()
        assert list(js)[:7] == ["name", "estimate", "ci_low", "ci_high", "seeds", "control", "rule"]
        assert js["seeds"] == 2 and js["verdict"] in VERDICTS
    per_seed = [a["acc_student"] - a["acc_twin"] for a in rows]
    assert eff.estimate == pytest.approx(np.mean(per_seed))


@pytest.mark.slow  # trains the tiny design once per module (about 5 s on 2 cores)
def test_gradient_ratio_is_one_when_the_teacher_is_the_labels():
    design = TINY
    data = paired.load(design, 0)
    out = paired._gradients(design, 0, data.Y.astype(float))
    np.testing.assert_allclose(out["gradient_ratio_b1"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(out["gradient_ratio_bn"], 1.0, rtol=1e-9)


@pytest.mark.parametrize(
    "field, value",
    [("dataset", "cifar"), ("teacher_stop", "best"), ("teacher_stop", -1), ("switch_fractions", (1.0,)),
     ("student_t", 0)],
)  # fmt: skip
def test_design_refuses_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(TINY, **{field: value})


def test_unknown_arm_is_refused():
    with pytest.raises(ValueError, match="arm"):
        paired.arm_run(TINY, "teacher", 0)


@pytest.mark.parametrize("sizes", [(5, 7, 3), (4, 6, 5, 10)])
def test_gradient_moments_match_explicit_per_example_jacobians(sizes):
    import jax
    from jax.flatten_util import ravel_pytree

    from kdtheory.gradients import per_example_jacobians

    model = paired._model(sizes)
    params = model.init(jax.random.PRNGKey(3))
    params = jax.tree_util.tree_map(lambda a: a + 0.1, params)  # nonzero biases
    flat = np.asarray(ravel_pytree(params)[0])
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, sizes[0])).astype(np.float32)
    R = rng.normal(size=(2, 9, sizes[-1]))
    J = per_example_jacobians(model, params, X).astype(np.float64)  # (n, k, P), the explicit oracle
    V = np.einsum("nkp,mnk->mnp", J, R)
    m2, e2 = paired._gradient_moments(sizes, flat, X, R)
    np.testing.assert_allclose(m2, np.sum(V.mean(1) ** 2, axis=1), rtol=1e-4)
    np.testing.assert_allclose(e2, np.mean(np.sum(V**2, axis=2), axis=1), rtol=1e-4)
