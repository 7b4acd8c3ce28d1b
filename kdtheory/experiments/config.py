"""Experiment parameters: how an experiment declares them, and how a user's overrides are checked.

An experiment's configuration is a frozen dataclass (:attr:`Experiment.full
<kdtheory.experiments.harness.Experiment>` and ``quick`` are two instances of it). Each field is
declared with :func:`param`, which gives the default, a one-line meaning and the admissible
values; the field's type annotation gives the type::

    @dataclass(frozen=True)
    class Config:
        n: int = param(300, "kernel size", low=2)
        noise: float = param(0.3, "label-noise rate η", low=0, below=1)
        dataset: str = param("mixture", "data set", choices=("mixture", "digits"))
        widths: tuple[int, ...] = param((8, 512), "hidden widths of the sweep", low=1)
        seeds: int = param(10, "seeds 0 … seeds − 1", low=2)

Supported types: ``bool``, ``int``, ``float``, ``str``, ``X | None`` (written ``none``), unions of
scalars (``str | int``: each value is checked against the member it parses as), ``tuple[X, ...]``
and ``tuple[X, Y]`` of those (each item checked against the bounds and choices), a nested
dataclass, and a tuple of dataclasses. Bounds (``low``/``high`` inclusive, ``above``/``below``
exclusive) apply to numbers, ``choices`` to strings.

Addresses (``kdtheory reproduce --set PATH=VALUE``, or the keys of a ``--config`` TOML file):

* ``seeds=3``: a field of the configuration;
* ``sizes=8,32,128``: a tuple, items separated by commas (``none`` for ``None``);
* ``inner.steps=500``: a field of a nested dataclass;
* ``designs.0.teacher_t=500``: a field of item 0 of a tuple of dataclasses; items may also be
  named by the value of their *key* field (``designs.mixture.teacher_t=500``, where ``Design``
  declares ``dataset`` with ``param(..., key=True)``), or all at once (``designs.*.teacher_t=500``);
* ``designs=digits,mixture`` (or ``designs=1,0``): keep only these items of a tuple of
  dataclasses, in this order.

:func:`override` applies overrides and raises :class:`ConfigError` (a ``ValueError``) with one
line naming the path, what it admits and the value given; :func:`check` validates a whole
configuration (every registered configuration is checked when its experiment is declared);
:func:`parameters` lists the parameters for ``kdtheory list NAME``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ConfigError", "Param", "Parameter", "check", "flatten", "format_value", "override", "param", "parameters"]

#: the key of :func:`param`'s declaration in a dataclass field's ``metadata``.
METADATA_KEY = "kdtheory.param"


class ConfigError(ValueError):
    """An override or a configuration that the declaration refuses (one line, naming the path)."""


@dataclass(frozen=True)
class Param:
    """What a field admits, as declared by :func:`param`.

    Attributes:
      help: the one-line meaning shown by ``kdtheory list NAME``.
      low: inclusive lower bound of a number (or of each item of a tuple).
      high: inclusive upper bound.
      above: exclusive lower bound.
      below: exclusive upper bound.
      choices: the admissible strings.
      key: this field's value names an item of a tuple of its dataclass (``designs.mixture.n``).
      min_items: the fewest items a variable-length tuple may have.
    """

    help: str
    low: float | None = None
    high: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple[str, ...] | None = None
    key: bool = False
    min_items: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.help, str) or not self.help.strip() or "\n" in self.help.strip():
            raise TypeError(f"param help must be a one-line meaning, got {self.help!r}")
        if self.low is not None and self.above is not None:
            raise TypeError("param takes low (inclusive) or above (exclusive), not both")
        if self.high is not None and self.below is not None:
            raise TypeError("param takes high (inclusive) or below (exclusive), not both")

    def range_text(self) -> str:
        """The bounds in words: ``>= 2``, ``> 0``, ``in [0, 1)``, or ``""`` without bounds.

        Returns:
          The text.
        """
        lower = (self.low, "[") if self.low is not None else (self.above, "(") if self.above is not None else None
        upper = (self.high, "]") if self.high is not None else (self.below, ")") if self.below is not None else None
        if lower and upper:
            return f"in {lower[1]}{_num(lower[0])}, {_num(upper[0])}{upper[1]}"
        if lower:
            return f"{'>=' if lower[1] == '[' else '>'} {_num(lower[0])}"
        if upper:
            return f"{'<=' if upper[1] == ']' else '<'} {_num(upper[0])}"
        return ""

    def admits(self, x: float) -> bool:
        """Whether the number ``x`` lies within the bounds.

        Args:
          x: a number.

        Returns:
          ``True`` when every declared bound holds.
        """
        return not (
            (self.low is not None and x < self.low)
            or (self.above is not None and x <= self.above)
            or (self.high is not None and x > self.high)
            or (self.below is not None and x >= self.below)
        )


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def param(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: Iterable[str] | None = None,
    key: bool = False,
    min_items: int = 1,
) -> Any:
    """Declare a configuration field: its default, its meaning and the values it admits.

    Use as the default of a dataclass field (``n: int = param(300, "kernel size", low=2)``); the
    field's annotation gives its type.

    Args:
      default: the default value (immutable: a tuple, not a list).
      help: the one-line meaning shown by ``kdtheory list NAME``.
      low: inclusive lower bound of a number (each item of a tuple of numbers).
      high: inclusive upper bound.
      above: exclusive lower bound (instead of ``low``).
      below: exclusive upper bound (instead of ``high``).
      choices: the admissible strings (each item of a tuple of strings).
      key: the field's value names its item in a tuple of this dataclass (``designs.mixture.n``).
      min_items: the fewest items of a variable-length tuple (default 1).

    Returns:
      A :func:`dataclasses.field` carrying the declaration in its metadata.

    Raises:
      TypeError: an empty or multi-line ``help``, or both bounds of one side.
    """
    decl = Param(help, low, high, above, below, None if choices is None else tuple(choices), bool(key), int(min_items))
    return dataclasses.field(default=default, metadata={METADATA_KEY: decl})


# ---------------------------------------------------------------- types


@dataclass(frozen=True)
class _Type:
    """A field's type as this module handles it."""

    kind: str  # "scalar", "tuple", "dataclass", "dataclasses"
    scalars: tuple[type, ...] = ()  # scalar: the admissible scalar types in order (NoneType last)
    items: tuple[_Type, ...] = ()  # tuple: one per position, or one with variadic
    variadic: bool = False
    cls: type | None = None  # dataclass / dataclasses: the dataclass

    @property
    def dataclass(self) -> type:
        """The dataclass of a ``"dataclass"`` or ``"dataclasses"`` type."""
        if self.cls is None:
            raise TypeError(f"a {self.kind} type names no dataclass")
        return self.cls


