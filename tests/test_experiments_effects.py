"""kdtheory.experiments.effects: tagged cells, share effects, and every claim's effects naming their cell."""

import numpy as np
import pytest
from paired_designs import SUITE

from kdtheory.experiments import confidence_deviation as o1
from kdtheory.experiments import effects
from kdtheory.experiments import gradient_denoising as t2
from kdtheory.experiments import late_distillation as o2
from kdtheory.experiments.result import VERDICTS
from kdtheory.stats import Rule


def test_tag_refuses_unknown_cell_keys():
    e = effects.mean_effect("x", [{"a": 1.0}, {"a": 2.0}], "a", Rule(0.0), "none")
    assert effects.tag(e, claim="c", regime="paper").extra["regime"] == "paper"
    with pytest.raises(ValueError, match="cell keys"):
        effects.tag(e, colour="red")


def test_share_effect_is_the_ratio_of_mean_gains():
    rows = [{"acc_student": 0.8 + d, "acc_twin": 0.7, "acc_late_0.5": 0.76 + d / 2} for d in (0.0, 0.01, 0.02, 0.005)]
    e = effects.share_effect("s", rows, 0.5, Rule(0.5), "twin")
    num = np.mean([r["acc_late_0.5"] - r["acc_twin"] for r in rows])
    den = np.mean([r["acc_student"] - r["acc_twin"] for r in rows])
    assert e.estimate == pytest.approx(num / den, rel=1e-12)


def test_mean_interval_is_the_mean_with_its_student_t_interval():
    from scipy import stats as sps

    x = np.array([0.31, 0.27, 0.35, 0.30, 0.22, 0.41])
    half = sps.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)  # oracle: the textbook formula
    est, lo, hi = effects.mean_interval(list(x))
    assert est == pytest.approx(x.mean(), rel=1e-12)
    assert (lo, hi) == pytest.approx((x.mean() - half, x.mean() + half), rel=1e-12)
    assert effects.interval_text([est, lo, hi]) == f"{est:+.3f} [{lo:+.3f}, {hi:+.3f}]"


@pytest.mark.slow  # every regime of a tiny suite, all three claims (shared runs)
def test_every_claim_effect_names_its_cell():
    outs = [m.measure(SUITE, lambda s: None) for m in (o1, o2, t2)]
    regimes = set()
    for out in outs:
        assert out.verdict in VERDICTS and out.effects
        for e in out.effects:
            js = e.to_json()
            assert list(js)[:7] == ["name", "estimate", "ci_low", "ci_high", "seeds", "control", "rule"]
            for key in effects.TABLE_KEYS:
                assert js[key] is not None, (key, e.name)
            regimes.add(js["regime"])
            assert js["seeds"] == 2
        rows = effects.table(out.effects)
        assert len(rows) == len(out.effects)
    assert regimes == {"paper", "compression", "noisy-labels"}
    o1_controls = {(e.extra["split"], e.extra["control_arm"]) for e in outs[0].effects}
    assert o1_controls == {(s, c) for s in ("train", "test") for c in ("replica", "twin")}
    assert {e.extra["regime"] for e in outs[1].effects} == {"paper", "compression", "noisy-labels"}
    t2_cells = {(e.extra["regime"], e.extra["dataset"]) for e in outs[2].effects}
    # defined on the mixture in every regime (posterior labels); never at τ = 2
    assert t2_cells == {("paper", "mixture"), ("compression", "mixture"), ("noisy-labels", "mixture")}
    assert all(e.extra["tau"] == 1.0 for e in outs[2].effects)


def test_t2_builds_no_map_block(monkeypatch):
    # T2 skips the confounder map's cells, so it does not ask for them (their runs are O1's and O2's)
    asked = []

    def blocks(cfg, say=None, *, map_cells=True):
        asked.append(map_cells)
        return []

    monkeypatch.setattr(t2, "blocks", blocks)
    t2.measure(SUITE, lambda _: None)
    assert asked == [False]


def test_difference_effect_reads_keys_with_a_dot():
    # a per-seed key is read as a whole, "acc_late_0.5" included (no "key.field" split)
    rows = [{"acc_late_0.5": 0.7 + d, "acc_twin": 0.6} for d in (0.0, 0.01, 0.02)]
    e = effects.difference_effect("late − twin", rows, "acc_late_0.5", "acc_twin", Rule(0.0), "twin")
    assert e.estimate == pytest.approx(0.11, rel=1e-12)
