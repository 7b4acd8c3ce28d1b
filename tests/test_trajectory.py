"""kdtheory.trajectory: the Trajectory record, its axis and its one-line repr."""

import numpy as np
import pytest


def test_trajectory_without_an_axis_says_so():
    from kdtheory.trajectory import Trajectory

    traj = Trajectory(t=None, train=np.zeros((1, 2)), loss=np.zeros(1))
    with pytest.raises(ValueError, match="no axis: both t and ridge are None"):
        _ = traj.axis
    assert "ridge()" in repr(traj)  # the one-line repr still works, as before
    assert Trajectory(t=np.arange(3.0), train=np.zeros((3, 2)), loss=np.zeros(3)).axis.shape == (3,)


def test_ridge_axis_and_the_one_line_repr():
    from kdtheory.trajectory import Trajectory

    cs = np.array([0.0, 0.5, 2.0])
    ridge = Trajectory(
        t=None, train=np.zeros((3, 4, 2)), loss=np.array([3.0, 2.0, 1.25]), ridge=cs, test=np.zeros((3, 5, 2)),
        recipe={"method": "ridge"},
    )  # fmt: skip
    assert ridge.axis is cs
    assert repr(ridge) == "Trajectory(method='ridge', ridge(3,), train(3, 4, 2), test(3, 5, 2), final loss=1.25)"
    ts = np.arange(2.0)
    flow = Trajectory(t=ts, train=np.zeros((2, 4)), loss=np.zeros(0), ridge=cs, weights=np.zeros((2, 6)))
    assert flow.axis is ts  # t wins over ridge when both are given
    assert repr(flow) == "Trajectory(method='custom', t(2,), train(2, 4), weights(2, 6))"  # no loss: no final loss
