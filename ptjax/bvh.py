"""BVH export and import of H36M-17 motion.

Files follow the standard HIERARCHY / MOTION layout that Blender, MotionBuilder and most BVH readers load:

* Axes: the file is Y-up. A ptjax world point (x, y, z) (Z-up, x forward, y left) is written as (x, z, -y), a
  rotation by -90 degrees about x (no mirroring). Blender's importer with its default axes (forward -Z, up Y) maps
  the file back to (x, y, z), so the motion appears in Blender exactly where it is in ptjax.
* Units: metres by default (Blender's importer at its default scale 1.0 then shows true size); `unit="cm"` writes
  centimetres. Offsets and root positions carry the unit; `read_bvh` must be told the unit the file uses.
* Rotations: Euler angles in degrees, channel order "Zrotation Xrotation Yrotation" (R = Rz Rx Ry, CMU's order);
  the root also has "Xposition Yposition Zposition" first.

Hierarchy: one BVH joint per H36M joint, named as in `ptjax.skeleton.JOINT_NAMES`, plus a zero-offset joint per child
of the two joints with several children (Hip -> "Hip.RHip", "Hip.LHip", "Hip.Spine"; Thorax -> "Thorax.Nose",
"Thorax.LShoulder", "Thorax.RShoulder"). Those carry the per-bone rotations of `ptjax.kinematics`, so every pose --
hips and shoulders need not be rigid -- is stored exactly; the offsets are the motion's bone lengths (mean over
frames). End joints (ankles, wrists, head) get a short end site (foot forward, hand and head along the bone).

`read_bvh` is a generic BVH reader (any channel order, position channels on any joint); it evaluates the file's own
hierarchy and returns the world positions of the 17 joints named as above, so a file edited elsewhere also loads.
"""

from __future__ import annotations

import os
import warnings

import jax
import numpy as np
from scipy.spatial.transform import Rotation

from ptjax import kinematics, skeleton

# ptjax world (Z-up) -> BVH file (Y-up): (x, y, z) -> (x, z, -y).
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
UNITS = {"m": 1.0, "cm": 100.0}
EULER_ORDER = "ZXY"
_AXIS_CHANNEL = {"X": "Xrotation", "Y": "Yrotation", "Z": "Zrotation"}
_IK = jax.jit(kinematics.inverse_kinematics)
_MULTI_CHILD = {0: (1, 4, 7), 8: (9, 11, 14)}
# End-site stubs in the bone's own frame (metres): foot forward, hand and head along the bone.
_END_SITES = {3: (0.1, 0.0, 0.0), 6: (0.1, 0.0, 0.0), 13: (0.0, 0.0, -0.08), 16: (0.0, 0.0, -0.08),
              10: (0.0, 0.0, 0.1)}


# --- writing --------------------------------------------------------------------------------------------------------

def _children(j: int) -> list[int]:
    return [c for c, p in enumerate(skeleton.PARENTS) if p == j]


def _node_list():
    """BVH nodes in depth-first order: (name, parent node index, H36M bone whose rotation it carries or None,
    H36M bone whose offset it has or None, end-site joint or None)."""
    nodes = []

    def add(name, parent, rot_bone, offset_bone, end_joint):
        nodes.append((name, parent, rot_bone, offset_bone, end_joint))
        return len(nodes) - 1

    def visit(joint: int, parent_node: int, offset_bone):
        kids = _children(joint)
        name = skeleton.JOINT_NAMES[joint]
        if joint in _MULTI_CHILD:
            # The joint itself: the root carries the root rotation; Thorax carries none of its own (zeros).
            me = add(name, parent_node, 0 if joint == 0 else None, offset_bone, None)
            for c in kids:
                dummy = add(f"{name}.{skeleton.JOINT_NAMES[c]}", me, c, None, None)
                visit(c, dummy, c)
        elif kids:
            (c,) = kids
            me = add(name, parent_node, c, offset_bone, None)
            visit(c, me, c)
        else:
            add(name, parent_node, None, offset_bone, joint)

    visit(0, -1, None)
    return nodes


NODES = _node_list()


