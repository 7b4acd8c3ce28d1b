r"""Per-seed numbers → decided effects, each tagged with the cell of the evidence table it fills.

A cell is ``claim × regime × data set × split`` (plus τ and the control): :func:`tag` writes them
into the :class:`kdtheory.stats.Effect`'s ``extra`` as ``claim, regime, dataset, split, tau,
control_arm`` — the keys ``results.json`` and the report's evidence table read (:func:`table`).
Intervals: paired 95% Student-t over seeds (:func:`kdtheory.stats.paired_effect`); a ratio of
paired gains by Fieller's interval (:func:`kdtheory.stats.ratio_effect`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from kdtheory.stats import Effect, Rule, paired_effect, ratio_effect, t_interval

__all__ = ["tag", "difference_effect", "mean_effect", "share_effect", "mean_interval", "interval_text", "table",
           "TABLE_KEYS"]  # fmt: skip

#: the keys of a table cell, in the order of the evidence table's columns.
TABLE_KEYS = ("claim", "regime", "dataset", "split", "tau", "control_arm")


def tag(effect: Effect, **cell: Any) -> Effect:
    """The effect with its table cell (``claim, regime, dataset, split, tau, control_arm``) in ``extra``.

    Args:
      effect: the :class:`~kdtheory.stats.Effect`.
      **cell: the cell's keys (a subset of :data:`TABLE_KEYS`; others are refused).

    Returns:
      A new :class:`~kdtheory.stats.Effect`.

    Raises:
      ValueError: a key that is not a table key.
    """
    bad = set(cell) - set(TABLE_KEYS)
    if bad:
        raise ValueError(f"cell keys must be among {TABLE_KEYS}, got {sorted(bad)}")
    return dataclasses.replace(effect, extra={**cell, **effect.extra})


def _col(rows: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.array([r[key] for r in rows], dtype=float)


def difference_effect(name: str, rows: list[dict[str, Any]], a: str, b: str | None, rule: Rule, control: str) -> Effect:
    """Paired effect ``rows[a] − rows[b]`` over seeds (``b=None``: ``rows[a]`` against 0), by ``rule``.

    Args:
      name: what is measured.
      rows: per-seed dicts.
      a: treatment key.
      b: control key, or ``None`` when ``a`` is already a paired contrast.
      rule: the rule fixed before the run.
      control: the control arm in words.

    Returns:
      The :class:`~kdtheory.stats.Effect`.
    """
    va = _col(rows, a)
    vb = np.zeros_like(va) if b is None else _col(rows, b)
    return paired_effect(name, va, vb, control=control, rule=rule)


def mean_effect(name: str, rows: list[dict[str, Any]], key: str, rule: Rule, control: str) -> Effect:
    """Effect of a per-seed value that is already a paired contrast or a ratio (t interval of its mean).

    Args:
      name: what is measured.
      rows: per-seed dicts.
      key: the per-seed value.
      rule: the rule fixed before the run.
      control: the control arm (or the fixed reference) in words.

    Returns:
      The :class:`~kdtheory.stats.Effect`.
    """
    return difference_effect(name, rows, key, None, rule, control)


def share_effect(
    name: str, rows: list[dict[str, Any]], f: float, rule: Rule, control: str, *, suffix: str = ""
) -> Effect:
    """Recovered share at switch ``f``: (late − twin) / (student − twin), Fieller over seeds.

    Args:
      name: what is measured.
      rows: per-seed dicts.
      f: the switch fraction.
      rule: the rule fixed before the run.
      control: the control arm in words.
      suffix: ``""`` (end of the budget) or ``"_es"`` (every arm early-stopped on the validation split).

    Returns:
      The :class:`~kdtheory.stats.Effect` (inconclusive when the gain's interval contains 0).
    """
    num = _col(rows, f"acc_late_{f:g}{suffix}") - _col(rows, f"acc_twin{suffix}")
    den = _col(rows, f"acc_student{suffix}") - _col(rows, f"acc_twin{suffix}")
    return ratio_effect(name, num, den, control=control, rule=rule)


def mean_interval(values: ArrayLike) -> list[float]:
    """``[estimate, low, high]``: the mean over seeds and its 95% t interval (what :func:`interval_text` writes).

    Args:
      values: one number per seed.

    Returns:
      The triple, as ``results.json`` records it.
    """
    iv = t_interval(np.asarray(values, dtype=float))
    return [iv.estimate, iv.low, iv.high]


def interval_text(values: Sequence[float | None], scale: float = 1.0, digits: int = 3) -> str:
    """``"estimate [low, high]"`` of a ``[estimate, low, high]`` triple (``—`` for a missing end).

    Args:
      values: ``[estimate, low, high]`` (ends may be ``None``).
      scale: factor applied to all three (e.g. 100 for percentage points).
      digits: decimals.

    Returns:
      The text.
    """

    def one(v: float | None) -> str:
        return "—" if v is None or not np.isfinite(v) else f"{scale * v:+.{digits}f}"

    est, lo, hi = values
    return f"{one(est)} [{one(lo)}, {one(hi)}]"


def table(effects: Sequence[Effect]) -> list[dict[str, Any]]:
    """The evidence table: one row per tagged effect — its cell, estimate, interval, seeds, verdict.

    Args:
      effects: effects, tagged by :func:`tag` (untagged ones are skipped).

    Returns:
      Rows ``{claim, regime, dataset, split, tau, control_arm, effect, estimate, ci_low, ci_high,
      seeds, verdict}`` in the order given.
    """
    rows = []
    for e in effects:
        if "claim" not in e.extra:
            continue
        rows.append({**{k: e.extra.get(k) for k in TABLE_KEYS}, "effect": e.name, "estimate": e.estimate,
                     "ci_low": e.ci_low, "ci_high": e.ci_high, "seeds": e.seeds, "verdict": e.verdict})  # fmt: skip
    return rows
