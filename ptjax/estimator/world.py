"""Camera frame -> world frame without extrinsics: PoseTriplet's gravity/PCA prior (reference §2.6).

PoseTriplet (`common/camera2world.py::cam2world_byPCA`) takes the first principal axis of the root-relative joints
over the clip (for an upright body, the body's long axis, i.e. the vertical); if it lies within ~5 degrees
(|cos| > 0.996) of a fixed prior for the up direction in camera coordinates, (0, -0.97, -0.25) (a camera tilted
~14 degrees down, as in Human3.6M), it is taken as "up", otherwise the prior itself is. The world's horizontal axes
here follow the camera's x axis (made perpendicular to "up"), where the original used the second principal axis
(whose sign is arbitrary); a heading does not matter to the imitator. The result is placed with the first frame's
root above the world origin and the lowest joint of the clip on the z = 0 ground (PoseTriplet also grounds each
frame separately before imitation; that belongs to the retargeting step, not here).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import skeleton

UP_PRIOR_CAMERA = (0.0, -0.97, -0.25)
PCA_AGREEMENT = 0.996


def up_direction(joints_cam: np.ndarray, prior=UP_PRIOR_CAMERA, agreement: float = PCA_AGREEMENT) -> np.ndarray:
    """The world up direction (3,) in camera coordinates for a (T, 17, 3) camera-frame sequence."""
    joints = jnp.asarray(joints_cam, jnp.float32)[None]
    valid = jnp.ones(joints.shape[:2], bool)
    return np.asarray(_up_directions(joints, valid, _unit_prior(prior), float(agreement))[0], np.float64)


def camera_to_world(joints_cam, prior=UP_PRIOR_CAMERA, agreement: float = PCA_AGREEMENT) -> np.ndarray:
    """(T, 17, 3) camera-frame joints (OpenCV axes, metres) -> (T, 17, 3) world joints, Z-up (module docstring)."""
    joints = skeleton.check_joints(joints_cam, name="joints_cam", dims=3)
    if joints.ndim != 3 or len(joints) < 1:
        raise ValueError(f"joints_cam must be one sequence (T, 17, 3) with T >= 1, got shape {joints.shape}")
    frames = max(16, 1 << (len(joints) - 1).bit_length())  # padded to a power of two: few compiled lengths
    padded = np.concatenate([joints, np.repeat(joints[-1:], frames - len(joints), 0)]).astype(np.float32)
    world = camera_to_world_padded(jnp.asarray(padded)[None], jnp.asarray([len(joints)]), _unit_prior(prior),
                                   float(agreement))
    return np.asarray(world[0, :len(joints)], np.float32)


@functools.partial(jax.jit, static_argnames=("prior", "agreement"))
def camera_to_world_padded(joints_cam: jax.Array, lengths: jax.Array, prior: tuple = UP_PRIOR_CAMERA,
                           agreement: float = PCA_AGREEMENT) -> jax.Array:
    """`camera_to_world` of N padded sequences at once: (N, T, 17, 3) camera-frame joints whose first lengths[i]
    frames are valid -> (N, T, 17, 3) world joints (the padding transformed alike, ignored for the grounding)."""
    valid = jnp.arange(joints_cam.shape[1])[None, :] < lengths[:, None]
    up = _up_directions(joints_cam, valid, np.asarray(prior, np.float32) / np.linalg.norm(prior), agreement)
    x_axis = jnp.array([1.0, 0.0, 0.0]) - up[:, :1] * up
    rolled = jnp.linalg.norm(x_axis, axis=-1, keepdims=True) < 1e-6  # "up" along the camera x axis (rolled 90 deg)
    x_axis = jnp.where(rolled, jnp.array([0.0, 0.0, 1.0]) - up[:, 2:] * up, x_axis)
    x_axis = x_axis / jnp.linalg.norm(x_axis, axis=-1, keepdims=True)
    rotation = jnp.stack([x_axis, jnp.cross(up, x_axis), up], axis=1)   # rows: world axes in camera coordinates
    world = jnp.einsum("ntjc,nkc->ntjk", joints_cam, rotation)
    origin = world[:, :1, :1, :2]
    lowest = jnp.min(jnp.where(valid[:, :, None], world[..., 2], jnp.inf), axis=(1, 2))
    return jnp.concatenate([world[..., :2] - origin, world[..., 2:] - lowest[:, None, None, None]], axis=-1)


def _unit_prior(prior) -> tuple:
    prior = np.asarray(prior, np.float64)
    if prior.shape != (3,) or not np.isfinite(prior).all() or np.linalg.norm(prior) < 1e-9:
        raise ValueError(f"prior must be a non-zero 3-vector, got {prior!r}")
    return tuple(float(v) for v in prior / np.linalg.norm(prior))


def _up_directions(joints_cam: jax.Array, valid: jax.Array, prior, agreement: float) -> jax.Array:
    """(N, 3) up directions: each sequence's first principal axis of its root-relative joints over its valid frames
    where it agrees with the prior, else the prior."""
    prior = jnp.asarray(prior, jnp.float32)
    weight = valid[:, :, None, None].astype(jnp.float32)
    rel = joints_cam - joints_cam[:, :, :1]
    mean = jnp.sum(rel * weight, axis=(1, 2)) / jnp.maximum(jnp.sum(weight, axis=(1, 2)) * rel.shape[2], 1.0)
    centred = (rel - mean[:, None, None]) * weight
    scatter = jnp.einsum("ntjc,ntjd->ncd", centred, centred)
    _, vectors = jnp.linalg.eigh(scatter)
    axis = vectors[..., -1]                                        # eigenvalues ascend: the largest is last
    cos = axis @ prior
    degenerate = jnp.trace(scatter, axis1=1, axis2=2) <= 0.0       # a still point: no axis to find
    agrees = (jnp.abs(cos) > agreement) & ~degenerate
    return jnp.where(agrees[:, None], axis * jnp.sign(cos)[:, None], prior)