_SCALARS = (bool, int, float, str, type(None))


def _type_of(tp: Any, where: str) -> _Type:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if all(a in _SCALARS for a in args):
            return _Type("scalar", tuple(a for a in args if a is not type(None)) + (type(None),) * (type(None) in args))
        raise TypeError(f"{where}: unsupported union {tp!r} (only unions of bool, int, float, str, None)")
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _type_of(args[0], where)
            if item.kind == "dataclass":
                return _Type("dataclasses", cls=item.cls)
            if item.kind != "scalar":
                raise TypeError(f"{where}: unsupported tuple item type {args[0]!r}")
            return _Type("tuple", items=(item,), variadic=True)
        items = tuple(_type_of(a, where) for a in args)
        if any(i.kind != "scalar" for i in items):
            raise TypeError(f"{where}: unsupported tuple {tp!r}")
        return _Type("tuple", items=items)
    if tp in _SCALARS:
        return _Type("scalar", (tp,))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _Type("dataclass", cls=tp)
    raise TypeError(f"{where}: unsupported parameter type {tp!r}")


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:  # a forward reference that does not resolve
        raise TypeError(f"{cls.__name__}: cannot resolve the annotations of its fields ({exc})") from exc


@functools.cache
def _fields(cls: type) -> dict[str, tuple[dataclasses.Field[Any], _Type | None, Param | None]]:
    """Each field of the dataclass ``cls``: (field, its type or None if unsupported, its declaration)."""
    hints = _hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        decl = f.metadata.get(METADATA_KEY)
        try:
            tp = _type_of(hints[f.name], f"{cls.__name__}.{f.name}")
        except TypeError:
            if decl is not None:  # a declared parameter must have a type this module handles
                raise
            tp = None
        out[f.name] = (f, tp, decl)
    return out


