"""On-device 2D-3D training pairs from world motion windows (reference §2.3), all jittable.

World windows (B, T, 17, 3) (Z-up, metres, e.g. `ptjax.data.sample_windows` from a `MotionBuffer`) go through

1. bone-length augmentation (`augment_bone_lengths`). PoseTriplet drew one of 15 H36M bone-length templates per
   sample; we have no templates, so each sample gets a whole-body scale U(bone_scale) times one factor
   U(1 - bone_jitter, 1 + bone_jitter) per bone group (hip width, thigh, shin, lower/upper spine, neck, head,
   shoulder, upper arm, forearm), shared by the left and right bone so bodies stay symmetric. Every bone vector is
   scaled by its factor and the joints are rebuilt from the root outwards (directions unchanged), and the root
   trajectory is scaled by the leg-length ratio (horizontal displacement from the first frame, and height above
   the z = 0 ground), so feet keep their contact with the ground and strides their proportion to the legs.
2. optionally a mirror image (`random_mirror`, half of the windows; off in the original, which trained without
   flip augmentation), and a random yaw about world Z (`random_yaw`);
3. (a) random cameras (`random_camera_pairs`): the window is recentred (the middle of its root's xy range to the
   origin, plus a uniform +-center_jitter m offset: `set_center_v2`'s role) and seen by
   `ptjax.camera.random_cameras` with PoseTriplet's ranges, or (b) the adversarial camera (`camera_axes`, then
   G_cam in train.py);
4. every camera is pushed back along its optical axis until all joints of the window are at least `min_depth` in
   front of it and project within +-view_half (`fit_in_view`): the 2D never leaves the (virtual) frame, which the
   original did not guarantee. Projection: `ptjax.camera.project_normalized` (f = 2.3, no principal point).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import camera, geometry, skeleton

# Bone groups in `skeleton.BONES` order (children 1..16); left and right bones share a group.
BONE_GROUP_NAMES = ("hip", "thigh", "shin", "lower_spine", "upper_spine", "neck", "head", "shoulder", "upper_arm",
                    "forearm")
_GROUP_OF_CHILD = {1: 0, 2: 1, 3: 2, 4: 0, 5: 1, 6: 2, 7: 3, 8: 4, 9: 5, 10: 6, 11: 7, 12: 8, 13: 9, 14: 7, 15: 8,
                   16: 9}
BONE_GROUPS: tuple[int, ...] = tuple(_GROUP_OF_CHILD[c] for _, c in skeleton.BONES)
_LEG_BONES = np.array([k for k, (_, c) in enumerate(skeleton.BONES) if c in (2, 3, 5, 6)])


def bone_factors(rng: jax.Array, batch: int, scale=(0.9, 1.1), jitter: float = 0.06) -> jax.Array:
    """(batch, 16) multiplicative bone-length factors, left/right symmetric."""
    k_scale, k_group = jax.random.split(rng)
    body = jax.random.uniform(k_scale, (batch, 1), minval=scale[0], maxval=scale[1])
    groups = jax.random.uniform(k_group, (batch, len(BONE_GROUP_NAMES)), minval=1.0 - jitter, maxval=1.0 + jitter)
    return body * groups[:, jnp.array(BONE_GROUPS)]


def scale_bones(joints: jax.Array, factors: jax.Array) -> jax.Array:
    """joints (B, T, 17, 3), factors (B, 16) -> joints with each bone vector scaled, rebuilt from the root."""
    out = [joints[..., 0, :]] + [None] * (skeleton.NUM_JOINTS - 1)
    for k, (parent, child) in enumerate(skeleton.BONES):  # parents precede children in H36M-17 order
        bone = joints[..., child, :] - joints[..., parent, :]
        out[child] = out[parent] + bone * factors[:, None, k, None]
    return jnp.stack(out, axis=-2)


def augment_bone_lengths(rng: jax.Array, joints: jax.Array, scale=(0.9, 1.1), jitter: float = 0.06) -> jax.Array:
    """World windows (B, T, 17, 3), ground at z = 0 -> bone-length-augmented windows (module docstring)."""
    factors = bone_factors(rng, joints.shape[0], scale, jitter)
    lengths = jnp.mean(skeleton.bone_lengths(joints), axis=1)                          # (B, 16)
    leg_ratio = (jnp.sum(lengths[:, _LEG_BONES] * factors[:, _LEG_BONES], -1)
                 / jnp.maximum(jnp.sum(lengths[:, _LEG_BONES], -1), 1e-6))              # (B,)
    root = joints[:, :, 0]
    first = root[:, :1]
    new_root = jnp.concatenate([first[..., :2] + (root[..., :2] - first[..., :2]) * leg_ratio[:, None, None],
                                root[..., 2:] * leg_ratio[:, None, None]], -1)
    rebuilt = scale_bones(joints, factors)
    return rebuilt - rebuilt[:, :, :1] + new_root[:, :, None]


def random_yaw(rng: jax.Array, joints: jax.Array) -> jax.Array:
    """Rotate each window (B, T, 17, 3) about the world Z axis by a uniform angle in [0, 2 pi)."""
    yaw = jax.random.uniform(rng, (joints.shape[0],), maxval=2 * jnp.pi)
    return jnp.einsum("btjw,bvw->btjv", joints, geometry.yaw_matrix(yaw))


def recenter(rng: jax.Array, joints: jax.Array, jitter: float) -> jax.Array:
    """Move the middle of each window's root xy range to the origin, plus a uniform +-jitter m xy offset."""
    root_xy = joints[:, :, 0, :2]
    middle = 0.5 * (jnp.min(root_xy, 1) + jnp.max(root_xy, 1))                       # (B, 2)
    offset = jax.random.uniform(rng, middle.shape, minval=-jitter, maxval=jitter)
    shift = jnp.concatenate([offset - middle, jnp.zeros_like(middle[:, :1])], -1)
    return joints + shift[:, None, None, :]


