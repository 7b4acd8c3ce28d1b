"""The ``kdtheory`` command.

Subcommands:
  ``kdtheory reproduce [--quick] [--out DIR] [--only NAME ...]`` — run the registered
  experiments and write ``report.md``, ``results.json`` and the figures into DIR.
  ``kdtheory list`` — the registered experiments and the claims they check.
  ``kdtheory confidence TEACHER STUDENT [--control CONTROL] (--logits | --probabilities) [--labels LABELS]
  [--out DIR]`` — confidence deviations between any teacher's and student's predictions stored as
  ``.npy`` (read in row blocks: memory O(n)) or ``.npz`` (:func:`kdtheory.confidence.analyze`);
  several seeds with ``--triple TEACHER STUDENT CONTROL`` repeated or ``--folder DIR`` of
  ``teacher_K.npy``/``student_K.npy``/``control_K.npy``: O1 decided over the seeds with paired
  intervals (:func:`kdtheory.confidence.analyze_seeds`, :mod:`kdtheory.deviation`). Without a
  control the output says that student-vs-teacher differences are not corrected for regression
  to the mean.

``reproduce`` also takes ``--set PATH=VALUE ...`` and ``--config FILE.toml``, overrides of the
experiments' declared parameters (:mod:`kdtheory.experiments.config`; such a run is not the
registered evidence), and ``--verbose`` (every reason instead of the summary table);
``kdtheory list NAME ...`` shows each parameter's value at both sizes, its range and meaning.

``kdtheory --version``: the package, Python and dependency versions, JAX's devices and the git
commit when run from a checkout.

Exit status: 0 on success; 2 for a usage or input error (one line on stderr naming the
problem, no traceback); 1 when writing fails or memory runs out (one line); 130 when
interrupted (Ctrl-C), printing ``interrupted``. Run as the command, an interrupted process ends
with ``os._exit(130)`` once the output folder is cleaned up, so that the interpreter does not tear
down JAX's runtime threads while they may still be running (it crashed there, issue 19 row 9).

``summary.json`` (``confidence --out``) is strict JSON: non-finite numbers are written as the
strings ``"inf"``, ``"-inf"``, ``"nan"`` (an infinite ``kl_teacher_student`` is ``"inf"``), and
undefined statistics as ``null``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = ["main"]


class _InputError(Exception):
    """A usage or input problem: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and no ``sys.exit`` from library code paths."""

    def error(self, message: str) -> NoReturn:  # noqa: D102 - argparse hook
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """``--version``: versions, devices and git commit (imports JAX only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> NoReturn:  # noqa: D102 - argparse hook
        from kdtheory import _provenance

        print(_provenance.describe(_provenance.versions()))
        parser.exit(0)


def _commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """The ``reproduce`` and ``list`` subcommands."""
    r = sub.add_parser(
        "reproduce",
        help="run the experiments and write the report",
        description="Run the registered experiments; write report.md, results.json and the figures into --out.",
    )
    r.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    r.add_argument("--out", default="kdtheory-out", help="output directory (default: %(default)s)")
    r.add_argument("--only", nargs="+", metavar="NAME", help="run only these experiments")
    r.add_argument(
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH=VALUE",
        help="override a parameter of the --only experiments, e.g. seeds=3, designs.mixture.teacher_t=500, "
        "map_noise=0.1,0.3 (see kdtheory list NAME); the run is then not the registered evidence",
    )
    r.add_argument(
        "--config",
        metavar="FILE.toml",
        help="overrides from a TOML file: a [NAME] table per experiment (without --only, runs those)",
    )
    r.add_argument("--verbose", action="store_true", help="print every experiment's full reason, not the summary")
    ls = sub.add_parser("list", help="list the experiments and their parameters")
    ls.add_argument("names", nargs="*", metavar="NAME", help="show these experiments' parameters in full")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kdtheory", description="The theory of knowledge distillation, made computable.")
    p.add_argument("--version", action=_Version, help="show the versions, devices and git commit, and exit")
    # not required=True: argparse would then report a missing command before an unknown option
    sub = p.add_subparsers(dest="command", metavar="{reproduce,list,confidence}", parser_class=_Parser)
    _commands(sub)
    c = sub.add_parser(
        "confidence",
        help="confidence deviations of a student from its teacher (O1)",
        description="Confidence deviations of a student from its teacher (claim O1), against a control and over "
        "seeds when given; see kdtheory.confidence.analyze and kdtheory.deviation.",
    )
    c.add_argument(
        "predictions",
        nargs="*",
        metavar="TEACHER STUDENT",
        help="teacher and student predictions, .npy (read in blocks) or .npz (FILE.npz:KEY), shape (n, k)",
    )
    c.add_argument("--control", help="a control's predictions for the one seed: a replica of the teacher's recipe")
    c.add_argument(
        "--triple",
        nargs=3,
        action="append",
        metavar=("TEACHER", "STUDENT", "CONTROL"),
        help="one seed's teacher, student and control predictions; repeat for several seeds",
    )
    c.add_argument(
        "--folder",
        help="a folder of teacher_K.npy, student_K.npy (and control_K.npy) files, one K per seed",
    )
    kind = c.add_mutually_exclusive_group(required=True)
    kind.add_argument("--logits", dest="kind", action="store_const", const="logits", help="the predictions are logits")
    kind.add_argument(
        "--probabilities", dest="kind", action="store_const", const="probabilities", help="they are probabilities"
    )
    c.add_argument("--labels", help="labels, .npy/.npz: integers (n,), one-hot (n, k) or strings (n,)")
    c.add_argument(
        "--classes",
        help="class names in column order, for string labels: NAME,NAME,... or a .txt file with one name a line "
        "(default for string labels: their sorted order, if there are exactly k distinct)",
    )
    c.add_argument("--reference", choices=["teacher_top1", "label", "control_top1"], default="teacher_top1")
    c.add_argument("--quantile", type=float, default=0.1, help="low/high-confidence share q in (0, 0.5] (0.1)")
    c.add_argument("--bins", type=int, default=10, help="teacher-confidence quantile bins, >= 1 (10)")
    c.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the slope, >= 0 (1000)")
    c.add_argument("--tol", type=float, default=0.0, help="tolerance on |Δφ| for the shares and counts, >= 0 (0)")
    c.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="O1-underfit's tolerance over seeds, in φ units, >= 0 (kdtheory.deviation.TOLERANCE = 0.1)",
    )
    c.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and robust-slope subsample (0)")
    c.add_argument("--threads", type=int, default=None, help="threads reading row blocks (default: CPUs, at most 8)")
    c.add_argument(
        "--accept-clipping",
        action="store_true",
        help="proceed although more than 1%% of the points have probabilities of exactly 0 or 1 (clipped)",
    )
    c.add_argument("--out", help="write confidence.png and summary.json into this directory")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kdtheory`` command.

    Args:
      argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
      The exit status (see the module docstring).
    """
    command = "kdtheory"
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exc:  # argparse: --help, --version, or a usage error already printed
            return exc.code if isinstance(exc.code, int) else 2
        if args.command is None:
            raise _InputError("a command is required: reproduce, list or confidence (see kdtheory --help)")
        command = f"kdtheory {args.command}"
        if args.command == "confidence":
            return _confidence(args)
        if args.command == "list":
            return _list(args.names)
        return _reproduce(args)
    except _InputError as exc:
        _say(command, f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        _say(command, "interrupted")
        if argv is None:  # the command itself: leave without tearing down JAX's threads mid-flight
            _hard_exit(130)
        return 130
    except MemoryError:
        _say(command, "error: out of memory")
        return 1
    except BrokenPipeError:  # the reader of stdout left (kdtheory list | head): stop quietly
        try:  # no "Exception ignored" when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0


def _hard_exit(status: int) -> None:
    """End the process now: flush the standard streams, skip the interpreter's teardown."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def _say(command: str, message: str) -> None:
    """One line on stderr."""
    print(f"{command}: {' '.join(message.split())}", file=sys.stderr)


