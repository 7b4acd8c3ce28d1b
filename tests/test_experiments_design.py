"""kdtheory.experiments.design: the paired design's values, their refusals, the registered suite and
the data it loads."""

import dataclasses

import numpy as np
import pytest
from paired_designs import TINY, TINY_PAPER

from kdtheory.experiments import design
from kdtheory.experiments.config import ConfigError, override


def test_validation_is_noisy_only_with_label_noise():
    noisy, clean = design.load(TINY, 0), design.load(TINY_PAPER, 0)
    assert np.mean(noisy.Y_val.argmax(1) != noisy.clean_val) > 0
    np.testing.assert_array_equal(clean.Y_val.argmax(1), clean.clean_val)
    np.testing.assert_array_equal(clean.Y.argmax(1), clean.clean)


@pytest.mark.parametrize(
    "field, value",
    [("dataset", "cifar"), ("teacher_stop", "best"), ("teacher_stop", -1), ("switch_fractions", (1.0,)),
     ("student_t", 0), ("regime", "iid")],
)  # fmt: skip
def test_design_refuses_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(TINY, **{field: value})


@pytest.mark.parametrize(
    "field, value", [("label_noise", 1.5), ("learning_rate", -1.0), ("hidden", (0,)), ("n", -5), ("momentum", 1.0)]
)
def test_design_refuses_every_declared_bound(field, value):
    # every param declaration is enforced at construction, as config.check enforces it
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(TINY, **{field: value})


def test_design_admits_no_switch():
    # the paper blocks at a temperature without O2 train no late switch
    assert dataclasses.replace(TINY, switch_fractions=()).switch_fractions == ()


@pytest.mark.parametrize("suite", [design.QUICK, design.Suite()], ids=["quick", "full"])
def test_suite_refuses_o2_settings_that_cannot_be_decided(suite):
    # O2's share is read at f = O2_FRACTION: a noisy-labels design switching elsewhere is refused up front
    with pytest.raises(ConfigError, match="designs.mixture.switch_fractions must contain the O2 fraction 0.5"):
        override(suite, {"designs.mixture.switch_fractions": "0.25"})
    # O2 is decided in the paper blocks: an O2 temperature that no paper student trains is refused
    with pytest.raises(ConfigError, match="o2_temperatures must be among temperatures"):
        override(suite, {"temperatures": "1", "o2_temperatures": "2"})
    # both still admit what decides O2
    assert override(suite, {"designs.mixture.switch_fractions": "0.25,0.5"}).designs[0].switch_fractions == (0.25, 0.5)
    assert override(suite, {"designs.mixture.switch_fractions": ""}).designs[0].switch_fractions == ()


def test_registered_suite_has_the_issue_design():
    s = design.Suite()
    assert s.paper_seeds >= 20 and set(s.o2_temperatures) >= {1.0, 4.0} and set(s.temperatures) == {1.0, 2.0, 4.0}
    assert all(d.label_noise == 0 and d.teacher_stop == "last" and d.student_t == d.teacher_t for d in s.paper)
    assert {d.dataset for d in s.paper} == set(design.DATASETS)
    (c,) = s.compression
    assert c.dataset == "mnist1d" and c.teacher_widths == (256, 256) and c.hidden == (64,)
    assert all(d.label_noise > 0 and d.teacher_stop == "val" for d in s.designs)
    assert s.first_seed > 0  # the registered run's seeds are not the development seeds
