"""kdtheory.experiments.config, experiment parameters (issue 21 item 3): declarations, overrides and
their one-line refusals."""

import dataclasses
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdtheory import experiments
from kdtheory.experiments import config
from kdtheory.experiments.config import ConfigError, check, override, param, parameters


@dataclass(frozen=True)
class Item:
    name: str = param("a", "item name", choices=("a", "b", "c"), key=True)
    n: int | None = param(10, "points", low=1)
    stop: str | int = param("val", "stop rule", choices=("val", "last"), low=0)
    fractions: tuple[float, ...] = param((0.25, 0.5), "switch fractions", above=0, below=1)
    pair: tuple[int, int] = param((0, 4), "two indices", low=0)
    flag: bool = param(False, "a switch")


@dataclass(frozen=True)
class Inner:
    steps: int = param(100, "steps", low=1, high=1000)


@dataclass(frozen=True)
class Suite:
    seeds: int = param(10, "seeds", low=2)
    rate: float = param(0.3, "noise rate", low=0, below=1)
    items: tuple[Item, ...] = param((Item(), Item(name="b", n=None)), "the items")
    inner: Inner = param(Inner(), "an inner group")

    def __post_init__(self):
        if self.seeds > 100:
            raise ValueError(f"seeds must be at most 100 here, got {self.seeds}")


S = Suite()


def test_overrides_from_text_and_from_values():
    assert override(S, {"seeds": "3"}).seeds == 3
    assert override(S, {"seeds": 3, "rate": 0}).rate == 0.0 and isinstance(override(S, {"rate": 0}).rate, float)
    got = override(S, {"items.b.n": "5", "items.0.stop": "200", "items.*.fractions": "0.1,0.9", "inner.steps": "7"})
    assert [i.n for i in got.items] == [10, 5] and got.items[0].stop == 200 and got.items[1].stop == "val"
    assert all(i.fractions == (0.1, 0.9) for i in got.items) and got.inner.steps == 7
    assert override(S, {"items.a.n": "none"}).items[0].n is None
    assert override(S, {"items.a.fractions": "0.5"}).items[0].fractions == (0.5,)
    assert override(S, {"items.a.fractions": [0.5, 0.75]}).items[0].fractions == (0.5, 0.75)
    assert override(S, {"items.a.flag": "true"}).items[0].flag is True
    assert [i.name for i in override(S, {"items": "b,a"}).items] == ["b", "a"]
    assert [i.name for i in override(S, {"items": "1"}).items] == ["b"]
    # nested mappings (a TOML document) are dotted paths
    assert override(S, {"items": {"b": {"n": 4}}, "inner": {"steps": 9}}).items[1].n == 4
    assert override(S, {}) is S


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"seeds": "1"}, "seeds must be an integer >= 2 (seeds), got 1"),
        ({"seeds": "2.5"}, "seeds must be an integer >= 2"),
        ({"seeds": True}, "seeds must be an integer >= 2"),
        ({"seeds": "101"}, "seeds: seeds must be at most 100 here, got 101"),  # the dataclass's own check
        ({"rate": "1"}, "rate must be a number in [0, 1) (noise rate), got 1"),
        ({"rate": "nan"}, "rate must be a number in [0, 1)"),
        ({"seed": "3"}, "unknown parameter seed; did you mean seeds?"),
        ({"items.d.n": "3"}, "items has no item 'd' (its items: a, b, or * for all)"),
        ({"items.a.stop": "first"}, "items.a.stop must be one of 'val', 'last' or an integer >= 0"),
        ({"items.a.stop": "-1"}, "items.a.stop must be one of 'val', 'last' or an integer >= 0"),
        ({"items.a.fractions": "0,0.5"}, "items.a.fractions must be a comma-separated list of numbers in (0, 1)"),
        ({"items.a.fractions": ""}, "items.a.fractions must be a comma-separated list"),
        ({"items.a.pair": "1,2,3"}, "items.a.pair must be 2 comma-separated values"),
        ({"items.a.flag": "maybe"}, "items.a.flag must be true or false"),
        ({"items": "b,b"}, "an item is selected twice"),
        ({"items": "z"}, "items has no item 'z'"),
        ({"items.a": "1"}, "items.a is a Item; set one of its fields"),
        ({"inner": "3"}, "inner is a group of parameters (Inner)"),
        ({"inner.steps": "1001"}, "inner.steps must be an integer in [1, 1000] (steps), got 1001"),
        ({"seeds.x": "1"}, "seeds is a single parameter (int); seeds.x does not exist"),
    ],
)
def test_bad_overrides_are_refused_with_one_line_naming_the_path(overrides, message):
    with pytest.raises(ConfigError) as info:
        override(S, overrides)
    text = str(info.value)
    assert message in text and "\n" not in text, text


def test_declarations_are_checked():
    with pytest.raises(TypeError, match="one-line meaning"):
        param(1, "")
    with pytest.raises(TypeError, match="low .inclusive. or above"):
        param(1, "x", low=0, above=0)

    @dataclass(frozen=True)
    class Bad:
        seed: int = param(-1, "a seed", low=0)

    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        check(Bad())

    @dataclass(frozen=True)
    class Unsupported:
        seed: dict = param(None, "a mapping")

    with pytest.raises(TypeError, match="unsupported parameter type"):
        check(Unsupported())


@given(st.integers(-1000, 1000), st.floats(allow_nan=True, allow_infinity=True))
def test_property_an_override_is_admitted_iff_it_lies_in_the_declared_range(seeds, rate):
    for key, value, ok in (("seeds", seeds, 2 <= seeds <= 100), ("rate", rate, 0 <= rate < 1)):
        for given_as in (value, repr(value)):
            try:
                got = override(S, {key: given_as})
            except ConfigError as exc:
                assert not ok, (key, given_as, exc)
                assert key in str(exc)
            else:
                assert ok, (key, given_as)
                assert getattr(got, key) == value


def test_parameters_list_every_field_with_both_sizes():
    quick = override(S, {"seeds": "2", "items": "a"})
    rows = {p.path: p for p in parameters(S, quick)}
    assert rows["seeds"].full == "10" and rows["seeds"].quick == "2" and rows["seeds"].admits == ">= 2"
    assert rows["items"].full == "a,b" and rows["items"].quick == "a"
    assert rows["items.<name>.n"].full == "a=10, b=none" and rows["items.<name>.n"].quick == "10"
    assert rows["items.<name>.stop"].admits == ">= 0; one of val, last"
    assert rows["inner.steps"].admits == "in [1, 1000]"
    assert all(p.help for p in rows.values())


@pytest.mark.parametrize("name", experiments.names())
def test_every_registered_experiment_declares_every_parameter(name):
    exp = experiments.load(name)
    for cfg in (exp.full, exp.quick):
        check(cfg)
    for p in parameters(exp.full, exp.quick):
        assert p.help and p.type != "(not settable)", (name, p)
    declared = [f for f in dataclasses.fields(exp.full) if config.METADATA_KEY in f.metadata]
    assert declared == list(dataclasses.fields(exp.full)), name
    # overriding a value with itself, as text, gives back the same configuration
    for p in parameters(exp.full, exp.full):
        if "<" not in p.path and p.type != "tuple of Design":
            assert override(exp.full, {p.path: p.full}) == exp.full, (name, p.path)