def _check_out(out: str) -> Path:
    """Refuse an ``--out`` that cannot become a writable directory, before any work is done."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise _InputError(f"--out {out}: exists and is not a directory")
    base = path.absolute()
    while not base.exists():
        base = base.parent
    if not base.is_dir():
        raise _InputError(f"--out {out}: {base} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise _InputError(f"--out {out}: cannot write in {base} ({exc.strerror or exc})") from exc
    return path


def _list(selected: Sequence[str]) -> int:
    import textwrap

    from kdtheory import experiments
    from kdtheory.experiments import config

    try:
        chosen = list(dict.fromkeys(selected)) or experiments.names()
        exps = [experiments.load(name) for name in chosen]
    except ValueError as exc:
        raise _InputError(str(exc)) from exc
    for exp in exps:
        params = config.parameters(exp.full, exp.quick)
        if not selected:
            groups: dict[str, list[str]] = {}
            flat = []
            for p in params:
                if ".<" in p.path:
                    head, field = p.path.rsplit(".", 1)
                    groups.setdefault(head, []).append(field)
                else:
                    flat.append(f"{p.path}={p.full}")
            flat += [f"{head}.{{{', '.join(fields)}}}" for head, fields in groups.items()]
            print(f"{exp.name}: {exp.claim} ({exp.kind})")
            print(
                textwrap.fill("parameters: " + ", ".join(flat), 100, initial_indent="    ", subsequent_indent="      ")
            )
            continue
        print(f"{exp.name} ({exp.kind}): {exp.claim}")
        print(f"\nParameters — set with: kdtheory reproduce --only {exp.name} --set PATH=VALUE")
        print("(the value at full size; at quick size in brackets where it differs)\n")
        for p in params:
            quick = "" if p.quick == p.full else f" [quick: {p.quick}]"
            print(f"  {p.path} = {p.full}{quick}")
            admits = f"{p.type}{', ' + p.admits if p.admits else ''}"
            print(textwrap.fill(f"{admits} — {p.help}", 100, initial_indent="      ", subsequent_indent="      "))
        if len(exps) > 1:
            print()
    return 0


def _assignment(text: str) -> tuple[str, str]:
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise _InputError(f"--set {text}: expected PATH=VALUE, e.g. seeds=3 (see kdtheory list NAME)")
    return path.strip(), value


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise _InputError(f"--config {path}: cannot read ({exc.strerror or exc})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise _InputError(f"--config {path}: not valid TOML ({exc})") from exc


def _overrides(args: argparse.Namespace) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The experiments to run and each one's overrides, every override checked (nothing runs before)."""
    from kdtheory import experiments
    from kdtheory.experiments import config
    from kdtheory.experiments.reproduce import select

    sections: dict[str, dict[str, Any]] = {}
    loose: dict[str, Any] = {}
    if args.config is not None:
        for key, value in _read_toml(args.config).items():
            if key in experiments.REGISTRY and isinstance(value, dict):
                sections[key] = value
            else:
                loose[key] = value
    sets = [_assignment(text) for text in args.overrides]
    try:
        selected = select(args.only or [n for n in experiments.names() if n in sections] or None)
    except ValueError as exc:
        raise _InputError(str(exc)) from exc
    if (sets or loose) and not args.only:
        what = f"--set {args.overrides[0]}" if sets else f"--config {args.config}: top-level key {next(iter(loose))!r}"
        raise _InputError(f"{what}: name the experiments it configures with --only NAME (or use a [NAME] table)")
    stray = [n for n in sections if n not in selected]
    if stray:
        raise _InputError(f"--config {args.config}: configures {', '.join(stray)}, which --only does not select")
    plan: dict[str, dict[str, Any]] = {}
    for name in selected:
        cfg = experiments.load(name).config(quick=args.quick)
        steps = [(f"--config {args.config} [{name}]", p, v) for p, v in config.flatten(sections.get(name, {}))]
        steps += [(f"--config {args.config}", p, v) for p, v in config.flatten(loose)]
        steps += [(f"--set {p}={v}", p, v) for p, v in sets]
        given: dict[str, Any] = {}
        for where, path, value in steps:
            try:
                cfg = config.override(cfg, {path: value})
            except config.ConfigError as exc:
                label = f"{where} ({name})" if len(selected) > 1 else where
                raise _InputError(f"{label}: {exc}") from exc
            given.pop(path, None)
            given[path] = value
        if given:
            plan[name] = given
    return selected, plan


