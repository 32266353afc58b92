"""Writing results: npz files and animations (2D keypoints, 3D skeletons, estimated vs imitated side by side).

Animations go through `ptjax.viz` (GIF with Pillow; MP4 needs the [viz] extra). BVH export lives in `ptjax.bvh`.
"""

from __future__ import annotations

import os

import numpy as np

from ptjax import skeleton, viz


def write_npz(path: str, arrays: dict) -> str:
    """Write `arrays` to `path` (.npz, uncompressed) atomically: a killed run never leaves a half-written file.

    A `joints3d` entry must be (T, 17, 3) and finite (DESIGN.md's lift output contract).
    """
    if not path.endswith(".npz"):
        raise ValueError(f"output path must end in .npz, got {path!r}")
    if "joints3d" in arrays:
        joints = skeleton.check_joints(arrays["joints3d"], name="joints3d")
        if joints.ndim != 3:
            raise ValueError(f"joints3d must be (T, 17, 3), got {joints.shape}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path[:-len(".npz")] + ".tmp.npz"
    np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)
    return path


def camera_to_display(joints_cam: np.ndarray) -> np.ndarray:
    """Camera frame (x right, y down, z forward) -> a Z-up frame for drawing only: (x, z, -y), feet at height 0.

    No gravity estimate: a level camera gives an upright figure. Use the estimator's `camera_to_world` for a world
    frame that accounts for the camera's tilt.
    """
    joints_cam = np.asarray(joints_cam, np.float32)
    out = np.stack([joints_cam[..., 0], joints_cam[..., 2], -joints_cam[..., 1]], -1)
    finite = np.isfinite(out[..., 2])
    if finite.any():
        out[..., 2] -= np.min(out[..., 2][finite])
    return out


def save_keypoints_animation(keypoints2d: np.ndarray, path: str, fps: float = 30.0, title: str = "2D keypoints",
                             max_frames: int | None = 150) -> str:
    """(T, 17, 2) keypoints (pixels or normalised, y down) over a blank frame."""
    return viz.animate_2d({title: keypoints2d}, path, fps=fps, max_frames=max_frames)


def save_skeleton_animation(joints_world: np.ndarray, path: str, fps: float = 30.0, title: str = "3D",
                            max_frames: int | None = 150) -> str:
    """(T, 17, 3) world-frame (Z-up) skeleton."""
    return viz.animate_3d({title: joints_world}, path, fps=fps, max_frames=max_frames)


def save_comparison(estimated_world: np.ndarray, imitated_world: np.ndarray, path: str, fps: float = 30.0,
                    labels: tuple[str, str] = ("estimated", "imitated"), max_frames: int | None = 150) -> str:
    """Estimated and imitated (T, 17, 3) world motion side by side (the shorter one holds its last frame)."""
    if labels[0] == labels[1]:
        raise ValueError(f"the two panels need different labels, got {labels}")
    return viz.animate_3d({labels[0]: estimated_world, labels[1]: imitated_world}, path, fps=fps,
                          max_frames=max_frames)


def save_lift_animation(keypoints2d: np.ndarray, joints_world: np.ndarray, path: str, fps: float = 30.0,
                        max_frames: int | None = 150) -> str:
    """The 2D input beside the lifted 3D motion (world frame, Z-up)."""
    if len(keypoints2d) != len(joints_world):
        raise ValueError(f"{len(keypoints2d)} 2D frames but {len(joints_world)} 3D frames")
    return viz.animate_panels({"2D input": keypoints2d, "3D estimate": joints_world}, path, fps=fps,
                              max_frames=max_frames)
