"""``kdtheory reproduce`` / ``list`` / ``--version`` (issue 21 items 2-4, issue 19 row 11's CLI row).

The acceptance run (``reproduce --quick --only late_distillation --set seeds=3``) is in-process:
after tests/test_pipeline.py's quick run (same session) the paired runs of seeds 0 and 1 are
cached and only seed 2 trains.
"""

import contextlib
import io
import json
from pathlib import Path

import fake_experiments
import pytest

from kdtheory import _provenance, cli, experiments
from kdtheory.experiments import Effect, Experiment, Outcome
from kdtheory.experiments.reproduce import WIDTH, summary

REPO = Path(__file__).resolve().parents[1]


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code, out, err, *contains):
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("kdtheory"), err
    for text in contains:
        assert text in lines[0], (text, lines[0])


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(experiments, "REGISTRY", {e.name: e for e in fake_experiments.experiments()})
    monkeypatch.delenv("FAKE_SYNC", raising=False)


# ---------------------------------------------------------------- acceptance: --set seeds=3


@pytest.mark.slow
def test_acceptance_set_seeds_is_used_and_recorded(tmp_path):
    out = tmp_path / "out"
    code, stdout, err = run_cli(
        ["reproduce", "--quick", "--only", "late_distillation", "--set", "seeds=3", "--out", out]
    )
    assert code == 0, err
    data = json.loads((out / "results.json").read_text())
    res = data["experiments"]["late_distillation"]
    assert res["config"]["seeds"] == 3 and res["overrides"] == {"seeds": "3"} and res["registered"] is False
    assert data["registered"] is False and data["overrides"] == {"late_distillation": {"seeds": "3"}}
    # the override is used: the headline effects are over 3 seeds (the map keeps map_seeds = 2)
    seeds = {e["seeds"] for e in res["effects"]}
    assert 3 in seeds and seeds <= {2, 3}
    assert "seed 2:" in err  # the third seed trained
    report = (out / "report.md").read_text()
    assert "Configuration overridden — this run is not the registered evidence." in report
    assert "*Configuration overridden* (`seeds=3`): not the registered evidence." in report
    versions = data["versions"]
    assert versions["jax"] and versions["devices"][0]["platform"] and "git" in versions
    # the terminal summary: compact, marked, every line within the width
    lines = stdout.strip().splitlines()
    assert lines[1].startswith("late_distillation*") and "smoke run" in lines[1]
    assert "* configuration overridden" in stdout and all(len(ln) <= WIDTH for ln in lines), lines


@pytest.mark.parametrize(
    ("args", "contains"),
    [
        (["--set", "seeds=1"], ("--set seeds=1: seeds must be an integer >= 2", "got 1")),
        (["--set", "seeds=three"], ("--set seeds=three: seeds must be an integer >= 2",)),
        (["--set", "seed=3"], ("unknown parameter seed; did you mean seeds?",)),
        (["--set", "seeds"], ("--set seeds: expected PATH=VALUE",)),
        (["--set", "designs.mnist1d.label_noise=1.5"], ("designs.mnist1d.label_noise must be a number in [0, 1)",)),
        (["--set", "designs.imagenet.n=5"], ("designs has no item 'imagenet' (its items: mixture, mnist1d",)),
        (["--set", "map_stop=val,first"], ("map_stop must be a comma-separated list of one of 'val', 'last'",)),
    ],
)
def test_bad_overrides_exit_2_with_one_line_and_nothing_written(tmp_path, args, contains):
    out = tmp_path / "out"
    assert_one_line_error(
        *run_cli(["reproduce", "--quick", "--only", "late_distillation", *args, "--out", out]), *contains
    )
    assert list(tmp_path.iterdir()) == []


def test_set_needs_only_and_config_files_are_checked(tmp_path):
    out = tmp_path / "out"
    assert_one_line_error(
        *run_cli(["reproduce", "--set", "seeds=3", "--out", out]), "--set seeds=3: name the experiments"
    )
    missing = tmp_path / "missing.toml"
    assert_one_line_error(*run_cli(["reproduce", "--config", missing, "--out", out]), "cannot read")
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = = 3\n")
    assert_one_line_error(*run_cli(["reproduce", "--config", bad, "--out", out]), "not valid TOML")
    other = tmp_path / "other.toml"
    other.write_text("[ntk_bridge]\nseeds = 3\n")
    assert_one_line_error(
        *run_cli(["reproduce", "--only", "late_distillation", "--config", other, "--out", out]),
        "configures ntk_bridge, which --only does not select",
    )
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[late_distillation.designs.mixture]\nteacher_t = 0\n")
    assert_one_line_error(
        *run_cli(["reproduce", "--quick", "--config", wrong, "--out", out]),
        f"--config {wrong} [late_distillation]: designs.mixture.teacher_t must be an integer >= 1",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "other.toml", "wrong.toml"]


