"""The canonical skeleton (H36M-17, VideoPose3D order) and mappings to it from other keypoint layouts.

Every array in ptjax that holds joints uses this order along its joint axis:

    0 Hip, 1 RHip, 2 RKnee, 3 RAnkle, 4 LHip, 5 LKnee, 6 LAnkle, 7 Spine, 8 Thorax,
    9 Nose, 10 Head, 11 LShoulder, 12 LElbow, 13 LWrist, 14 RShoulder, 15 RElbow, 16 RWrist

PoseTriplet's 16-joint set is this order without the Nose (`POSETRIPLET16`).

Keypoint layouts from 2D detectors map to H36M-17 by fixed linear combinations of their joints
(`mapping_matrix`); a derived joint is trusted as much as its least confident source joint (`convert`).
DeepMimic-15 mocap maps with its neck link's frame and lives in `ptjax.data.deepmimic`.
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "Hip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "Spine", "Thorax",
    "Nose", "Head", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
)
NUM_JOINTS = 17
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}

# Parent of each joint (-1 for the root), VideoPose3D's H36M-17 tree.
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
# One bone per non-root joint: (parent, child).
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)
NUM_BONES = len(BONES)

LEFT_JOINTS: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
# Index permutation that swaps left and right joints (used for flip augmentation).
FLIP_PERMUTATION: tuple[int, ...] = tuple(
    {**{i: i for i in range(NUM_JOINTS)},
     **dict(zip(LEFT_JOINTS, RIGHT_JOINTS)), **dict(zip(RIGHT_JOINTS, LEFT_JOINTS))}[i]
    for i in range(NUM_JOINTS))

# PoseTriplet's 16 joints: H36M-17 without the Nose.
POSETRIPLET16: tuple[int, ...] = tuple(i for i in range(NUM_JOINTS) if i != JOINT_INDEX["Nose"])

FEET: tuple[int, ...] = (JOINT_INDEX["RAnkle"], JOINT_INDEX["LAnkle"])
END_EFFECTORS: tuple[int, ...] = (3, 6, 10, 13, 16)  # ankles, head, wrists


# --- source layouts -------------------------------------------------------------------------------------------------

COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
BODY25_NAMES: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
    "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
# OpenPose's experimental BODY_25B: the COCO-17 order, then UpperNeck, HeadTop and six foot points.
BODY25B_NAMES: tuple[str, ...] = COCO17_NAMES + (
    "UpperNeck", "HeadTop", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
DEEPMIMIC15_NAMES: tuple[str, ...] = (
    "root", "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
    "right_wrist", "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow", "left_wrist",
)

SOURCE_LAYOUTS: dict[str, tuple[str, ...]] = {
    "h36m": JOINT_NAMES,
    "coco": COCO17_NAMES,
    "body25": BODY25_NAMES,
    "body25b": BODY25B_NAMES,
}


def _coco_like_recipe(head: dict[str, float] | None) -> dict[str, dict[str, float]]:
    """H36M-17 joints as weighted sums of COCO-named joints (shared by COCO-17 and BODY_25B).

    Hip = mid-hips; Thorax = mid-shoulders; Spine = mid(Thorax, Hip); Nose = nose. Without a head-top keypoint
    the Head follows PoseTriplet's in-the-wild recipe (reference §6):
    0.1 nose + 0.6 (thorax + 0.5 (thorax - hip)) + 0.1 mid-eyes + 0.2 mid-ears.
    """
    mid = lambda a, b, w=1.0: {a: 0.5 * w, b: 0.5 * w}  # noqa: E731
    hip = mid("left_hip", "right_hip")
    thorax = mid("left_shoulder", "right_shoulder")
    if head is None:
        head = {"nose": 0.1}
        for k, v in thorax.items():  # 0.6 * (1.5 thorax - 0.5 hip)
            head[k] = head.get(k, 0.0) + 0.6 * 1.5 * v
        for k, v in hip.items():
            head[k] = head.get(k, 0.0) - 0.6 * 0.5 * v
        for k, v in {**mid("left_eye", "right_eye", 0.1), **mid("left_ear", "right_ear", 0.2)}.items():
            head[k] = head.get(k, 0.0) + v
    return {
        "Hip": hip, "RHip": {"right_hip": 1.0}, "RKnee": {"right_knee": 1.0}, "RAnkle": {"right_ankle": 1.0},
        "LHip": {"left_hip": 1.0}, "LKnee": {"left_knee": 1.0}, "LAnkle": {"left_ankle": 1.0},
        "Spine": {**{k: 0.5 * v for k, v in hip.items()}, **{k: 0.5 * v for k, v in thorax.items()}},
        "Thorax": thorax, "Nose": {"nose": 1.0}, "Head": head,
        "LShoulder": {"left_shoulder": 1.0}, "LElbow": {"left_elbow": 1.0}, "LWrist": {"left_wrist": 1.0},
        "RShoulder": {"right_shoulder": 1.0}, "RElbow": {"right_elbow": 1.0}, "RWrist": {"right_wrist": 1.0},
    }


BODY25_TO_COCO = {
    "Nose": "nose", "LEye": "left_eye", "REye": "right_eye", "LEar": "left_ear", "REar": "right_ear",
    "LShoulder": "left_shoulder", "RShoulder": "right_shoulder", "LElbow": "left_elbow", "RElbow": "right_elbow",
    "LWrist": "left_wrist", "RWrist": "right_wrist", "LHip": "left_hip", "RHip": "right_hip",
    "LKnee": "left_knee", "RKnee": "right_knee", "LAnkle": "left_ankle", "RAnkle": "right_ankle",
}


def _recipe(source: str) -> dict[str, dict[str, float]]:
    if source == "h36m":
        return {name: {name: 1.0} for name in JOINT_NAMES}
    if source == "coco":
        return _coco_like_recipe(head=None)
    if source == "body25b":
        # A real head-top keypoint exists: use it for H36M's Head (top of the head).
        return _coco_like_recipe(head={"HeadTop": 1.0})
    if source == "body25":
        coco = _coco_like_recipe(head=None)
        inverse = {v: k for k, v in BODY25_TO_COCO.items()}
        recipe = {j: {inverse[k]: w for k, w in parts.items()} for j, parts in coco.items()}
        # BODY_25 measures the pelvis and neck base directly.
        recipe["Hip"] = {"MidHip": 1.0}
        recipe["Thorax"] = {"Neck": 1.0}
        recipe["Spine"] = {"MidHip": 0.5, "Neck": 0.5}
        recipe["Head"] = {"Nose": 0.1, "Neck": 0.9, "MidHip": -0.3, "REye": 0.05, "LEye": 0.05,
                          "REar": 0.1, "LEar": 0.1}
        return recipe
    raise ValueError(f"unknown keypoint layout {source!r}; known layouts: {sorted(SOURCE_LAYOUTS)} "
                     "(DeepMimic-15 mocap converts through ptjax.data.deepmimic)")


# Where the camera does not see the face (filmed from behind, a turned head) detectors drop the nose, eyes or ears.
# H36M's Nose and Head then come from what is still seen: ordered alternatives per layout, each a recipe over the
# layout's keypoint names; `ptjax.data.keypoints` uses, frame by frame, the first whose keypoints are all present,
# and flags the frames where it is not the first (the primary recipe of `mapping_matrix`). The last resort, the
# "neck line", extends the torso: the bundled clips' median Nose lies 0.19 and Head 0.46 torso lengths (Hip to
# Thorax) above the Thorax along it.
NECK_LINE = {"Nose": 0.19, "Head": 0.46}
_FACE = {"coco": ("nose", "left_eye", "right_eye", "left_ear", "right_ear"),
         "body25b": ("nose", "left_eye", "right_eye", "left_ear", "right_ear"),
         "body25": ("Nose", "LEye", "REye", "LEar", "REar")}
# Face keypoints' shares of PoseTriplet's head recipe (0.1 nose, 0.1 mid-eyes, 0.2 mid-ears; 0.4 in all).
_FACE_WEIGHT = (0.1, 0.05, 0.05, 0.1, 0.1)
# Which face keypoints to use, best first, when some are missing (indices into _FACE).
_FACE_SUBSETS = ((0, 1, 2, 3, 4), (1, 2, 3, 4), (0, 3, 4), (3, 4), (0, 1, 2), (1, 2), (0,), (3,), (4,), (1,), (2,))


def _torso(source: str) -> tuple[dict[str, float], dict[str, float]]:
    """(thorax, hip) recipes of a layout."""
    if source == "body25":
        return {"Neck": 1.0}, {"MidHip": 1.0}
    return ({"left_shoulder": 0.5, "right_shoulder": 0.5}, {"left_hip": 0.5, "right_hip": 0.5})


def _combine(*parts: tuple[float, dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for weight, recipe in parts:
        for k, v in recipe.items():
            out[k] = out.get(k, 0.0) + weight * v
    return out


def head_fallbacks(source: str) -> dict[str, list[tuple[str, dict[str, float]]]]:
    """{"Nose": [(name, recipe), ...], "Head": [...]}: the alternatives after the primary recipe, best first."""
    if source not in _FACE:
        return {"Nose": [], "Head": []}
    face = _FACE[source]
    thorax, hip = _torso(source)
    nose_alts = [("mid-eyes", {face[1]: 0.5, face[2]: 0.5}), ("mid-ears", {face[3]: 0.5, face[4]: 0.5}),
                 ("left eye", {face[1]: 1.0}), ("right eye", {face[2]: 1.0}),
                 ("left ear", {face[3]: 1.0}), ("right ear", {face[4]: 1.0})]
    if source == "body25b":
        nose_alts.append(("head top and upper neck", {"HeadTop": 0.5, "UpperNeck": 0.5}))
    neck_line = lambda k: _combine((1.0 + k, thorax), (-k, hip))  # noqa: E731
    nose_alts.append(("neck line", neck_line(NECK_LINE["Nose"])))
    base = _combine((0.6 * 1.5, thorax), (-0.6 * 0.5, hip))  # PoseTriplet: 0.6 (thorax + 0.5 (thorax - hip))
    head_alts = []
    for subset in _FACE_SUBSETS[1 if source != "body25b" else 0:]:
        total = sum(_FACE_WEIGHT[i] for i in subset)
        recipe = _combine((1.0, base), *[(0.4 * _FACE_WEIGHT[i] / total, {face[i]: 1.0}) for i in subset])
        head_alts.append(("face: " + ", ".join(face[i] for i in subset), recipe))
    head_alts.append(("neck line", neck_line(NECK_LINE["Head"])))
    return {"Nose": nose_alts, "Head": head_alts}


def recipe_matrix(source: str, recipe: dict[str, float]) -> np.ndarray:
    """(J_source,) weights of one recipe over a layout's keypoints."""
    index = {n: i for i, n in enumerate(SOURCE_LAYOUTS[source])}
    w = np.zeros(len(index))
    for name, weight in recipe.items():
        w[index[name]] += weight
    return w


