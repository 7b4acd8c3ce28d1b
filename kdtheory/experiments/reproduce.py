"""Run the registered experiments and write ``report.md``, ``results.json`` and the figures.

The output folder always holds exactly one run's files: the whole run is written into a staging
folder and swapped in as a whole (:class:`~kdtheory.experiments.folder.StagedFolder`), so an
error, an interrupt (``KeyboardInterrupt``) or a ``SIGKILL`` leaves the previous run intact, and
files of an older run that the new report does not list are gone.

``results.json`` is strict JSON (no NaN or Infinity: non-finite numbers are the strings
``"inf"``, ``"-inf"``, ``"nan"``; an effect's missing or non-finite interval end is ``null``).
Its fields: ``created``, ``size`` (``"full"`` or ``"quick"``), ``seconds``, ``versions``,
``files`` (figure name -> SHA-256 of its bytes) and ``experiments`` (name -> the record of
:meth:`~kdtheory.experiments.result.ExperimentResult.to_json`: ``kind``, ``claim``, ``size``,
``verdict``, ``reason``, ``effects`` as :meth:`kdtheory.stats.Effect.to_json` records ``{name,
estimate, ci_low, ci_high, seeds, control, rule, interval, verdict, reason, ...}``,
``measured``, ``figures``, ``config``, ``seconds``).

``report.md`` opens with the table of the paper's claims (effect, interval, seeds, control, rule,
verdict, reason), then the table of validations, then one section per experiment. A ``quick`` run
is a smoke run: its verdict column says so instead of giving a verdict.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata

from kdtheory import __version__
from kdtheory.experiments import ExperimentResult, harness, load, names
from kdtheory.experiments.folder import StagedFolder
from kdtheory.experiments.result import JOINT, Effect, dumps, jsonable

__all__ = ["demo", "reproduce", "select"]


def _versions() -> dict[str, str]:
    out = {"kdtheory": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "scipy", "jax", "jaxlib", "sympy", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def select(only: Sequence[str] | None) -> list[str]:
    """The experiments a run covers: ``only`` in its order with repeats dropped, or all registered.

    Args:
      only: experiment names, or ``None`` / empty for all.

    Returns:
      The names, each once.

    Raises:
      ValueError: for an unknown name (before anything is run or written).
    """
    selected = list(dict.fromkeys(only)) if only else names()
    for name in selected:
        load(name)
    return selected


def reproduce(
    out_dir: str | os.PathLike = "kdtheory-out",
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[ExperimentResult]:
    """Run experiments and replace ``out_dir`` by their report, results and figures.

    Args:
      out_dir: output folder; created if absent. It may hold only a previous run's files, which
        are replaced as a whole.
      quick: quick (CI) sizes: a smoke run, without verdicts.
      only: names of the experiments to run (default: all registered); repeats are dropped.
      progress: called with one-line progress messages (default: print to stderr).

    Returns:
      The results, in run order.

    Raises:
      ValueError: for an unknown experiment name, or an ``out_dir`` that is a file or holds files
        no kdtheory run wrote; nothing is run or written then.
    """
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    selected = select(only)
    size = "quick" if quick else "full"
    t_start = time.perf_counter()
    results: list[ExperimentResult] = []
    with StagedFolder(out_dir) as stage:
        for i, name in enumerate(selected, 1):
            say(f"[{i}/{len(selected)}] {name}: running ({size} size)")
            res = harness.run(
                load(name), quick=quick, out_dir=stage.path, progress=lambda msg, name=name: say(f"    {name}: {msg}")
            )
            results.append(res)
            say(f"[{i}/{len(selected)}] {name}: {res.verdict} ({res.seconds:.1f} s)")
        payload = {
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "size": size,
            "seconds": time.perf_counter() - t_start,
            "versions": _versions(),
            "files": {f: hashlib.sha256((stage.path / f).read_bytes()).hexdigest() for r in results for f in r.figures},
            "experiments": {r.name: r.to_json() for r in results},
        }
        (stage.path / "results.json").write_text(dumps(payload), encoding="utf-8")
        (stage.path / "report.md").write_text(markdown(results, payload), encoding="utf-8")
        stage.commit()
    say(f"wrote {stage.out / 'report.md'} and {stage.out / 'results.json'} ({time.perf_counter() - t_start:.1f} s)")
    return results


def _fmt(v) -> str:
    v = jsonable(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    return "—" if v is None else str(v)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _interval(e: Effect) -> str:
    if e.ci_low is None or e.ci_high is None:
        return f"— ({e.interval})"
    return f"[{_fmt(e.ci_low)}, {_fmt(e.ci_high)}] ({e.interval})"


def _claims_table(claims: list[ExperimentResult]) -> list[str]:
    """One row per effect; the claim's own verdict and reason stand on its first row."""
    lines = [
        "| claim | effect | estimate | interval | seeds | control | rule | verdict | reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in claims:
        for j, e in enumerate(r.effects):
            head = f"`{r.name}` ({r.verdict}): {r.claim}" if j == 0 else "″"
            verdict = r.verdict if r.size == "quick" else e.verdict
            reason = e.reason if e.reason != JOINT else (r.reason if j == 0 else "″ (one rule for the claim)")
            cells = (head, e.name, _fmt(e.estimate), _interval(e), e.seeds, e.control, e.rule, f"**{verdict}**", reason)
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _validations_table(validations: list[ExperimentResult]) -> list[str]:
    lines = ["| validation | what is checked | verdict | reason |", "|---|---|---|---|"]
    lines += [f"| `{r.name}` | {_cell(r.claim)} | **{r.verdict}** | {_cell(r.reason)} |" for r in validations]
    return lines


def markdown(results: Sequence[ExperimentResult], payload: dict) -> str:
    """The text of ``report.md``: claims table, validations table, one section per experiment.

    Args:
      results: the experiments' results.
      payload: the ``results.json`` payload (creation time, size, seconds, versions).

    Returns:
      Markdown text.
    """
    v = payload["versions"]
    quick = payload["size"] == "quick"
    lines = [
        "# kdtheory reproduce report",
        "",
        f"Created {payload['created']} ({payload['size']} size{': a smoke run, no verdicts' if quick else ''}, "
        f"{payload['seconds']:.1f} s) with kdtheory {v['kdtheory']}, numpy {v['numpy']}, scipy {v['scipy']}, "
        f"jax {v['jax']}, Python {v['python']}.",
    ]
    claims = [r for r in results if r.kind == "claim"]
    validations = [r for r in results if r.kind == "validation"]
    if claims:
        lines += ["", "## The paper's claims", ""] + _claims_table(claims)
    if validations:
        lines += ["", "## Validations of the mathematics", ""] + _validations_table(validations)
    lines += ["", 'In `results.json` non-finite numbers are the strings `"inf"`, `"-inf"`, `"nan"`; an effect\'s '
              "missing or non-finite interval end is `null`."]  # fmt: skip
    for r in results:
        lines += [
            "",
            f"## {r.name} ({r.kind})",
            "",
            f"*Claim:* {r.claim}",
            "",
            f"*Verdict:* **{r.verdict}** — {r.reason}",
        ]
        lines += [""] + [f"- `{k}`: {_fmt(val)}" for k, val in r.measured.items()]
        lines += ["", f"Config ({r.size} size, {r.seconds:.1f} s): `{_fmt(dict(r.config))}`"]
        lines += [f"\n![{f}]({f})" for f in r.figures]
    return "\n".join(lines) + "\n"


def demo(name: str, argv: Sequence[str] | None = None) -> ExperimentResult:
    """Entry point of the scripts in ``demos/``: run one experiment with ``--quick`` / ``--out``.

    Args:
      name: the experiment.
      argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
      Its result.
    """
    import argparse

    exp = load(name)
    p = argparse.ArgumentParser(description=f"{name}: {exp.claim}")
    p.add_argument("--quick", action="store_true", help="quick size: a smoke run, no verdict")
    p.add_argument("--out", default=f"kdtheory-out-{name}", help="output folder (default: %(default)s)")
    args = p.parse_args(argv)
    (res,) = reproduce(args.out, quick=args.quick, only=[name])
    print(f"{exp.claim}\n-> {res.verdict}: {res.reason}")
    for fig in res.figures:
        print(f"figure: {args.out}/{fig}")
    return res
