"""kdtheory.experiments.folder, issue 19 row 8: ``--out DIR`` never replaces or deletes a user's files,
whatever their names.

Old: a folder holding the user's own ``results.json`` and ``report.md`` (or a ``results.json``
listing ``data.csv``, and ``data.csv``) was taken for a previous run: exit 0, the user's files
replaced or deleted. Now every run writes the marker ``.kdtheory-output.json`` (a signature and
the SHA-256 of each file), and only a folder whose marker is valid and whose every other file is
listed, unchanged, is replaced.
"""

import contextlib
import hashlib
import io
import json
from pathlib import Path

import fake_experiments
import pytest

from kdtheory import cli, experiments
from kdtheory.experiments import folder as fmod
from kdtheory.experiments.folder import MARKER, StagedFolder
from kdtheory.experiments.reproduce import reproduce


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(experiments, "REGISTRY", {e.name: e for e in fake_experiments.experiments()})
    monkeypatch.delenv("FAKE_SYNC", raising=False)


def quiet(msg):
    pass


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def user_folders(tmp_path: Path) -> dict[str, Path]:
    """Folders of a user's own files that happen to carry kdtheory's file names."""
    a = tmp_path / "analysis"
    a.mkdir()
    (a / "results.json").write_text(json.dumps({"accuracy": 0.93, "experiments": {}}))
    (a / "report.md").write_text("# My paper's results\n")
    b = tmp_path / "export"
    b.mkdir()
    (b / "results.json").write_text(json.dumps({"files": {"data.csv": "mine"}, "experiments": {}}))
    (b / "data.csv").write_text("x,y\n1,2\n")
    c = tmp_path / "forged"  # a marker-named file without kdtheory's signature
    c.mkdir()
    (c / MARKER).write_text(json.dumps({"files": {"notes.txt": "x"}}))
    (c / "notes.txt").write_text("mine")
    return {"analysis": a, "export": b, "forged": c}


def test_user_files_with_kdtheory_names_are_never_replaced(fakes, tmp_path):
    for name, folder in user_folders(tmp_path).items():
        before = snapshot(folder)
        with pytest.raises(ValueError, match="not from a kdtheory run"):
            reproduce(folder, progress=quiet)
        code, out, err = run_cli(["reproduce", "--out", folder])
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, (name, err)
        assert "not from a kdtheory run" in err and MARKER in err
        assert snapshot(folder) == before, name
        assert not list(tmp_path.glob(f".{folder.name}.staging-*"))


def test_every_run_is_marked_with_the_hash_of_each_file(fakes, tmp_path):
    out = tmp_path / "out"
    reproduce(out, progress=quiet)
    marker = json.loads((out / MARKER).read_text())
    assert marker["signature"] == fmod.SIGNATURE and marker["kdtheory"]
    files = {p.name for p in out.iterdir()} - {MARKER}
    assert set(marker["files"]) == files == {"report.md", "results.json", "fake_claim.png", "fake_check.png"}
    for f, digest in marker["files"].items():
        assert hashlib.sha256((out / f).read_bytes()).hexdigest() == digest
    assert fmod.foreign(out) is None
    reproduce(out, quick=True, only=["fake_claim"], progress=quiet)  # a marked run is replaced
    assert set(json.loads((out / MARKER).read_text())["files"]) == {"report.md", "results.json", "fake_claim.png"}


def test_a_user_file_in_a_marked_folder_or_an_edited_report_is_refused(fakes, tmp_path):
    out = tmp_path / "out"
    reproduce(out, progress=quiet)
    (out / "notes.txt").write_text("my notes")
    before = snapshot(out)
    with pytest.raises(ValueError, match=r"not from a kdtheory run \(notes.txt\)"):
        reproduce(out, progress=quiet)
    assert snapshot(out) == before
    (out / "notes.txt").unlink()
    with open(out / "report.md", "a") as fh:
        fh.write("\nMy comments on the results.\n")
    before = snapshot(out)
    with pytest.raises(ValueError, match=r"changed since kdtheory wrote them \(report.md\)"):
        reproduce(out, progress=quiet)
    assert snapshot(out) == before


def test_a_folder_of_the_previous_kdtheory_version_is_refused_with_what_to_do(fakes, tmp_path):
    out = tmp_path / "out"
    reproduce(out, progress=quiet)
    (out / MARKER).unlink()  # what kdtheory 0.2 left: results.json, report.md, figures, no marker
    before = snapshot(out)
    code, _, err = run_cli(["reproduce", "--out", out])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "written by kdtheory" in err and "delete the folder" in err and "new --out folder" in err
    assert snapshot(out) == before


def test_user_files_appearing_during_the_run_are_not_replaced(tmp_path):
    out = tmp_path / "out"
    with StagedFolder(out) as stage:
        (stage.path / "report.md").write_text("new run")
        out.mkdir()
        (out / "report.md").write_text("the user's, written meanwhile")
        with pytest.raises(ValueError, match="not from a kdtheory run"):
            stage.commit()
    assert (out / "report.md").read_text() == "the user's, written meanwhile"
    assert [p.name for p in out.iterdir()] == ["report.md"]
