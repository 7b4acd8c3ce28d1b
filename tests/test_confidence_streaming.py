"""kdtheory.confidence read in row blocks (issue 19 row 10): files == memory, float32 accuracy, O(n) memory."""

import tracemalloc

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import log_softmax, logsumexp

from kdtheory.confidence import (
    Options,
    analyses,
    analyze,
    analyze_seeds,
    inputs,
    logit_confidence,
    open_predictions,
    point_confidences,
    streaming,
)

FIELDS = ("teacher_logit", "student_logit", "teacher_prob", "classes", "bin_delta", "bin_teacher")
SCALARS = ("slope", "robust_slope", "agreement", "kl", "low_underfit", "high_overfit", "above", "below")


def _same(a, b):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    for f in SCALARS:
        assert getattr(a, f) == getattr(b, f), f
    assert a.slope_ci == b.slope_ci


def _logits(n, k, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    t = 3 * rng.standard_normal((n, k))
    return (
        t.astype(dtype),
        (1.2 * t + rng.standard_normal((n, k))).astype(dtype),
        (t + rng.standard_normal((n, k))).astype(dtype),
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("k", [3, 700])  # 700 classes: several rows per block, blocks not dividing n
def test_files_memory_maps_and_arrays_give_the_same_report(tmp_path, dtype, k):
    n = 1500
    t, s, c = _logits(n, k, dtype=dtype)
    y = np.random.default_rng(1).integers(0, k, n)
    paths = []
    for name, a in (("t", t), ("s", s), ("c", c)):
        paths.append(tmp_path / f"{name}.npy")
        np.save(paths[-1], a)
    opts = Options(bootstrap=50, robust_points=100)
    mem = analyze(t, s, kind="logits", y=y, control=c, options=opts)
    files = analyze(*(str(p) for p in paths[:2]), kind="logits", y=y, control=str(paths[2]), options=opts)
    maps = analyze(*(np.load(p, mmap_mode="r") for p in paths[:2]), kind="logits", y=y,
                   control=np.load(paths[2], mmap_mode="r"), options=opts)  # fmt: skip
    for other in (files, maps):
        _same(mem, other)
        np.testing.assert_array_equal(mem.control_logit, other.control_logit)
        assert mem.o1 == other.o1 and mem.ece_teacher == other.ece_teacher


def test_fortran_order_files_and_sliced_memory_maps_read_the_right_rows(tmp_path):
    t, s, _ = _logits(400, 5, dtype=np.float64)
    np.save(tmp_path / "f.npy", np.asfortranarray(t))
    np.save(tmp_path / "s.npy", s)
    ref = analyze(t[100:], s[100:], kind="logits", bootstrap=0)
    sliced = np.load(tmp_path / "s.npy", mmap_mode="r")[100:]  # keeps its parent's offset: must not be read from it
    ft = np.load(tmp_path / "f.npy", mmap_mode="r")[100:]
    _same(ref, analyze(ft, sliced, kind="logits", bootstrap=0))
    _same(analyze(t, s, kind="logits", bootstrap=0), analyze(str(tmp_path / "f.npy"), s, kind="logits", bootstrap=0))


def _phi_oracle(z, c):
    with mpmath.workdps(60):
        zc = mpmath.mpf(float(z[c]))
        rest = mpmath.fsum(mpmath.exp(mpmath.mpf(float(v)) - zc) for j, v in enumerate(z) if j != c)
        return float(-mpmath.log(rest))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**31),
    st.sampled_from([1.0, 10.0, 60.0]),
    st.integers(2, 40),
)
def test_float32_phi_and_kl_are_within_the_stated_bound_of_float64(seed, scale, k):
    rng = np.random.default_rng(seed)
    z64 = scale * rng.standard_normal((64, k))
    z32 = z64.astype(np.float32)
    w32 = (z64 + rng.standard_normal((64, k))).astype(np.float32)
    cls = rng.integers(0, k, 64)
    exact = np.array([_phi_oracle(row.astype(np.float64), c) for row, c in zip(z32, cls, strict=True)])
    got = logit_confidence(z32, cls, kind="logits").logit
    bound = 10 * np.finfo(np.float32).eps * np.maximum(1.0, np.abs(z32).max(axis=1)) + 1e-12 * np.abs(exact)
    assert np.all(np.abs(got - exact) <= bound), np.max(np.abs(got - exact) / bound)
    r = analyze(z32, w32, kind="logits", bootstrap=0)
    lt, ls = log_softmax(z32.astype(np.float64), 1), log_softmax(w32.astype(np.float64), 1)
    kl = np.sum(np.exp(lt) * (lt - ls), axis=1).mean()
    zmax = max(np.abs(z32).max(), np.abs(w32).max())
    assert abs(r.kl - kl) <= 10 * np.finfo(np.float32).eps * max(1.0, zmax) * k