def _reproduce(args: argparse.Namespace) -> int:
    from kdtheory._interrupt import Interrupts

    with Interrupts():  # Ctrl-C is never lost, from here to the summary (issue 19 row 9)
        return _reproduce_run(args)


def _reproduce_run(args: argparse.Namespace) -> int:
    selected, overrides = _overrides(args)
    _check_out(args.out)
    from kdtheory.experiments.reproduce import reproduce, summary

    try:
        results = reproduce(args.out, quick=args.quick, only=selected, overrides=overrides)
    except ValueError as exc:
        raise _InputError(str(exc)) from exc
    except OSError as exc:
        _say("kdtheory reproduce", f"error: cannot write {exc.filename or args.out}: {exc.strerror or exc}")
        return 1
    if args.verbose:
        width = max(len(r.name) for r in results)
        for r in results:
            print(f"{r.name:<{width}}  {r.verdict:<14} {r.reason}")
    else:
        print("\n".join(summary(results, args.out)))
    return 0


def _class_names(spec: str | None) -> list[str] | None:
    if spec is None:
        return None
    if spec.endswith(".txt"):
        try:
            lines = Path(spec).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise _InputError(f"--classes {spec}: cannot read ({exc})") from exc
        names = [ln.strip() for ln in lines if ln.strip()]
    else:
        names = [s.strip() for s in spec.split(",")]
    if not names or any(not s for s in names):
        raise _InputError(f"--classes {spec}: expected class names separated by commas, or a .txt file")
    return names


