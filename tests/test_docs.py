"""The documentation site: its sources, its strict build, and the built pages in a real browser.

Fast tests check the pieces without Sphinx: the theory page has the sections the docstrings cite
(every ``docs/theory.md §N`` in the package names one that exists), the evidence page written from
a ``results.json``, and the docstring hooks of ``docs/conf.py``. The slow tests build the site with
``docs/build.py`` (strict: warnings are errors; skipped with a message when the ``docs`` extra is not
installed) and open it in headless Chromium (skipped with a message when no Chromium is installed;
``.ci/run`` installs it from the system packages). ``KDTHEORY_DOCS_SITE=DIR`` makes them check an
already built site (CI checks the one it just built) instead of building their own;
``KDTHEORY_DOCS_REQUIRE_BROWSER=1`` (set by CI) turns the missing-Chromium skip into a failure.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load("kdtheory_docs_build", DOCS / "build.py")


# ------------------------------------------------------------------------------------- the sources


def _theory_sections() -> list[int]:
    text = (DOCS / "theory.md").read_text()
    labelled = re.findall(r"^\(theory-s(\d+)\)=\n## §(\d+) ", text, flags=re.M)
    headings = [int(n) for n in re.findall(r"^## §(\d+) ", text, flags=re.M)]
    assert [(int(a), int(b)) for a, b in labelled] == [(n, n) for n in headings], (
        "every section heading '## §N ...' has the label (theory-sN)= right above it"
    )
    return headings


def test_theory_has_sections_1_to_12_in_order():
    assert _theory_sections() == list(range(1, 13))
    text = (DOCS / "theory.md").read_text()
    assert "## §12 Certified Krylov filters" in text
    assert "THEORY.md" not in text, "the theory page is this repository's, self-contained"


def test_every_citation_of_the_theory_page_names_a_section():
    sections = set(_theory_sections())
    cited = {}
    for path in sorted((ROOT / "kdtheory").rglob("*.py")):
        for m in re.finditer(r"docs/theory\.md ((?:§\d+(?:[,–-]\s*)?)+)", path.read_text()):
            for n in re.findall(r"§(\d+)", m.group(1)):
                cited.setdefault(int(n), []).append(path.relative_to(ROOT).as_posix())
    missing = {n: files for n, files in cited.items() if n not in sections}
    assert not missing, f"docstrings cite sections the theory page lacks: {missing}"


def test_every_public_module_gets_an_api_page():
    modules = build.public_modules()
    assert modules[0] == "kdtheory" and "kdtheory.eigen" in modules and "kdtheory.experiments.reproduce" in modules
    assert not [m for m in modules if any(part.startswith("_") for part in m.split("."))]
    files = {
        p.relative_to(ROOT / "kdtheory").with_suffix("").as_posix().replace("/", ".")
        for p in (ROOT / "kdtheory").rglob("*.py")
    }
    public = {"kdtheory." + f.removesuffix(".__init__") if f != "__init__" else "kdtheory" for f in files}
    public = {m for m in public if not any(part.startswith("_") for part in m.split("."))}
    assert set(modules) == public


def test_api_pages_document_reexports_once(tmp_path):
    import importlib
    import inspect

    build.write_api(tmp_path)
    eigen = (tmp_path / "api" / "kdtheory.eigen.md").read_text()
    assert "automodule:: kdtheory.eigen" in eigen and "Filter" in eigen  # the entry point documents Filter
    links = 0
    for module in build.public_modules():
        page = (tmp_path / "api" / f"{module}.md").read_text()
        m = re.search(r":members: (.*)", page)
        mod = importlib.import_module(module)
        for name in m.group(1).split(", ") if m and module not in build.FACADES else []:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert obj.__module__ == module, f"{module} documents {name} of {obj.__module__} again"
        for name, home in re.findall(r"\{py:obj\}`(\w+) <([\w.]+)>`", page):
            target = importlib.import_module(home.rsplit(".", 1)[0]) if "." in home else None
            assert getattr(target, home.rsplit(".", 1)[1]) is getattr(mod, name), (module, name, home)
            links += 1
    assert links >= 1, "some module re-exports a name and links it (kdtheory.experiments: Effect)"


# ------------------------------------------------------------------------------------ the evidence


def _results(folder: Path, **top) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "late_distillation.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    data = {
        "created": "2026-01-01T00:00:00+00:00",
        "size": "full",
        "seconds": 12.5,
        "versions": {"kdtheory": "9.9", "python": "3.11", "git": {"commit": "0123456789abcdef", "dirty": True}},
        "registered": True,
        "overrides": {},
        "experiments": {
            "late_distillation": {
                "name": "late_distillation",
                "kind": "claim",
                "claim": "Switching late | recovers the gain",
                "verdict": "supported",
                "reason": "the interval lies > 0.5",
                "effects": [
                    {
                        "name": "O2-b share",
                        "estimate": 0.87123,
                        "ci_low": 0.85,
                        "ci_high": "inf",
                        "seeds": 10,
                        "control": "twin",
                        "rule": "supported if > 0.5",
                        "verdict": "supported",
                    },
                    {
                        "name": "O2-a gain",
                        "estimate": 0.5,
                        "ci_low": None,
                        "ci_high": None,
                        "seeds": 10,
                        "control": "twin",
                        "rule": "r",
                        "verdict": "inconclusive",
                    },
                ],
                "figures": ["late_distillation.png"],
                "config": {"seeds": 10},
            }
        },
    }
    data.update(top)
    path = folder / "results.json"
    path.write_text(json.dumps(data))
    return path


def test_evidence_page_from_results(tmp_path):
    stage = tmp_path / "stage"
    stage.mkdir()
    build.write_evidence(stage, _results(tmp_path / "run"))
    page = (stage / "evidence.md").read_text()
    assert (
        "| [late_distillation](#late-distillation) | claim | Switching late \\| recovers the gain | **supported** |"
        in page
    )
    assert "| O2-b share | 0.8712 | [0.85, ∞] | 10 | twin | supported if > 0.5 | supported |" in page
    assert "| O2-a gain | 0.5 | — |" in page
    assert "git commit `0123456789ab` (uncommitted changes)" in page
    assert (stage / "evidence" / "late_distillation.png").is_file() and "evidence/late_distillation.png" in page
    assert "quick" not in page and "not the registered evidence" not in page


def test_evidence_page_shows_the_evidence_table_when_the_run_has_one(tmp_path):
    cell = {"experiment": "late_distillation", "claim": "O2-a gain", "regime": "paper", "dataset": "mnist1d",
            "split": "test", "tau": 4.0, "control_arm": "twin", "effect": "e", "estimate": 0.0412,
            "ci_low": -0.01, "ci_high": 0.09, "seeds": 20, "verdict": "inconclusive"}  # fmt: skip
    stage = tmp_path / "stage"
    stage.mkdir()
    build.write_evidence(stage, _results(tmp_path / "run", evidence_table=[cell, {**cell, "tau": None}]))
    page = (stage / "evidence.md").read_text()
    head = page.index("## Where each claim holds")
    assert head < page.index("## The experiments")
    row = "| O2-a gain | paper | mnist1d | test | 4 | twin | 0.0412 | [-0.01, 0.09] | 20 | **inconclusive** |"
    assert row in page and row.replace("| 4 |", "| — |") in page
    stage2 = tmp_path / "stage2"
    stage2.mkdir()
    build.write_evidence(stage2, _results(tmp_path / "run2"))
    assert "## Where each claim holds" not in (stage2 / "evidence.md").read_text()


def test_evidence_page_marks_quick_and_overridden_runs(tmp_path):
    stage = tmp_path / "stage"
    stage.mkdir()
    build.write_evidence(
        stage, _results(tmp_path / "run", size="quick", overrides={"late_distillation": {"seeds": 3}}, registered=False)
    )
    page = (stage / "evidence.md").read_text()
    assert "built from a **quick** run" in page
    assert "| Switching late \\| recovers the gain | **smoke run** |" in page, "a quick run's table shows no verdict"
    assert "not the registered evidence" in page and '"seeds": 3' in page


def test_evidence_page_refuses_what_is_not_a_results_file(tmp_path):
    stage = tmp_path / "stage"
    stage.mkdir()
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit, match="has no experiments"):
        build.write_evidence(stage, bad)
    path = _results(tmp_path / "run")
    (path.parent / "late_distillation.png").unlink()
    with pytest.raises(SystemExit, match="late_distillation.png .* is missing"):
        build.write_evidence(stage, path)


def test_build_refuses_a_missing_results_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        build.main(["--results", str(tmp_path / "nope.json"), "--out", str(tmp_path / "site")])
    assert e.value.code == 2 and "--results: no such file" in capsys.readouterr().err
    assert not (tmp_path / "site").exists()


# ---------------------------------------------------------------------------- the docstring hooks


@pytest.fixture(scope="module")
def conf():
    pytest.importorskip("sphinx", reason="the docs extra (Sphinx) is not installed: pip install sphinx myst-nb furo")
    return _load("kdtheory_docs_conf", DOCS / "conf.py")


def test_bars_in_text_are_escaped_but_not_in_literals_math_or_tables(conf):
    lines = [
        "p*(·|x) and |d_s| here, ``|x|`` there, :math:`|x|` too",
        ".. math::",
        "",
        "   \\|w\\| = |a|",
        "",
        "| a | b |",
        "after",
    ]
    conf._escape_bars(lines)
    assert lines[0] == "p*(·\\|x) and \\|d_s\\| here, ``|x|`` there, :math:`|x|` too"
    assert lines[3] == "   \\|w\\| = |a|" and lines[5] == "| a | b |" and lines[6] == "after"


def test_theory_citations_become_links(conf):
    lines = ["See docs/theory.md §3 and docs/theory.md §9, §12; not ``docs/theory.md §2``."]
    conf._before_napoleon(None, "function", "f", None, {}, lines)
    assert lines[0] == (
        "See :ref:`docs/theory.md §3 <theory-s3>` and :ref:`docs/theory.md §9, §12 <theory-s9>`; "
        "not ``docs/theory.md §2``."
    )


def test_grouped_attributes_and_prose_types_are_repaired(conf):
    lines = [":ivar n, ddof: sample size and", "   normalization.", ":ivar x: one."]
    conf._after_napoleon(None, "class", "C", None, {}, lines)
    assert lines == [
        ":ivar n: sample size and",
        "   normalization.",
        ":ivar ddof: sample size and",
        "   normalization.",
        ":ivar x: one.",
    ]
    lines = ["the trajectory is indexed by ``t``.", "", ":type: The axis"]
    conf._after_napoleon(None, "property", "axis", None, {}, lines)
    assert lines == ["The axis: the trajectory is indexed by ``t``."]
    lines = ["a mapping.", "", ":type: dict[str, float] | None"]
    conf._after_napoleon(None, "attribute", "m", None, {}, lines)
    assert lines[-1] == ":type: dict[str, float] | None"


# -------------------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The built site: ``KDTHEORY_DOCS_SITE`` if set, else built here (strict) from a small results.json."""
    given = os.environ.get("KDTHEORY_DOCS_SITE")
    if given:
        path = Path(given)
        assert (path / "index.html").is_file(), f"KDTHEORY_DOCS_SITE={given} holds no built site"
        return path
    for module in ("sphinx", "myst_nb", "furo"):
        pytest.importorskip(module, reason="the docs extra is not installed: pip install sphinx myst-nb furo")
    tmp = tmp_path_factory.mktemp("docs")
    results = _results(tmp / "run")
    from PIL import Image  # matplotlib's dependency: a real PNG for the evidence figure

    Image.new("RGB", (40, 30), (200, 30, 30)).save(results.parent / "late_distillation.png")
    out = tmp / "site"
    done = subprocess.run(
        [sys.executable, str(DOCS / "build.py"), "--out", str(out), "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"strict docs build failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    return out


@pytest.mark.slow
def test_site_has_every_page(site):
    for page in (
        "index.html",
        "theory.html",
        "api/index.html",
        "api/kdtheory.eigen.html",
        "evidence.html",
        "benchmarks.html",
        "notebooks/index.html",
        "notebooks/01_gradient_descent_in_eigenspace.html",
    ):
        assert (site / page).is_file(), page
    eigen = (site / "api" / "kdtheory.eigen.html").read_text()
    assert 'id="kdtheory.eigen.Filter"' in eigen and 'id="kdtheory.eigen.Filter.train_from"' in eigen
    theory = (site / "theory.html").read_text()
    assert all(f'id="theory-s{n}"' in theory for n in range(1, 13))


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome", "chromium-headless-shell"):
        path = shutil.which(name)
        if path:
            return path
    return None


PROBE = """<!doctype html><html><body><pre id="result">pending</pre><script>
const checks = %s;
const out = {};
function check(c) {
  return new Promise(resolve => {
    const f = document.createElement("iframe");
    f.style.width = "1200px"; f.style.height = "900px";
    f.onload = () => setTimeout(() => {
      const d = f.contentDocument, r = {title: d.title};
      const el = c.selector ? d.getElementById(c.selector) : null;
      r.found = !!el;
      r.text = el ? el.closest("dl").innerText.slice(0, 4000) : "";
      r.visible = el ? el.getBoundingClientRect().height > 0 : false;
      const imgs = Array.from(d.querySelectorAll(c.images || "img"));
      r.images = imgs.length;
      r.loaded = imgs.filter(i => i.complete && i.naturalWidth > 0).map(i => [i.naturalWidth, i.naturalHeight]);
      const side = d.querySelector(".sidebar-drawer");
      r.sidebar = side ? side.getBoundingClientRect().width : 0;
      r.sheets = d.styleSheets.length;
      r.results = d.querySelectorAll("#search-results li").length;
      out[c.name] = r; resolve();
    }, 500);
    f.src = c.url; document.body.appendChild(f);
  });
}
(async () => { for (const c of checks) { await check(c); }
  document.getElementById("result").textContent = JSON.stringify(out); })();
</script></body></html>"""


def _complete(report: dict) -> bool:
    """Whether every page of the probe rendered what the tests below look for."""
    try:
        f, nb, ev, search = report["filter"], report["notebook"], report["evidence"], report["search"]
    except KeyError:
        return False
    images = all(r["images"] >= 1 and len(r["loaded"]) == r["images"] for r in (nb, ev))
    return f["found"] and f["visible"] and f["sheets"] > 0 and f["sidebar"] > 100 and images and search["results"] > 0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture(scope="module")
def browser_report(site, tmp_path_factory):
    """Open the pages in headless Chromium (served on 127.0.0.1) and report what rendered."""
    chromium = _chromium()
    if chromium is None:
        message = "no Chromium on this machine (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("KDTHEORY_DOCS_REQUIRE_BROWSER"):
            pytest.fail(message + " and KDTHEORY_DOCS_REQUIRE_BROWSER is set")
        pytest.skip(message)
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(site, root / "site")
    checks = [
        {"name": "filter", "url": "site/api/kdtheory.eigen.html", "selector": "kdtheory.eigen.Filter"},
        {
            "name": "notebook",
            "url": "site/notebooks/01_gradient_descent_in_eigenspace.html",
            "images": ".cell_output img, .output img",
        },
        {"name": "evidence", "url": "site/evidence.html", "images": "figure img"},
        {"name": "search", "url": "site/search.html?q=train_from"},
    ]
    (root / "probe.html").write_text(PROBE % json.dumps(checks))
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        base = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={root / 'profile'}",
            "--virtual-time-budget=20000",
            "--window-size=1280,1000",
        ]
        # A loaded machine can starve a headless browser (a page drawn before its stylesheet or
        # images arrived); the pages are static, so a check that comes back incomplete is run again,
        # at most three times, and the attempts are reported.
        attempts = 0
        while attempts < 3:
            attempts += 1
            done = subprocess.run(
                [*base, "--dump-dom", f"{url}/probe.html"], capture_output=True, text=True, timeout=180
            )
            m = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, flags=re.S)
            if m and m.group(1) != "pending":
                report = json.loads(m.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
                if _complete(report):
                    break
        assert m and m.group(1) != "pending", (
            f"the probe page did not finish:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        report["attempts"] = attempts
        shot = root / "filter.png"
        for _ in range(3):
            subprocess.run(
                [*base, f"--screenshot={shot}", f"{url}/site/api/kdtheory.eigen.html#kdtheory.eigen.Filter"],
                capture_output=True,
                text=True,
                timeout=180,
            )
            if shot.is_file() and shot.stat().st_size > 10_000:
                break
        report["screenshot"] = shot.stat().st_size if shot.is_file() else 0
        if os.environ.get("KDTHEORY_DOCS_SCREENSHOT"):
            shutil.copy2(shot, os.environ["KDTHEORY_DOCS_SCREENSHOT"])
        return report
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.mark.slow
def test_browser_renders_the_filter_api_page(browser_report):
    r = browser_report["filter"]
    assert r["found"] and r["visible"], r
    assert "kdtheory.eigen." in r["text"] and "Filter" in r["text"]
    assert "train_from" in r["text"] and "a_over_eval" in r["text"], r["text"][:500]
    assert r["sheets"] > 0 and r["sidebar"] > 100, f"the theme's stylesheet applied (its sidebar is laid out): {r}"
    assert browser_report["screenshot"] > 10_000, f"Chromium drew the page: {browser_report}"


@pytest.mark.slow
def test_browser_renders_a_notebook_figure(browser_report):
    r = browser_report["notebook"]
    assert r["images"] >= 1 and len(r["loaded"]) == r["images"], r
    assert all(w >= 200 and h >= 100 for w, h in r["loaded"]), r["loaded"]


@pytest.mark.slow
def test_browser_renders_the_evidence_figures(browser_report):
    r = browser_report["evidence"]
    assert r["images"] >= 1 and len(r["loaded"]) == r["images"], r


@pytest.mark.slow
def test_browser_search_finds_the_composition_rule(browser_report):
    assert browser_report["search"]["results"] >= 1, browser_report["search"]
