"""Rotational kinematics of the H36M-17 skeleton: joint positions <-> local rotations, root and bone lengths.

Every bone has its own frame, so a pose is 17 rotations: `rotations[..., 0]` is the root (pelvis) orientation in the
world, and `rotations[..., c]` for c = 1..16 is the frame of the bone that ends at joint c (parent(c) -> c), relative
to the frame of the bone that ends at parent(c) (for children of the Hip: relative to the root frame). Forward
kinematics:

    G_0 = L_0,    G_c = G_parent(c) L_c,    x_c = x_parent(c) + length_c G_c REST_DIRECTIONS[c]

With one rotation per bone, joints with several children (Hip: RHip, LHip, Spine; Thorax: Nose, LShoulder, RShoulder)
place each child independently, so any pose -- also one whose hips or shoulders are not rigid, as estimated poses
are -- is reproduced exactly. Bone lengths are separate from the rotations, so they are exact by construction.

At identity rotations the skeleton stands in the rest pose: upright facing +x (world Z-up, y to its left), legs and
arms hanging down, hips and shoulders along y (`rest_pose`).

The bone direction fixes two of a frame's three degrees of freedom; the twist about the bone is a choice, made so
that rotations change smoothly over time when joints move smoothly:
  * Root: primary axis Hip -> Spine, secondary the hip line RHip -> LHip.
  * Chest (bone Spine -> Thorax): secondary the shoulder line RShoulder -> LShoulder.
  * Limbs (thigh + shin, upper arm + forearm): both bones of a limb share the secondary axis
    n + KAPPA * f, where n is the normal of the limb's bending plane (|n| = sine of the bend, oriented so that a
    knee bending backwards or an elbow bending forwards gives +y in the rest pose) and f is the fallback below. A bent
    limb takes its twist from its bending plane (the knee or elbow rotation is then close to a hinge); a straight
    limb, whose bending plane is undefined, smoothly falls back to f.
  * Every other bone (pelvis halves, lower spine, neck, head, clavicles) and the fallback f: minimal twist relative to
    the parent frame -- the swing that carries a reference direction to the bone's direction. Its only singularity
    is the bone pointing exactly against the reference, which is chosen anatomically unreachable (e.g. a thigh
    pointing backwards-up, a clavicle pointing through the chest).
The limb rule degenerates only when n = -KAPPA f, i.e. a knee hyperextended or an elbow bent backwards by
asin(KAPPA) = 30 degrees against the fallback axis, which no human pose reaches.

All functions are pure jax.numpy, batched over leading axes and jittable; `check_positions` validates host input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import skeleton
from ptjax.geometry import frame, normalize, swing

PARENTS = skeleton.PARENTS
NUM_JOINTS = skeleton.NUM_JOINTS
J = skeleton.JOINT_INDEX

# Weight of the fallback axis in the limb twist (see the module docstring).
KAPPA = 0.5

_UP = (0.0, 0.0, 1.0)
_DOWN = (0.0, 0.0, -1.0)
_LEFT = (0.0, 1.0, 0.0)
_RIGHT = (0.0, -1.0, 0.0)

# Unit direction of each bone in its own frame (= in the world at the rest pose). Index 0: the root frame's primary
# axis (Hip -> Spine).
REST_DIRECTIONS = np.array([
    _UP,              # 0 Hip (root: spine direction)
    _RIGHT,           # 1 RHip
    _DOWN, _DOWN,     # 2 RKnee, 3 RAnkle
    _LEFT,            # 4 LHip
    _DOWN, _DOWN,     # 5 LKnee, 6 LAnkle
    _UP, _UP,         # 7 Spine, 8 Thorax
    _UP, _UP,         # 9 Nose, 10 Head
    _LEFT, _DOWN, _DOWN,    # 11 LShoulder, 12 LElbow, 13 LWrist
    _RIGHT, _DOWN, _DOWN,   # 14 RShoulder, 15 RElbow, 16 RWrist
], np.float32)
# Secondary rest axis (orthogonal to REST_DIRECTIONS) of the bones whose twist follows a secondary direction.
REST_SECONDARY = {0: _LEFT, 8: _LEFT, 2: _LEFT, 3: _LEFT, 5: _LEFT, 6: _LEFT,
                  12: _LEFT, 13: _LEFT, 15: _LEFT, 16: _LEFT}

_s2 = float(np.sqrt(0.5))
# Reference directions (in the parent frame) of the minimal-twist swing, per bone; the swing is singular only for a
# bone pointing exactly against it.
SWING_REFERENCE = {
    1: _RIGHT, 4: _LEFT, 7: _UP, 9: _UP, 10: _UP, 11: _LEFT, 14: _RIGHT,
    2: (_s2, 0.0, -_s2), 5: (_s2, 0.0, -_s2),   # thighs: forward-down (singular backward-up)
    12: (_s2, _s2, 0.0), 15: (_s2, -_s2, 0.0),  # upper arms: forward-outward (singular backward through the torso)
}
# Limbs: (upper bone, lower bone, sign of the bending normal cross(upper, lower)).
LIMBS = ((J["RKnee"], J["RAnkle"], 1.0), (J["LKnee"], J["LAnkle"], 1.0),
         (J["LElbow"], J["LWrist"], -1.0), (J["RElbow"], J["RWrist"], -1.0))
_LIMB_OF = {u: (u, l, s) for u, l, s in LIMBS} | {l: (u, l, s) for u, l, s in LIMBS}

# --- kinematics -----------------------------------------------------------------------------------------------------

def bone_vectors(joints: jax.Array) -> jax.Array:
    """(..., 17, 3) -> (..., 17, 3): joint minus its parent (index 0: zeros)."""
    joints = jnp.asarray(joints)
    parents = np.array([max(p, 0) for p in PARENTS])
    vec = joints - joints[..., parents, :]
    return vec.at[..., 0, :].set(0.0)


def bone_lengths(joints: jax.Array) -> jax.Array:
    """(..., 17, 3) -> (..., 16) bone lengths in `skeleton.BONES` order (bone b ends at joint b + 1)."""
    return jnp.linalg.norm(bone_vectors(joints)[..., 1:, :], axis=-1)


def _minimal_twist(parent_frame: jax.Array, direction: jax.Array, joint: int) -> jax.Array:
    """Bone frame with no twist relative to the parent frame: G_p swing(ref -> d_local) swing(rest -> ref)."""
    ref = np.asarray(SWING_REFERENCE[joint], np.float32)
    local = jnp.einsum("...ji,...j->...i", parent_frame, direction)
    rest_to_ref = swing(jnp.asarray(REST_DIRECTIONS[joint]), jnp.asarray(ref))
    return parent_frame @ swing(jnp.asarray(ref), local) @ rest_to_ref


def global_frames(joints: jax.Array) -> jax.Array:
    """(..., 17, 3) joint positions -> (..., 17, 3, 3) world frames G of the root and of every bone."""
    joints = jnp.asarray(joints)
    vec = bone_vectors(joints)
    dirs = normalize(vec)
    frames: list = [None] * NUM_JOINTS
    frames[0] = frame(joints[..., J["Spine"], :] - joints[..., J["Hip"], :],
                      joints[..., J["LHip"], :] - joints[..., J["RHip"], :], REST_DIRECTIONS[0], REST_SECONDARY[0])
    limb_axis = {}
    for c in range(1, NUM_JOINTS):
        p = PARENTS[c]
        if c == J["Thorax"]:
            shoulders = joints[..., J["LShoulder"], :] - joints[..., J["RShoulder"], :]
            frames[c] = frame(vec[..., c, :], shoulders, REST_DIRECTIONS[c], REST_SECONDARY[c])
        elif c in _LIMB_OF:
            upper, lower, sign = _LIMB_OF[c]
            if c == upper:
                fallback = _minimal_twist(frames[p], dirs[..., c, :], c) @ jnp.asarray(REST_SECONDARY[c])
                bend = sign * jnp.cross(dirs[..., upper, :], dirs[..., lower, :])
                limb_axis[upper] = bend + KAPPA * fallback
            frames[c] = frame(vec[..., c, :], limb_axis[upper], REST_DIRECTIONS[c], REST_SECONDARY[c])
        else:
            frames[c] = _minimal_twist(frames[p], dirs[..., c, :], c)
    return jnp.stack(frames, axis=-3)


def inverse_kinematics(joints: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Joint positions (..., 17, 3) -> (rotations (..., 17, 3, 3), root (..., 3), bone_lengths (..., 16)).

    `rotations` are local (see the module docstring); `forward_kinematics` of the result reproduces `joints`.
    Bones must have non-zero length (`check_positions` validates host input).
    """
    joints = jnp.asarray(joints)
    g = global_frames(joints)
    parents = np.array([max(p, 0) for p in PARENTS])
    local = jnp.swapaxes(g[..., parents, :, :], -1, -2) @ g
    local = local.at[..., 0, :, :].set(g[..., 0, :, :])
    return local, joints[..., 0, :], bone_lengths(joints)


