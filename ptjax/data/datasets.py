"""Evaluation sequences shared by the benchmark loaders (Human3.6M, MPI-INF-3DHP, 3DPW).

Every loader turns its files into a list of `EvalSequence`: 2D keypoints in normalised screen coordinates (the
estimator's input) beside the ground-truth 3D joints in the camera frame (metres), both in H36M-17 order, with the
table row (`group`) the sequence counts towards. `ptjax.evaluate` scores predictions against them.

Files that hold PoseTriplet's 16 joints (H36M-17 without the Nose; PoseAug's and PoseTriplet's 3DHP/3DPW files and
PoseAug's H36M 2D) get a stand-in Nose halfway between Thorax and Head (`insert_nose`) so the estimator sees 17 joints;
the protocols score the 16 real joints only (`SCORED_JOINTS`), as PoseTriplet does.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import warnings

import numpy as np

from ptjax import skeleton

# PoseTriplet scores its 16 joints (no Nose) on every benchmark (reference §2.1, §5).
SCORED_JOINTS: tuple[int, ...] = skeleton.POSETRIPLET16
ALL_JOINTS: tuple[int, ...] = tuple(range(skeleton.NUM_JOINTS))

_THORAX, _NOSE, _HEAD = (skeleton.JOINT_INDEX[n] for n in ("Thorax", "Nose", "Head"))


@dataclasses.dataclass(frozen=True)
class EvalSequence:
    """One test sequence: what the estimator reads and what it is scored against.

    keypoints2d: (T, 17, 2) normalised screen coordinates (VideoPose3D's `normalize_screen_coordinates`).
    joints3d:    (T, 17, 3) ground truth, camera frame (OpenCV axes), metres.
    group:       the table row this sequence counts towards (an action for H36M, a subject for 3DHP/3DPW).
    """
    name: str
    group: str
    keypoints2d: np.ndarray
    joints3d: np.ndarray
    fps: float

    def __post_init__(self):
        kp = skeleton.check_joints(self.keypoints2d, name=f"{self.name} keypoints2d", dims=2)
        gt = skeleton.check_joints(self.joints3d, name=f"{self.name} joints3d", dims=3)
        if kp.ndim != 3 or gt.ndim != 3 or len(kp) != len(gt):
            raise ValueError(f"{self.name}: keypoints2d {kp.shape} and joints3d {gt.shape} must be (T, 17, 2) and "
                             "(T, 17, 3) with the same T")
        if len(kp) == 0:
            raise ValueError(f"{self.name}: empty sequence")
        object.__setattr__(self, "keypoints2d", np.asarray(kp, np.float32))
        object.__setattr__(self, "joints3d", np.asarray(gt, np.float32))

    @property
    def num_frames(self) -> int:
        return int(self.keypoints2d.shape[0])


def insert_nose(joints16: np.ndarray) -> np.ndarray:
    """(..., 16, C) PoseTriplet-16 -> (..., 17, C) H36M-17, with the Nose placed halfway between Thorax and Head.

    H36M's Nose joint sits about halfway up the neck-to-head-top segment (both bones ~0.11 m in H36M's skeleton);
    the stand-in is never scored.
    """
    joints16 = np.asarray(joints16)
    if joints16.ndim < 2 or joints16.shape[-2] != 16:
        raise ValueError(f"expected PoseTriplet-16 joints (..., 16, C), got shape {joints16.shape}")
    out = np.empty(joints16.shape[:-2] + (skeleton.NUM_JOINTS, joints16.shape[-1]), joints16.dtype)
    out[..., list(SCORED_JOINTS), :] = joints16
    out[..., _NOSE, :] = 0.5 * (out[..., _THORAX, :] + out[..., _HEAD, :])
    return out


def to_h36m17(joints: np.ndarray, name: str) -> np.ndarray:
    """Accept (..., 17, C) H36M-17 or (..., 16, C) PoseTriplet-16 joints; return H36M-17."""
    joints = np.asarray(joints)
    if joints.ndim >= 2 and joints.shape[-2] == skeleton.NUM_JOINTS:
        return joints
    if joints.ndim >= 2 and joints.shape[-2] == 16:
        return insert_nose(joints)
    raise ValueError(f"{name} has shape {joints.shape}: expected (..., 17, C) H36M-17 or (..., 16, C) "
                     "PoseTriplet-16 joints")


def to_metres(joints3d: np.ndarray, unit: str, name: str) -> np.ndarray:
    """Scale 3D joints to metres. unit 'm', 'mm', or 'auto' (millimetres when the median Hip-Thorax distance
    exceeds 5, which no human in metres has; a warning says so)."""
    if unit == "m":
        return joints3d
    if unit == "mm":
        return joints3d / 1000.0
    if unit != "auto":
        raise ValueError(f"unit must be 'm', 'mm' or 'auto', got {unit!r}")
    finite = np.isfinite(joints3d).all(axis=(-1, -2))
    if not finite.any():
        return joints3d
    torso = np.linalg.norm(joints3d[finite][..., _THORAX, :] - joints3d[finite][..., 0, :], axis=-1)
    if np.median(torso) > 5.0:
        warnings.warn(f"{name}: 3D joints look like millimetres (median torso {np.median(torso):.0f}); "
                      "converting to metres", stacklevel=3)
        return joints3d / 1000.0
    return joints3d


def load_pickle(path: str, what: str):
    """Read a pickle file with errors that name the file and the expected layout."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} file {path!r} not found")
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError, IndexError) as e:
        raise ValueError(f"{what} file {path!r} is not a readable pickle ({type(e).__name__}: {e})") from e


