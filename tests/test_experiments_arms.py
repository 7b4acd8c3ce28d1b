"""kdtheory.experiments.arms: the teacher, replica, student, twin and switched arms of the paired design on tiny sizes
(their specs, shared initializations and budgets, the stop rule, the shared controls)."""

import dataclasses

import numpy as np
import pytest
from paired_designs import TINY, TINY_COMP, TINY_PAPER

from kdtheory.experiments import arms, measures


@pytest.fixture(scope="module")
def rows():
    return measures.collect(TINY, range(2), gradients=True)


@pytest.mark.parametrize("d", [TINY, TINY_PAPER, TINY_COMP], ids=["noisy", "paper", "compression"])
def test_replica_has_the_teachers_recipe_field_by_field_but_the_seeds(d):
    t, r = arms.teacher_spec(d, 3), arms.replica_spec(d, 3)
    student = arms.arm_spec(d, "student", 3)
    for f in dataclasses.fields(arms.RunSpec):
        if f.name == "init_seed":
            assert r.init_seed not in (t.init_seed, student.init_seed)  # another initialization
        elif f.name == "order_seed":
            assert r.order_seed == student.order_seed != t.order_seed  # the student's minibatch order
        else:
            assert getattr(r, f.name) == getattr(t, f.name), f.name
    assert t.budget == d.teacher_t and t.stop == d.teacher_stop and t.teacher_weight == 0
    assert t.sizes[1:-1] == (d.teacher_hidden or d.hidden)
    assert student.sizes[1:-1] == d.hidden


@pytest.mark.slow  # trains the tiny design (seconds)
def test_replica_run_follows_its_spec():
    tr, rp = arms.teacher_run(TINY_COMP, 0), arms.replica_run(TINY_COMP, 0)
    assert np.array_equal(tr.t, rp.t) and tr.train.shape == rp.train.shape
    assert not np.allclose(tr.train, rp.train)  # another initialization
    assert tr.stop == rp.stop == len(tr.t) - 1  # the paper regime's stop rule: the end of the budget
    rec = measures.seed_metrics(TINY_COMP, 0)
    assert rec["replica_stop"] == rec["teacher_stop"] == TINY_COMP.teacher_t


@pytest.mark.slow
def test_student_and_twin_share_init_and_budget(rows):
    arms_ = [arms.arm_run(TINY, a, 0) for a in ("student", "twin", "late:0.5", "reverse:0.5")]
    s, t = arms_[0], arms_[1]
    np.testing.assert_array_equal(s.params[0], t.params[0])  # one initialization
    assert not np.array_equal(s.params[-1], t.params[-1])  # and different training
    assert all(a.t[-1] == TINY.student_t for a in arms_)
    assert all(np.array_equal(a.t, s.t) for a in arms_)


@pytest.mark.slow
def test_switches_follow_their_first_phase_exactly(rows):
    s, t = arms.arm_run(TINY, "student", 1), arms.arm_run(TINY, "twin", 1)
    late, rev = arms.arm_run(TINY, "late:0.5", 1), arms.arm_run(TINY, "reverse:0.5", 1)
    before = s.t <= 0.5 * TINY.student_t
    assert before.sum() >= 3
    np.testing.assert_array_equal(late.val_accuracy[before], t.val_accuracy[before])
    np.testing.assert_array_equal(rev.val_accuracy[before], s.val_accuracy[before])


@pytest.mark.slow
def test_controls_are_shared_across_temperatures(rows):
    hot = dataclasses.replace(TINY, temperature=2.0)
    assert arms.arm_run(hot, "twin", 0) is arms.arm_run(TINY, "twin", 0)
    assert arms.replica_run(hot, 0) is arms.replica_run(TINY, 0)
    assert arms.teacher_run(hot, 0) is arms.teacher_run(TINY, 0)
    assert arms.arm_run(hot, "student", 0) is not arms.arm_run(TINY, "student", 0)


def test_stop_rule_picks_the_earliest_validation_argmax_the_last_or_a_step():
    t = np.arange(5) * 10
    val = np.array([0.1, 0.5, 0.3, 0.5, 0.2])
    assert arms.stop_index("val", t, val) == 1
    assert arms.stop_index("last", t, val) == 4
    assert arms.stop_index(25, t, val) == 3
    assert arms.stop_index(100, t, val) == 4


def test_unknown_arm_is_refused():
    with pytest.raises(ValueError, match="arm"):
        arms.arm_run(TINY, "teacher", 0)


@pytest.mark.parametrize("budget", [1, 7, 200, 20_000])
@pytest.mark.parametrize("points", [1, 2])
def test_arm_steps_reach_the_budget_for_few_points(budget, points):
    """With fewer than 3 points the checkpoints stopped at step 1 (_steps(200, 2) = [0, 1] trained 1 step)."""
    steps = arms._steps(budget, points)
    assert steps[0] == 0 and steps[-1] == budget


@pytest.mark.parametrize("budget, points", [(1, 3), (10, 20), (200, 3), (200, 9), (5000, 40), (123_457, 61)])
def test_arm_steps_are_unchanged_for_three_or_more_points(budget, points):
    """The registered checkpoint sets stay the same: the former formula, as the train loop saw it (unique)."""
    former = np.unique(np.r_[0, np.geomspace(1, budget, points - 1)].round().astype(np.int64))
    assert np.array_equal(arms._steps(budget, points), former)