def _confidence_runs(args: argparse.Namespace) -> list[list[str]]:
    """The seeds' files: TEACHER STUDENT [--control], repeated --triple, or --folder."""
    given = [bool(args.predictions), bool(args.triple), args.folder is not None]
    if sum(given) != 1:
        raise _InputError(
            "give the predictions one way: TEACHER STUDENT [--control CONTROL], --triple TEACHER STUDENT CONTROL "
            "(repeated, one per seed), or --folder DIR"
        )
    if args.control is not None and not args.predictions:
        raise _InputError("--control is the control of TEACHER STUDENT; with several seeds use --triple or --folder")
    if args.predictions:
        if len(args.predictions) != 2:
            raise _InputError(
                f"expected two files, TEACHER STUDENT, got {len(args.predictions)}; for several seeds use "
                "--triple TEACHER STUDENT CONTROL (repeated) or --folder DIR"
            )
        return [[*args.predictions, *([] if args.control is None else [args.control])]]
    if args.triple:
        return [list(t) for t in args.triple]
    return _folder_runs(args.folder)


def _folder_runs(folder: str) -> list[list[str]]:
    """``teacher_K.npy``, ``student_K.npy`` (and ``control_K.npy``) per seed ``K`` of a folder, by numeric ``K``."""
    import re

    path = Path(folder)
    if not path.is_dir():
        raise _InputError(f"--folder {folder}: {'no such folder' if not path.exists() else 'is not a folder'}")
    found: dict[str, dict[int, str]] = {"teacher": {}, "student": {}, "control": {}}
    for f in path.iterdir():
        m = re.fullmatch(r"(teacher|student|control)_(\d+)\.npy", f.name)
        if m:
            found[m.group(1)][int(m.group(2))] = str(f)
    seeds = sorted(found["teacher"])
    if not seeds:
        raise _InputError(f"--folder {folder}: no teacher_K.npy files (expected teacher_K/student_K/control_K.npy)")
    for role in ("student", "control"):
        missing = sorted(set(seeds) - set(found[role]))
        extra = sorted(set(found[role]) - set(seeds))
        if extra:
            raise _InputError(f"--folder {folder}: {role}_{extra[0]}.npy has no teacher_{extra[0]}.npy")
        if missing and (role == "student" or found["control"]):
            raise _InputError(f"--folder {folder}: teacher_{missing[0]}.npy has no {role}_{missing[0]}.npy")
    with_control = bool(found["control"])
    return [[found["teacher"][s], found["student"][s], *([found["control"][s]] if with_control else [])] for s in seeds]


def _prediction_input(spec: str, what: str) -> Any:
    """A ``.npy`` file by its path (read in row blocks by the analysis), anything else loaded whole."""
    from kdtheory import _io

    p = Path(spec)
    if p.suffix == ".npy" and p.is_file():
        try:
            with open(p, "rb") as fh:
                if fh.read(6) == b"\x93NUMPY":
                    return spec
        except OSError as exc:
            raise ValueError(f"{spec}: cannot read ({exc.strerror or exc})") from exc
    return _io.load_array(spec, what=what)