def fit_in_view(joints_cam: jax.Array, focal: float, view_half: float, min_depth: float) -> jax.Array:
    """Push each window's camera back along its optical axis (add a depth d >= 0 per window) until every joint
    is >= min_depth deep and |f x / z|, |f y / z| <= view_half. joints_cam: (B, T, J, 3)."""
    xy = jnp.max(jnp.abs(joints_cam[..., :2]), -1)
    z = joints_cam[..., 2]
    need = jnp.maximum(focal * xy / view_half - z, min_depth - z)
    d = jnp.maximum(jnp.max(need.reshape(need.shape[0], -1), -1), 0.0)
    # A hair more than needed, so projections land strictly inside despite rounding.
    d = jnp.where(d > 0, d + 1e-3, d)
    return joints_cam + jnp.stack([jnp.zeros_like(d), jnp.zeros_like(d), d], -1)[:, None, None, :]


def project(joints_cam: jax.Array, focal: float) -> jax.Array:
    return camera.project_normalized(joints_cam, focal)


def random_camera_pairs(rng: jax.Array, joints: jax.Array, spec) -> tuple[jax.Array, jax.Array]:
    """World windows (B, T, 17, 3) -> (2D (B, T, 17, 2) normalised screen, 3D (B, T, 17, 3) camera frame)."""
    k_center, k_cam = jax.random.split(rng)
    b, t = joints.shape[:2]
    centred = recenter(k_center, joints, spec.center_jitter)
    cams = camera.random_cameras(k_cam, (b,), spec.ranges())
    joints_cam = camera.world_to_camera(centred.reshape(b, t * skeleton.NUM_JOINTS, 3), cams)
    joints_cam = fit_in_view(joints_cam.reshape(joints.shape), spec.focal, spec.view_half, spec.min_depth)
    return project(joints_cam, spec.focal), joints_cam


def camera_axes(joints: jax.Array) -> jax.Array:
    """World (Z-up) -> PoseTriplet's camera-like axes -(x, z, y) (`world2cam_sktpos`), first-frame root at 0.

    joints: (B, T, 17, 3). A level camera looking along world -y: x right, y down (world -z), z forward.
    """
    axes = -joints[..., jnp.array([0, 2, 1])]
    return axes - axes[:, :1, :1]


def random_mirror(rng: jax.Array, joints: jax.Array) -> jax.Array:
    """Mirror half of the windows (B, T, 17, 3) through the world x-z plane, swapping left and right joints."""
    flip = jax.random.bernoulli(rng, 0.5, (joints.shape[0], 1, 1, 1))
    return jnp.where(flip, skeleton.flip_lr(joints, axis=1), joints)


def augment_world(rng: jax.Array, joints: jax.Array, spec) -> jax.Array:
    """Bone-length augmentation, then random mirroring and yaw (if enabled). joints: (B, T, 17, 3) world."""
    k_bone, k_mirror, k_yaw = jax.random.split(rng, 3)
    out = augment_bone_lengths(k_bone, joints, spec.bone_scale, spec.bone_jitter)
    if spec.mirror:
        out = random_mirror(k_mirror, out)
    return random_yaw(k_yaw, out) if spec.yaw else out
