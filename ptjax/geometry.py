"""Rotations, in one place: every part of ptjax (skeleton kinematics, the humanoid's, cameras, the data converters,
the imitator's rewards and observations) uses these.

Conventions: a rotation matrix acts on column vectors (v' = R v) and is batched over leading axes (..., 3, 3);
quaternions are (w, x, y, z) and normalised on use; the world is Z-up, so "yaw" is a rotation about z and 0 faces +x.
6-D rotations (Zhou et al., CVPR 2019, "On the continuity of rotation representations in neural networks") are the
matrix's first two columns, concatenated: (r00, r10, r20, r01, r11, r21); `sixd_to_matrix` inverts it for any
non-degenerate input by Gram-Schmidt.

The functions are jax.numpy and jittable. The few the data converters call on the host (`axis_rotation`,
`yaw_matrix`, `quat_to_matrix`) take `xp=np` to compute in numpy's float64 instead.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

EPS = 1e-12


def normalize(v: jax.Array, eps: float = EPS) -> jax.Array:
    """(..., 3) -> unit vectors (a zero vector stays zero instead of becoming NaN)."""
    return v / jnp.sqrt(jnp.maximum(jnp.sum(v * v, axis=-1, keepdims=True), eps))


def skew(k: jax.Array) -> jax.Array:
    """(..., 3) -> (..., 3, 3) cross-product matrices [k]x."""
    z = jnp.zeros_like(k[..., 0])
    return jnp.stack([jnp.stack([z, -k[..., 2], k[..., 1]], -1),
                      jnp.stack([k[..., 2], z, -k[..., 0]], -1),
                      jnp.stack([-k[..., 1], k[..., 0], z], -1)], -2)


def axis_rotation(axis: int, angle, xp=jnp):
    """(...) angles (radians) -> (..., 3, 3) rotations about the x (0), y (1) or z (2) axis."""
    c, s = xp.cos(angle), xp.sin(angle)
    one, zero = xp.ones_like(c), xp.zeros_like(c)
    rows = {0: ((one, zero, zero), (zero, c, -s), (zero, s, c)),
            1: ((c, zero, s), (zero, one, zero), (-s, zero, c)),
            2: ((c, -s, zero), (s, c, zero), (zero, zero, one))}[axis]
    return xp.stack([xp.stack(r, -1) for r in rows], -2)


def yaw_matrix(angle, xp=jnp):
    """(...) angles (radians) -> (..., 3, 3) rotations about the world z axis."""
    return axis_rotation(2, angle, xp)


def euler_xyz(angles: jax.Array) -> jax.Array:
    """Extrinsic x-y-z Euler angles (radians, (..., 3)) -> rotation Rz @ Ry @ Rx (SciPy's lowercase 'xyz')."""
    return axis_rotation(2, angles[..., 2]) @ axis_rotation(1, angles[..., 1]) @ axis_rotation(0, angles[..., 0])


def quat_to_matrix(q, xp=jnp):
    """(..., 4) quaternions (w, x, y, z), normalised here -> (..., 3, 3)."""
    q = q / xp.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return xp.stack([
        xp.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        xp.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        xp.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)], -2)


def matrix_to_quat(r: jax.Array) -> jax.Array:
    """(..., 3, 3) rotation matrices -> (..., 4) quaternions (w, x, y, z) with w >= 0 (branch-free)."""
    m00, m11, m22 = r[..., 0, 0], r[..., 1, 1], r[..., 2, 2]
    w = jnp.sqrt(jnp.maximum(0.0, 1 + m00 + m11 + m22)) / 2
    x = jnp.sqrt(jnp.maximum(0.0, 1 + m00 - m11 - m22)) / 2
    y = jnp.sqrt(jnp.maximum(0.0, 1 - m00 + m11 - m22)) / 2
    z = jnp.sqrt(jnp.maximum(0.0, 1 - m00 - m11 + m22)) / 2
    x = jnp.copysign(x, r[..., 2, 1] - r[..., 1, 2])
    y = jnp.copysign(y, r[..., 0, 2] - r[..., 2, 0])
    z = jnp.copysign(z, r[..., 1, 0] - r[..., 0, 1])
    q = jnp.stack([w, x, y, z], -1)
    return q / jnp.linalg.norm(q, axis=-1, keepdims=True)


