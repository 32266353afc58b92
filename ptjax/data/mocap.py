"""Other skeletons' motion capture (BVH rigs, CMU ASF/AMC, holosoma's joint-position arrays) -> H36M-17 `Motion`.

Each source skeleton ("rig") names, for the 15 H36M joints below the head, the joint whose position stands for it:
the pelvis (root) joint for Hip, the hip, knee and ankle joints, the upper arm's head for the shoulder, the elbow and the
wrist; Spine is the rig's spine joint nearest the middle of the back; Thorax is the base of the neck. A rig lacking
one of them is refused. A rig joint may also be a pair of source joints, placed at their midpoint: CMU's root lies
0.10 m above its hip joints, Human3.6M's pelvis between them, so CMU's Hip is the midpoint of its hip joints (with the
root as pelvis the pelvis-hip bones pointed 55-57 degrees down, against at most 10 in every other rig, and a model
trained on the other rigs mistook that for motion; docs/data.md); its Spine, lowerback's end, then lies half way to
the neck base as in the other rigs, and the Hip-Spine segment crosses CMU's lumbar joint, so its length varies with
the back's bend (0.204-0.223 m in 01_01, 5th-95th percentile 0.208-0.220; the root, the one point rigid with the
hips, would tilt the trunk 23 degrees back). Nose and Head are placed as the bundled DeepMimic
clips place them (`ptjax.data.deepmimic`):
at fixed offsets in a neck frame -- up the neck (neck base -> the rig's head joint) and forward (perpendicular to the
shoulder line) -- Nose 0.10 m up and 0.06 m forward, Head (the top of the head) 0.22 m up and 0.02 m forward of the
neck base.

Positions become ptjax's world: Z-up, metres. Y-up files are turned by +90 degrees about x ((x, y, z) ->
(x, -z, y)); a file whose floor is not at height 0 is lowered by a fixed `floor_m` per source, measured once with
`ground_offset` (the lower ankle's 5th height percentile set to 0.055 m, the bundled walking clips' figure) and
written in `ptjax.data.sources`, so any excerpt of a file converts to the same heights. Clips are
then resampled to 30 fps (`Motion.resample`).
"""

from __future__ import annotations

import numpy as np

from ptjax import skeleton
from ptjax.data.deepmimic import HEAD_OFFSET, NOSE_OFFSET, Y_UP_TO_Z_UP
from ptjax.data.motion import Motion

# The DeepMimic conversion's offsets in the neck frame (x forward, y up), as (up, forward).
NOSE_UP_FORWARD = (float(NOSE_OFFSET[1]), float(NOSE_OFFSET[0]))
HEAD_UP_FORWARD = (float(HEAD_OFFSET[1]), float(HEAD_OFFSET[0]))
ANKLE_HEIGHT = 0.055   # the bundled walking clips' ankle height when the foot is down (5th percentile), m
TARGET_FPS = 30.0

_BODY15 = tuple(n for n in skeleton.JOINT_NAMES if n not in ("Nose", "Head"))


def _rig(hip, spine, neck, head, upleg, leg, foot, arm, forearm, hand, left="Left", right="Right"):
    """A rig map from its naming pattern: {H36M joint: source joint}, plus the neck base and head joints."""
    m = {"Hip": hip, "Spine": spine, "Thorax": neck}
    for side, pre in (("R", right), ("L", left)):
        m.update({f"{side}Hip": pre + upleg, f"{side}Knee": pre + leg, f"{side}Ankle": pre + foot,
                  f"{side}Shoulder": pre + arm, f"{side}Elbow": pre + forearm, f"{side}Wrist": pre + hand})
    return {"joints": m, "neck": neck, "head": head}


# Each rig's map (see the module docstring for the rule). Comments say where the rig's joints sit.
RIGS: dict[str, dict] = {
    # Autodesk/Mixamo-style naming (bvhtools' captured takes): Spine1 sits ~0.25 m above the hips.
    "bvh_spine12": _rig("Hips", "Spine1", "Neck", "Head", "UpLeg", "Leg", "Foot", "Arm", "ForeArm", "Hand"),
    # Motive/Arena-style naming (assimp's Boxing_Toes): Ab ~0.08 m and Chest ~0.31 m above the hips.
    "bvh_motive": _rig("Hips", "Chest", "Neck", "Head", "Hip", "Knee", "Ankle", "Shoulder", "Elbow", "Wrist"),
    # CMU ASF bones, by their far ends: *hipjoint -> hip, *femur -> knee, *tibia -> ankle, *clavicle -> shoulder,
    # *humerus -> elbow, *radius -> wrist; the hips' midpoint ~0.10 m below the root, lowerback's end ~0.22 m above
    # that midpoint (half way to the neck base), thorax's end = the neck base, upperneck's end = the skull's base.
    "cmu_asf": {"joints": {"Hip": ("lhipjoint", "rhipjoint"), "Spine": "lowerback", "Thorax": "thorax",
                           **{f"{s}{j}": f"{s.lower()}{b}" for s in "RL" for j, b in
                              (("Hip", "hipjoint"), ("Knee", "femur"), ("Ankle", "tibia"), ("Shoulder", "clavicle"),
                               ("Elbow", "humerus"), ("Wrist", "radius"))}},
                "neck": "thorax", "head": "upperneck"},
    # holosoma-retargeting's "mocap" layout (MOCAP_DEMO_JOINTS, 53 joints with fingers).
    "holosoma_mocap": _rig("Hips", "Spine1", "Neck", "Head", "UpLeg", "Leg", "Foot", "Arm", "ForeArm", "Hand"),
}