def mapping_matrix(source: str) -> np.ndarray:
    """(17, J_source) weights W with h36m = W @ source_joints. Each row sums to 1 (an affine combination)."""
    names = SOURCE_LAYOUTS.get(source)
    recipe = _recipe(source)
    index = {n: i for i, n in enumerate(names)}
    w = np.zeros((NUM_JOINTS, len(names)), np.float64)
    for j, name in enumerate(JOINT_NAMES):
        for src, weight in recipe[name].items():
            w[j, index[src]] += weight
    assert np.allclose(w.sum(1), 1.0), source
    return w


def convert(keypoints: np.ndarray, source: str, confidence: np.ndarray | None = None):
    """Map keypoints (..., J_source, C) of a named layout to H36M-17 (..., 17, C).

    With `confidence` (..., J_source), also returns the H36M-17 confidence: the minimum over the source joints a
    derived joint depends on, so a joint built from a missing keypoint is itself missing.
    """
    if source not in SOURCE_LAYOUTS:
        _recipe(source)  # raises the ValueError naming the known layouts
    keypoints = np.asarray(keypoints)
    if not np.issubdtype(keypoints.dtype, np.floating):
        raise ValueError(f"keypoints must be floating point, got dtype {keypoints.dtype}")
    n_src = len(SOURCE_LAYOUTS[source])
    if keypoints.ndim < 2 or keypoints.shape[-2] != n_src:
        raise ValueError(f"layout {source!r} has {n_src} joints, but keypoints have shape {keypoints.shape} "
                         f"(expected (..., {n_src}, C))")
    w = mapping_matrix(source)
    out = np.einsum("js,...sc->...jc", w, keypoints).astype(keypoints.dtype)
    if confidence is None:
        return out
    confidence = np.asarray(confidence)
    if confidence.shape != keypoints.shape[:-1]:
        raise ValueError(f"confidence shape {confidence.shape} does not match keypoints {keypoints.shape[:-1]}")
    used = w != 0
    conf = np.where(used, confidence[..., None, :], np.inf).min(-1)
    return out, conf.astype(confidence.dtype)