def test_phi_where_every_other_class_underflows_in_float32():
    z = np.array([[0.0, -120.0, -130.0], [50.0, -60.0, -70.0], [-80.0, 20.0, -90.0]], dtype=np.float32)
    cls = np.array([0, 0, 1])
    exact = [float(z[i, c]) - float(logsumexp(np.delete(z[i].astype(np.float64), c))) for i, c in enumerate(cls)]
    np.testing.assert_allclose(logit_confidence(z, cls, kind="logits").logit, exact, rtol=1e-12)


def test_reading_a_file_keeps_memory_to_the_per_point_vectors(tmp_path):
    n, k = 20_000, 500  # 40 MB of float32 per file
    t, s, c = _logits(n, k)
    for name, a in (("t", t), ("s", s), ("c", c)):
        np.save(tmp_path / f"{name}.npy", a)
    del t, s, c
    tracemalloc.start()
    try:
        analyze(str(tmp_path / "t.npy"), str(tmp_path / "s.npy"), kind="logits", control=str(tmp_path / "c.npy"),
                bootstrap=0, robust_points=200, threads=1)  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    block = 4 * inputs.BLOCK_ELEMENTS  # bytes of a float32 compute block
    buffers = (3 * streaming.READ_ROWS_FACTOR + 4) * block  # one thread: 3 read spans, 3 exp blocks, 1 difference
    # ~30 (n,) float64 vectors + the thread's buffers + a few (rows,) temporaries
    assert peak < 30 * 8 * n + buffers + 4 * block, peak / 1e6
    assert peak < 0.35 * 3 * 4 * n * k  # the three files hold 120 MB


def test_grouped_bootstrap_interval_has_the_ols_width(monkeypatch):
    monkeypatch.setattr(analyses, "POINT_BOOTSTRAP_LIMIT", 1000)
    monkeypatch.setattr(analyses, "BOOTSTRAP_GROUPS", 512)
    rng = np.random.default_rng(5)
    n = 20_000
    x = rng.standard_normal(n)
    y = 1.3 * x + rng.standard_normal(n)
    t, s = np.stack([x, np.zeros(n)], 1), np.stack([y, np.zeros(n)], 1)
    r = analyze(t, s, kind="logits", y=np.zeros(n, int), reference="label", bootstrap=400, robust_points=2)
    lo, hi = r.slope_ci
    se = 1 / np.sqrt(n)
    assert lo < r.slope < hi and (hi - lo) / (2 * 1.96 * se) == pytest.approx(1.0, abs=0.15)


def test_a_truncated_file_is_named(tmp_path):
    t, s, _ = _logits(300, 4)
    np.save(tmp_path / "t.npy", t)
    raw = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(ValueError, match=r"cut.npy: the file ends at row"):
        analyze(str(tmp_path / "cut.npy"), s, kind="logits", bootstrap=0, names=(str(tmp_path / "cut.npy"), "s"))


def test_checks_run_on_every_block_of_a_file(tmp_path):
    t, s, _ = _logits(3000, 300)
    t[2500, 7] = np.nan  # in a late block
    np.save(tmp_path / "t.npy", t)
    with pytest.raises(ValueError, match="T: contains nan at row 2500, column 7"):
        analyze(str(tmp_path / "t.npy"), s, kind="logits", names=("T", "S"))
    with pytest.raises(ValueError, match="no such file"):
        open_predictions(str(tmp_path / "missing.npy"), "missing.npy")


def test_options_and_settings():
    t, s, _ = _logits(200, 3)
    a = analyze(t, s, kind="logits", options=Options(bootstrap=0, quantile=0.2))
    b = analyze(t, s, kind="logits", bootstrap=0, quantile=0.2)
    _same(a, b)
    assert a.quantile == 0.2
    with pytest.raises(ValueError, match=r"unknown setting\(s\) \['bootstraps'\]"):
        analyze(t, s, kind="logits", bootstraps=0)
    with pytest.raises(ValueError, match="options must be"):
        analyze(t, s, kind="logits", options={"bootstrap": 0})
    with pytest.raises(ValueError, match="bins must be an integer >= 1"):
        Options(bins=0)


