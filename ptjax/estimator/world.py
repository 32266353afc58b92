"""Camera frame -> world frame without extrinsics: PoseTriplet's gravity/PCA prior (reference §2.6).

PoseTriplet (`common/camera2world.py::cam2world_byPCA`) takes the first principal axis of the root-relative joints
over the clip (for an upright body, the body's long axis, i.e. the vertical); if it lies within ~5 degrees
(|cos| > 0.996) of a fixed prior for the up direction in camera coordinates, (0, -0.97, -0.25) (a camera tilted
~14 degrees down, as in Human3.6M), it is taken as "up", otherwise the prior itself is. The world's horizontal axes
here follow the camera's x axis (made perpendicular to "up"), where the original used the second principal axis
(whose sign is arbitrary); a heading does not matter to the imitator. The result is placed with the first frame's
root above the world origin and the lowest joint of the clip on the z = 0 ground (PoseTriplet also grounds each
frame separately before imitation; that belongs to the retargeting step, not here).
"""

from __future__ import annotations

import numpy as np

from ptjax import skeleton

UP_PRIOR_CAMERA = (0.0, -0.97, -0.25)
PCA_AGREEMENT = 0.996


def up_direction(joints_cam: np.ndarray, prior=UP_PRIOR_CAMERA, agreement: float = PCA_AGREEMENT) -> np.ndarray:
    """The world up direction (3,) in camera coordinates for a (T, 17, 3) camera-frame sequence."""
    prior = np.asarray(prior, np.float64)
    prior = prior / np.linalg.norm(prior)
    rel = (joints_cam - joints_cam[:, :1]).reshape(-1, 3).astype(np.float64)
    rel = rel - rel.mean(0)
    if not np.any(rel):
        return prior
    _, _, vt = np.linalg.svd(rel, full_matrices=False)
    axis = vt[0] / np.linalg.norm(vt[0])
    cos = float(axis @ prior)
    return axis * np.sign(cos) if abs(cos) > agreement else prior


def camera_to_world(joints_cam, prior=UP_PRIOR_CAMERA, agreement: float = PCA_AGREEMENT) -> np.ndarray:
    """(T, 17, 3) camera-frame joints (OpenCV axes, metres) -> (T, 17, 3) world joints, Z-up (module docstring)."""
    joints = skeleton.check_joints(joints_cam, name="joints_cam", dims=3)
    if joints.ndim != 3 or len(joints) < 1:
        raise ValueError(f"joints_cam must be one sequence (T, 17, 3) with T >= 1, got shape {joints.shape}")
    prior_arr = np.asarray(prior, np.float64)
    if prior_arr.shape != (3,) or not np.isfinite(prior_arr).all() or np.linalg.norm(prior_arr) < 1e-9:
        raise ValueError(f"prior must be a non-zero 3-vector, got {prior!r}")
    joints = joints.astype(np.float64)
    up = up_direction(joints, prior_arr, agreement)
    x_axis = np.array([1.0, 0.0, 0.0]) - up[0] * up
    if np.linalg.norm(x_axis) < 1e-6:  # "up" along the camera x axis (camera rolled 90 degrees)
        x_axis = np.array([0.0, 0.0, 1.0]) - up[2] * up
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(up, x_axis)
    rotation = np.stack([x_axis, y_axis, up])          # rows: world axes in camera coordinates
    world = joints @ rotation.T
    world[..., :2] -= world[0, 0, :2]
    world[..., 2] -= world[..., 2].min()
    return world.astype(np.float32)