HOLOSOMA_MOCAP_JOINTS: tuple[str, ...] = (
    "Hips", "Spine", "Spine1", "Neck", "Head",
    *[f"Left{n}" for n in ("Shoulder", "Arm", "ForeArm", "Hand")],
    *[f"LeftHand{f}{i}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky") for i in (1, 2, 3)],
    *[f"Right{n}" for n in ("Shoulder", "Arm", "ForeArm", "Hand")],
    *[f"RightHand{f}{i}" for f in ("Thumb", "Index", "Middle", "Ring", "Pinky") for i in (1, 2, 3)],
    "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase",
    "LeftFootMod", "RightFootMod")


def head_joints(neck: np.ndarray, head: np.ndarray, lshoulder: np.ndarray, rshoulder: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Nose and Head (T, 3) from the neck base, the rig's head joint and the shoulders (Z-up, metres)."""
    up = head - neck
    up = up / np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-9)
    left = lshoulder - rshoulder
    forward = np.cross(left, up)
    forward = forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-9)
    nose = neck + NOSE_UP_FORWARD[0] * up + NOSE_UP_FORWARD[1] * forward
    top = neck + HEAD_UP_FORWARD[0] * up + HEAD_UP_FORWARD[1] * forward
    return nose, top


def rig_to_h36m(positions: np.ndarray, names, rig: str) -> np.ndarray:
    """(T, J, 3) Z-up metre positions of the rig's named joints -> (T, 17, 3) H36M-17."""
    if rig not in RIGS:
        raise ValueError(f"unknown rig {rig!r}; known: {sorted(RIGS)}")
    spec = RIGS[rig]
    names = list(names)
    wanted = [n for s in spec["joints"].values() for n in ((s,) if isinstance(s, str) else s)] + [spec["head"]]
    missing = sorted({n for n in wanted if n not in names})
    if missing:
        raise ValueError(f"the skeleton lacks joint(s) {missing} that rig {rig!r} maps to H36M-17; "
                         "ptjax refuses to invent them")
    positions = np.asarray(positions, np.float64)
    get = {n: positions[:, names.index(n)] for n in wanted}
    out = np.zeros((len(positions), skeleton.NUM_JOINTS, 3))
    for joint, source in spec["joints"].items():
        out[:, skeleton.JOINT_INDEX[joint]] = (get[source] if isinstance(source, str)
                                               else np.mean([get[n] for n in source], axis=0))
    nose, top = head_joints(get[spec["neck"]], get[spec["head"]], out[:, skeleton.JOINT_INDEX["LShoulder"]],
                            out[:, skeleton.JOINT_INDEX["RShoulder"]])
    out[:, skeleton.JOINT_INDEX["Nose"]] = nose
    out[:, skeleton.JOINT_INDEX["Head"]] = top
    return out


def ground_offset(joints: np.ndarray) -> float:
    """The height to subtract so the lower ankle's 5th percentile sits at `ANKLE_HEIGHT`."""
    ankles = np.minimum(joints[:, skeleton.JOINT_INDEX["RAnkle"], 2], joints[:, skeleton.JOINT_INDEX["LAnkle"], 2])
    return float(np.percentile(ankles, 5) - ANKLE_HEIGHT)


def finish(joints: np.ndarray, fps: float, name: str, floor_m: float = 0.0, target_fps: float = TARGET_FPS
           ) -> Motion:
    """Z-up metre H36M-17 joints at the source's rate, floor at `floor_m` -> a `Motion` at `target_fps`."""
    joints = np.asarray(joints, np.float64) - np.array([0.0, 0.0, floor_m])
    return Motion(name, fps, joints.astype(np.float32)).resample(target_fps)


def from_bvh(path: str, rig: str, unit_m: float, name: str, floor_m: float = 0.0,
             extra_lines: str = "error") -> Motion:
    """A BVH file on a known rig -> H36M-17 `Motion` (30 fps). `unit_m`: metres per file unit."""
    from ptjax.bvh import bvh_world_positions, parse_bvh
    joints, motion, frame_time = parse_bvh(path, extra_lines=extra_lines)
    pos = bvh_world_positions(joints, motion) @ Y_UP_TO_Z_UP.T * unit_m
    return finish(rig_to_h36m(pos, [j["name"] for j in joints], rig), 1.0 / frame_time, name, floor_m)


def from_asf_amc(asf_path: str, amc_path: str, name: str, fps: float = 120.0, floor_m: float = 0.0) -> Motion:
    """A CMU ASF/AMC pair -> H36M-17 `Motion` (30 fps). CMU's files are Y-up, captured at 120 fps."""
    from ptjax.data import acclaim
    asf = acclaim.parse_asf(asf_path)
    pos, names = acclaim.bone_end_positions(asf, acclaim.parse_amc(amc_path, asf))
    return finish(rig_to_h36m(pos @ Y_UP_TO_Z_UP.T, names, "cmu_asf"), fps, name, floor_m)


def from_holosoma(path: str, name: str, fps: float, floor_m: float = 0.0) -> Motion:
    """A holosoma-retargeting `*_joint_positions_*.npy` (T, 53, 3) array (Z-up, metres, floor at 0) -> `Motion`."""
    try:
        positions = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read {path!r} as a numpy array: {e}") from None
    if positions.ndim != 3 or positions.shape[1:] != (len(HOLOSOMA_MOCAP_JOINTS), 3):
        raise ValueError(f"{path!r}: expected (T, {len(HOLOSOMA_MOCAP_JOINTS)}, 3) joint positions, got "
                         f"{positions.shape}")
    if not np.all(np.isfinite(positions)):
        raise ValueError(f"{path!r} holds NaN or infinite positions")
    return finish(rig_to_h36m(positions, HOLOSOMA_MOCAP_JOINTS, "holosoma_mocap"), fps, name, floor_m)