def test_config_file_and_set_with_fake_experiments(fakes, tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text("[fake_claim]\nvalue = 2.5\nn = 7\n")
    out = tmp_path / "out"
    # without --only, --config runs the experiments it names; --set is applied after it
    code, stdout, err = run_cli(["reproduce", "--config", toml, "--out", out])
    assert code == 0, err
    data = json.loads((out / "results.json").read_text())
    assert list(data["experiments"]) == ["fake_claim"]
    res = data["experiments"]["fake_claim"]
    assert res["config"] == {"seed": 0, "n": 7, "value": 2.5} and res["overrides"] == {"value": 2.5, "n": 7}
    code, stdout, err = run_cli(["reproduce", "--only", "fake_claim", "--config", toml, "--set", "n=9", "--out", out])
    assert code == 0, err
    res = json.loads((out / "results.json").read_text())["experiments"]["fake_claim"]
    assert res["config"]["n"] == 9 and res["overrides"] == {"value": 2.5, "n": "9"}
    # an override that equals the declared value is recorded, and the run is still the registered one
    code, stdout, err = run_cli(["reproduce", "--only", "fake_claim", "--set", "n=5", "--out", out])
    data = json.loads((out / "results.json").read_text())
    assert data["registered"] is True and data["overrides"] == {"fake_claim": {"n": "5"}}
    assert "*" not in stdout.splitlines()[1]


# ---------------------------------------------------------------- the terminal summary


def _long(cfg, say):
    reason = "because " + "an interval of a map cell, " * 80
    effect = Effect(
        "mnist1d (η=0.2): " + "a very long effect name " * 20, -1.234567e-5, -2.5e-4, 3.1e-6, 10, "twin", "rule",
        "t", "inconclusive", reason, extra={"regime": "lazy (width 512) in a very long description of the regime"},
    )  # fmt: skip
    return Outcome("inconclusive", reason, effects=(effect,))


def test_summary_lines_fit_with_very_long_names_and_reasons(monkeypatch, tmp_path):
    fake = fake_experiments.experiments()[0].full
    exps = [
        Experiment("a_claim_with_an_unusually_long_registered_name_x" * 2, "claim", "c", fake, fake, _long),
        Experiment("check", "validation", "v", fake, fake, lambda cfg, say: Outcome("supported", "ok " * 500)),
    ]
    monkeypatch.setattr(experiments, "REGISTRY", {e.name: e for e in exps})
    out = tmp_path / "out"
    code, stdout, err = run_cli(["reproduce", "--out", out, "--set", "value=2", "--only", *[e.name for e in exps]])
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert all(len(ln) <= WIDTH for ln in lines), max(lines, key=len)
    assert len(lines) == 2 + 1 + 1 + 1  # header, two rows, overridden note, where to read more
    row = lines[1]
    assert "claim" in row and "lazy (width 5…" in row and "inconclusive" in row and "[-0.00025, 3.1e-06]" in row
    assert "…" in row and ": -1.23e-05 [" in row
    assert lines[2].startswith("check*") and "supported" in lines[2]
    # --verbose keeps the full reasons
    code, stdout, _ = run_cli(["reproduce", "--out", out, "--verbose", "--only", *[e.name for e in exps]])
    assert code == 0 and "ok " * 400 in stdout


def test_summary_of_results_without_effects_or_regimes():
    from kdtheory.experiments.result import ExperimentResult

    r = ExperimentResult("x", "claim", "c", "full", "supported", "r\nwith\nnewlines",
                         effects=(Effect("e\nname", 0.5, None, None, 3, "c", "r"),))  # fmt: skip
    lines = summary([r])
    assert lines[1].split() == ["x", "claim", "—", "supported", "e", "name:", "0.5", "[—,", "—]"]


# ---------------------------------------------------------------- list, --version, unknown options


def test_list_shows_parameters_and_list_name_the_details():
    code, stdout, _ = run_cli(["list"])
    assert code == 0 and "eigen_dynamics: GD learns" in stdout and "parameters: n=300, exponent=1.5" in stdout
    assert "designs.<dataset>.{n, n_test" in " ".join(stdout.split())
    code, stdout, _ = run_cli(["list", "late_distillation"])
    assert code == 0
    assert "  seeds = 10 [quick: 2]\n      int, >= 2 — seeds of the noisy-labels designs" in stdout
    assert "  paper_seeds = 20 [quick: 2]\n      int, >= 2 — seeds of each paper-regime design" in stdout
    assert "  designs.<dataset>.teacher_t = mixture=2000, digits=2000, mnist1d=6000 [quick: 200]" in stdout
    assert "--only late_distillation --set PATH=VALUE" in stdout
    assert_one_line_error(*run_cli(["list", "nope"]), "unknown experiment 'nope'")


def test_version_names_versions_devices_and_commit():
    code, stdout, _ = run_cli(["--version"])
    lines = stdout.splitlines()
    assert code == 0 and lines[0].startswith("kdtheory ") and "jax " in lines[1] and "numpy " in lines[1]
    assert lines[3].startswith("  devices: cpu (") or lines[3].startswith("  devices: gpu (")
    assert lines[4].startswith("  git: ")


def test_git_commit_only_from_a_kdtheory_checkout(tmp_path, monkeypatch):
    info = _provenance.git()
    if (REPO / ".git").exists():
        assert info is not None and len(info["commit"]) == 40 and isinstance(info["dirty"], bool)
    # a package installed outside a checkout, or inside another project's repository: no commit, no error
    pkg = tmp_path / "site" / "kdtheory"
    pkg.mkdir(parents=True)
    monkeypatch.setattr(_provenance, "__file__", str(pkg / "_provenance.py"))
    assert _provenance.git() is None
    (tmp_path / "site" / ".git").mkdir()
    (tmp_path / "site" / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')
    assert _provenance.git() is None
    (tmp_path / "site" / "pyproject.toml").write_text('[project]\nname = "kdtheory"\n')
    assert _provenance.git() is None  # not a real repository: git fails, no error


@pytest.mark.parametrize(
    ("argv", "contains"),
    [
        (["--bogus"], ("unrecognized arguments: --bogus",)),  # old: "arguments are required: command"
        (["reproduce", "--bogus"], ("unrecognized arguments: --bogus",)),
        (["--bogus", "list"], ("unrecognized arguments: --bogus",)),
        ([], ("a command is required: reproduce, list or confidence",)),
    ],
)
def test_unknown_options_are_named(argv, contains):
    assert_one_line_error(*run_cli(argv), *contains)
