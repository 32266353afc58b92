"""The `Motion` type: one sequence of H36M-17 world joints with its frame rate."""

from __future__ import annotations

import dataclasses

import numpy as np

from ptjax import skeleton


@dataclasses.dataclass(frozen=True)
class Motion:
    """A motion clip: `joints` (T, 17, 3) world positions, Z-up, metres; `fps` frames per second."""
    name: str
    fps: float
    joints: np.ndarray

    def __post_init__(self):
        joints = skeleton.check_joints(self.joints, name=f"Motion {self.name!r} joints")
        if joints.ndim != 3:
            raise ValueError(f"Motion {self.name!r} joints must be (T, 17, 3), got {joints.shape}")
        if len(joints) < 1:
            raise ValueError(f"Motion {self.name!r} has no frames")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"Motion {self.name!r} fps must be a positive number, got {self.fps}")
        object.__setattr__(self, "joints", np.asarray(joints, np.float32))
        object.__setattr__(self, "fps", float(self.fps))

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def duration(self) -> float:
        return (self.num_frames - 1) / self.fps

    def resample(self, fps: float) -> "Motion":
        """Linear resampling of joint positions to a new frame rate over the same time span."""
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if self.num_frames == 1 or abs(fps - self.fps) < 1e-9:
            return Motion(self.name, fps, self.joints)
        n_out = int(np.floor(self.duration * fps + 1e-6)) + 1
        t_out = np.arange(n_out) / fps * self.fps
        i0 = np.clip(np.floor(t_out).astype(int), 0, self.num_frames - 1)
        i1 = np.clip(i0 + 1, 0, self.num_frames - 1)
        w = (t_out - i0)[:, None, None].astype(np.float32)
        return Motion(self.name, fps, (1 - w) * self.joints[i0] + w * self.joints[i1])

    def with_joints(self, joints: np.ndarray, name: str | None = None) -> "Motion":
        return Motion(name or self.name, self.fps, joints)
