"""kdtheory.confidence: stable logit confidences, deviation statistics, fidelity, and the CLI."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import softmax

from kdtheory import cli
from kdtheory.confidence import analyze, expected_calibration_error, logit_confidence


@st.composite
def logit_pairs(draw, max_n=40, max_k=6):
    n = draw(st.integers(2, max_n))
    k = draw(st.integers(2, max_k))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 50.0]))
    t = scale * rng.standard_normal((n, k))
    s = draw(st.floats(0.5, 2.0)) * t + rng.standard_normal((n, k))
    return t, s


@given(logit_pairs())
def test_identical_teacher_and_student(pair):
    t, _ = pair
    r = analyze(t, t, bootstrap=50)
    assert np.array_equal(r.teacher_logit, r.student_logit)
    assert r.low_underfit == 0 and r.high_overfit == 0 and r.agreement == 1.0
    assert r.kl == pytest.approx(0.0, abs=1e-12)
    if r.slope is not None:
        assert r.slope == pytest.approx(1.0, rel=1e-9)
        assert r.intercept == pytest.approx(0.0, abs=1e-7 * (1 + np.abs(r.teacher_logit).max()))


@given(logit_pairs(), st.integers(0, 1000))
def test_invariant_to_permuting_points_and_classes(pair, seed):
    t, s = pair
    rng = np.random.default_rng(seed)
    pi, pc = rng.permutation(t.shape[0]), rng.permutation(t.shape[1])
    a = analyze(t, s, bootstrap=0)
    b = analyze(t[pi][:, pc], s[pi][:, pc], bootstrap=0)
    assert np.allclose(np.sort(a.teacher_logit), np.sort(b.teacher_logit), rtol=1e-12, atol=1e-12)
    assert np.allclose(a.student_logit[pi], b.student_logit, rtol=1e-12, atol=1e-12) or np.any(
        np.sum(t == t.max(axis=1, keepdims=True), axis=1) > 1
    )  # ties in the teacher's top-1 may pick another (equally confident) class
    for name in ("agreement", "kl", "low_underfit", "high_overfit"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-10, abs=1e-12)
    if a.slope is not None:
        assert a.slope == pytest.approx(b.slope, rel=1e-9)


@given(logit_pairs())
def test_stable_logit_equals_naive_where_naive_is_finite(pair):
    t, _ = pair
    cls = t.argmax(axis=1)
    p, phi, _ = logit_confidence(t, cls, logits=True)
    pc = softmax(t, axis=1)[np.arange(t.shape[0]), cls]
    with np.errstate(divide="ignore"):
        naive = np.log(pc) - np.log1p(-pc)
    ok = np.isfinite(naive) & (pc < 1 - 1e-6)  # beyond that the naive form has lost its digits
    assert np.allclose(phi[ok], naive[ok], rtol=1e-8, atol=1e-8)
    assert np.all(np.isfinite(phi))


def test_finite_at_probabilities_zero_and_one_from_logits():
    t = np.array([[200.0, 0.0, 0.0], [0.0, -300.0, 0.0], [5.0, 5.0, 5.0]], dtype=np.float32)
    s = t * 1.5
    r = analyze(t, s, bootstrap=20)
    assert np.all(np.isfinite(r.teacher_logit)) and np.all(np.isfinite(r.student_logit))
    assert r.teacher_logit[0] == pytest.approx(200.0 - np.log(2.0))
    assert np.all(np.isfinite([r.kl, r.agreement]))
    # probabilities of exactly 0 and 1: clipped to [eps, 1 − eps] and counted
    probs = np.array([[1.0, 0.0], [0.3, 0.7]])
    rp = analyze(probs, probs, logits=False, bootstrap=0)
    assert np.all(np.isfinite(rp.teacher_logit)) and rp.clipped == 2


def test_known_values_and_ece():
    t = np.log(np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]]))
    s = np.log(np.array([[0.95, 0.05], [0.55, 0.45], [0.1, 0.9], [0.5, 0.5]]))
    r = analyze(t, s, labels=np.array([0, 1, 1, 0]), quantile=0.25, bootstrap=0)
    assert np.allclose(r.teacher_prob, [0.9, 0.6, 0.8, 0.5])
    assert np.allclose(r.student_logit, np.log([0.95 / 0.05, 0.55 / 0.45, 0.9 / 0.1, 1.0]))
    assert r.low_underfit == 0.0  # lowest point (p = 0.5): the student equals the teacher
    assert r.high_overfit == 1.0  # highest (p = 0.9): the student is above
    kl = np.sum(np.exp(t) * (t - s), axis=1).mean()
    assert r.kl == pytest.approx(kl)
    ece = expected_calibration_error(np.array([0.9, 0.6, 0.8, 0.5]), np.array([1, 0, 1, 1], bool))
    assert r.ece_teacher == pytest.approx(ece)
    assert ece == pytest.approx((0.1 + 0.6 + 0.2 + 0.5) / 4)


@pytest.mark.parametrize(
    "teacher, student, extra, message",
    [
        (np.full((4, 3), 1 / 3), np.full((5, 3), 1 / 3), [], "has shape (4, 3) but"),
        (np.array([[0.5, 0.6], [0.5, 0.5]]), np.full((2, 2), 0.5), [], "rows do not sum to one (row 0"),
        (np.array([[1.2, -0.2], [0.5, 0.5]]), np.full((2, 2), 0.5), [], "negative probabilities"),
        (np.array([[np.nan, 1.0], [0.5, 0.5]]), np.full((2, 2), 0.5), [], "contains NaN"),
        (np.ones((3, 1)), np.ones((3, 1)), [], "fewer than two classes"),
        (np.ones(3), np.ones(3), [], "expected a 2-D array"),
        (np.full((2, 2), 0.5), np.full((2, 2), 0.5), ["--labels", "LABELS"], "labels must lie in"),
    ],
)
def test_cli_errors_name_the_file(tmp_path, capsys, teacher, student, extra, message):
    tp, sp = tmp_path / "teacher.npy", tmp_path / "student.npy"
    np.save(tp, teacher)
    np.save(sp, student)
    np.save(tmp_path / "labels.npy", np.array([0, 7]))
    extra = [str(tmp_path / "labels.npy") if e == "LABELS" else e for e in extra]
    assert cli.main(["confidence", str(tp), str(sp), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and ("teacher.npy" in err or "student.npy" in err or "labels.npy" in err)


def test_cli_reads_npz_and_writes_report(tmp_path, capsys):
    rng = np.random.default_rng(0)
    t = rng.standard_normal((300, 4)) * 2
    np.savez(tmp_path / "preds.npz", teacher=t, student=1.3 * t)
    np.save(tmp_path / "y.npy", rng.integers(0, 4, 300))
    args = [
        "confidence",
        f"{tmp_path / 'preds.npz'}:teacher",
        f"{tmp_path / 'preds.npz'}:student",
        "--logits",
        "--labels",
        str(tmp_path / "y.npy"),
        "--out",
        str(tmp_path / "out"),
    ]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "slope" in out and "agreement" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    cls = t.argmax(axis=1)
    phi = [np.log(p[np.arange(300), cls] / (1 - p[np.arange(300), cls])) for p in (softmax(t, 1), softmax(1.3 * t, 1))]
    assert summary["slope"] == pytest.approx(np.polyfit(phi[0], phi[1], 1)[0], rel=1e-9)  # independent OLS
    assert summary["slope"] > 1
    assert (tmp_path / "out" / "confidence.png").stat().st_size > 10_000
    assert cli.main(["confidence", str(tmp_path / "preds.npz"), str(tmp_path / "preds.npz")]) == 2
    assert "choose one" in capsys.readouterr().err
