"""kdtheory.trajectory: the Trajectory record and its axis."""

import numpy as np
import pytest


def test_trajectory_without_an_axis_says_so():
    from kdtheory.trajectory import Trajectory

    traj = Trajectory(t=None, train=np.zeros((1, 2)), loss=np.zeros(1))
    with pytest.raises(ValueError, match="no axis: both t and ridge are None"):
        _ = traj.axis
    assert "ridge()" in repr(traj)  # the one-line repr still works, as before
    assert Trajectory(t=np.arange(3.0), train=np.zeros((3, 2)), loss=np.zeros(3)).axis.shape == (3,)
