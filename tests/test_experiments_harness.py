"""kdtheory.experiments.harness: an experiment's declaration and its run are checked (a claim reports
its effects, a measure returns an Outcome, the kind is a claim or a validation)."""

import fake_experiments
import pytest

from kdtheory import experiments
from kdtheory.experiments import harness


def test_a_claim_must_report_effects(tmp_path):
    exp = fake_experiments.experiments()[0]

    def no_effects(cfg, say):
        return experiments.Outcome("supported", "r")

    bare = harness.Experiment("bare", "claim", "c", exp.full, exp.quick, no_effects)
    with pytest.raises(ValueError, match="must report its effects"):
        harness.run(bare)
    with pytest.raises(ValueError, match="must return an Outcome"):
        harness.run(harness.Experiment("bare", "validation", "c", exp.full, exp.quick, lambda cfg, say: 1.0))
    with pytest.raises(ValueError, match="kind must be"):
        harness.Experiment("x", "guess", "c", exp.full, exp.quick, bare.measure)
    with pytest.raises(ValueError, match="verdict must be one of"):
        experiments.Outcome("probably", "r")
