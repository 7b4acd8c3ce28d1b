"""kdtheory.experiments.reproduce: the pipeline's guarantees, checked with tiny fake experiments (seconds,
not minutes), and the evidence table that leads the report.

The output folder always holds exactly one complete run; unknown or repeated ``--only`` names
leave nothing behind; results.json is strict JSON; an interrupt, a SIGKILL or a concurrent run
never leaves a partial or mixed folder (issue 11, rows 8-11 and 13).
"""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fake_experiments
import pytest

from kdtheory import cli, experiments
from kdtheory.experiments import effects, harness
from kdtheory.experiments.folder import MARKER, StagedFolder
from kdtheory.experiments.reproduce import reproduce
from kdtheory.experiments.result import SMOKE
from kdtheory.stats import Rule

FAKE = str(Path(fake_experiments.__file__).resolve())


def _strict(text: str):
    """json.loads that refuses NaN and Infinity, as JavaScript's JSON.parse does."""

    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _check_complete(folder: Path) -> dict:
    """The folder holds exactly one run: the files results.json lists, each with its hash."""
    data = _strict((folder / "results.json").read_text())
    report = (folder / "report.md").read_text()
    figures = {f for r in data["experiments"].values() for f in r["figures"]}
    assert set(data["files"]) == figures
    assert {p.name for p in folder.iterdir()} == figures | {"report.md", "results.json", MARKER}
    for f, digest in data["files"].items():
        assert hashlib.sha256((folder / f).read_bytes()).hexdigest() == digest
        assert f"]({f})" in report
    for name in data["experiments"]:
        assert f"## {name} (" in report
    return data


def _staging(folder: Path) -> list[Path]:
    return list(folder.parent.glob(f".{folder.name}.staging-*"))


@pytest.fixture
def fakes(monkeypatch):
    """The registry holds the two fake experiments only."""
    monkeypatch.setattr(experiments, "REGISTRY", {e.name: e for e in fake_experiments.experiments()})
    monkeypatch.delenv("FAKE_SYNC", raising=False)
    return experiments.names()


def quiet(msg):
    pass


def test_full_run_records_kinds_effects_and_verdicts(fakes, tmp_path):
    out = tmp_path / "out"
    results = reproduce(out, progress=quiet)
    assert [r.name for r in results] == fakes
    data = _check_complete(out)
    claim, check = data["experiments"]["fake_claim"], data["experiments"]["fake_check"]
    assert (claim["kind"], check["kind"]) == ("claim", "validation")
    assert claim["verdict"] == "supported" and claim["reason"] == "value 1.0"
    (effect,) = claim["effects"]
    assert list(effect)[:7] == ["name", "estimate", "ci_low", "ci_high", "seeds", "control", "rule"]
    assert (effect["estimate"], effect["ci_low"], effect["ci_high"], effect["seeds"]) == (1.0, 0.0, 2.0, 5)
    assert claim["config"] == {"seed": 0, "n": 5, "value": 1.0}  # the full size, seeds included
    report = (out / "report.md").read_text()
    claims_at, checks_at = report.index("## The paper's claims"), report.index("## Validations")
    assert claims_at < checks_at < report.index("## fake_claim")
    assert "| claim | effect | estimate | interval | seeds | control | rule | verdict | reason |" in report
    row = "| a difference | 1 | [0, 2] (fake) | 5 | a twin | ci_low > 0 | **supported** | its interval lies above 0 |"
    assert f"| `fake_claim` (supported): a fake claim {row}" in report


def test_quick_run_is_a_smoke_run(fakes, tmp_path):
    results = reproduce(tmp_path / "out", quick=True, progress=quiet)
    data = _check_complete(tmp_path / "out")
    assert data["size"] == "quick"
    assert all(r["verdict"] == SMOKE for r in data["experiments"].values())
    assert data["experiments"]["fake_claim"]["effects"][0]["verdict"] == SMOKE
    assert all(r.verdict == SMOKE and r.rule_verdict == "supported" for r in results)
    assert data["experiments"]["fake_claim"]["config"]["n"] == 3  # the quick size
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"**{SMOKE}**" in report and "**supported**" not in report


