"""kdtheory: the theory of knowledge distillation, made computable.

Closed-form and simulated gradient dynamics of linear/kernel regression in eigenspace, the
distillation recipes built on them, and the analyses that check the claims of Nagarajan et al.
(2023), *On student-teacher deviations in distillation: does it pay to disobey?*.

Importing ``kdtheory`` is cheap: submodules are imported explicitly, e.g.
``from kdtheory.eigen import Spectrum`` or ``from kdtheory import dynamics``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
