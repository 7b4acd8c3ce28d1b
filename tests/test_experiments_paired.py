"""The paired design of O1, O2 and T2 (design, arms, measures, effects) on tiny sizes."""

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kdtheory.experiments import arms, design, effects, measures
from kdtheory.experiments import confidence_deviation as o1
from kdtheory.experiments import gradient_denoising as t2
from kdtheory.experiments import late_distillation as o2
from kdtheory.experiments.result import VERDICTS
from kdtheory.stats import Rule

TINY = design.Design(
    n=60, n_test=100, validation=30, hidden=(8,), teacher_t=20, student_t=20, points=8, gradient_points=20,
    switch_fractions=(0.5,),
)  # fmt: skip
TINY_PAPER = dataclasses.replace(TINY, regime="paper", label_noise=0.0, teacher_stop="last", reverse=False)
TINY_COMP = dataclasses.replace(TINY_PAPER, regime="compression", teacher_hidden=(16, 16))
SUITE = design.Suite(
    first_seed=0, paper=(TINY_PAPER,), paper_seeds=2, temperatures=(1.0, 2.0), o2_temperatures=(1.0,),
    compression=(TINY_COMP,), compression_seeds=2, compression_temperatures=(1.0,), seeds=2, designs=(TINY,),
    map_datasets=("mixture",), map_seeds=2, map_stop=("last",), map_temperature=(2.0,), map_noise=(0.1,),
    map_budget=(0.5,),
)  # fmt: skip


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


def test_validation_is_noisy_only_with_label_noise():
    noisy, clean = design.load(TINY, 0), design.load(TINY_PAPER, 0)
    assert np.mean(noisy.Y_val.argmax(1) != noisy.clean_val) > 0
    np.testing.assert_array_equal(clean.Y_val.argmax(1), clean.clean_val)
    np.testing.assert_array_equal(clean.Y.argmax(1), clean.clean)


def test_batch_distance_formula_matches_enumeration():
    rng = np.random.default_rng(0)
    n, B = 6, 2
    V = rng.normal(size=(n, 3))
    brute = np.mean([np.sum(V[list(c)].mean(0) ** 2) for c in itertools.combinations(range(n), B)])
    m2, e2 = np.sum(V.mean(0) ** 2), np.mean(np.sum(V**2, 1))
    assert measures._batch_sq(np.array(m2), np.array(e2), B, n) == pytest.approx(brute, rel=1e-12)
    assert measures._batch_sq(np.array(m2), np.array(e2), n, n) == pytest.approx(m2, rel=1e-12)
    assert measures._batch_sq(np.array(m2), np.array(e2), 1, n) == pytest.approx(e2, rel=1e-12)


@pytest.mark.slow
def test_gradient_ratio_is_one_when_the_teacher_is_the_labels():
    data = design.load(TINY, 0)
    out = measures._gradients(TINY, 0, data.Y.astype(float))
    np.testing.assert_allclose(out["gradient_ratio_b1"], 1.0, rtol=1e-9)
    np.testing.assert_allclose(out["gradient_ratio_bn"], 1.0, rtol=1e-9)


@pytest.mark.parametrize("sizes", [(5, 7, 3), (4, 6, 5, 10)])
def test_gradient_moments_match_explicit_per_example_jacobians(sizes):
    import jax
    from jax.flatten_util import ravel_pytree

    from kdtheory.gradients import per_example_jacobians

    model = arms._model(sizes)
    params = model.init(jax.random.PRNGKey(3))
    params = jax.tree_util.tree_map(lambda a: a + 0.1, params)  # nonzero biases
    flat = np.asarray(ravel_pytree(params)[0])
    rng = np.random.default_rng(1)
    X = rng.normal(size=(9, sizes[0])).astype(np.float32)
    R = rng.normal(size=(2, 9, sizes[-1]))
    J = per_example_jacobians(model, params, X).astype(np.float64)  # (n, k, P), the explicit oracle
    V = np.einsum("nkp,mnk->mnp", J, R)
    m2, e2 = measures._gradient_moments(sizes, flat, X, R)
    np.testing.assert_allclose(m2, np.sum(V.mean(1) ** 2, axis=1), rtol=1e-4)
    np.testing.assert_allclose(e2, np.mean(np.sum(V**2, axis=2), axis=1), rtol=1e-4)