def test_results_json_is_strict(fakes, tmp_path):
    reproduce(tmp_path, progress=quiet)  # an empty existing folder is fine
    text = (tmp_path / "results.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    measured = _strict(text)["experiments"]["fake_claim"]["measured"]
    assert measured["nan"] == "nan" and measured["inf"] == "inf"
    assert 'non-finite numbers are the strings `"inf"`' in (tmp_path / "report.md").read_text()


def test_repeated_only_names_run_once(fakes, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["reproduce", "--only", "fake_claim", "fake_claim", "--out", str(out)]) == 0
    data = _check_complete(out)
    assert list(data["experiments"]) == ["fake_claim"]
    assert "fake_claim" in capsys.readouterr().out


def test_unknown_name_writes_nothing(fakes, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["reproduce", "--only", "fake_claim", "nope", "--out", str(out)]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_smaller_run_replaces_every_file_of_the_older_one(fakes, tmp_path):
    out = tmp_path / "out"
    reproduce(out, progress=quiet)
    assert (out / "fake_check.png").exists()
    reproduce(out, quick=True, only=["fake_claim"], progress=quiet)
    data = _check_complete(out)
    assert list(data["experiments"]) == ["fake_claim"] and not (out / "fake_check.png").exists()
    assert _staging(out) == []


def test_interrupt_leaves_the_previous_run(fakes, tmp_path, monkeypatch):
    out = tmp_path / "out"
    reproduce(out, progress=quiet)
    before = _snapshot(out)

    def interrupted(cfg, say):
        raise KeyboardInterrupt

    claim = experiments.load("fake_claim")
    monkeypatch.setitem(experiments.REGISTRY, "fake_check", harness.Experiment(
        "fake_check", "validation", "x", claim.full, claim.quick, interrupted))  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        reproduce(out, progress=quiet)  # fake_claim's figure is drawn before the interrupt
    assert _snapshot(out) == before
    assert _staging(out) == []
    with pytest.raises(KeyboardInterrupt):
        reproduce(tmp_path / "new", progress=quiet)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_foreign_files_and_files_are_refused(fakes, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not from a kdtheory run.*notes.txt"):
        reproduce(tmp_path, progress=quiet)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(ValueError, match="is an existing file"):
        reproduce(tmp_path / "notes.txt", progress=quiet)


def test_startup_removes_only_stale_staging(fakes, tmp_path):
    out = tmp_path / "out"
    dead = tmp_path / ".out.staging-999999-dead"  # its owner is gone: the lock file is free
    dead.mkdir()
    (dead / ".owner.lock").write_text("")
    (dead / "half.png").write_bytes(b"half")
    orphan = tmp_path / ".out.staging-999998-orphan"  # an old run's files after a killed swap
    orphan.mkdir()
    other = tmp_path / ".other.staging-1-x"  # another output folder's staging
    other.mkdir()
    with StagedFolder(out) as live:  # a concurrent run, alive, holding its lock
        reproduce(out, progress=quiet)
        live_path = live.path
        assert live_path.exists()
        assert not dead.exists() and not orphan.exists() and other.exists()
    assert not live_path.exists()  # it removes its own staging
    _check_complete(out)


def _spawn(out: Path, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, FAKE, "reproduce", "--out", str(out), *(args or ("--only", "fake_claim", "fake_check"))],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.05)


@pytest.mark.parametrize("previous", [True, False])
def test_sigkill_mid_run_leaves_previous_run_or_nothing(fakes, tmp_path, previous):
    out = tmp_path / "out"
    if previous:
        reproduce(out, progress=quiet)
        before = _snapshot(out)
    sync = tmp_path / "sync"
    sync.mkdir()
    proc = _spawn(out, FAKE_SYNC=str(sync), FAKE_TAG="killed", FAKE_SLEEP="60")
    _wait_for(sync / "killed.started", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    if previous:
        assert _snapshot(out) == before
    else:
        assert not out.exists()
    assert len(_staging(out)) == 1  # the killed run's, its owner gone
    reproduce(out, quick=True, progress=quiet)  # the next run sweeps it
    assert _staging(out) == []
    _check_complete(out)


@pytest.mark.slow
@pytest.mark.parametrize("previous", [True, False])
def test_two_concurrent_runs_leave_one_complete_run(fakes, tmp_path, previous):
    out = tmp_path / "out"
    if previous:
        reproduce(out, progress=quiet)
    sync = tmp_path / "sync"
    sync.mkdir()
    common = {"FAKE_SYNC": str(sync), "FAKE_WAIT_FOR": "A,B"}
    a = _spawn(out, **common, FAKE_TAG="A")
    b = _spawn(out, "--quick", "--only", "fake_claim", **common, FAKE_TAG="B")
    for proc in (a, b):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    data = _check_complete(out)
    tags = {r["measured"]["tag"] for r in data["experiments"].values()}
    assert tags in ({"A"}, {"B"})
    assert set(data["experiments"]) == ({"fake_claim", "fake_check"} if tags == {"A"} else {"fake_claim"})
    assert _staging(out) == []


# ---------------------------------------------------------------------- the evidence table
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