def _type_text(tp: _Type) -> str:
    if tp.kind == "scalar":
        names = {bool: "bool", int: "int", float: "float", str: "str", type(None): "none"}
        return " | ".join(names[s] for s in tp.scalars)
    if tp.kind == "tuple":
        inner = _type_text(tp.items[0])
        return f"tuple of {inner}" if tp.variadic else "(" + ", ".join(_type_text(i) for i in tp.items) + ")"
    return f"tuple of {tp.dataclass.__name__}" if tp.kind == "dataclasses" else tp.dataclass.__name__


# ---------------------------------------------------------------- values


def format_value(value: Any) -> str:
    """A value as ``--set`` spells it: tuples comma-separated, ``None`` as ``none``.

    Args:
      value: a parameter's value.

    Returns:
      The text.
    """
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(format_value(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__
    return _num(value) if isinstance(value, float) else str(value)


def _expects(tp: _Type, decl: Param | None) -> str:
    """What a value of ``tp`` under ``decl`` must be, in words."""
    if tp.kind == "tuple":
        if tp.variadic:
            n = decl.min_items if decl else 1
            return f"a comma-separated list of {_expects_scalar(tp.items[0], decl, plural=True)}" + (
                f" (at least {n})" if n > 1 else ""
            )
        return f"{len(tp.items)} comma-separated values: " + ", ".join(_expects_scalar(i, decl) for i in tp.items)
    return _expects_scalar(tp, decl)


def _expects_scalar(tp: _Type, decl: Param | None, *, plural: bool = False) -> str:
    rng = decl.range_text() if decl else ""
    parts = []
    for s in tp.scalars:
        if s is bool:
            parts.append("true or false")
        elif s is int:
            parts.append(("integers" if plural else "an integer") + (f" {rng}" if rng else ""))
        elif s is float:
            parts.append(("numbers" if plural else "a number") + (f" {rng}" if rng else ""))
        elif s is str:
            if decl and decl.choices:
                parts.append("one of " + ", ".join(repr(c) for c in decl.choices))
            else:
                parts.append("text" if plural else "a text")
        else:
            parts.append("none")
    return " or ".join(parts)


def _parse_scalar(text: str, tp: _Type) -> Any:
    """The value the text ``text`` spells for the scalar type ``tp``, or raise ``ValueError``."""
    t = text.strip()
    for s in tp.scalars:  # str is handled by the caller
        if s is type(None) and t.lower() in ("none", "null"):
            return None
        if s is bool and t.lower() in ("true", "false", "yes", "no", "1", "0"):
            return t.lower() in ("true", "yes", "1")
        if s is int:
            try:
                return int(t.replace("_", ""), 10)
            except ValueError:
                pass
        if s is float:
            try:
                return float(t.replace("_", ""))
            except ValueError:
                pass
    raise ValueError(text)


def _scalar(value: Any, tp: _Type, decl: Param | None) -> Any:
    """``value`` checked against the scalar type ``tp`` and ``decl``; ``ValueError`` if refused."""
    if isinstance(value, str):
        others = tuple(s for s in tp.scalars if s is not str)
        if others:  # text spells a number, a bool or none where the type has one (str | int: "200" is 200)
            try:
                value = _parse_scalar(value, _Type("scalar", others))
            except ValueError:
                if str not in tp.scalars:
                    raise
    for s in tp.scalars:
        if s is type(None) and value is None:
            return None
        if s is bool and isinstance(value, bool):
            return value
        if s is int and isinstance(value, int) and not isinstance(value, bool):
            if decl is None or decl.admits(value):
                return value
        if s is float and isinstance(value, int | float) and not isinstance(value, bool):
            x = float(value)
            if not math.isnan(x) and (decl is None or decl.admits(x)):
                return x
        if s is str and isinstance(value, str):
            if decl is None or not decl.choices or value in decl.choices:
                return value
    raise ValueError(value)


def _convert(value: Any, tp: _Type, decl: Param | None, path: str) -> Any:
    """``value`` (text, or a TOML/Python value) as a value of the field at ``path``; or ConfigError."""

    def refuse() -> ConfigError:
        meaning = f" ({decl.help})" if decl else ""
        if isinstance(value, str):
            shown = value if value.strip() else repr(value)
        else:
            shown = format_value(value) if isinstance(value, list | tuple) else repr(value)
        return ConfigError(f"{path} must be {_expects(tp, decl)}{meaning}, got {shown}")

    try:
        if tp.kind == "scalar":
            return _scalar(value, tp, decl)
        if tp.kind == "tuple":
            if isinstance(value, str):
                text = value.strip().strip("()[]").strip()
                value = [] if not text else [v for v in text.split(",")]
                if value and value[-1].strip() == "":
                    value = value[:-1]  # "8," is the one-item tuple
            if not isinstance(value, list | tuple):
                raise ValueError(value)
            if tp.variadic:
                items = tuple(_scalar(v, tp.items[0], decl) for v in value)
                if len(items) < (decl.min_items if decl else 1):
                    raise ValueError(value)
                return items
            if len(value) != len(tp.items):
                raise ValueError(value)
            return tuple(_scalar(v, i, decl) for v, i in zip(value, tp.items, strict=True))
    except ValueError:
        raise refuse() from None
    raise ConfigError(f"{path} is a group of parameters ({_type_text(tp)}); set one of its fields ({path}.FIELD=...)")


# ---------------------------------------------------------------- overrides


def flatten(overrides: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested mappings (a TOML document) as ``(dotted path, value)`` pairs, in order.

    Args:
      overrides: path or name -> value or a nested mapping.
      prefix: prepended to every path.

    Returns:
      The pairs.
    """
    out: list[tuple[str, Any]] = []
    for k, v in overrides.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out += flatten(v, f"{path}.")
        else:
            out.append((path, v))
    return out


def override(config: Any, overrides: Mapping[str, Any]) -> Any:
    """``config`` with ``overrides`` applied, each checked against its declaration.

    Args:
      config: a configuration (a dataclass instance).
      overrides: path -> value (see the module docstring for paths). A value may be the text
        ``--set`` gives (``"3"``, ``"8,32"``, ``"none"``) or a Python/TOML value (``3``,
        ``[8, 32]``); nested mappings are flattened to dotted paths (a TOML table).

    Returns:
      A new configuration of the same type (``config`` itself when ``overrides`` is empty).

    Raises:
      ConfigError: an unknown path, a value of the wrong type or out of range, or one the
        dataclass's own checks refuse; the one-line message names the path and what it admits.
    """
    for path, value in flatten(overrides):
        config = _set(config, path.split("."), value, "")
    if overrides:
        check(config)
    return config


def _unknown(obj: Any, name: str, prefix: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(obj)]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {prefix}{close[0]}?" if close else ""
    return ConfigError(f"unknown parameter {prefix}{name}{hint} ({type(obj).__name__} has: {', '.join(names)})")


def _set(obj: Any, parts: list[str], value: Any, prefix: str) -> Any:
    name, rest = parts[0], parts[1:]
    cls: type = type(obj)
    fields = _fields(cls)
    if name not in fields:
        raise _unknown(obj, name, prefix)
    _, tp, decl = fields[name]
    path = f"{prefix}{name}"
    if tp is None:
        raise ConfigError(f"{path} cannot be set: its type is not a parameter type")
    current = getattr(obj, name)
    if tp.kind == "dataclass":
        if not rest:
            raise ConfigError(
                f"{path} is a group of parameters ({tp.dataclass.__name__}); set one of its fields ({path}.FIELD)"
            )
        new = _set(current, rest, value, f"{path}.")
    elif tp.kind == "dataclasses":
        new = _set_items(current, tp.dataclass, rest, value, path)
    else:
        if rest:
            raise ConfigError(
                f"{path} is a single parameter ({_type_text(tp)}); {path}.{'.'.join(rest)} does not exist"
            )
        new = _convert(value, tp, decl, path)
    return _replace(obj, name, new, path)


def _replace(obj: Any, name: str, new: Any, path: str) -> Any:
    try:
        return dataclasses.replace(obj, **{name: new})
    except (ValueError, TypeError) as exc:  # the dataclass's own checks (__post_init__)
        raise ConfigError(f"{path}: {' '.join(str(exc).split())}") from exc


def _key_field(cls: type) -> str | None:
    return next((n for n, (_, _, d) in _fields(cls).items() if d is not None and d.key), None)


def _labels(items: tuple[Any, ...], cls: type) -> list[str]:
    """How the items of a tuple of dataclasses are named: their key field's value, else their index."""
    key = _key_field(cls)
    if key is not None:
        labels = [str(getattr(it, key)) for it in items]
        if len(set(labels)) == len(labels):
            return labels
    return [str(i) for i in range(len(items))]


def _select(items: tuple[Any, ...], cls: type, selector: str, path: str) -> list[int]:
    if selector == "*":
        return list(range(len(items)))
    labels = _labels(items, cls)
    if selector in labels:
        return [labels.index(selector)]
    if selector.isdigit() and int(selector) < len(items):
        return [int(selector)]
    shown = ", ".join(labels) if labels != [str(i) for i in range(len(items))] else f"0 … {len(items) - 1}"
    raise ConfigError(f"{path} has no item {selector!r} (its items: {shown}, or * for all)")


def _set_items(items: tuple[Any, ...], cls: type, rest: list[str], value: Any, path: str) -> tuple[Any, ...]:
    if not rest:  # a selection of items, by label or index, in the given order
        chosen = (
            value.split(",") if isinstance(value, str) else list(value) if isinstance(value, list | tuple) else None
        )
        if not chosen or any(not isinstance(c, str | int) or isinstance(c, bool) for c in chosen):
            raise ConfigError(
                f"{path} must be a comma-separated selection of its items ({', '.join(_labels(items, cls))}), "
                f"got {value!r}"
            )
        picked = [i for c in chosen for i in _select(items, cls, str(c).strip(), path)]
        if len(set(picked)) != len(picked):
            raise ConfigError(f"{path}: an item is selected twice in {value!r}")
        return tuple(items[i] for i in picked)
    out = list(items)
    sub = rest[1:]
    if not sub:
        raise ConfigError(f"{path}.{rest[0]} is a {cls.__name__}; set one of its fields ({path}.{rest[0]}.FIELD)")
    for i in _select(items, cls, rest[0], path):
        label = _labels(items, cls)[i]
        out[i] = _set(out[i], sub, value, f"{path}.{label}.")
    return tuple(out)


# ---------------------------------------------------------------- checks and listing


def check(config: Any, prefix: str = "") -> None:
    """Check every declared field of ``config`` (nested ones too) against its declaration.

    Args:
      config: a configuration (a dataclass instance).
      prefix: prepended to the paths in messages.

    Raises:
      ConfigError: the first field whose value its declaration refuses.
      TypeError: a declared field whose annotation is not a parameter type.
    """
    cls: type = type(config)
    for name, (_, tp, decl) in _fields(cls).items():
        value = getattr(config, name)
        path = f"{prefix}{name}"
        if tp is None:
            continue
        if tp.kind == "dataclass":
            check(value, f"{path}.")
        elif tp.kind == "dataclasses":
            if not isinstance(value, tuple) or len(value) < (decl.min_items if decl else 1):
                raise ConfigError(f"{path} must be a tuple of at least one {tp.dataclass.__name__}")
            for label, item in zip(_labels(value, tp.dataclass), value, strict=True):
                check(item, f"{path}.{label}.")
        elif decl is not None:
            converted = _convert(value, tp, decl, path)
            if converted != value or type(converted) is not type(value):
                if not (isinstance(value, int) and isinstance(converted, float) and converted == value):
                    raise ConfigError(f"{path}: the value {value!r} is not of its declared type {_type_text(tp)}")


@dataclass(frozen=True)
class Parameter:
    """One line of ``kdtheory list NAME``: a parameter, its values at both sizes and its meaning.

    Attributes:
      path: the address ``--set`` takes (``designs.<dataset>.teacher_t`` for every item of a tuple).
      type: the type, in words.
      full: the value at full size, as ``--set`` spells it (``key=value, …`` per item).
      quick: the value at quick size.
      admits: the bounds or choices, in words (``""`` when any value of the type is admitted).
      help: the one-line meaning (``""`` for an undeclared field).
    """

    path: str
    type: str
    full: str
    quick: str
    admits: str
    help: str


def parameters(full: Any, quick: Any | None = None) -> list[Parameter]:
    """The parameters of a configuration, for listing.

    Args:
      full: the configuration at full size.
      quick: the configuration at quick size (default: ``full``).

    Returns:
      One :class:`Parameter` per field; the fields of a nested dataclass follow as
      ``field.sub``, those of a tuple of dataclasses as ``field.<i>.sub`` (``<key>`` when the
      item class declares a key field), with the value of each item.
    """
    return _params(full, full if quick is None else quick, "")


def _admits(tp: _Type, decl: Param | None) -> str:
    if decl is None:
        return ""
    bits = []
    if decl.range_text():
        bits.append(decl.range_text())
    if decl.choices:
        bits.append("one of " + ", ".join(decl.choices))
    return "; ".join(bits)


def _per_item(items: tuple[Any, ...], labels: list[str], field: str) -> str:
    """One field's value over the items of a tuple of dataclasses: one value, or ``label=value`` each."""
    vals = [format_value(getattr(it, field)) for it in items]
    return vals[0] if len(set(vals)) == 1 else ", ".join(f"{lb}={v}" for lb, v in zip(labels, vals, strict=True))


def _params(full: Any, quick: Any, prefix: str) -> list[Parameter]:
    out = []
    cls: type = type(full)
    for name, (_, tp, decl) in _fields(cls).items():
        path = f"{prefix}{name}"
        help_ = decl.help if decl else ""
        f_val, q_val = getattr(full, name), getattr(quick, name)
        if tp is None:
            out.append(Parameter(path, "(not settable)", repr(f_val), repr(q_val), "", help_))
        elif tp.kind == "dataclass":
            out += _params(f_val, q_val, f"{path}.")
        elif tp.kind == "dataclasses":
            fl, ql = _labels(f_val, tp.dataclass), _labels(q_val, tp.dataclass)
            key = _key_field(tp.dataclass)
            out.append(Parameter(path, _type_text(tp), ",".join(fl), ",".join(ql), "a selection of its items", help_))
            slot = f"<{key}>" if key and fl != [str(i) for i in range(len(fl))] else "<i>"
            for sub, (_, stp, sdecl) in _fields(tp.dataclass).items():
                if stp is None or stp.kind not in ("scalar", "tuple") or sub == key:
                    continue  # the key field names the items: listed with the tuple itself
                out.append(Parameter(
                    f"{path}.{slot}.{sub}", _type_text(stp), _per_item(f_val, fl, sub), _per_item(q_val, ql, sub),
                    _admits(stp, sdecl), sdecl.help if sdecl else "",
                ))  # fmt: skip
        else:
            out.append(
                Parameter(path, _type_text(tp), format_value(f_val), format_value(q_val), _admits(tp, decl), help_)
            )
    return out