# ------------------------------------------------------------------ O1 numbers and rules


def test_o1_numbers_of_a_split_match_an_explicit_loop():
    rng = np.random.default_rng(0)
    n, k = 50, 3
    models = {m: rng.normal(size=(n, k)) for m in ("teacher", "student", "replica", "twin")}
    got = measures._confidence(models, rng.integers(0, k, n), "test")["test_top1_replica"]
    top = models["teacher"].argmax(1)

    def phi(z):  # log p_c − log(1 − p_c), the explicit way
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        pc = p[np.arange(n), top]
        return np.log(pc) - np.log1p(-pc)

    pt, ps, pc = phi(models["teacher"]), phi(models["student"]), phi(models["replica"])
    order = sorted(range(n), key=lambda i: (pt[i], i))
    low, high = order[:5], order[-5:]
    assert got.underfit_low == pytest.approx(sum((ps[i] - pt[i]) - (pc[i] - pt[i]) for i in low) / 5, rel=1e-9)
    assert got.exaggerate_high == pytest.approx(sum((ps[i] - pt[i]) - (pc[i] - pt[i]) for i in high) / 5, rel=1e-9)
    slope = lambda y: np.polyfit(pt, y, 1)[0]  # noqa: E731
    assert got.slope == pytest.approx(slope(ps) - slope(pc), rel=1e-8)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(10, 60), shift=st.floats(-5, 5), seed=st.integers(0, 2**16), ties=st.booleans())
def test_o1_effects_of_a_level_shift(n, shift, seed, ties):
    # a student equal to the replica plus a constant margin: both groups move by the margin, the slope not
    rng = np.random.default_rng(seed)
    teacher = np.round(rng.normal(size=(n, 3))) if ties else rng.normal(size=(n, 3))  # ties: tied φ and groups
    replica = teacher + rng.normal(size=(n, 3))
    top = teacher.argmax(1)
    student = replica.copy()
    student[np.arange(n), top] += shift  # φ_c = z_c − logsumexp_{j≠c} z_j moves by exactly `shift`
    models = {"teacher": teacher, "student": student, "replica": replica, "twin": replica}
    r = measures._confidence(models, top, "train")
    if np.ptp(measures.deviation.phi(teacher, top, kind="logits")) == 0:
        return  # slope undefined: refused by deviation, not this test's case
    assert r["train_top1_replica"].underfit_low == pytest.approx(shift, abs=1e-9)
    assert r["train_top1_replica"].exaggerate_high == pytest.approx(shift, abs=1e-9)
    assert r["train_top1_replica"].slope == pytest.approx(0.0, abs=1e-9)


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


# ------------------------------------------------------------------ effects and the table


def test_tag_refuses_unknown_cell_keys():
    e = effects.mean_effect("x", [{"a": 1.0}, {"a": 2.0}], "a", Rule(0.0), "none")
    assert effects.tag(e, claim="c", regime="paper").extra["regime"] == "paper"
    with pytest.raises(ValueError, match="cell keys"):
        effects.tag(e, colour="red")


@pytest.mark.slow  # every regime of a tiny suite, all three claims (shared runs)
def test_every_claim_effect_names_its_cell():
    outs = [m.measure(SUITE, lambda s: None) for m in (o1, o2, t2)]
    regimes = set()
    for out in outs:
        assert out.verdict in VERDICTS and out.effects
        for e in out.effects:
            js = e.to_json()
            assert list(js)[:7] == ["name", "estimate", "ci_low", "ci_high", "seeds", "control", "rule"]
            for key in effects.TABLE_KEYS:
                assert js[key] is not None, (key, e.name)
            regimes.add(js["regime"])
            assert js["seeds"] == 2
        rows = effects.table(out.effects)
        assert len(rows) == len(out.effects)
    assert regimes == {"paper", "compression", "noisy-labels"}
    o1_controls = {(e.extra["split"], e.extra["control_arm"]) for e in outs[0].effects}
    assert o1_controls == {(s, c) for s in ("train", "test") for c in ("replica", "twin")}
    assert {e.extra["regime"] for e in outs[1].effects} == {"paper", "compression", "noisy-labels"}
    t2_cells = {(e.extra["regime"], e.extra["dataset"]) for e in outs[2].effects}
    # defined on the mixture in every regime (posterior labels); never at τ = 2
    assert t2_cells == {("paper", "mixture"), ("compression", "mixture"), ("noisy-labels", "mixture")}
    assert all(e.extra["tau"] == 1.0 for e in outs[2].effects)