def so3_exp(w: jax.Array) -> jax.Array:
    """Rotation vector (..., 3) -> matrix (Rodrigues), smooth at zero."""
    theta2 = jnp.sum(w * w, -1)[..., None, None]
    theta = jnp.sqrt(theta2 + 1e-24)
    k = jnp.zeros(w.shape[:-1] + (3, 3), w.dtype)
    k = k.at[..., 0, 1].set(-w[..., 2]).at[..., 0, 2].set(w[..., 1]).at[..., 1, 0].set(w[..., 2])
    k = k.at[..., 1, 2].set(-w[..., 0]).at[..., 2, 0].set(-w[..., 1]).at[..., 2, 1].set(w[..., 0])
    small = theta2 < 1e-8
    a = jnp.where(small, 1 - theta2 / 6, jnp.sin(theta) / theta)
    b = jnp.where(small, 0.5 - theta2 / 24, (1 - jnp.cos(theta)) / jnp.where(small, 1.0, theta2))
    return jnp.eye(3, dtype=w.dtype) + a * k + b * (k @ k)


def so3_log(r: jax.Array) -> jax.Array:
    """Rotation matrix (..., 3, 3) -> rotation vector (..., 3) (angles below pi)."""
    cos = jnp.clip((jnp.trace(r, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    theta = jnp.arccos(cos)
    vee = jnp.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1)
    sin = jnp.sin(theta)
    scale = jnp.where(sin > 1e-6, theta / (2 * jnp.where(sin > 1e-6, sin, 1.0)), 0.5 + theta ** 2 / 12)
    return vee * scale[..., None]


def swing(a: jax.Array, b: jax.Array) -> jax.Array:
    """The smallest rotation taking unit vector a to unit vector b: (..., 3), (..., 3) -> (..., 3, 3).

    Rodrigues' formula in the form R = I + [k]x + [k]x^2 / (1 + a.b) with k = a x b; singular only for b = -a.
    """
    a, b = jnp.broadcast_arrays(a, b)
    k = jnp.cross(a, b)
    c = jnp.sum(a * b, axis=-1)[..., None, None]
    kx = skew(k)
    eye = jnp.broadcast_to(jnp.eye(3, dtype=a.dtype), kx.shape)
    return eye + kx + kx @ kx / jnp.maximum(1.0 + c, 1e-6)


def frame(primary: jax.Array, secondary: jax.Array, rest_primary, rest_secondary) -> jax.Array:
    """Rotation G with G rest_primary = primary (normalised) and G rest_secondary in the (primary, secondary) plane.

    primary, secondary: (..., 3) world directions (secondary need not be orthogonal or unit); rest axes: (3,) unit
    and orthogonal. Returns (..., 3, 3).
    """
    d = normalize(primary)
    s = normalize(secondary - jnp.sum(secondary * d, -1, keepdims=True) * d)
    a = jnp.stack([d, s, jnp.cross(d, s)], axis=-1)
    u = np.asarray(rest_primary, np.float32)
    v = np.asarray(rest_secondary, np.float32)
    b = np.stack([u, v, np.cross(u, v)], axis=-1)
    return a @ jnp.asarray(b.T)


def matrix_to_6d(r: jax.Array) -> jax.Array:
    """(..., 3, 3) -> (..., 6): the first two columns, concatenated (the module docstring's layout)."""
    return jnp.concatenate([r[..., :, 0], r[..., :, 1]], axis=-1)


def sixd_to_matrix(x: jax.Array) -> jax.Array:
    """(..., 6) -> (..., 3, 3) rotation by Gram-Schmidt on the two 3-vectors (any non-degenerate input)."""
    b1 = normalize(x[..., :3])
    a2 = x[..., 3:]
    b2 = normalize(a2 - jnp.sum(b1 * a2, -1, keepdims=True) * b1)
    return jnp.stack([b1, b2, jnp.cross(b1, b2)], axis=-1)


def rotation_angle(r1: jax.Array, r2: jax.Array | None = None, clip_eps: float = 0.0) -> jax.Array:
    """Geodesic angle (radians) of r1 (..., 3, 3), or between r1 and r2.

    `clip_eps` > 0 keeps the cosine off +-1, where arccos' gradient is infinite (the imitator's rewards use 1e-7)."""
    rel = r1 if r2 is None else jnp.swapaxes(r1, -1, -2) @ r2
    cos = (jnp.trace(rel, axis1=-2, axis2=-1) - 1.0) / 2.0
    return jnp.arccos(jnp.clip(cos, -1.0 + clip_eps, 1.0 - clip_eps))


def heading_rotation(rot: jax.Array) -> jax.Array:
    """(..., 3, 3) body rotations -> the yaw-only rotation of their forward (x) axis projected on the floor."""
    return yaw_matrix(jnp.arctan2(rot[..., 1, 0], rot[..., 0, 0]))
