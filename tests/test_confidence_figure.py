"""kdtheory.confidence_figure: the figure draws the report's own numbers (points, fitted line, bins,
control), one row per report, and is saved as a PNG and closed only when a path is given.

The oracle is the report itself (:func:`kdtheory.confidence.analyze`, tested in
tests/test_confidence.py): every drawn line and point is read back from the matplotlib artists.
"""

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

from kdtheory._mpl import pyplot
from kdtheory.confidence import analyze
from kdtheory.confidence_figure import confidence_figure


def _logits(n, k=4, seed=0, scale=1.5):
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((n, k)) * 2.0
    student = scale * teacher + 0.3 * rng.standard_normal((n, k))
    return teacher, student, rng


def _line(ax, label):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def _errorbar(ax, label):
    """``(x, y, half-widths)`` of the error bars drawn under ``label``."""
    (bars,) = [c for c in ax.containers if c.get_label() == label]
    data, _, (segments,) = bars.lines
    ends = np.array([seg[:, 1] for seg in segments.get_segments()])
    return np.asarray(data.get_xdata(), float), np.asarray(data.get_ydata(), float), (ends[:, 1] - ends[:, 0]) / 2


def test_one_report_draws_its_points_fit_and_bins():
    teacher, student, _ = _logits(60)
    r = analyze(teacher, student, kind="logits", bootstrap=20)
    fig = confidence_figure(r, title="a title")
    try:
        assert len(fig.axes) == 2 and fig.get_suptitle() == "a title"
        left, right = fig.axes
        (points,) = left.collections  # a scatter below 2000 points
        assert np.array_equal(points.get_offsets(), np.column_stack([r.teacher_logit, r.student_logit]))
        xs, ys = _line(left, f"fit: slope {r.slope:.2f} [{r.slope_ci[0]:.2f}, {r.slope_ci[1]:.2f}]")
        np.testing.assert_allclose(ys, r.slope * xs + r.intercept, rtol=1e-12)
        lo = min(r.teacher_logit.min(), r.student_logit.min())
        hi = max(r.teacher_logit.max(), r.student_logit.max())
        np.testing.assert_array_equal(_line(left, "y = x"), [[lo, hi], [lo, hi]])
        np.testing.assert_array_equal(_line(left, "binned means"), [r.bin_teacher, r.bin_student])
        x, y, half = _errorbar(right, "student − teacher")
        np.testing.assert_array_equal([x, y], [r.bin_teacher, r.bin_delta])
        np.testing.assert_allclose(half, 2 * np.nan_to_num(r.bin_delta_se), rtol=1e-12)  # ± 2 standard errors
        assert left.get_title() == "predictions: n = 60"
        assert any("no control" in t.get_text() for t in right.texts)
    finally:
        pyplot().close(fig)


def test_several_reports_and_a_control_draw_one_row_each():
    teacher, student, rng = _logits(80, seed=1)
    control = teacher + 0.5 * rng.standard_normal(teacher.shape)
    with_control = analyze(teacher, student, kind="logits", control=control, bootstrap=0)
    alone = analyze(teacher, student, kind="logits", bootstrap=0)
    fig = confidence_figure({"seed 0": with_control, "seed 1": alone})
    try:
        assert len(fig.axes) == 4
        (a, a2), (b, b2) = fig.axes[:2], fig.axes[2:]
        assert a.get_title().startswith("seed 0") and b.get_title().startswith("seed 1")
        labels_a = {ln.get_label() for ln in a.get_lines()}
        labels_b = {ln.get_label() for ln in b.get_lines()}
        assert {"control binned means"} <= labels_a and not any("control" in s for s in labels_b)
        assert any(ln.startswith("control fit: slope") for ln in labels_a)
        # the control's fitted line is the least-squares fit of φ_control on φ_teacher
        (label,) = [ln for ln in labels_a if ln.startswith("control fit")]
        xs, ys = _line(a, label)
        slope, intercept = np.polyfit(with_control.teacher_logit, with_control.control_logit, 1)
        np.testing.assert_allclose(ys, slope * xs + intercept, rtol=1e-9, atol=1e-12)
        # its binned means: the control's mean φ over the report's teacher-confidence bins (equal counts)
        order = np.argsort(with_control.teacher_logit, kind="stable")
        chunks = np.split(order, np.cumsum(with_control.bin_count)[:-1])
        want_x = [with_control.teacher_logit[c].mean() for c in chunks]
        want_y = [with_control.control_logit[c].mean() for c in chunks]
        np.testing.assert_allclose(_line(a, "control binned means"), [want_x, want_y], rtol=1e-12, atol=1e-12)
        assert not any("no control" in t.get_text() for t in a2.texts)
        assert any("no control" in t.get_text() for t in b2.texts)
    finally:
        pyplot().close(fig)


def test_many_points_are_binned_as_a_hexbin():
    teacher, student, _ = _logits(2500, k=3, seed=2)
    fig = confidence_figure(analyze(teacher, student, kind="logits", bootstrap=0))
    try:
        (hexes,) = fig.axes[0].collections
        assert isinstance(hexes, PolyCollection) and hexes.get_array().sum() == 2500  # every point in one bin
    finally:
        pyplot().close(fig)


def test_saved_only_with_a_path_and_then_closed(tmp_path):
    teacher, student, _ = _logits(30, seed=3)
    r = analyze(teacher, student, kind="logits", bootstrap=0)
    plt = pyplot()
    path = tmp_path / "confidence.png"
    fig = confidence_figure(r, path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)  # closed once saved
    assert [p.name for p in tmp_path.iterdir()] == ["confidence.png"]  # atomic: no temporary left
    kept = confidence_figure(r)
    try:
        assert plt.fignum_exists(kept.number)  # without a path the caller gets an open figure
    finally:
        plt.close(kept)


def test_nothing_to_draw_is_refused():
    with pytest.raises(ValueError, match="reports: nothing to draw"):
        confidence_figure({})


def test_the_tolerance_band_is_in_the_legend():
    teacher, student, _ = _logits(60)
    r = analyze(teacher, student, kind="logits", bootstrap=0, tol=0.25)
    fig = confidence_figure(r)
    try:
        texts = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
        assert sorted(texts) == sorted(["student − teacher", "|Δφ| ≤ tol = 0.25"])
    finally:
        pyplot().close(fig)
