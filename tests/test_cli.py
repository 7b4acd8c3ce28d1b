"""The ``kdtheory`` command: one-line errors, exit codes, ``--out`` checks, Ctrl-C (issue 11)."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import softmax

from kdtheory import cli


def run_cli(argv):
    """``cli.main(argv)`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, out, err, *, status=2, contains=()):
    assert code == status, (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("kdtheory"), err
    for text in contains:
        assert text in lines[0], (text, lines[0])


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    t = 2 * rng.standard_normal((300, 4))
    s = 1.3 * t + 0.5 * rng.standard_normal((300, 4))
    paths = {
        "t": tmp_path / "teacher.npy",
        "s": tmp_path / "student.npy",
        "pt": tmp_path / "teacher_probs.npy",
        "ps": tmp_path / "student_probs.npy",
        "y": tmp_path / "labels.npy",
        "text": tmp_path / "notes.npy",
        "file": tmp_path / "a_file.txt",
    }
    np.save(paths["t"], t)
    np.save(paths["s"], s)
    np.save(paths["pt"], softmax(t, 1))
    np.save(paths["ps"], softmax(s, 1))
    np.save(paths["y"], rng.integers(0, 4, 300))
    paths["text"].write_text("teacher logits, see the spreadsheet\n")
    paths["file"].write_text("not a directory\n")
    return {k: str(v) for k, v in paths.items()}


def _unwritable_dir(tmp_path):
    if os.geteuid() != 0:
        d = tmp_path / "locked"
        d.mkdir()
        d.chmod(0o500)
        return d
    if Path("/sys").is_dir():
        try:
            (Path("/sys") / "kdtheory-probe").mkdir()
        except OSError:
            return Path("/sys")
    pytest.skip("no directory this (root) process cannot write")


# ---------------------------------------------------------------- rows 5 and 6: --out


@pytest.mark.parametrize("command", ["reproduce", "confidence"])
def test_row5_out_is_an_existing_file(files, command):
    args = ["reproduce", "--quick"] if command == "reproduce" else ["confidence", files["t"], files["s"], "--logits"]
    # old: a traceback from deep inside the pipeline / the figure writer
    assert_one_line_error(*run_cli([*args, "--out", files["file"]]), contains=("--out", "is not a directory"))
    assert Path(files["file"]).read_text() == "not a directory\n"


@pytest.mark.parametrize("command", ["reproduce", "confidence"])
def test_row6_out_cannot_be_written(files, tmp_path, command):
    locked = _unwritable_dir(tmp_path)
    args = ["reproduce", "--quick"] if command == "reproduce" else ["confidence", files["t"], files["s"], "--logits"]
    assert_one_line_error(*run_cli([*args, "--out", locked / "out"]), contains=("--out", "cannot write in"))
    below_a_file = Path(files["file"]) / "out"
    assert_one_line_error(*run_cli([*args, "--out", below_a_file]), contains=("is not a directory",))


# ---------------------------------------------------------------- row 13: Ctrl-C


def test_row13_keyboard_interrupt_is_one_line_and_exit_130(monkeypatch, tmp_path):
    from kdtheory.experiments import reproduce

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "reproduce", interrupted)
    code, out, err = run_cli(["reproduce", "--quick", "--out", tmp_path / "out"])
    assert code == 130 and err == "kdtheory reproduce: interrupted\n" and "Traceback" not in out + err


@pytest.mark.slow
def test_row13_sigint_during_reproduce_prints_interrupted(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kdtheory.cli", "reproduce", "--quick", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = []
    for line in proc.stderr:  # past the imports: wait for the JAX experiments to run (a fixed sleep
        first.append(line)  # could land in the imports on a loaded machine)
        if "confidence_deviation: running" in line:
            break
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    err = "".join(first) + err
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "kdtheory reproduce: interrupted", err


# ---------------------------------------------------------------- row 1: kind stated; row 2: clipping


def test_row1_kind_is_required_and_checked(files):
    assert_one_line_error(*run_cli(["confidence", files["t"], files["s"]]), contains=("--logits", "--probabilities"))
    assert_one_line_error(
        *run_cli(["confidence", files["t"], files["s"], "--logits", "--probabilities"]), contains=("not allowed",)
    )
    assert_one_line_error(
        *run_cli(["confidence", files["pt"], files["ps"], "--logits"]),
        contains=("teacher_probs.npy", "every row is non-negative and sums to 1", "--probabilities"),
    )
    assert_one_line_error(
        *run_cli(["confidence", files["t"], files["s"], "--probabilities"]),
        contains=("teacher.npy", "negative entry", "--logits"),
    )
    # API and CLI agree: same slope from the logits and from their softmax
    code_l, out_l, _ = run_cli(["confidence", files["t"], files["s"], "--logits", "--bootstrap", "0"])
    code_p, out_p, _ = run_cli(["confidence", files["pt"], files["ps"], "--probabilities", "--bootstrap", "0"])
    slope = lambda out: float(next(ln.split()[1] for ln in out.splitlines() if ln.startswith("slope ")))  # noqa: E731
    assert code_l == code_p == 0 and slope(out_l) == pytest.approx(slope(out_p), rel=1e-3)


def test_row2_clipped_points_in_table_and_summary(tmp_path):
    rng = np.random.default_rng(0)
    z = 40 * rng.standard_normal((400, 10))
    np.save(tmp_path / "t.npy", softmax(z, 1).astype(np.float32))
    np.save(tmp_path / "s.npy", softmax(0.5 * z, 1).astype(np.float32))
    args = ["confidence", tmp_path / "t.npy", tmp_path / "s.npy", "--probabilities", "--bootstrap", "0"]
    assert_one_line_error(*run_cli(args), contains=("exactly 0 or 1", "--logits", "--accept-clipping"))
    code, out, err = run_cli([*args, "--accept-clipping", "--out", tmp_path / "out"])
    assert code == 0, err
    clipped = int(next(ln.split()[1] for ln in out.splitlines() if ln.startswith("clipped_points")))
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["clipped_points"] == clipped > 0.01 * 400 and summary["kind"] == "probabilities"


# ---------------------------------------------------------------- row 7: string labels


def test_row7_string_labels(files, tmp_path):
    y = np.load(files["y"])
    np.save(tmp_path / "names.npy", np.array(["ant", "bee", "cat", "dog"])[y])
    base = ["confidence", files["t"], files["s"], "--logits", "--bootstrap", "0"]
    code, out, err = run_cli([*base, "--labels", tmp_path / "names.npy"])  # old: a traceback
    assert code == 0, err
    assert "label classes: ant=0, bee=1, cat=2, dog=3" in out
    _, ref, _ = run_cli([*base, "--labels", files["y"]])
    ece = lambda text: next(ln for ln in text.splitlines() if ln.startswith("ece_teacher"))  # noqa: E731
    assert ece(out) == ece(ref)
    code, out, _ = run_cli([*base, "--labels", tmp_path / "names.npy", "--classes", "dog,cat,bee,ant"])
    assert code == 0 and "label classes: ant=3, bee=2, cat=1, dog=0" in out
    np.save(tmp_path / "three.npy", np.array(["ant", "bee", "cat"])[y % 3])
    assert_one_line_error(
        *run_cli([*base, "--labels", tmp_path / "three.npy"]), contains=("3 distinct string labels for 4", "--classes")
    )


# ---------------------------------------------------------------- row 14: messages name the argument


def test_row14_messages(files, tmp_path):
    base = ["confidence", files["t"], files["s"], "--logits"]
    assert_one_line_error(*run_cli([*base, "--bins", "0"]), contains=("--bins must be an integer >= 1, got 0",))
    assert_one_line_error(*run_cli([*base, "--bootstrap", "-5"]), contains=("--bootstrap must be an integer >= 0",))
    assert_one_line_error(*run_cli([*base, "--bins", "many"]), contains=("--bins", "invalid int value"))
    # a text file: old message "Cannot load file containing pickled data"
    assert_one_line_error(
        *run_cli(["confidence", files["text"], files["s"], "--logits"]),
        contains=("notes.npy", "expected a .npy or .npz file", "not a numpy file"),
    )
    np.save(tmp_path / "objects.npy", np.array([[1.0, 2.0], [3.0]], dtype=object), allow_pickle=True)
    assert_one_line_error(
        *run_cli(["confidence", tmp_path / "objects.npy", files["s"], "--logits"]),
        contains=("objects.npy", "Python objects"),
    )
    # a 1-D teacher: old message blamed the labels file
    np.save(tmp_path / "flat.npy", np.zeros(300))
    assert_one_line_error(
        *run_cli(["confidence", tmp_path / "flat.npy", files["s"], "--logits", "--labels", files["y"]]),
        contains=("flat.npy", "expected a 2-D array"),
    )
    assert_one_line_error(
        *run_cli(["confidence", tmp_path / "missing.npy", files["s"], "--logits"]), contains=("no such file",)
    )
    np.savez(tmp_path / "two.npz", a=np.zeros((3, 2)), b=np.ones((3, 2)))
    assert_one_line_error(
        *run_cli(["confidence", tmp_path / "two.npz", files["s"], "--logits"]), contains=("choose one as",)
    )


def test_kl_infinite_is_the_string_inf_in_summary_json(tmp_path):
    p_t = np.tile([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], (100, 1))
    p_s = np.tile([[0.9, 0.0, 0.1], [0.2, 0.3, 0.5]], (100, 1))
    np.save(tmp_path / "t.npy", p_t)
    np.save(tmp_path / "s.npy", p_s)
    args = ["confidence", tmp_path / "t.npy", tmp_path / "s.npy", "--probabilities", "--bootstrap", "0"]
    code, out, err = run_cli([*args, "--out", tmp_path / "out"])
    assert code == 0, err
    assert next(ln for ln in out.splitlines() if ln.startswith("kl_teacher_student")).split()[1] == "inf"
    text = (tmp_path / "out" / "summary.json").read_text()
    summary = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert summary["kl_teacher_student"] == "inf" and summary["kl_infinite_points"] == 100
    assert (tmp_path / "out" / "confidence.png").stat().st_size > 10_000


def test_reads_npz_keys_and_matches_an_independent_fit(tmp_path):
    rng = np.random.default_rng(0)
    t = rng.standard_normal((300, 4)) * 2
    np.savez(tmp_path / "preds.npz", teacher=t, student=1.3 * t)
    code, out, err = run_cli(
        ["confidence", f"{tmp_path / 'preds.npz'}:teacher", f"{tmp_path / 'preds.npz'}:student", "--logits"]
        + ["--out", tmp_path / "out", "--bootstrap", "50"]
    )
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    cls = t.argmax(axis=1)
    rows = np.arange(300)
    phi = [np.log(p[rows, cls] / (1 - p[rows, cls])) for p in (softmax(t, 1), softmax(1.3 * t, 1))]
    assert summary["slope"] == pytest.approx(np.polyfit(phi[0], phi[1], 1)[0], rel=1e-9)  # independent OLS
    assert summary["slope_ci_low"] < summary["slope"] < summary["slope_ci_high"]


# ---------------------------------------------------------------- property: never a traceback


def _predictions(draw, rng, n, k, kind, valid):
    shape = "ok" if valid else draw(st.sampled_from(["ok", "1d", "nan", "one_class", "other_n"]))
    if shape == "1d":
        return rng.standard_normal(n)
    if shape == "one_class":
        return rng.standard_normal((n, 1))
    rows = n + 1 if shape == "other_n" else n
    z = draw(st.sampled_from([0.1, 3.0, 60.0])) * rng.standard_normal((rows, k))
    x = z if kind == "logits" else softmax(z, 1)
    x = x.astype(draw(st.sampled_from([np.float64, np.float32, np.float16])))
    if shape == "nan":
        x[rng.integers(0, rows), 0] = np.nan
    return x


@st.composite
def command_lines(draw):
    """Half valid command lines (kind stated correctly, options in range), half with malformed parts."""
    valid = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    k = draw(st.integers(2, 5))
    n = draw(st.integers(k if valid else 1, 30))  # valid string labels name all k classes
    data_kind = draw(st.sampled_from(["logits", "probabilities"]))
    stated = f"--{data_kind}" if valid else draw(st.sampled_from(["--logits", "--probabilities", None]))
    files = {"t": _predictions(draw, rng, n, k, data_kind, valid), "s": _predictions(draw, rng, n, k, data_kind, valid)}
    good_labels = [None, "int", "str", "onehot"]
    labels = draw(st.sampled_from(good_labels if valid else good_labels + ["bad_int", "text"]))
    if labels == "int":
        files["y"] = rng.integers(0, k, n)
    elif labels == "bad_int":
        files["y"] = rng.integers(-1, k + 2, n)
    elif labels == "str":
        files["y"] = np.array(["a", "b", "c", "d", "e"])[:k][rng.permutation(np.arange(n) % k)]
    elif labels == "onehot":
        files["y"] = np.eye(k)[rng.integers(0, k, n)]
    elif labels == "text":
        files["y"] = "text"
    options = []
    ranges = [
        ("--bins", st.integers(1, 12), st.integers(-2, 12)),
        ("--bootstrap", st.integers(0, 30), st.integers(-3, 30)),
        ("--quantile", st.sampled_from([0.1, 0.5]), st.sampled_from([0.0, 0.1, 0.7, float("nan")])),
        ("--tol", st.sampled_from([0.0, 0.5]), st.sampled_from([-1.0, 0.0, 0.5])),
        (
            "--reference",
            st.sampled_from(["teacher_top1", "label"] if labels else ["teacher_top1"]),
            st.sampled_from(["teacher_top1", "label", "median"]),
        ),
    ]
    for flag, good, any_value in ranges:
        if draw(st.booleans()):
            options += [flag, str(draw(good if valid else any_value))]
    if valid or draw(st.booleans()):
        options.append("--accept-clipping")  # saturated float16 probabilities are refused otherwise
    out = draw(st.sampled_from([None, None, "new"] if valid else [None, "file", "new"]))
    return valid, files, stated, labels, options, out


@settings(max_examples=60)
@given(command_lines())
def test_property_cli_never_prints_a_traceback(case):
    valid, arrays, stated, labels, options, out = case
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = {}
        for key, value in arrays.items():
            paths[key] = tmp / f"{key}.npy"
            if isinstance(value, str):
                paths[key].write_text("1,2,3\n")
            else:
                np.save(paths[key], value)
        argv = ["confidence", paths["t"], paths["s"]] + ([stated] if stated else []) + options
        if labels is not None:
            argv += ["--labels", paths["y"]]
        if out == "file":
            (tmp / "f").write_text("")
            argv += ["--out", tmp / "f"]
        elif out == "new":
            argv += ["--out", tmp / "out" / "deeper"]
        code, stdout, stderr = run_cli(argv)
        assert "Traceback" not in stdout + stderr
        if valid:
            assert code == 0, stderr
        if code == 0:
            assert "slope" in stdout and stderr == ""
            if out == "new":
                json.loads((tmp / "out" / "deeper" / "summary.json").read_text(), parse_constant=pytest.fail)
        else:
            assert_one_line_error(code, stdout, stderr, status=2)


def test_subprocess_runs_give_status_and_one_line(files):
    ok = subprocess.run(
        [sys.executable, "-m", "kdtheory.cli", "confidence", files["t"], files["s"], "--logits", "--bootstrap", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0 and "slope" in ok.stdout and ok.stderr == "", ok.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "kdtheory.cli", "confidence", files["text"], files["s"], "--logits"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(bad.returncode, bad.stdout, bad.stderr, contains=("notes.npy",))
