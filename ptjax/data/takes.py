"""2D "takes": 3D clips seen through fixed virtual cameras, the self-supervised setting's only input.

A take is what a 2D keypoint detector would give for one camera's view of a clip: H36M-17 keypoints in
normalised screen coordinates (PoseTriplet's pure-linear projection, f = 2.3). The camera-frame 3D is kept beside
it for evaluation only; no loss may read it.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax.numpy as jnp
import numpy as np

from ptjax import camera
from ptjax.data.motion import Motion


@dataclasses.dataclass(frozen=True)
class Take:
    name: str
    fps: float
    keypoints2d: np.ndarray      # (T, 17, 2) normalised screen coordinates
    joints_cam: np.ndarray       # (T, 17, 3) camera-frame 3D, for evaluation only
    rotation: np.ndarray         # (3, 3) camera -> world
    position: np.ndarray         # (3,) camera centre, world


def fixed_cameras(center: np.ndarray, num_cameras: int = 4, distance: float = 4.5, height: float = 1.5,
                  target_height: float = 1.0, first_azimuth_deg: float = 45.0) -> camera.Extrinsics:
    """Cameras evenly spaced in azimuth around `center` (x, y), like Human3.6M's four corner cameras."""
    az = np.deg2rad(first_azimuth_deg + 360.0 * np.arange(num_cameras) / num_cameras)
    pos = np.stack([center[0] + distance * np.cos(az), center[1] + distance * np.sin(az),
                    np.full_like(az, height)], -1)
    target = np.broadcast_to(np.array([center[0], center[1], target_height]), pos.shape)
    return camera.look_at(jnp.asarray(pos, jnp.float32), jnp.asarray(target, jnp.float32))


def make_takes(motions: Mapping[str, Motion], num_cameras: int = 4, fps: float | None = None,
               distance: float = 4.5) -> list[Take]:
    """Every motion seen by `num_cameras` fixed cameras around its mean root position."""
    takes = []
    for name, motion in motions.items():
        m = motion.resample(fps) if fps else motion
        center = m.joints[:, 0, :2].mean(0)
        cams = fixed_cameras(center, num_cameras, distance=distance)
        for c in range(num_cameras):
            cam = camera.Extrinsics(rotation=cams.rotation[c], position=cams.position[c])
            joints_cam = camera.world_to_camera(jnp.asarray(m.joints), cam)
            kp = camera.project_normalized(joints_cam)
            takes.append(Take(name=f"{name}/cam{c}", fps=m.fps, keypoints2d=np.asarray(kp, np.float32),
                              joints_cam=np.asarray(joints_cam, np.float32),
                              rotation=np.asarray(cam.rotation), position=np.asarray(cam.position)))
    return takes


def chunk_motions(motions: Mapping[str, Motion], frames: int, per_clip: int, fps: float | None = None
                  ) -> dict[str, Motion]:
    """Long clips as `per_clip` evenly spaced pieces of `frames` frames (named "clip@start"), so minutes of
    motion become several takes of one compiled length; clips no longer than `frames` stay whole."""
    if frames < 1 or per_clip < 1:
        raise ValueError(f"chunk_motions needs frames >= 1 and per_clip >= 1, got {frames}, {per_clip}")
    out = {}
    for name, motion in motions.items():
        m = motion.resample(fps) if fps else motion
        if m.num_frames <= frames:
            out[name] = m
            continue
        starts = np.unique(np.round(np.linspace(0, m.num_frames - frames, per_clip)).astype(int))
        for s in starts:
            out[f"{name}@{s}"] = m.with_joints(m.joints[s:s + frames], name=f"{name}@{s}")
    return out
