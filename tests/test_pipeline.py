"""The real quick pipeline (run once per test session), the demos, the derivations and the README.

The quick ``kdtheory reproduce`` runs once, in the session fixture ``quick_run``; every test that
needs its outputs shares it. The pipeline's folder guarantees are in test_experiments_reproduce.py.
"""

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from kdtheory import cli, experiments
from kdtheory.experiments.folder import MARKER
from kdtheory.experiments.reproduce import WIDTH, reproduce, summary
from kdtheory.experiments.result import SMOKE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """``reproduce --quick`` of every registered experiment, once: (folder, results, progress lines)."""
    out = tmp_path_factory.mktemp("quick") / "out"
    lines: list[str] = []
    results = reproduce(out, quick=True, progress=lines.append)
    return out, {r.name: r for r in results}, lines


@pytest.mark.slow
def test_quick_run_report(quick_run):
    out, results, lines = quick_run
    names = experiments.names()
    assert list(results) == names
    data = json.loads((out / "results.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert set(data["experiments"]) == set(names) and data["size"] == "quick" and data["versions"]["numpy"]
    kinds = {n: r["kind"] for n, r in data["experiments"].items()}
    assert {n for n, k in kinds.items() if k == "validation"} == {
        "eigen_dynamics", "eigenspace_exaggeration", "repeated_self_distillation"
    }  # fmt: skip
    assert {n for n, k in kinds.items() if k == "claim"} == {
        "confidence_deviation", "late_distillation", "gradient_denoising", "ntk_bridge", "planted_generalization"
    }  # fmt: skip
    report = (out / "report.md").read_text()
    assert report.index("## The paper's claims") < report.index("## Validations") < report.index("## eigen_dynamics")
    for name, res in data["experiments"].items():
        assert res["verdict"] == SMOKE and res["reason"]
        assert "seed" in json.dumps(res["config"])
        if res["kind"] == "claim":
            assert res["effects"]
            for e in res["effects"]:
                assert list(e)[:7] == ["name", "estimate", "ci_low", "ci_high", "seeds", "control", "rule"]
                assert isinstance(e["estimate"], float) and e["seeds"] >= 1 and e["control"] and e["rule"]
        assert res["figures"] == [f"{name}.png"]
        assert (out / f"{name}.png").stat().st_size > 10_000 and f"]({name}.png)" in report
    assert {p.name for p in out.iterdir()} == {f"{n}.png" for n in names} | {"report.md", "results.json", MARKER}
    assert any(line.startswith(f"[1/{len(names)}] eigen_dynamics: running") for line in lines)


@pytest.mark.slow
def test_terminal_summary_of_the_quick_run_fits_120_columns(quick_run):
    out, results, _ = quick_run
    lines = summary(list(results.values()), out)
    assert all(len(ln) <= WIDTH for ln in lines), max(lines, key=len)
    rows = lines[1 : 1 + len(results)]
    assert [r.split()[0] for r in rows] == list(results) and all("smoke run" in r for r in rows)


@pytest.mark.slow
def test_eigen_dynamics_exact(quick_run):
    res = quick_run[1]["eigen_dynamics"]
    assert res.rule_verdict == "supported"
    assert res.measured["relative_error_train_predictions"] < 1e-9
    assert res.measured["half_learning_step_monotone"] is True


@pytest.mark.slow
def test_distillation_validations(quick_run):
    res = quick_run[1]["eigenspace_exaggeration"]
    assert res.rule_verdict == "supported"
    worst = res.measured["worst_margin_informative"]
    assert res.measured["informative_points"] > 0 and worst["E1"] > 0 and worst["E2"] > 0
    assert all(m >= -1e-12 for m in worst.values())
    res = quick_run[1]["repeated_self_distillation"]
    assert res.measured["mobahi_collapsed_at"] is not None
    reg = [c for c in res.measured["mobahi_reg"] if c == c]  # drop NaN after the collapse
    assert all(b > a for a, b in zip(reg, reg[1:], strict=False))


def test_cli_errors_and_list(tmp_path, capsys):
    assert cli.main(["reproduce", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    assert cli.main(["list"]) == 0
    assert "eigen_dynamics: GD learns" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["eigen_dynamics", "repeated_self_distillation"])
def test_demo_runs(tmp_path, monkeypatch, capsys, name):
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--quick", "--out", str(tmp_path / "out")])
    runpy.run_path(str(ROOT / "demos" / f"{name}.py"), run_name="__main__")
    assert f"-> {SMOKE}: " in capsys.readouterr().out
    assert (tmp_path / "out" / f"{name}.png").exists()


def test_every_experiment_has_a_demo():
    assert sorted(p.stem for p in (ROOT / "demos").glob("*.py")) == sorted(experiments.names())


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "derivations").glob("*.py")))
def test_derivations_agree_with_kdtheory(script, capsys):
    ns = runpy.run_path(str(ROOT / "derivations" / script))
    assert ns["main"]() == 0
    assert "OK" in capsys.readouterr().out


def test_core_modules_import_numpy_scipy_only():
    code = (
        "import sys, kdtheory.eigen, kdtheory.dynamics, kdtheory.distill, kdtheory.exaggeration,"
        " kdtheory.confidence, kdtheory.ridge_family, kdtheory.planted, kdtheory.data, kdtheory.stats,"
        " kdtheory.trajectory, kdtheory.experiments;"
        "heavy = [m for m in ('jax', 'matplotlib', 'sympy', 'hypothesis') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.S)
    lines = [ln.strip() for b in blocks for ln in b.splitlines() if ln.strip() and not ln.startswith("#")]
    test_cmd = next(ln for ln in lines if "pytest" in ln)
    main_cmd = next(ln for ln in lines if "kdtheory reproduce" in ln)
    assert test_cmd in ci, "CI must run the README's test command verbatim"
    # both set up the same way: a fresh venv, then an install of this checkout
    main_steps = [s.strip() for s in main_cmd.split("&&")]
    test_steps = [s.strip() for s in test_cmd.split("&&")]
    assert main_steps[0] == test_steps[0] and "venv" in main_steps[0]
    assert main_steps[1].replace(" .", " '.[test]'") == test_steps[1]
    assert main_steps[-1].endswith("kdtheory reproduce")
    assert "kdtheory reproduce --quick" in ci