def bysub_sequences(path: str, key_2d: str, key_3d: str, what: str, fps: float, unit: str = "auto",
                    use_clips: bool = True) -> list[EvalSequence]:
    """Read PoseTriplet's by-subject test pickles (`3dhp_testset_bySub.pkl`, `3dpw_testset_bySub.pkl`).

    Layout (from PoseTriplet `estimator/posegan_basementclass.py::_dataloader_preparation`): a dict
    subject -> dict with `key_2d` (N, 16|17, 2|3; normalised screen coordinates, a third channel is ignored as there),
    `key_3d` (N, 16|17, 3; camera frame, metres) and `clip_idx` (pairs [start, end) cutting N frames into
    contiguous clips). Each clip becomes one sequence; its group is the subject.
    """
    data = load_pickle(path, what)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{what} file {path!r}: expected a non-empty dict subject -> arrays, got "
                         f"{type(data).__name__}")
    sequences = []
    for subject in sorted(data, key=str):
        entry = data[subject]
        if not isinstance(entry, dict):
            raise ValueError(f"{what} file {path!r}: subject {subject!r} is a {type(entry).__name__}, expected a dict "
                             f"with keys {key_2d!r}, {key_3d!r}, 'clip_idx'")
        missing = [k for k in (key_2d, key_3d) + (("clip_idx",) if use_clips else ()) if k not in entry]
        if missing:
            raise ValueError(f"{what} file {path!r}: subject {subject!r} lacks key(s) {missing} "
                             f"(has {sorted(entry)})")
        kp = np.asarray(entry[key_2d], np.float64)
        gt = np.asarray(entry[key_3d], np.float64)
        label = f"{what} {subject}"
        if kp.ndim != 3 or kp.shape[-1] < 2 or gt.ndim != 3 or gt.shape[-1] != 3 or len(kp) != len(gt):
            raise ValueError(f"{label}: {key_2d} {kp.shape} and {key_3d} {gt.shape} must be (N, J, 2|3) and "
                             "(N, J, 3) with the same N")
        kp = to_h36m17(kp[..., :2], f"{label} {key_2d}")
        gt = to_metres(to_h36m17(gt, f"{label} {key_3d}"), unit, label)
        clips = [(0, len(kp))] if not use_clips else _clip_ranges(entry["clip_idx"], len(kp), label)
        for i, (start, end) in enumerate(clips):
            sequences.append(EvalSequence(name=f"{subject}/clip{i:03d}", group=str(subject),
                                          keypoints2d=kp[start:end], joints3d=gt[start:end], fps=fps))
    return sequences


def _clip_ranges(clip_idx, num_frames: int, label: str) -> list[tuple[int, int]]:
    ranges = np.asarray(clip_idx)
    if ranges.ndim != 2 or ranges.shape[1] != 2 or len(ranges) == 0:
        raise ValueError(f"{label}: clip_idx must be a non-empty list of [start, end) pairs, got shape "
                         f"{ranges.shape}")
    out = []
    for start, end in ranges.astype(np.int64).tolist():
        if not 0 <= start < end <= num_frames:
            raise ValueError(f"{label}: clip [{start}, {end}) is outside the {num_frames} frames")
        out.append((start, end))
    return out