def _confidence(args: argparse.Namespace) -> int:
    import numpy as np

    from kdtheory import _io
    from kdtheory.confidence import NOT_CORRECTED, Options, analyze_seeds, class_indices, open_predictions

    out = None if args.out is None else _check_out(args.out)
    class_names = _class_names(args.classes)
    runs = _confidence_runs(args)
    try:
        options = Options(
            reference=args.reference,
            quantile=args.quantile,
            bins=args.bins,
            bootstrap=args.bootstrap,
            tol=args.tol,
            seed=args.seed,
            accept_clipping=args.accept_clipping,
            threads=args.threads,
        )
        roles = ("teacher predictions", "student predictions", "control predictions")
        inputs = [[_prediction_input(f, what=r) for f, r in zip(run, roles, strict=False)] for run in runs]
        y = mapping = None
        if args.labels is not None:
            n, k = open_predictions(inputs[0][0], runs[0][0]).shape
            raw = _io.load_array(args.labels, what="labels")
            y = class_indices(raw, n=n, k=k, class_names=class_names, name=args.labels)
            if raw.dtype.kind in "US":
                distinct, first = np.unique(raw, return_index=True)
                mapping = {str(name): int(y[i]) for name, i in zip(distinct.tolist(), first.tolist(), strict=True)}
        elif class_names is not None:
            raise ValueError("--classes names the classes of string labels; give --labels too")
        result = analyze_seeds(
            inputs, kind=args.kind, y=y, options=options, tolerance=args.tolerance, names=runs, control_name="control"
        )
    except ValueError as exc:
        message = str(exc)
        for option in ("bins", "bootstrap", "quantile", "tol", "tolerance", "seed", "reference", "threads"):
            if message.startswith(f"{option} must"):
                message = f"--{message}"  # the command's spelling of the argument
        raise _InputError(message) from exc
    print("\n".join(_confidence_text(result, runs)))
    if mapping is not None:
        shown = ", ".join(f"{name}={j}" for name, j in list(mapping.items())[:12])
        print(f"label classes: {shown}{', ...' if len(mapping) > 12 else ''}")
    if not result.controlled:
        print(f"note: {NOT_CORRECTED}")
    if out is not None:
        from kdtheory._io import write_json_atomic
        from kdtheory.confidence_figure import confidence_figure

        payload = _confidence_payload(result, runs, args, class_names, mapping)
        try:
            out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(out / "summary.json", payload)
            shown_reports = {
                f"seed {i}: {run[1]}": r for i, (run, r) in enumerate(zip(runs, result.reports, strict=True))
            }
            figure_input = result.reports[0] if len(runs) == 1 else dict(list(shown_reports.items())[:4])
            confidence_figure(figure_input, path=out / "confidence.png")
        except OSError as exc:
            _say("kdtheory confidence", f"error: cannot write into {out}: {exc.strerror or exc}")
            return 1
        print(f"written: {out / 'summary.json'}, {out / 'confidence.png'}")
    return 0


def _confidence_text(result: Any, runs: list[list[str]]) -> list[str]:
    """The printed table: one seed's statistics, or per-seed lines and the O1 decisions over seeds."""
    if len(runs) == 1:
        lines = [result.reports[0].table()]
        if result.controlled:
            lines.append(
                "one seed: O1 effects against the control above (o1_*), no interval over seeds; give several seeds "
                "(--triple ... repeated, or --folder) for verdicts"
            )
        return lines
    lines = [f"{len(runs)} seeds{' with a control' if result.controlled else ''}:"]
    lines.append(f"  {'seed':<5} {'slope':>8} {'o1_underfit_low':>16} {'o1_slope':>9} {'o1_exaggerate_high':>19}")
    for i, (r, e) in enumerate(zip(result.reports, result.effects, strict=True)):
        slope = "—" if r.slope is None else f"{r.slope:.4g}"
        lines.append(f"  {i:<5} {slope:>8} {e.underfit_low:>16.4g} {e.slope:>9.4g} {e.exaggerate_high:>19.4g}")
    blocks = [("O1 over seeds (paired Student-t 95% intervals; rules in kdtheory.deviation):", result.decisions)]
    if result.cross_decisions is not None:
        blocks.append(
            ("cross-selected check (groups and class by the control's own φ; student against teacher directly):",
             result.cross_decisions)
        )  # fmt: skip
    for title, decisions in blocks:
        lines.append(title)
        for key, eff in decisions.items():
            ci = "—" if eff.ci_low is None else f"[{eff.ci_low:.4g}, {eff.ci_high:.4g}]"
            lines.append(f"  {key:<17} {eff.estimate:>9.4g} {ci:<24} {eff.verdict}")
    return lines


def _confidence_payload(
    result: Any, runs: list[list[str]], args: argparse.Namespace, class_names: Any, mapping: Any
) -> dict[str, Any]:
    """summary.json: one seed's summary at the top level (as before), or every seed's and the decisions."""
    head = {
        "kind": args.kind,
        "reference": args.reference,
        "labels": args.labels,
        "class_names": class_names,
        "label_classes": mapping,
        "controlled": result.controlled,
        "note": result.note,
    }
    if len(runs) == 1:
        files = dict(zip(("teacher", "student", "control"), runs[0], strict=False))
        return {**files, **head, **result.reports[0].summary()}
    seeds = [
        {**dict(zip(("teacher", "student", "control"), run, strict=False)), **r.summary()}
        for run, r in zip(runs, result.reports, strict=True)
    ]
    cross = None if result.cross_decisions is None else {k: e.to_json() for k, e in result.cross_decisions.items()}
    return {**head, "seeds": seeds, "o1": {k: e.to_json() for k, e in result.decisions.items()}, "o1_cross": cross}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
