"""The reproduce pipeline, the CLI, the demos, the derivations and the README's promises."""

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from kdtheory import cli, experiments
from kdtheory.experiments import reproduce as rep

ROOT = Path(__file__).resolve().parents[1]


def test_reproduce_quick_writes_report(tmp_path, capsys):
    assert cli.main(["reproduce", "--quick", "--out", str(tmp_path)]) == 0
    names = experiments.names()
    data = json.loads((tmp_path / "results.json").read_text())
    assert set(data["experiments"]) == set(names)
    assert data["quick"] is True and data["versions"]["numpy"]
    report = (tmp_path / "report.md").read_text()
    assert "| experiment | claim | measured | verdict | figure |" in report
    for name in names:
        res = data["experiments"][name]
        assert res["verdict"] in ("supported", "not supported", "inconclusive")
        assert "seed" in json.dumps(res["config"])
        for fig in res["figures"]:
            assert (tmp_path / fig).stat().st_size > 10_000
            assert f"({fig})" in report
    assert not list(tmp_path.glob(".staging-*"))
    assert "eigen_dynamics" in capsys.readouterr().out


def test_eigen_dynamics_supported_and_exact(tmp_path):
    res = experiments.load("eigen_dynamics").run(experiments.load("eigen_dynamics").Config.quick(), tmp_path)
    assert res.verdict == "supported"
    assert res.measured["relative_error_train_predictions"] < 1e-9
    assert res.measured["half_learning_step_monotone"] is True


def test_killed_run_leaves_previous_report_intact(tmp_path, monkeypatch):
    rep.reproduce(tmp_path, quick=True, only=["eigen_dynamics"], progress=lambda m: None)
    before = (tmp_path / "report.md").read_text()
    mod = experiments.load("eigen_dynamics")

    def boom(cfg, out_dir, progress=None):
        (Path(out_dir) / "eigen_dynamics.png").write_bytes(b"half a figure")
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "run", boom)
    with pytest.raises(KeyboardInterrupt):
        rep.reproduce(tmp_path, quick=True, only=["eigen_dynamics"], progress=lambda m: None)
    assert (tmp_path / "report.md").read_text() == before
    assert (tmp_path / "eigen_dynamics.png").stat().st_size > 10_000
    assert not list(tmp_path.glob(".staging-*"))


def test_cli_errors_and_list(tmp_path, capsys):
    assert cli.main(["reproduce", "--only", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    assert cli.main(["list"]) == 0
    assert "eigen_dynamics" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["frobnicate"])


@pytest.mark.parametrize("name", ["eigen_dynamics", "repeated_self_distillation"])
def test_demo_runs(tmp_path, monkeypatch, capsys, name):
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--quick", "--out", str(tmp_path)])
    runpy.run_path(str(ROOT / "demos" / f"{name}.py"), run_name="__main__")
    assert "supported" in capsys.readouterr().out
    assert (tmp_path / f"{name}.png").exists()


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
        " kdtheory.confidence, kdtheory.ridge_family, kdtheory.planted, kdtheory.data, kdtheory.experiments;"
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


def test_distillation_experiments_quick(tmp_path):
    ex = experiments.load("eigenspace_exaggeration")
    res = ex.run(ex.Config.quick(), tmp_path)
    assert res.verdict == "supported"
    assert all(m >= -1e-12 for m in res.measured["worst_margin"].values())
    assert len(res.measured["planted_teacher_risk"]) == ex.Config.quick().seeds
    rs = experiments.load("repeated_self_distillation")
    res = rs.run(rs.Config.quick(), tmp_path)
    assert res.measured["mobahi_collapsed_at"] is not None
    reg = [c for c in res.measured["mobahi_reg"] if c == c]  # drop NaN after the collapse
    assert all(b > a for a, b in zip(reg, reg[1:], strict=False))
    assert (tmp_path / "eigenspace_exaggeration.png").exists() and (
        tmp_path / "repeated_self_distillation.png"
    ).exists()
