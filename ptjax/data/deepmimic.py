"""DeepMimic motion files -> H36M-17 world joints.

A DeepMimic frame holds dt, the root position and quaternion, and local joint rotations (reference/data.md).
Forward kinematics uses the link offsets of DeepMimic's humanoid (pybullet's `humanoid.urdf` at 0.25 scale), giving
the 15 DeepMimic joints in its Y-up world; `to_h36m` maps them to H36M-17 and turns the world Z-up.

Mapping DeepMimic-15 -> H36M-17 (both frames' axes: link x forward, y up, z to the character's right):
  Hip <- root, R/LHip <- right/left_hip, R/LKnee <- knee, R/LAnkle <- ankle, Spine <- chest joint,
  Thorax <- neck joint, L/RShoulder, Elbow, Wrist <- the same joints;
  Nose <- neck joint + R_neck (0.06, 0.10, 0) m and Head <- neck joint + R_neck (0.02, 0.22, 0) m, fixed offsets in
  the neck link's frame: the neck link carries the head (a 0.1 m sphere centred 0.175 m above the joint), and the
  offsets give Thorax-Nose and Nose-Head bones of ~0.12 m, close to Human3.6M's averages.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ptjax import geometry

FRAME_WIDTH = 44
_SCALE = 0.25
# name, parent, offset in the parent's frame (URDF units, x0.25), kind, column(s) in a frame.
_JOINTS = (
    ("root", None, (0, 0, 0), "root", None),
    ("chest", "root", (0, .944604, 0), "q", slice(8, 12)),
    ("neck", "chest", (0, .895576, 0), "q", slice(12, 16)),
    ("right_hip", "root", (0, 0, .339548), "q", slice(16, 20)),
    ("right_knee", "right_hip", (0, -1.686184, 0), "r", 20),
    ("right_ankle", "right_knee", (0, -1.639480, 0), "q", slice(21, 25)),
    ("right_shoulder", "chest", (-.0962, .974, .73244), "q", slice(25, 29)),
    ("right_elbow", "right_shoulder", (0, -1.099152, 0), "r", 29),
    ("right_wrist", "right_elbow", (0, -1.035788, 0), "f", None),
    ("left_hip", "root", (0, 0, -.339548), "q", slice(30, 34)),
    ("left_knee", "left_hip", (0, -1.686184, 0), "r", 34),
    ("left_ankle", "left_knee", (0, -1.639480, 0), "q", slice(35, 39)),
    ("left_shoulder", "chest", (-.0962, .974, -.73244), "q", slice(39, 43)),
    ("left_elbow", "left_shoulder", (0, -1.099152, 0), "r", 43),
    ("left_wrist", "left_elbow", (0, -1.035788, 0), "f", None),
)
NAMES = tuple(j[0] for j in _JOINTS)
NOSE_OFFSET = np.array([0.06, 0.10, 0.0])
HEAD_OFFSET = np.array([0.02, 0.22, 0.0])

# H36M-17 joint -> DeepMimic joint (Nose and Head come from the neck frame).
_H36M_FROM = ("root", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
              "chest", "neck", None, None, "left_shoulder", "left_elbow", "left_wrist",
              "right_shoulder", "right_elbow", "right_wrist")
# DeepMimic world (Y-up) -> ptjax world (Z-up): a +90 degree rotation about x, (x, y, z) -> (x, -z, y).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def _quat_wxyz_to_mat(q: np.ndarray) -> np.ndarray:
    if np.any(np.linalg.norm(q, axis=-1) < 1e-8):
        raise ValueError("DeepMimic frame holds a zero quaternion")
    return geometry.quat_to_matrix(q, xp=np)


def deepmimic_forward_kinematics(frames: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(T, 44) DeepMimic frames -> (T, 15, 3) joint positions (Y-up, metres) and each link's world rotation."""
    frames = np.asarray(frames, np.float64)
    n = len(frames)
    rot, pos = {}, {}
    for name, parent, offset, kind, cols in _JOINTS:
        if parent is None:
            pos[name] = frames[:, 1:4]
            rot[name] = _quat_wxyz_to_mat(frames[:, 4:8])
            continue
        pos[name] = pos[parent] + rot[parent] @ (np.asarray(offset) * _SCALE)
        if kind == "q":
            local = _quat_wxyz_to_mat(frames[:, cols])
        elif kind == "r":
            local = geometry.yaw_matrix(frames[:, cols], xp=np)
        else:
            local = np.broadcast_to(np.eye(3), (n, 3, 3))
        rot[name] = rot[parent] @ local
    return np.stack([pos[n_] for n_ in NAMES], 1), rot


def to_h36m(positions15: np.ndarray, neck_rotation: np.ndarray) -> np.ndarray:
    """DeepMimic-15 positions (T, 15, 3) and neck link rotations (T, 3, 3), Y-up -> H36M-17 (T, 17, 3), Z-up."""
    positions15 = np.asarray(positions15, np.float64)
    if positions15.ndim != 3 or positions15.shape[1:] != (15, 3):
        raise ValueError(f"DeepMimic-15 positions must be (T, 15, 3), got {positions15.shape}")
    index = {n: i for i, n in enumerate(NAMES)}
    neck = positions15[:, index["neck"]]
    out = []
    for src in _H36M_FROM:
        out.append(positions15[:, index[src]] if src is not None else None)
    out[9] = neck + neck_rotation @ NOSE_OFFSET
    out[10] = neck + neck_rotation @ HEAD_OFFSET
    joints = np.stack(out, 1)
    return joints @ Y_UP_TO_Z_UP.T


def read_frames(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """Parse a DeepMimic motion file; returns the (T, 44) frames and the loop mode. ValueError on a bad file."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable DeepMimic motion file (truncated or not JSON): {e}") from e
    if not isinstance(doc, dict) or "Frames" not in doc:
        raise ValueError(f"{path}: DeepMimic motion file has no 'Frames' list")
    frames = doc["Frames"]
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{path}: 'Frames' is empty")
    widths = {len(f) if isinstance(f, list) else -1 for f in frames}
    if widths != {FRAME_WIDTH}:
        raise ValueError(f"{path}: every frame must hold {FRAME_WIDTH} numbers, found lengths {sorted(widths)}")
    arr = np.asarray(frames, np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{path}: frames contain NaN or infinite values")
    # A frame's dt is the time to the next frame; the last frame's may be 0.
    if np.any(arr[:-1, 0] <= 0) or arr[-1, 0] < 0:
        raise ValueError(f"{path}: frame durations (first column) must be positive")
    return arr, str(doc.get("Loop", "none"))


def load_motion_file(path: str | os.PathLike, name: str | None = None):
    """One DeepMimic file -> `Motion` on H36M-17 (Z-up, metres), fps from the first frame's duration."""
    from ptjax.data.motion import Motion
    frames, _ = read_frames(path)
    positions, rotations = deepmimic_forward_kinematics(frames)
    joints = to_h36m(positions, rotations["neck"])
    # Clips are sampled uniformly except for rare doubled steps (one in `roll`), which we keep as they are.
    steps = frames[:-1, 0] if len(frames) > 1 else frames[:, 0]
    fps = 1.0 / float(np.median(steps))
    # dt is stored with 5-6 digits (0.033332): snap to the nominal integer rate.
    fps = float(np.round(fps)) if abs(fps - np.round(fps)) < 1e-3 * fps else float(np.round(fps, 3))
    if name is None:
        name = os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return Motion(name=name, fps=fps, joints=joints.astype(np.float32))
