r"""kdtheory: the theory of knowledge distillation, made computable.

Closed-form and simulated gradient dynamics of linear/kernel regression in eigenspace, the
distillation recipes built on them, and the analyses that check the claims of Nagarajan et al.
(2023), *On student-teacher deviations in distillation: does it pay to disobey?*.

Importing ``kdtheory`` is cheap: submodules are imported explicitly, e.g.
``from kdtheory.eigen import Spectrum`` or ``from kdtheory import dynamics``.

Vocabulary (one name per concept, in every module):

* ``y``: labels / targets, shape ``(n,)`` or ``(n, k)`` (``n`` points, ``k`` outputs);
  ``teacher``: a teacher's outputs. Data are positional; every hyperparameter is keyword-only.
* ``t``: the time axis. Whole steps for gradient descent, momentum and simulations; learning-rate
  units (continuous time ``η t``) for gradient flow; ``np.inf`` is the exact converged limit.
  The times of the parts of a composite are ``teacher_t``, ``student_t``, ``switch_t``.
* ``ridge``: the ridge strength ``c`` of ``min ½‖f − y‖² + ½ c‖f‖²_H`` — never a time. Ridge
  recipes return trajectories with ``ridge`` set and ``t = None``.
* ``normalization``: the loss's scale, ``"sum"`` (``½‖f − y‖²``, the default everywhere),
  ``"mean"`` (``½‖f − y‖²/n``) or ``"per_output"`` (``½‖f − y‖²/(n·k)``, neural-tangents'
  convention, so its learning rates and times carry over). In closed forms it divides the
  eigenvalues by ``1``, ``n`` or ``n·k``; :class:`kdtheory.eigen.Recipe` is the one place that
  does it.
* ``learning_rate`` (η), ``momentum`` (β), ``temperature`` (τ), ``seed``.
* How a model trains is one value: ``recipe=`` a :class:`kdtheory.eigen.Recipe` in the closed
  forms (``dynamics.train``, ``distill.rounds``, ``distill.late_switch``; ``teacher=`` and
  ``student=`` in ``distill.distill``), ``run=`` a :class:`kdtheory.simulate.Run` for networks
  (``simulate.train_model``; ``teacher=``/``student=`` in ``simulate.teacher_student``; a list of
  them in ``simulate.train_batch``). Held-out points of a closed form are one value,
  ``test=`` a :class:`kdtheory.dynamics.TestPoints`; solver options too, ``solver=``.
* ``teacher_weight``: the weight on the teacher in a mixed target; ``truth_weight`` (Borup &
  Andersen's α) the weight on the ground truth, ``= 1 − teacher_weight``. Every function that
  mixes accepts either (at most one).
* A spectral *filter* is a value, :class:`kdtheory.eigen.Filter` (``a`` and ``a/λ``); every
  distillation recipe is built from its one composition rule
  :meth:`kdtheory.eigen.Filter.train_from`.
* Results are named (dataclasses / named tuples); closed forms and simulations return the one
  :class:`kdtheory.trajectory.Trajectory` (fields ``t``, ``train``, ``loss``, ``test``, ``ridge``,
  ``filter``, ``modes``, ``norm``, ``weights``, …, ``recipe``).
"""

__version__ = "0.4.0"

__all__ = ["__version__"]
