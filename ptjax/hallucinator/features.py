"""Per-frame features of the hallucinator and the canonical frame they live in.

A window of H36M-17 world joints (B, W, 17, 3) becomes, after moving it to its canonical frame (the pose of a chosen
frame -- the last context frame -- placed at the origin of the ground plane and turned to face +x):
  rot      (B, W, 17, 3, 3) local joint rotations (`ptjax.kinematics`; index 0 = root orientation)
  root     (B, W, 3)        root (Hip) position, metres
  vel      (B, W, 3)        root velocity, m/s (backward difference; frame 0 repeats frame 1's)
  contact  (B, W, 2)        foot contact labels (RAnkle, LAnkle) in {0, 1}
  lengths  (B, 16)          the bone lengths every frame is rebuilt with (those of the canonical frame)
The model sees rotations in the 6D form of Zhou et al. (CVPR 2019).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from ptjax import geometry
from ptjax import kinematics as K
from ptjax import skeleton


@flax.struct.dataclass
class Features:
    rot: jax.Array        # (..., W, 17, 3, 3)
    root: jax.Array       # (..., W, 3)
    vel: jax.Array        # (..., W, 3)
    contact: jax.Array    # (..., W, 2)
    lengths: jax.Array    # (..., 16)


def canonical_frame(pose: jax.Array) -> tuple[jax.Array, jax.Array]:
    """pose (..., 17, 3) -> (yaw (...), origin (..., 3)): its heading and its root on the ground plane."""
    origin = pose[..., 0, :] * jnp.asarray([1.0, 1.0, 0.0], pose.dtype)
    return K.heading(pose), origin


def to_canonical(joints: jax.Array, yaw: jax.Array, origin: jax.Array) -> jax.Array:
    """World joints (..., T, J, 3) -> canonical: rotate by -yaw about z after subtracting origin (..., 3)."""
    r = geometry.yaw_matrix(-yaw)[..., None, None, :, :]
    return jnp.einsum("...ij,...j->...i", r, joints - origin[..., None, None, :])


def from_canonical(joints: jax.Array, yaw: jax.Array, origin: jax.Array) -> jax.Array:
    """Inverse of `to_canonical`."""
    r = geometry.yaw_matrix(yaw)[..., None, None, :, :]
    return jnp.einsum("...ij,...j->...i", r, joints) + origin[..., None, None, :]


def foot_contacts(joints: jax.Array, fps: float, speed: float, height: float) -> jax.Array:
    """(..., T, 17, 3) -> (..., T, 2) contact labels: ankle slower than `speed` m/s and lower than `height` m."""
    feet = joints[..., list(skeleton.FEET), :]
    v = jnp.diff(feet, axis=-3) * fps
    v = jnp.concatenate([v[..., :1, :, :], v], axis=-3)
    slow = jnp.linalg.norm(v, axis=-1) < speed
    low = feet[..., 2] < height
    return (slow & low).astype(joints.dtype)


def root_velocity(root: jax.Array, fps: float) -> jax.Array:
    """(..., T, 3) -> (..., T, 3) backward differences in m/s; frame 0 repeats frame 1's."""
    v = jnp.diff(root, axis=-2) * fps
    return jnp.concatenate([v[..., :1, :], v], axis=-2)


def window_features(joints: jax.Array, anchor: int, fps: float, contact_speed: float,
                    contact_height: float) -> tuple[Features, jax.Array, jax.Array, jax.Array]:
    """World windows (B, W, 17, 3) -> (features, canonical joints (B, W, 17, 3), yaw (B,), origin (B, 3)).

    Frame `anchor` defines the canonical frame and the bone lengths; all frames are rebuilt with those lengths
    (a no-op for rigid skeletons), so positions and rotations agree exactly.
    """
    yaw, origin = canonical_frame(joints[:, anchor])
    canon = to_canonical(joints, yaw, origin)
    lengths = K.bone_lengths(canon[:, anchor])
    canon = K.set_bone_lengths(canon, lengths[:, None, :])
    rot, root, _ = K.inverse_kinematics(canon)
    feats = Features(rot=rot, root=root, vel=root_velocity(root, fps),
                     contact=foot_contacts(canon, fps, contact_speed, contact_height), lengths=lengths)
    return feats, canon, yaw, origin


def flat_rot6d(rot: jax.Array) -> jax.Array:
    """(..., 17, 3, 3) -> (..., 102)."""
    six = geometry.matrix_to_6d(rot)
    return six.reshape(six.shape[:-2] + (-1,))


def unflat_rot6d(x: jax.Array) -> jax.Array:
    """(..., 102) -> (..., 17, 3, 3) rotations (Gram-Schmidt)."""
    return geometry.sixd_to_matrix(x.reshape(x.shape[:-1] + (skeleton.NUM_JOINTS, 6)))
