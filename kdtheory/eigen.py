r"""The spectral core: spectra of kernels and design matrices, spectral filters and recipes.

Gradient-based training of a linear (kernel) model on the squared loss acts independently on the
eigendirections of the kernel ``K = X Xᵀ``: along eigendirection ``u_k`` (eigenvalue ``λ_k``) it
learns a fraction ``a_k`` of the label component ``z_k = u_kᵀ y``. The map ``λ ↦ a`` is the
*spectral filter* of the training recipe. This module is the entry point to

* :class:`Spectrum`, the eigenpairs of a PSD kernel (:meth:`Spectrum.from_kernel`) or the SVD of a
  design matrix (:meth:`Spectrum.from_features`), eigenvalues in **descending** order;
* :class:`Filter`, the filter as a value — ``a`` and the stable ``a/λ`` — with the one
  composition rule :meth:`Filter.train_from` from which every distillation recipe is built;
* :class:`Recipe`, an optimizer (flow, GD, momentum, ridge) with its loss normalization, which
  produces filters (:meth:`Recipe.filter`) and owns the ``λ → λ/n`` (or ``λ/(n·k)``) scaling;
  :func:`loss_divisor`, the one place the normalization's divisor is defined;
* the filters of one recipe as functions of eigenvalues (:func:`flow_filter`, :func:`gd_filter`,
  :func:`momentum_filter`, :func:`ridge_filter`) and :func:`max_learning_rate`.

Each job has its own module, and every name here is one of theirs (the same object):
:mod:`kdtheory.spectrum` (the decomposition and its precision judgement), :mod:`kdtheory.filters`
(the filter algebra, recipes and normalization) and the private ``kdtheory._filter_numerics``
(the per-mode numerics of flow, GD, heavy-ball momentum and ridge, below the algebra).

Conventions: see the vocabulary in :mod:`kdtheory`. ``t = ∞`` is the exact limit (``a = 1`` for
``λ > 0``, ``0`` for ``λ = 0``; ``a/λ = 1/λ`` or ``0``: the minimum-norm / pseudo-inverse
solution), never a large finite time. This module imports numpy and scipy only.

References:
  Jacot, Gabriel, Hongler (2018), *Neural tangent kernel*; Lee et al. (2019), *Wide neural
  networks of any depth evolve as linear models under gradient descent*, eq. 9;
  Nagarajan et al. (2023), *On student-teacher deviations in distillation*, §5.
"""

from __future__ import annotations

from kdtheory.filters import (
    GRADIENT_FLOW,
    NORMALIZATIONS,
    Filter,
    Method,
    Normalization,
    Recipe,
    flow_filter,
    gd_filter,
    loss_divisor,
    max_learning_rate,
    momentum_filter,
    ridge_filter,
)
from kdtheory.spectrum import Spectrum

__all__ = [
    "Spectrum",
    "Filter",
    "Recipe",
    "GRADIENT_FLOW",
    "flow_filter",
    "gd_filter",
    "momentum_filter",
    "ridge_filter",
    "max_learning_rate",
    "Method",
    "Normalization",
    "NORMALIZATIONS",
    "loss_divisor",
]