def check_joints(joints, name: str = "joints", num_joints: int = NUM_JOINTS, dims: int | None = 3,
                 allow_nan: bool = False) -> np.ndarray:
    """Validate a (..., J, C) joint array on the host and return it as a float array; ValueError names the problem."""
    arr = np.asarray(joints)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (..., {num_joints}, {dims or 'C'}), got {arr.shape}")
    if arr.shape[-2] != num_joints:
        raise ValueError(f"{name} has {arr.shape[-2]} joints (shape {arr.shape}); expected {num_joints} "
                         "(H36M-17 order, see ptjax.skeleton)")
    if dims is not None and arr.shape[-1] != dims:
        raise ValueError(f"{name} has {arr.shape[-1]} coordinates per joint (shape {arr.shape}); expected {dims}")
    arr = arr.astype(np.float32) if np.issubdtype(arr.dtype, np.integer) else arr
    if not allow_nan:
        bad = ~np.isfinite(arr)
        if bad.any():
            where = np.argwhere(bad.any(-1))[:5].tolist()
            raise ValueError(f"{name} contains {int(bad.any(-1).sum())} non-finite joints (NaN/inf), "
                             f"first at index {where}")
    return arr


def bone_lengths(joints):
    """(..., 17, 3) -> (..., 16) bone lengths in `BONES` order. Works on NumPy and JAX arrays."""
    xp = _xp(joints)
    parents = np.array([p for p, _ in BONES])
    children = np.array([c for _, c in BONES])
    return xp.linalg.norm(joints[..., children, :] - joints[..., parents, :], axis=-1)


def flip_lr(joints, axis: int = 0):
    """Mirror joints along one coordinate axis and swap left/right labels (flip augmentation)."""
    xp = _xp(joints)
    sign = np.ones(joints.shape[-1], np.float32)
    sign[axis] = -1.0
    return (joints * xp.asarray(sign))[..., list(FLIP_PERMUTATION), :]


def _xp(x):
    import jax.numpy as jnp
    return np if isinstance(x, np.ndarray) else jnp
