"""kdtheory.experiments.confidence_deviation (O1): planted underfitting is decided, and the winner's curse that
makes a control necessary."""

import dataclasses

import numpy as np
import pytest
from paired_designs import TINY_PAPER

from kdtheory.experiments import confidence_deviation as o1
from kdtheory.experiments import measures


def _planted_block(underfit: bool, seeds: int = 8) -> measures.Block:
    """Seeds of synthetic logits: a teacher, a replica and a twin that regress to the mean, and a
    student equal to a control except on the teacher's least confident points, where it is pushed
    down (``underfit``) or up by 1 nat of margin."""
    rows = []
    for s in range(seeds):
        rng = np.random.default_rng(s)
        n, k = 400, 3
        truth = rng.normal(scale=2.0, size=(n, k))
        teacher = truth + rng.normal(size=(n, k))
        replica = truth + rng.normal(size=(n, k))
        twin = truth + rng.normal(size=(n, k))
        student = truth + rng.normal(size=(n, k))
        top = teacher.argmax(1)
        phi_t = measures.deviation.phi(teacher, top, kind="logits")
        low = phi_t <= np.quantile(phi_t, 0.2)
        student[low, top[low]] += -1.0 if underfit else 1.0
        models = {"teacher": teacher, "student": student, "replica": replica, "twin": twin}
        rows.append({**measures._confidence(models, top, "test"), **measures._confidence(models, top, "train")})
    return measures.Block("paper", dataclasses.replace(TINY_PAPER, temperature=1.0), rows, False, False)


@pytest.mark.parametrize("underfit, verdict", [(True, "supported"), (False, "not supported")])
def test_planted_underfitting_is_decided(underfit, verdict):
    cells = o1.o1_cells(_planted_block(underfit))
    decided = [e for e in cells if e.extra["claim"] == "O1-underfit" and e.extra["control_arm"] == "replica"]
    assert {e.extra["claim"] for e in cells} == {"O1-underfit", "O1-exaggerate"}
    assert {e.extra["split"] for e in decided} == {"train", "test"}
    assert all(e.verdict == verdict for e in decided), [(e.estimate, e.ci_low, e.ci_high) for e in decided]
    assert o1._headline_verdict(cells) == verdict


def test_uncontrolled_student_vs_teacher_shows_the_winners_curse():
    # no control model has a teacher, yet φ(model) − φ(teacher) of the teacher's top-1 class on the
    # teacher's least confident points is negative for each (the class is the teacher's own argmax: a
    # winner's curse): an uncontrolled student − teacher difference would read as "underfitting"
    block = _planted_block(underfit=False)
    r = block.rows[0]
    for k in ("replica", "twin"):
        assert r[f"test_low_{k}_teacher"] < -0.2
