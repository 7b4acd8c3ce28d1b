"""Test configuration: Hypothesis profiles and JAX precision for comparisons with closed forms.

JAX's x64 mode is switched on here, once, for the whole session (closed form and simulation are
compared to ~1e-9); no test module switches it. The library itself never flips the flag.
"""

import os

import jax
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("thorough", parent=settings.get_profile("dev"), max_examples=2000)
# .ci/run's second pass: the closed-form core's properties with a fresh seed (--hypothesis-seed,
# printed so a failure replays) and more examples than "ci", so CI searches instead of replaying.
settings.register_profile("search", parent=settings.get_profile("dev"), max_examples=1000)
settings.load_profile(os.environ.get("KDTHEORY_HYPOTHESIS_PROFILE", "ci"))

jax.config.update("jax_enable_x64", True)