def forward_kinematics(rotations: jax.Array, root: jax.Array, lengths: jax.Array) -> jax.Array:
    """(rotations (..., 17, 3, 3) local, root (..., 3), bone lengths (..., 16)) -> joints (..., 17, 3).

    Leading axes broadcast (e.g. one set of bone lengths (B, 1, 16) for a (B, T, ...) sequence).
    """
    rotations, root, lengths = jnp.asarray(rotations), jnp.asarray(root), jnp.asarray(lengths)
    shape = jnp.broadcast_shapes(rotations.shape[:-3], root.shape[:-1], lengths.shape[:-1])
    rest = jnp.asarray(REST_DIRECTIONS)
    frames = [jnp.broadcast_to(rotations[..., 0, :, :], shape + (3, 3))]
    joints = [jnp.broadcast_to(root, shape + (3,))]
    for c in range(1, NUM_JOINTS):
        p = PARENTS[c]
        g = frames[p] @ rotations[..., c, :, :]
        frames.append(g)
        joints.append(joints[p] + lengths[..., c - 1, None] * (g @ rest[c]))
    return jnp.stack(joints, axis=-2)


def global_to_local(frames: jax.Array) -> jax.Array:
    """(..., 17, 3, 3) world frames -> local rotations (root keeps its world frame)."""
    parents = np.array([max(p, 0) for p in PARENTS])
    local = jnp.swapaxes(frames[..., parents, :, :], -1, -2) @ frames
    return local.at[..., 0, :, :].set(frames[..., 0, :, :])


