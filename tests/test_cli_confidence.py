"""``kdtheory confidence`` with a control and several seeds (issue 17 item 8): the CLI equals the API."""

import contextlib
import io
import json

import numpy as np
import pytest

from kdtheory import cli
from kdtheory.confidence import analyze_seeds
from kdtheory.deviation import decide_o1, o1_effects


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def one_line_error(argv, *contains):
    code, out, err = run_cli(argv)
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("kdtheory confidence: error:"), err
    for text in contains:
        assert text in lines[0], (text, lines[0])


def _seed(s, n=800, k=10, underfit=0.0):
    """A teacher, a student that flattens the points the recipe finds hard, and a replica (float32 logits)."""
    rng = np.random.default_rng(s)
    Z = 2.0 * rng.standard_normal((n, k))
    t, r = Z + 0.7 * rng.standard_normal((n, k)), Z + 0.7 * rng.standard_normal((n, k))
    st = Z + 0.7 * rng.standard_normal((n, k))
    margin = np.sort(Z, axis=1)[:, -1] - np.sort(Z, axis=1)[:, -2]
    st[margin < np.quantile(margin, 0.3)] *= underfit
    return [a.astype(np.float32) for a in (t, st, r)]


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "runs"
    d.mkdir()
    arrays = []
    for s in range(4):
        arrays.append(_seed(s))
        for role, a in zip(("teacher", "student", "control"), arrays[-1], strict=True):
            np.save(d / f"{role}_{s}.npy", a)
    labels = np.random.default_rng(9).integers(0, 10, 800)
    np.save(tmp_path / "y.npy", labels)
    return d, arrays, labels


def test_cli_control_path_equals_the_api(folder, tmp_path):
    d, arrays, labels = folder
    code, out, err = run_cli(["confidence", "--folder", d, "--logits", "--bootstrap", "0", "--out", tmp_path / "o"])
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    # the API on the arrays in memory, two ways: analyze_seeds, and deviation's functions directly
    api = analyze_seeds(arrays, kind="logits", bootstrap=0, control_name="control").decisions
    direct = decide_o1([o1_effects(*a, kind="logits") for a in arrays], control="control")
    for key in ("underfit", "exaggerate", "exaggerate_slope", "exaggerate_high"):
        got = summary["o1"][key]
        for want in (api[key], direct[key]):
            assert got["estimate"] == pytest.approx(want.estimate, rel=1e-12, abs=1e-12)
            assert [got["ci_low"], got["ci_high"]] == pytest.approx([want.ci_low, want.ci_high], rel=1e-12, abs=1e-12)
            assert got["verdict"] == want.verdict
    # the cross-selected check: groups and class by the control, student against teacher directly
    cross_api = decide_o1(
        [o1_effects(*a, kind="logits", select="control", reference="control_top1") for a in arrays],
        control="control",
        label="cross-selected: ",
    )
    for key, want in cross_api.items():
        got = summary["o1_cross"][key]
        assert got["estimate"] == pytest.approx(want.estimate, rel=1e-9, abs=1e-12)
        assert [got["ci_low"], got["ci_high"]] == pytest.approx([want.ci_low, want.ci_high], rel=1e-9, abs=1e-12)
        assert got["verdict"] == want.verdict and got["name"] == want.name
    assert summary["o1_cross"]["underfit"]["verdict"] == "supported" and "cross-selected check" in out
    assert summary["o1"]["underfit"]["verdict"] == "supported" and summary["controlled"] is True
    assert len(summary["seeds"]) == 4 and summary["seeds"][2]["student"].endswith("student_2.npy")
    assert "underfit" in out and "supported" in out and "not corrected" not in out
    assert (tmp_path / "o" / "confidence.png").stat().st_size > 10_000


