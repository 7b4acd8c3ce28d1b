"""Run the registered experiments and write ``report.md``, ``results.json`` and the figures.

The output folder always holds exactly one run's files: the whole run is written into a staging
folder and swapped in as a whole (:class:`~kdtheory.experiments.folder.StagedFolder`), so an
error, an interrupt (``KeyboardInterrupt``) or a ``SIGKILL`` leaves the previous run intact, and
files of an older run that the new report does not list are gone. Every run holds the marker
``.kdtheory-output.json`` (the SHA-256 of each of its files); a folder without a valid marker, or
holding other or changed files, is refused, never replaced (:func:`kdtheory.experiments.folder.foreign`).

Ctrl-C (SIGINT) always stops a run (:class:`kdtheory._interrupt.Interrupts`): it is raised where
Python can deliver it, and at safe points — between experiments, in progress messages, before the
commit; an interrupt that arrives during the commit itself is too late to stop it (the new run is
then complete, and a message says so).

Configurations: ``overrides`` (``kdtheory reproduce --set`` / ``--config``) change an experiment's
declared configuration (:mod:`kdtheory.experiments.config`); such a run records ``overrides`` and
``registered: false`` and its report says it is not the registered evidence.

``results.json`` is strict JSON (no NaN or Infinity: non-finite numbers are the strings
``"inf"``, ``"-inf"``, ``"nan"``; an effect's missing or non-finite interval end is ``null``).
Its fields: ``created``, ``size`` (``"full"`` or ``"quick"``), ``seconds``, ``versions``
(kdtheory, Python and dependency versions, ``devices``: JAX's platform and device kind, ``git``:
the commit when run from a checkout, else ``null``), ``registered`` (no experiment's configuration
was overridden), ``evidence_table`` (one entry per cell of the claims: :func:`evidence_table`),
``overrides`` (experiment -> its overrides), ``files`` (figure name -> SHA-256
of its bytes) and ``experiments`` (name -> the record of
:meth:`~kdtheory.experiments.result.ExperimentResult.to_json`: ``kind``, ``claim``, ``size``,
``verdict``, ``reason``, ``effects`` as :meth:`kdtheory.stats.Effect.to_json` records ``{name,
estimate, ci_low, ci_high, seeds, control, rule, interval, verdict, reason, ...}``,
``measured``, ``figures``, ``config``, ``overrides``, ``registered``, ``seconds``).

``report.md`` opens with the evidence table (where each claim holds, by regime, data set, split
and τ), then the table of the paper's claims (effect, interval, seeds, control, rule,
verdict, reason), then the table of validations, then one section per experiment. A ``quick`` run
is a smoke run: its verdict column says so instead of giving a verdict.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kdtheory import __version__, _provenance
from kdtheory._interrupt import Interrupts
from kdtheory.experiments import ExperimentResult, config, harness, load, names
from kdtheory.experiments.folder import StagedFolder
from kdtheory.experiments.result import JOINT, SMOKE, Effect, dumps, jsonable

__all__ = ["configure", "demo", "evidence_table", "markdown", "reproduce", "select", "summary"]

#: the widest line of the terminal summary.
WIDTH = 120


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


def configure(
    selected: Sequence[str], *, quick: bool = False, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """The configuration each selected experiment runs with: the declared one, overridden.

    Args:
      selected: experiment names.
      quick: start from the quick configurations.
      overrides: experiment name -> {path: value} (see :func:`kdtheory.experiments.config.override`).

    Returns:
      name -> (configuration, its overrides).

    Raises:
      ValueError: overrides for an experiment that is not selected, or that its declaration
        refuses (one line: ``NAME: PATH must be …``).
    """
    overrides = dict(overrides or {})
    stray = [n for n in overrides if n not in selected]
    if stray:
        raise ValueError(f"overrides name {', '.join(stray)}, which this run does not select ({', '.join(selected)})")
    out = {}
    for name in selected:
        given = dict(overrides.get(name) or {})
        try:
            cfg = config.override(load(name).config(quick=quick), given)
        except config.ConfigError as exc:
            raise ValueError(f"{name}: {exc}") from exc
        out[name] = (cfg, given)
    return out


def reproduce(
    out_dir: str | os.PathLike[str] = "kdtheory-out",
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[ExperimentResult]:
    """Run experiments and replace ``out_dir`` by their report, results and figures.

    Args:
      out_dir: output folder; created if absent. It may hold only a previous run's files (as its
        marker lists them), which are replaced as a whole.
      quick: quick (CI) sizes: a smoke run, without verdicts.
      only: names of the experiments to run (default: all registered); repeats are dropped.
      progress: called with one-line progress messages (default: print to stderr).
      overrides: experiment name -> {parameter path: value}, e.g. ``{"late_distillation":
        {"seeds": 3}}`` (:func:`configure`); a run with overrides is not the registered evidence
        and its report says so.

    Returns:
      The results, in run order.

    Raises:
      ValueError: for an unknown experiment name, refused overrides, or an ``out_dir`` that is a
        file or that :func:`kdtheory.experiments.folder.foreign` refuses; nothing is run or
        written then.
      KeyboardInterrupt: on Ctrl-C (the output folder is left as it was).
    """
    say: Callable[[str], None] = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    selected = select(only)
    configs = configure(selected, quick=quick, overrides=overrides)
    size = "quick" if quick else "full"
    t_start = time.perf_counter()
    results: list[ExperimentResult] = []
    late = False
    with Interrupts() as intr, StagedFolder(out_dir) as stage:
        assert stage.path is not None  # the staging folder, set on entering the block

        def note(msg: str) -> None:
            say(msg)
            intr.check()  # a safe point: a pending Ctrl-C stops the run here

        for i, name in enumerate(selected, 1):
            intr.check()
            cfg, given = configs[name]
            changed = f"; overridden: {_overrides_text(given)}" if given else ""
            note(f"[{i}/{len(selected)}] {name}: running ({size} size{changed})")

            def relay(msg: str, name: str = name) -> None:
                note(f"    {name}: {msg}")

            res = harness.run(load(name), quick=quick, config=cfg, out_dir=stage.path, overrides=given, progress=relay)
            results.append(res)
            note(f"[{i}/{len(selected)}] {name}: {res.verdict} ({res.seconds:.1f} s)")
        payload = {
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "size": size,
            "seconds": time.perf_counter() - t_start,
            "versions": _provenance.versions(),
            "registered": all(r.registered for r in results),
            "overrides": {r.name: dict(r.overrides) for r in results if r.overrides},
            "files": {f: hashlib.sha256((stage.path / f).read_bytes()).hexdigest() for r in results for f in r.figures},
            "experiments": {r.name: r.to_json() for r in results},
            "evidence_table": evidence_table(results),
        }
        (stage.path / "results.json").write_text(dumps(payload), encoding="utf-8")
        (stage.path / "report.md").write_text(markdown(results, payload), encoding="utf-8")
        intr.check()
        with intr.critical():
            stage.commit(kdtheory=__version__, created=payload["created"])
        late, intr.pending = intr.pending, False  # the commit is not cut: the run is complete
    if late:
        say("interrupt received during the commit: too late to stop it, the run was written completely")
    say(f"wrote {stage.out / 'report.md'} and {stage.out / 'results.json'} ({time.perf_counter() - t_start:.1f} s)")
    return results


def _overrides_text(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={config.format_value(v) if not isinstance(v, str) else v}" for k, v in overrides.items())


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())


def _fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, the cut marked by ``…``."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _short(v: Any) -> str:
    v = jsonable(v)
    return f"{v:.3g}" if isinstance(v, float) else "—" if v is None else str(v)


def _deciding(r: ExperimentResult) -> Effect | None:
    """The effect a claim's verdict rests on: the first whose own verdict is the claim's, else the first."""
    if not r.effects:
        return None
    return next((e for e in r.effects if e.verdict == r.rule_verdict and e.reason != JOINT), r.effects[0])


def summary(results: Sequence[ExperimentResult], out_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The terminal summary: one line per experiment, each at most :data:`WIDTH` characters.

    Columns: the experiment (``*`` when its configuration was overridden), claim or validation, the
    regime of the deciding effect (``—`` when the effect does not say), the verdict (``smoke run``
    at quick size), and the deciding effect with its estimate and interval (for a validation, the
    start of its reason). The full reasons are in ``report.md`` and ``results.json``.

    Args:
      results: the experiments' results.
      out_dir: the output folder, named in the last line.

    Returns:
      The lines.
    """
    rows: list[tuple[str, str, str, str, Effect | None, ExperimentResult]] = []
    for r in results:
        e = _deciding(r)
        rows.append((
            r.name + ("" if r.registered else "*"),
            r.kind,
            "—" if e is None else _one_line(e.extra.get("regime") or "—"),
            "smoke run" if r.verdict == SMOKE else _one_line(r.verdict),
            e,
            r,
        ))  # fmt: skip
    # column widths from the content, capped so that the effect keeps at least half the line
    name_w = min(max([len("experiment"), *(len(x[0]) for x in rows)]), 30)
    kind_w = max([len("kind"), *(len(x[1]) for x in rows)])
    regime_w = min(max([len("regime"), *(len(x[2]) for x in rows)]), 14)
    verdict_w = min(max([len("verdict"), *(len(x[3]) for x in rows)]), 13)
    head = f"{'experiment':<{name_w}}  {'kind':<{kind_w}}  {'regime':<{regime_w}}  {'verdict':<{verdict_w}}  "
    rest = WIDTH - len(head)
    lines = [head + "deciding effect: estimate [interval]"]
    for name, kind, regime, verdict, e, r in rows:
        if e is None:
            what = _fit(_one_line(r.reason), rest)
        else:
            numbers = f"{_short(e.estimate)} [{_short(e.ci_low)}, {_short(e.ci_high)}]"
            what = f"{_fit(_one_line(e.name), max(rest - len(numbers) - 2, 8))}: {numbers}"
        cells = (_fit(name, name_w), name_w), (kind, kind_w), (_fit(regime, regime_w), regime_w)
        row = "  ".join(f"{c:<{w}}" for c, w in (*cells, (_fit(verdict, verdict_w), verdict_w))) + f"  {what}"
        lines.append(_fit(row, WIDTH).rstrip())
    if any(r.verdict == SMOKE for r in results):
        lines.append("quick size: smoke runs of the pipeline, too small to decide; no verdicts.")
    if not all(r.registered for r in results):
        lines.append("* configuration overridden (--set/--config): not the registered evidence.")
    where = f"{out_dir}/" if out_dir is not None else ""
    lines.append(_fit(_one_line(f"every effect and the full reasons: {where}report.md, {where}results.json"), WIDTH))
    return lines


