"""kdtheory.experiments.eigenspace_exaggeration (T1's validation) at quick size: judged on informative
grid points only."""

import numpy as np

from kdtheory import experiments
from kdtheory.experiments import harness
from kdtheory.experiments.result import SMOKE


def test_eigenspace_validation_judges_informative_points_only(tmp_path):
    exp = experiments.load("eigenspace_exaggeration")
    cfg = exp.quick
    res = harness.run(exp, quick=True, out_dir=tmp_path)
    assert exp.kind == "validation" and res.verdict == SMOKE and res.rule_verdict == "supported"
    m = res.measured
    # λ_1 = 1 on the power-law kernel: informative iff T, t < 52 log 2 on the grid geomspace(1e-2, 1e4)
    per_axis = int(np.sum(np.geomspace(1e-2, 1e4, cfg.grid) < 52 * np.log(2)))
    assert m["informative_points"] == per_axis**2 and m["grid_points"] == cfg.grid**2
    assert m["worst_margin_informative"]["E1"] > 0 and m["worst_margin_informative"]["E2"] > 0
    assert m["worst_margin_all_points"]["E2"] == 0  # the saturated points the referee saw
    assert m["margins_exactly_zero"]["E2"]["informative"] == 0 < m["margins_exactly_zero"]["E2"]["saturated"]
    assert m["E3_resolved_crossings"] == {"E3_norm": per_axis**2, "E3_loss": per_axis**2}
    assert len(m["worst_margin_planted_label_energy"]["E3_norm"]) == cfg.seeds
    assert (tmp_path / "eigenspace_exaggeration.png").stat().st_size > 10_000