def test_triples_equal_the_folder_and_one_seed_with_control_equals_o1_effects(folder, tmp_path):
    d, arrays, labels = folder
    triples = [
        a for s in range(4) for a in ("--triple", *(d / f"{r}_{s}.npy" for r in ("teacher", "student", "control")))
    ]
    _, out_f, _ = run_cli(["confidence", "--folder", d, "--logits", "--bootstrap", "0"])
    code, out_t, err = run_cli(["confidence", *triples, "--logits", "--bootstrap", "0"])
    assert code == 0, err
    assert out_t == out_f
    base = [d / "teacher_1.npy", d / "student_1.npy", "--control", d / "control_1.npy", "--logits"]
    code, out, err = run_cli(
        ["confidence", *base, "--bootstrap", "0", "--labels", tmp_path / "y.npy", "--out", tmp_path / "o1"]
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "o1" / "summary.json").read_text())
    e = o1_effects(*arrays[1], kind="logits")
    assert summary["o1_underfit_low"] == pytest.approx(e.underfit_low, rel=1e-12)
    assert summary["o1_slope"] == pytest.approx(e.slope, rel=1e-12)
    x = o1_effects(*arrays[1], kind="logits", select="control", reference="control_top1")
    assert summary["o1_cross_underfit_low"] == pytest.approx(x.underfit_low, rel=1e-9)
    assert summary["o1_cross_slope"] == pytest.approx(x.slope, rel=1e-9)
    assert summary["control"].endswith("control_1.npy") and summary["ece_teacher"] is not None
    assert "no interval over seeds" in out


def test_without_a_control_the_output_says_it_is_not_corrected(folder, tmp_path):
    d, _, _ = folder
    code, out, err = run_cli(["confidence", d / "teacher_0.npy", d / "student_0.npy", "--logits", "--bootstrap", "0",
                              "--out", tmp_path / "o"])  # fmt: skip
    assert code == 0, err
    assert "not corrected for regression to the mean" in out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["controlled"] is False and "regression to the mean" in summary["note"]
    for f in (d / "control_0.npy", d / "control_1.npy", d / "control_2.npy", d / "control_3.npy"):
        f.unlink()
    code, out, err = run_cli(["confidence", "--folder", d, "--logits", "--bootstrap", "0", "--out", tmp_path / "o2"])
    assert code == 0, err
    assert "not corrected for regression to the mean" in out
    summary = json.loads((tmp_path / "o2" / "summary.json").read_text())
    assert all(NO in e["control"] for e in summary["o1"].values() for NO in ["not corrected"])


def test_bad_input_is_one_line(folder, tmp_path):
    d, _, _ = folder
    t, s, c = (d / f"{r}_0.npy" for r in ("teacher", "student", "control"))
    one_line_error(["confidence", "--folder", tmp_path / "nope", "--logits"], "--folder", "no such folder")
    one_line_error(["confidence", "--folder", tmp_path, "--logits"], "no teacher_K.npy")
    one_line_error(["confidence", t, s, c, "--logits"], "expected two files")
    one_line_error(["confidence", "--logits"], "give the predictions one way")
    one_line_error(["confidence", t, s, "--folder", d, "--logits"], "give the predictions one way")
    one_line_error(["confidence", "--triple", t, s, c, "--control", c, "--logits"], "--control")
    one_line_error(["confidence", "--folder", d, "--logits", "--tolerance", "-1"], "--tolerance must be")
    (d / "student_2.npy").unlink()
    one_line_error(["confidence", "--folder", d, "--logits"], "teacher_2.npy has no student_2.npy")
    np.save(d / "student_2.npy", np.zeros((800, 5), np.float32))
    one_line_error(["confidence", "--folder", d, "--logits"], "student_2.npy", "shape")
    np.save(d / "control_9.npy", np.zeros((800, 10), np.float32))
    one_line_error(["confidence", "--folder", d, "--logits"], "control_9.npy has no teacher_9.npy")
    one_line_error(["confidence", t, s, "--control", tmp_path / "y.npy", "--logits"], "y.npy", "2-D")