def _fmt(v: Any) -> str:
    v = jsonable(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    return "—" if v is None else str(v)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _interval(e: Effect) -> str:
    if e.ci_low is None or e.ci_high is None:
        return f"— ({e.interval})"
    return f"[{_fmt(e.ci_low)}, {_fmt(e.ci_high)}] ({e.interval})"


#: the control whose comparison decides each claim's cells (others are in results.json and the claims table).
DECISIVE_CONTROL = {"O1": "replica", "O2": "twin", "T2": "one-hot"}


def evidence_table(results: Sequence[ExperimentResult]) -> list[dict[str, Any]]:
    """Where each claim holds: one entry per cell ``claim × regime × data set × split × τ × control``.

    Read from the effects the claim experiments tag with their cell
    (:func:`kdtheory.experiments.effects.tag`); an effect without a cell is not in the table.

    Args:
      results: the experiments' results.

    Returns:
      Entries ``{experiment, claim, regime, dataset, split, tau, control_arm, effect, estimate,
      ci_low, ci_high, seeds, verdict}``; at quick size the verdict is the smoke-run text.
    """
    from kdtheory.experiments.effects import table

    out = []
    for r in results:
        if r.kind != "claim":
            continue
        for row in table(r.effects):
            out.append({"experiment": r.name, **row, "verdict": SMOKE if r.size == "quick" else row["verdict"]})
    return out


def _evidence_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """The report's first table: the decisive control's cells (teacher-selected O1, all O2 and T2)."""
    shown = [r for r in rows if DECISIVE_CONTROL.get(str(r["claim"])[:2]) == r["control_arm"]
             and "[" not in str(r["claim"])]  # fmt: skip
    lines = [
        "| claim | regime | data set | split | τ | control | estimate [95% interval] | seeds | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in shown:
        iv = f"{_fmt(r['estimate'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        cells = (r["claim"], r["regime"], r["dataset"], r["split"], _fmt(r["tau"]), r["control_arm"], iv, r["seeds"],
                 f"**{r['verdict']}**")  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _claims_table(claims: list[ExperimentResult]) -> list[str]:
    """One row per effect; the claim's own verdict and reason stand on its first row."""
    lines = [
        "| claim | effect | estimate | interval | seeds | control | rule | verdict | reason |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in claims:
        for j, e in enumerate(r.effects):
            mark = "" if r.registered else ", configuration overridden"
            head = f"`{r.name}` ({r.verdict}{mark}): {r.claim}" if j == 0 else "″"
            verdict = r.verdict if r.size == "quick" else e.verdict
            reason = e.reason if e.reason != JOINT else (r.reason if j == 0 else "″ (one rule for the claim)")
            cells = (head, e.name, _fmt(e.estimate), _interval(e), e.seeds, e.control, e.rule, f"**{verdict}**", reason)
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _validations_table(validations: list[ExperimentResult]) -> list[str]:
    lines = ["| validation | what is checked | verdict | reason |", "|---|---|---|---|"]
    lines += [
        f"| `{r.name}`{'' if r.registered else ' (configuration overridden)'} | {_cell(r.claim)} | **{r.verdict}** | "
        f"{_cell(r.reason)} |"
        for r in validations
    ]
    return lines


def markdown(results: Sequence[ExperimentResult], payload: Mapping[str, Any]) -> str:
    """The text of ``report.md``: claims table, validations table, one section per experiment.

    Args:
      results: the experiments' results.
      payload: the ``results.json`` payload (creation time, size, seconds, versions).

    Returns:
      Markdown text.
    """
    v = payload["versions"]
    quick = payload["size"] == "quick"
    git = v.get("git")
    where = f", git commit {git['commit'][:12]}{' with uncommitted changes' if git['dirty'] else ''}" if git else ""
    devices = f", devices: {_provenance.device_text(v['devices'])}" if "devices" in v else ""
    lines = [
        "# kdtheory reproduce report",
        "",
        f"Created {payload['created']} ({payload['size']} size{': a smoke run, no verdicts' if quick else ''}, "
        f"{payload['seconds']:.1f} s) with kdtheory {v['kdtheory']}{where}, numpy {v['numpy']}, scipy {v['scipy']}, "
        f"jax {v['jax']}, Python {v['python']}{devices}.",
    ]
    overridden = [r for r in results if not r.registered or r.overrides]
    if overridden:
        lines += ["", "**Configuration overridden — this run is not the registered evidence.** "
                  + "; ".join(f"`{r.name}`: `{_overrides_text(r.overrides) or 'a configuration given by the caller'}`"
                              for r in overridden) + "."]  # fmt: skip
    claims = [r for r in results if r.kind == "claim"]
    validations = [r for r in results if r.kind == "validation"]
    table = payload.get("evidence_table") or []
    if table:
        lines += ["", "## Where each claim holds", "",
                  "One row per cell (claim × regime × data set × split × τ), decided against its control: O1 "
                  "against the replica (the teacher's recipe from another initialization), O2 against the "
                  "budget-matched one-hot twin, T2 against the one-hot gradient. O1 with the twin, with the label's "
                  "class and the cross-selected check are in the claims table below and in `results.json` "
                  "(`evidence_table`).", ""] + _evidence_markdown(table)  # fmt: skip
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
        if not r.registered or r.overrides:
            shown = _overrides_text(r.overrides) or "a configuration given by the caller"
            lines += ["", f"*Configuration overridden* (`{shown}`): not the registered evidence."]
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