def local_to_global(rotations: jax.Array) -> jax.Array:
    """(..., 17, 3, 3) local rotations -> world frames."""
    frames = [rotations[..., 0, :, :]]
    for c in range(1, NUM_JOINTS):
        frames.append(frames[PARENTS[c]] @ rotations[..., c, :, :])
    return jnp.stack(frames, axis=-3)


def rest_pose(lengths: jax.Array, root=(0.0, 0.0, 0.0)) -> jax.Array:
    """Bone lengths (..., 16) -> the rest pose (..., 17, 3): identity rotations (upright, facing +x)."""
    lengths = jnp.asarray(lengths)
    eye = jnp.broadcast_to(jnp.eye(3, dtype=lengths.dtype), lengths.shape[:-1] + (NUM_JOINTS, 3, 3))
    return forward_kinematics(eye, jnp.broadcast_to(jnp.asarray(root, lengths.dtype), lengths.shape[:-1] + (3,)),
                              lengths)


def set_bone_lengths(joints: jax.Array, lengths: jax.Array) -> jax.Array:
    """Rebuild joints (..., 17, 3) with new bone lengths (..., 16) (broadcast), keeping the root and bone directions.

    Used for retargeting and bone-length augmentation.
    """
    joints, lengths = jnp.asarray(joints), jnp.asarray(lengths)
    dirs = normalize(bone_vectors(joints))
    shape = jnp.broadcast_shapes(joints.shape[:-2], lengths.shape[:-1])
    out = [jnp.broadcast_to(joints[..., 0, :], shape + (3,))]
    for c in range(1, NUM_JOINTS):
        out.append(out[PARENTS[c]] + lengths[..., c - 1, None] * dirs[..., c, :])
    return jnp.stack(out, axis=-2)


def heading(joints: jax.Array) -> jax.Array:
    """Facing angle about world z (radians) of poses (..., 17, 3); 0 = facing +x.

    Blends two estimates so it stays defined in every pose: the root frame's forward axis projected on the ground
    (good when upright, undefined lying down) and the hip line turned by -90 degrees (good lying down, undefined in a
    cartwheel); each enters weighted by its own horizontal extent, and they cannot vanish together.
    """
    g0 = global_frames(joints)[..., 0, :, :]
    forward = g0[..., :, 0]
    lateral = normalize(joints[..., J["LHip"], :] - joints[..., J["RHip"], :])
    v = forward[..., :2] + jnp.stack([lateral[..., 1], -lateral[..., 0]], -1)
    return jnp.arctan2(v[..., 1], v[..., 0])


def check_positions(joints, name: str = "joints", min_bone: float = 1e-3, max_bone: float = 2.0) -> np.ndarray:
    """Validate H36M-17 positions (..., 17, 3) on the host; ValueError for NaN/inf or impossible bone lengths."""
    arr = skeleton.check_joints(joints, name=name)
    lengths = np.asarray(skeleton.bone_lengths(arr.astype(np.float64)))
    if lengths.size:
        bad = (lengths < min_bone) | (lengths > max_bone)
        if bad.any():
            idx = np.argwhere(bad)[0]
            b = int(idx[-1])
            p, c = skeleton.BONES[b]
            raise ValueError(
                f"{name} has an impossible bone length {lengths[tuple(idx)]:.4g} m for bone "
                f"{skeleton.JOINT_NAMES[p]}->{skeleton.JOINT_NAMES[c]} at index {idx[:-1].tolist()} "
                f"(allowed {min_bone}..{max_bone} m); {int(bad.sum())} bad bone(s) in all")
    return arr
