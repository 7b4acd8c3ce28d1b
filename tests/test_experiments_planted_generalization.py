"""kdtheory.experiments.planted_generalization (T1's planted claim) at quick size: paired validation-selected gains."""

import dataclasses
import json

import numpy as np
import pytest

from kdtheory import experiments
from kdtheory.data import planted_linear
from kdtheory.eigen import Spectrum
from kdtheory.experiments import harness
from kdtheory.experiments.planted_generalization import RECIPE
from kdtheory.experiments.result import SMOKE, dumps
from kdtheory.planted import select_on_validation
from kdtheory.stats import t_interval


def test_planted_claim_reports_paired_validation_selected_gains(tmp_path):
    exp = experiments.load("planted_generalization")
    cfg = exp.quick
    res = harness.run(exp, quick=True, out_dir=tmp_path)
    assert exp.kind == "claim" and res.verdict == SMOKE
    head = res.effects[0]
    assert head.name.startswith(f"σ = {cfg.noise:g}, n_val = {cfg.n_val}:")
    assert len(res.effects) == len(cfg.noise_levels) * len(cfg.val_sizes) and head.seeds == cfg.seeds
    # seed 0 of the headline recomputed outside the experiment
    s = cfg.first_seed
    p = planted_linear(
        cfg.n, cfg.d, exponent=cfg.exponent, signal_exponent=cfg.signal_exponent, noise=cfg.noise, seed=s
    )
    v = planted_linear(cfg.n_val, cfg.d, exponent=cfg.exponent, signal=p.theta_star, noise=cfg.noise, seed=10**6 + s)
    Ts = np.geomspace(1e-2, 1e5, cfg.grid)
    sel = select_on_validation(
        Spectrum.from_features(p.X), p.y, v.X, v.y, p.theta_star, p.cov_evals,
        teacher_t=Ts, student_t=np.r_[Ts, np.inf], teacher_weight=cfg.teacher_weights, recipe=RECIPE,
    )  # fmt: skip
    assert head.extra["per_seed"][0] == pytest.approx(sel.teacher_risk - sel.student_risk, rel=1e-10, abs=1e-15)
    iv = t_interval(head.extra["per_seed"])
    assert (head.ci_low, head.ci_high) == pytest.approx((iv.low, iv.high))
    assert res.rule_verdict == head.verdict
    record = json.loads(dumps(res.to_json()), parse_constant=lambda c: pytest.fail(f"bare {c}"))
    assert list(record["effects"][0])[:7] == ["name", "estimate", "ci_low", "ci_high", "seeds", "control", "rule"]
    assert (tmp_path / "planted_generalization.png").stat().st_size > 10_000


def test_planted_claim_needs_its_headline_in_the_map():
    exp = experiments.load("planted_generalization")
    with pytest.raises(ValueError, match="headline"):
        exp.measure(dataclasses.replace(exp.quick, noise_levels=(2.0,)), lambda msg: None)
