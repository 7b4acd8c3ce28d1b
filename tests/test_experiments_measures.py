"""kdtheory.experiments.measures: gradient moments and batch distances against explicit oracles, and the O1
numbers of a split against an explicit loop."""

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paired_designs import SUITE, TINY

from kdtheory.experiments import arms, design, measures


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


def _stub_blocks(monkeypatch, suite, **kw):
    """``measures.blocks(suite)`` with training stubbed out: (blocks, the ``gradients=`` of each collect)."""
    asked: list[tuple[str, str, bool]] = []

    def collect(d, seeds, say=None, *, gradients=False):
        asked.append((d.regime, d.dataset, gradients))
        return [{}]

    monkeypatch.setattr(measures, "collect", collect)
    monkeypatch.setattr(measures, "fetch_many", lambda *a, **k: None)
    return measures.blocks(suite, **kw), asked


def test_noisy_labels_block_without_noise_skips_t2(monkeypatch):
    # digits with η = 0: q − Y = 0, the T2 ratio is undefined — the block is kept (O2) without T2
    clean = dataclasses.replace(TINY, dataset="digits", n=None, n_test=0, label_noise=0.0)
    suite = dataclasses.replace(SUITE, designs=(TINY, clean), map_datasets=())
    out, asked = _stub_blocks(monkeypatch, suite)
    noisy = {b.design.dataset: b for b in out if b.regime == "noisy-labels"}
    assert noisy["mixture"].t2 and not noisy["digits"].t2 and noisy["digits"].o2
    assert ("noisy-labels", "digits", False) in asked and ("noisy-labels", "mixture", True) in asked


@pytest.mark.parametrize("suite", [design.QUICK, design.Suite()], ids=["quick", "full"])
def test_registered_suites_keep_their_t2_blocks(monkeypatch, suite):
    out, _ = _stub_blocks(monkeypatch, suite, map_cells=False)
    t2 = {(b.regime, b.design.dataset, b.design.temperature) for b in out if b.t2}
    expected = {("noisy-labels", d.dataset, 1.0) for d in suite.designs}
    expected |= {(r, b.dataset, 1.0) for r, bases in (("paper", suite.paper), ("compression", suite.compression))
                 for b in bases if b.dataset == "mixture"}  # fmt: skip
    assert t2 == expected