def test_analyze_seeds_without_control_says_so_and_decides_against_the_teacher_itself():
    runs = [_logits(500, 4, seed=i)[:2] for i in range(3)]
    res = analyze_seeds(runs, kind="logits", bootstrap=0)
    assert not res.controlled and "regression to the mean" in res.note
    assert all(e.control_low == 0 and e.control_slope == 1 for e in res.effects)
    assert all("regression to the mean" in d.reason for d in res.decisions.values())
    one = analyze_seeds(runs[:1], kind="logits", bootstrap=0)
    assert one.decisions is None and len(one.reports) == 1
    with pytest.raises(ValueError, match="mix seeds with and without a control"):
        analyze_seeds([runs[0], (*runs[1], runs[1][0])], kind="logits")
    with pytest.raises(ValueError, match="non-empty"):
        analyze_seeds([], kind="logits")


def test_analyze_seeds_checks_tolerance_before_reading(tmp_path):
    missing = (str(tmp_path / "teacher_0.npy"), str(tmp_path / "student_0.npy"))  # reading them would fail
    with pytest.raises(ValueError, match="tolerance must be a finite number >= 0, got -5"):
        analyze_seeds([missing], kind="logits", tolerance=-5)
    with pytest.raises(ValueError, match="tolerance must be"):  # old: one seed never reached decide_o1's check
        analyze_seeds([_logits(50, 3)[:2]], kind="logits", tolerance=-5.0, bootstrap=0)


def test_block_size_follows_the_number_of_classes():
    assert open_predictions(np.zeros((10, 3)) + [0, 1, 2], "x").rows_per_block == inputs.BLOCK_ELEMENTS // 3
    assert open_predictions(np.zeros((10, 10**6)), "x").rows_per_block == 1


def test_the_result_does_not_depend_on_the_number_of_threads(tmp_path):
    t, s, c = _logits(3000, 200)
    np.save(tmp_path / "t.npy", t)
    one = point_confidences(str(tmp_path / "t.npy"), s, c, kind="logits", threads=1)
    for threads in (2, 5):
        many = point_confidences(str(tmp_path / "t.npy"), s, c, kind="logits", threads=threads)
        for a, b in zip(one, many, strict=True):
            if isinstance(a, tuple):
                for x, y in zip(a, b, strict=True):
                    np.testing.assert_array_equal(x, y)
            else:
                np.testing.assert_array_equal(a, b)
    t[2999, 3] = np.inf  # the last block fails: the same message from any number of threads
    for threads in (1, 4):
        with pytest.raises(ValueError, match="teacher: contains inf at row 2999, column 3"):
            point_confidences(t, s, c, kind="logits", threads=threads)
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        point_confidences(t, s, c, kind="logits", threads=0)


def test_control_top1_reference_and_probability_files(tmp_path):
    from scipy.special import softmax

    t, s, c = _logits(900, 7, dtype=np.float64)
    r = analyze(t, s, kind="logits", control=c, reference="control_top1", bootstrap=0)
    np.testing.assert_array_equal(r.classes, c.argmax(1))
    assert r.o1 is not None and r.o1.reference == "control_top1"
    with pytest.raises(ValueError, match="needs a control"):
        analyze(t, s, kind="logits", reference="control_top1")
    pt, ps = (softmax(a, axis=1).astype(np.float32) for a in (t, s))
    np.save(tmp_path / "pt.npy", pt)
    np.save(tmp_path / "ps.npy", ps)
    _same(
        analyze(pt, ps, kind="probabilities", bootstrap=0),
        analyze(str(tmp_path / "pt.npy"), str(tmp_path / "ps.npy"), kind="probabilities", bootstrap=0),
    )
    with pytest.raises(ValueError, match="pt.npy: kind='logits' but every row is non-negative and sums to 1"):
        analyze(str(tmp_path / "pt.npy"), str(tmp_path / "ps.npy"), kind="logits", names=("pt.npy", "ps.npy"))


@pytest.mark.parametrize("kind", ["logits", "probabilities"])
def test_cross_phi_of_the_controls_class_equals_a_second_pass(kind):
    from scipy.special import softmax

    t, s, c = _logits(2000, 9, dtype=np.float64)
    if kind == "probabilities":
        t, s, c = (softmax(a, axis=1) for a in (t, s, c))
    pts = point_confidences(t, s, c, kind=kind)
    again = point_confidences(t, s, c, kind=kind, reference="control_top1")
    for got, want in zip(pts.cross, (again.teacher.logit, again.student.logit, again.control.logit), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(again.cross[0], again.teacher.logit)
    assert point_confidences(t, s, kind=kind).cross is None
