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


def _cut_take(take: Take, max_frames: int) -> Take:
    if len(take.keypoints2d) <= max_frames:
        return take
    return dataclasses.replace(take, keypoints2d=take.keypoints2d[:max_frames], joints_cam=take.joints_cam[:max_frames])


def _resample(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear resampling of (T, ...) along time."""
    if abs(fps_in - fps_out) < 1e-9 or len(x) < 2:
        return np.asarray(x, np.float32)
    t_out = np.arange(0.0, (len(x) - 1) / fps_in + 1e-9, 1.0 / fps_out) * fps_in
    i0 = np.minimum(np.floor(t_out).astype(int), len(x) - 2)
    w = (t_out - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return ((1 - w) * x[i0] + w * x[i0 + 1]).astype(np.float32)


def load_takes(config) -> tuple[list[Take], list]:
    """(training 2D takes, held-out evaluation takes) of a co-evolution config's `data.source`: "clips" (the
    bundled clips, `clip_takes`) or "h36m" (a user's Human3.6M files, `h36m_takes`)."""
    source = config.data.get("source", "clips")
    if source == "clips":
        return clip_takes(config.data)
    if source == "h36m":
        return h36m_takes(config.data)
    raise ValueError(f"data.source must be 'clips' or 'h36m', got {source!r}")


def clip_takes(d) -> tuple[list[Take], list[Take]]:
    """The training clips seen by `d.num_cameras` fixed cameras at `d.fps` (cut to `d.max_frames`, or with
    `d.chunks_per_clip` N cut into N evenly spaced pieces of max_frames; the first `d.max_takes` if set) and the
    held-out clips by `d.heldout_cameras`."""
    from ptjax.data import load_clips
    fps = float(d.fps)
    clips = load_clips(d.train_clips)
    if int(d.get("chunks_per_clip", 0)):
        clips = chunk_motions(clips, int(d.max_frames), int(d.chunks_per_clip), fps)
    takes = [_cut_take(t, d.max_frames) for t in make_takes(clips, num_cameras=int(d.num_cameras), fps=fps)]
    if d.get("max_takes"):
        takes = takes[:int(d.max_takes)]
    heldout = make_takes(load_clips(d.heldout_clips), num_cameras=int(d.heldout_cameras))
    return takes, heldout


def h36m_takes(d) -> tuple[list[Take], list]:
    """A user's Human3.6M files in VideoPose3D's npz layout (`d.h36m_dir`, `d.keypoints` "gt" or a detector's
    name): the 2D of the training subjects, every camera, resampled to `d.fps` and cut into takes of `d.max_frames`
    (PoseTriplet's setting; their 3D is only used for diagnostics), and the S9/S11 protocol sequences for
    evaluation."""
    from ptjax.data import h36m
    if not d.get("h36m_dir"):
        raise ValueError("data.source='h36m' needs data.h36m_dir (the folder with data_3d_h36m.npz and "
                         "data_2d_h36m_<keypoints>.npz)")
    fps = float(d.fps)
    train = h36m.sequences(d.h36m_dir, d.keypoints, subjects=tuple(d.h36m_train_subjects), downsample=1)
    takes = []
    for seq in train:
        kp = _resample(np.asarray(seq.keypoints2d), seq.fps, fps)
        cam = _resample(np.asarray(seq.joints3d), seq.fps, fps)
        for k, start in enumerate(range(0, max(len(kp) - 30, 0) + 1, int(d.max_frames))):
            end = start + int(d.max_frames)
            takes.append(Take(name=f"{seq.name}/{k}", fps=fps, keypoints2d=kp[start:end], joints_cam=cam[start:end],
                              rotation=np.eye(3, dtype=np.float32), position=np.zeros(3, np.float32)))
    if d.get("max_takes"):
        takes = takes[:int(d.max_takes)]
    return takes, h36m.eval_sequences(d.h36m_dir, d.keypoints)
