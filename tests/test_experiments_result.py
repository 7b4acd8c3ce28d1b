"""kdtheory.experiments.result: strict JSON values (numpy to Python, non-finite floats as strings),
the Outcome's checks, and the record of a run (quick runs record smoke verdicts, not the rule's)."""

import dataclasses
import json

import numpy as np
import pytest

from kdtheory.experiments import effects
from kdtheory.experiments.result import SMOKE, VERDICTS, ExperimentResult, Outcome, dumps, jsonable
from kdtheory.stats import Rule


def _strict(text):
    """json.loads that refuses NaN and Infinity, as JavaScript's JSON.parse does."""

    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_jsonable_gives_plain_strict_values():
    got = jsonable(
        {
            "a": np.arange(3),
            "b": (np.float32(1.5), np.int64(2)),
            "c": [np.inf, -np.inf, np.nan],
            "d": {"e": np.bool_(1)},
        }
    )
    assert got == {"a": [0, 1, 2], "b": [1.5, 2], "c": ["inf", "-inf", "nan"], "d": {"e": True}}
    assert type(got["b"][1]) is int and type(got["d"]["e"]) is bool and type(got["b"][0]) is float
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        jsonable({"x": object()})


def test_dumps_is_strict_indented_json_ending_in_a_newline():
    obj = {"x": np.array([1.0, np.nan]), "name": "σ = 0.1"}
    text = dumps(obj)
    assert _strict(text) == {"x": [1.0, "nan"], "name": "σ = 0.1"}
    assert text == json.dumps({"x": [1.0, "nan"], "name": "σ = 0.1"}, indent=2, ensure_ascii=False) + "\n"


def test_outcome_takes_the_three_verdicts_and_effects_only():
    for verdict in VERDICTS:
        assert Outcome(verdict, "r").verdict == verdict
    with pytest.raises(ValueError, match="verdict must be one of"):
        Outcome("probably", "r")
    with pytest.raises(ValueError, match="effects must be a tuple of Effect"):
        Outcome("supported", "r", effects=({"name": "x"},))


def test_quick_runs_record_smoke_verdicts_and_never_the_rule_verdict():
    rows = [{"a": v} for v in (-0.5, -0.4, -0.6)]
    effect = effects.mean_effect("u", rows, "a", Rule(-0.1, "less"), "replica")
    quick = ExperimentResult(
        "x", "claim", "c", "quick", SMOKE, "r", effects=(effect,), measured={"m": np.float64(np.inf)},
        figures=("x.png",), rule_verdict="supported",
    )  # fmt: skip
    record = _strict(dumps(quick.to_json()))
    assert list(record) == [
        "name", "kind", "claim", "size", "verdict", "reason", "effects", "measured", "figures", "config",
        "overrides", "registered", "seconds",
    ]  # fmt: skip
    assert record["verdict"] == record["effects"][0]["verdict"] == SMOKE and effect.verdict != SMOKE
    assert record["measured"] == {"m": "inf"} and record["figures"] == ["x.png"] and record["registered"] is True
    full = dataclasses.replace(quick, size="full", verdict=effect.verdict)
    assert full.to_json()["effects"][0] == json.loads(json.dumps(effect.to_json()))  # the effect as it decided