def _fmt(values) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def _local_rotations(joints: np.ndarray) -> np.ndarray:
    """(T, 17, 3) -> (T, 17, 3, 3) float64, via one jitted IK per power-of-two length bucket (few compiles)."""
    t = len(joints)
    bucket = max(16, 1 << (t - 1).bit_length())
    padded = np.concatenate([joints, np.repeat(joints[-1:], bucket - t, axis=0)]).astype(np.float32)
    with jax.default_device(jax.devices("cpu")[0]):
        rotations = np.asarray(_IK(padded)[0][:t], np.float64)
    return rotations


def write_bvh(path: str, joints, fps: float, unit: str = "m") -> str:
    """Write H36M-17 motion (T, 17, 3) (world, Z-up, metres) at `fps` frames per second to a BVH file.

    Bone lengths are those of the motion (their mean over frames if they vary); a motion with varying bone lengths
    is stored with fixed ones, so only then does reading back differ from the input.
    """
    if unit not in UNITS:
        raise ValueError(f"unknown BVH unit {unit!r}; use one of {sorted(UNITS)}")
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    joints = kinematics.check_positions(joints, name="BVH joints")
    if joints.ndim != 3:
        raise ValueError(f"BVH joints must be (T, 17, 3), got {joints.shape}")
    joints = joints.astype(np.float64)
    rotations = _local_rotations(joints)
    # float32 rotations are re-orthonormalised in float64 before the Euler conversion.
    u, _, vt = np.linalg.svd(rotations)
    rotations = u @ vt
    mean_lengths = np.asarray(skeleton.bone_lengths(joints)).mean(0)
    scale = UNITS[unit]
    a = Z_UP_TO_Y_UP
    rest = kinematics.REST_DIRECTIONS.astype(np.float64)
    # Rotations in file axes: A R A^T.
    rot_file = np.einsum("ij,tnjk,lk->tnil", a, rotations, a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: the matrix is still reproduced exactly
        euler = Rotation.from_matrix(rot_file.reshape(-1, 3, 3)).as_euler(EULER_ORDER, degrees=True)
    euler = euler.reshape(len(joints), skeleton.NUM_JOINTS, 3)
    root_file = joints[:, 0] @ a.T * scale

    lines = ["HIERARCHY"]
    depth_of = {}
    rot_channels = " ".join(_AXIS_CHANNEL[ax] for ax in EULER_ORDER)
    columns = []  # per frame: which values, in order
    for i, (name, parent, rot_bone, offset_bone, end_joint) in enumerate(NODES):
        depth = 0 if parent < 0 else depth_of[parent] + 1
        depth_of[i] = depth
        # Close the blocks of nodes that are not ancestors of this one.
        if i > 0:
            prev_depth = depth_of[i - 1]
            for d in range(prev_depth, depth - 1, -1):
                lines.append("  " * d + "}")
        pad = "  " * depth
        offset = np.zeros(3) if offset_bone is None else mean_lengths[offset_bone - 1] * rest[offset_bone]
        offset = a @ offset * scale
        if parent < 0:
            lines += [f"ROOT {name}", "{", f"  OFFSET {_fmt(offset)}",
                      f"  CHANNELS 6 Xposition Yposition Zposition {rot_channels}"]
            columns.append(("root", rot_bone))
        else:
            lines += [f"{pad}JOINT {name}", pad + "{", f"{pad}  OFFSET {_fmt(offset)}",
                      f"{pad}  CHANNELS 3 {rot_channels}"]
            columns.append(("rot", rot_bone))
        if end_joint is not None:
            site = a @ np.asarray(_END_SITES[end_joint]) * scale
            lines += [f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET {_fmt(site)}", pad + "  }"]
    for d in range(depth_of[len(NODES) - 1], -1, -1):
        lines.append("  " * d + "}")

    lines += ["MOTION", f"Frames: {len(joints)}", f"Frame Time: {1.0 / fps:.10g}"]
    zeros = np.zeros(3)
    for t in range(len(joints)):
        values = []
        for kind, bone in columns:
            if kind == "root":
                values.extend(root_file[t])
            values.extend(zeros if bone is None else euler[t, bone])
        lines.append(_fmt(values))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path


# --- reading --------------------------------------------------------------------------------------------------------

class _Tokens:
    def __init__(self, text: str, path: str):
        self.items = []  # (token, line number)
        for n, line in enumerate(text.splitlines(), 1):
            for tok in line.split():
                self.items.append((tok, n))
        self.i = 0
        self.path = path

    def error(self, message: str) -> ValueError:
        line = self.items[min(self.i, len(self.items) - 1)][1] if self.items else 0
        return ValueError(f"BVH file {self.path!r}, line {line}: {message}")

    def next(self, what: str) -> str:
        if self.i >= len(self.items):
            raise ValueError(f"BVH file {self.path!r} ends early (truncated?): expected {what}")
        tok = self.items[self.i][0]
        self.i += 1
        return tok

    def expect(self, word: str) -> None:
        tok = self.next(repr(word))
        if tok.upper() != word.upper():
            self.i -= 1
            raise self.error(f"expected {word!r}, found {tok!r}")

    def number(self, what: str) -> float:
        tok = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            self.i -= 1
            raise self.error(f"expected a number for {what}, found {tok!r}") from None
        if not np.isfinite(value):
            self.i -= 1
            raise self.error(f"non-finite value {tok!r} for {what}")
        return value


_VALID_CHANNELS = {"Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation"}


def _parse_joint(tok: _Tokens, name: str, parent: int, joints: list) -> None:
    tok.expect("{")
    tok.expect("OFFSET")
    offset = np.array([tok.number(f"the OFFSET of {name!r}") for _ in range(3)])
    me = len(joints)
    joints.append({"name": name, "parent": parent, "offset": offset, "channels": []})
    word = tok.next(f"CHANNELS or '}}' in joint {name!r}")
    if word.upper() == "CHANNELS":
        n = tok.number(f"the channel count of {name!r}")
        if n != int(n) or not 0 <= n <= 6:
            raise tok.error(f"joint {name!r} has an invalid channel count {n}")
        channels = [tok.next(f"channel names of {name!r}") for _ in range(int(n))]
        for c in channels:
            if c not in _VALID_CHANNELS:
                raise tok.error(f"joint {name!r} has an unknown channel {c!r}")
        joints[me]["channels"] = channels
        word = tok.next(f"JOINT, End Site or '}}' in joint {name!r}")
    while word != "}":
        if word.upper() == "JOINT":
            child = tok.next("a joint name")
            _parse_joint(tok, child, me, joints)
        elif word.upper() == "END":
            tok.expect("Site")
            tok.expect("{")
            tok.expect("OFFSET")
            for _ in range(3):
                tok.number(f"an End Site OFFSET under {name!r}")
            tok.expect("}")
        else:
            tok.i -= 1
            raise tok.error(f"unexpected {word!r} in joint {name!r}")
        word = tok.next(f"'}}' closing joint {name!r}")


def parse_bvh(path: str, extra_lines: str = "error") -> tuple[list[dict], np.ndarray, float]:
    """Parse a BVH file: (joints [{name, parent, offset, channels}], motion (T, num_channels), frame time seconds).

    Motion lines beyond the declared frame count are an error, or with `extra_lines="drop"` dropped with a warning
    (some exporters write one more line than they declare)."""
    if extra_lines not in ("error", "drop"):
        raise ValueError(f"extra_lines must be 'error' or 'drop', got {extra_lines!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no BVH file {path!r}")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"BVH file {path!r} is not text (binary or wrong encoding): {e}") from None
    tok = _Tokens(text, path)
    tok.expect("HIERARCHY")
    tok.expect("ROOT")
    joints: list[dict] = []
    _parse_joint(tok, tok.next("the root joint name"), -1, joints)
    tok.expect("MOTION")
    tok.expect("Frames:")
    num_frames = tok.number("the frame count")
    if num_frames != int(num_frames) or num_frames < 1:
        raise tok.error(f"invalid frame count {num_frames}")
    num_frames = int(num_frames)
    tok.expect("Frame")
    tok.expect("Time:")
    frame_time = tok.number("the frame time")
    if frame_time <= 0:
        raise tok.error(f"frame time must be positive, got {frame_time}")
    width = sum(len(j["channels"]) for j in joints)
    # Motion data: exactly num_frames lines of `width` numbers.
    rows = []
    lines = text.splitlines()
    start_line = tok.items[tok.i][1] if tok.i < len(tok.items) else len(lines) + 1
    data_lines = [(n, ln) for n, ln in enumerate(lines[start_line - 1:], start_line) if ln.strip()]
    if len(data_lines) < num_frames:
        raise ValueError(f"BVH file {path!r} is truncated: header says {num_frames} frames, "
                         f"found {len(data_lines)} motion lines")
    if len(data_lines) > num_frames and extra_lines == "drop":
        warnings.warn(f"BVH file {path!r}: {len(data_lines) - num_frames} motion line(s) beyond the {num_frames} "
                      "frames declared, dropped", stacklevel=2)
        data_lines = data_lines[:num_frames]
    if len(data_lines) > num_frames:
        n = data_lines[num_frames][0]
        raise ValueError(f"BVH file {path!r}, line {n}: more motion lines than the {num_frames} frames declared")
    for n, ln in data_lines:
        parts = ln.split()
        if len(parts) != width:
            raise ValueError(f"BVH file {path!r}, line {n}: {len(parts)} values, expected {width} "
                             "(one per channel); truncated or garbled")
        try:
            row = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"BVH file {path!r}, line {n}: non-numeric motion value") from None
        rows.append(row)
    motion = np.asarray(rows, np.float64).reshape(num_frames, width)
    if not np.all(np.isfinite(motion)):
        bad = int(np.argwhere(~np.isfinite(motion))[0, 0])
        raise ValueError(f"BVH file {path!r}, line {data_lines[bad][0]}: non-finite motion value")
    return joints, motion, frame_time