def test_share_effect_is_the_ratio_of_mean_gains():
    rows = [{"acc_student": 0.8 + d, "acc_twin": 0.7, "acc_late_0.5": 0.76 + d / 2} for d in (0.0, 0.01, 0.02, 0.005)]
    e = effects.share_effect("s", rows, 0.5, Rule(0.5), "twin")
    num = np.mean([r["acc_late_0.5"] - r["acc_twin"] for r in rows])
    den = np.mean([r["acc_student"] - r["acc_twin"] for r in rows])
    assert e.estimate == pytest.approx(num / den, rel=1e-12)


@pytest.mark.parametrize(
    "field, value",
    [("dataset", "cifar"), ("teacher_stop", "best"), ("teacher_stop", -1), ("switch_fractions", (1.0,)),
     ("student_t", 0), ("regime", "iid")],
)  # fmt: skip
def test_design_refuses_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(TINY, **{field: value})


def test_unknown_arm_is_refused():
    with pytest.raises(ValueError, match="arm"):
        arms.arm_run(TINY, "teacher", 0)


def test_registered_suite_has_the_issue_design():
    s = design.Suite()
    assert s.paper_seeds >= 20 and set(s.o2_temperatures) >= {1.0, 4.0} and set(s.temperatures) == {1.0, 2.0, 4.0}
    assert all(d.label_noise == 0 and d.teacher_stop == "last" and d.student_t == d.teacher_t for d in s.paper)
    assert {d.dataset for d in s.paper} == set(design.DATASETS)
    (c,) = s.compression
    assert c.dataset == "mnist1d" and c.teacher_widths == (256, 256) and c.hidden == (64,)
    assert all(d.label_noise > 0 and d.teacher_stop == "val" for d in s.designs)
    assert s.first_seed > 0  # the registered run's seeds are not the development seeds


def _result(size="full"):
    from kdtheory.experiments.result import ExperimentResult

    rows = [{"a": v} for v in (-0.5, -0.4, -0.6)]
    cells = [
        effects.tag(effects.mean_effect("u", rows, "a", Rule(-0.1, "less"), "replica"), claim="O1-underfit",
                    regime="paper", dataset="mnist1d", split="train", tau=1.0, control_arm="replica"),
        effects.tag(effects.mean_effect("w", rows, "a", Rule(-0.1, "less"), "twin"), claim="O1-underfit",
                    regime="paper", dataset="mnist1d", split="train", tau=1.0, control_arm="twin"),
        effects.mean_effect("untagged", rows, "a", Rule(0.0), "none"),
    ]  # fmt: skip
    return ExperimentResult("confidence_deviation", "claim", "c", size, "supported", "r", effects=tuple(cells))


@pytest.mark.parametrize("size", ["full", "quick"])
def test_evidence_table_has_one_entry_per_tagged_cell_and_leads_the_report(size):
    from kdtheory.experiments.reproduce import evidence_table, markdown
    from kdtheory.experiments.result import SMOKE

    res = _result(size)
    table = evidence_table([res])
    assert [(r["control_arm"], r["verdict"]) for r in table] == [
        ("replica", "supported" if size == "full" else SMOKE),
        ("twin", "supported" if size == "full" else SMOKE),
    ]
    assert table[0]["estimate"] == pytest.approx(-0.5) and table[0]["ci_high"] < -0.1
    payload = {"versions": {"kdtheory": "x", "numpy": "x", "scipy": "x", "jax": "x", "python": "x"}, "size": size,
               "created": "now", "seconds": 1.0, "evidence_table": table}  # fmt: skip
    text = markdown([res], payload)
    head = text.index("## Where each claim holds")
    assert head < text.index("## The paper's claims")
    rows = [ln for ln in text[head:].split("\n## ")[0].splitlines() if ln.startswith("| O1")]
    assert (
        len(rows) == 1 and "| replica |" in rows[0] and "| paper | mnist1d | train |" in rows[0]
    )  # the decisive control
