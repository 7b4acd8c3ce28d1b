"""Tiny designs and a tiny suite of the paired design of O1, O2 and T2 (seconds, not minutes), shared by
tests/test_experiments_{design,arms,measures,effects,confidence_deviation}.py."""

import dataclasses

from kdtheory.experiments import design

TINY = design.Design(
    n=60, n_test=100, validation=30, hidden=(8,), teacher_t=20, student_t=20, points=8, gradient_points=20,
    switch_fractions=(0.5,),
)  # fmt: skip


TINY_PAPER = dataclasses.replace(TINY, regime="paper", label_noise=0.0, teacher_stop="last", reverse=False)


TINY_COMP = dataclasses.replace(TINY_PAPER, regime="compression", teacher_hidden=(16, 16))


SUITE = design.Suite(
    first_seed=0, paper=(TINY_PAPER,), paper_seeds=2, temperatures=(1.0, 2.0), o2_temperatures=(1.0,),
    compression=(TINY_COMP,), compression_seeds=2, compression_temperatures=(1.0,), seeds=2, designs=(TINY,),
    map_datasets=("mixture",), map_seeds=2, map_stop=("last",), map_temperature=(2.0,), map_noise=(0.1,),
    map_budget=(0.5,),
)  # fmt: skip