def bvh_world_positions(joints: list[dict], motion: np.ndarray) -> np.ndarray:
    """Evaluate a parsed BVH hierarchy: (T, num_joints, 3) world positions in file axes and units."""
    t = len(motion)
    pos = np.zeros((t, len(joints), 3))
    glob = np.zeros((t, len(joints), 3, 3))
    col = 0
    for i, j in enumerate(joints):
        translation = np.broadcast_to(j["offset"], (t, 3)).copy()
        rot = np.broadcast_to(np.eye(3), (t, 3, 3)).copy()
        rot_axes, rot_cols = "", []
        for c in j["channels"]:
            if c.endswith("position"):
                translation[:, "XYZ".index(c[0])] = j["offset"]["XYZ".index(c[0])] + motion[:, col]
            else:
                rot_axes += c[0]
                rot_cols.append(col)
            col += 1
        if rot_axes:
            rot = Rotation.from_euler(rot_axes.upper(), motion[:, rot_cols], degrees=True).as_matrix()
        if j["parent"] < 0:
            pos[:, i] = translation
            glob[:, i] = rot
        else:
            p = j["parent"]
            pos[:, i] = pos[:, p] + np.einsum("tij,tj->ti", glob[:, p], translation)
            glob[:, i] = glob[:, p] @ rot
    return pos


def read_bvh(path: str, unit: str = "m") -> tuple[np.ndarray, float]:
    """Read a BVH file with H36M-17 joint names -> (joints (T, 17, 3) world Z-up metres, fps)."""
    if unit not in UNITS:
        raise ValueError(f"unknown BVH unit {unit!r}; use one of {sorted(UNITS)}")
    bvh_joints, motion, frame_time = parse_bvh(path)
    names = [j["name"] for j in bvh_joints]
    missing = [n for n in skeleton.JOINT_NAMES if n not in names]
    if missing:
        raise ValueError(f"BVH file {path!r} has no joint(s) named {missing}; ptjax reads BVH files whose joints "
                         f"carry the H36M-17 names {list(skeleton.JOINT_NAMES)} (as write_bvh writes them)")
    pos = bvh_world_positions(bvh_joints, motion)
    index = [names.index(n) for n in skeleton.JOINT_NAMES]
    joints = pos[:, index] @ Z_UP_TO_Y_UP / UNITS[unit]   # file -> world: A^T x, i.e. x @ A
    return joints.astype(np.float32), 1.0 / frame_time
