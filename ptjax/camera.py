"""Pinhole cameras: projection, screen normalisation, world<->camera transforms and random virtual cameras.

Frames (DESIGN.md): world Z-up, right-handed, metres; camera OpenCV (x right, y down, z forward).
A camera's extrinsics are its orientation `rotation` (3, 3), mapping camera-frame vectors to world-frame vectors
(its columns are the camera axes in world coordinates), and its `position` (3,) in the world. All functions are
pure jnp, broadcast over leading batch axes and jit/vmap cleanly.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from ptjax.geometry import euler_xyz

# PoseTriplet's normalised focal length: H36M focal ~1145 px over a 1000 px wide image, times 2 (reference §2.2).
POSETRIPLET_FOCAL = 2.3
# PoseTriplet's random cameras (down-tilt up to 25 degrees at 3.5 m) can put a raised hand or the head of a
# body at the origin up to ~1.4 normalised units from the centre: beyond an H36M-sized frame (|u|, |v| <= 1) but
# within this half-width (a ~66 degree field of view at f = 2.3). The projection is not clamped, as in the original.
VIRTUAL_FOV_HALF = 1.5


@flax.struct.dataclass
class Intrinsics:
    """Pinhole intrinsics in pixels. Fields broadcast: scalars or (...,) arrays."""
    fx: jax.Array
    fy: jax.Array
    cx: jax.Array
    cy: jax.Array
    width: jax.Array
    height: jax.Array


@flax.struct.dataclass
class Extrinsics:
    rotation: jax.Array  # (..., 3, 3) camera -> world
    position: jax.Array  # (..., 3) camera centre in the world


def world_to_camera(points: jax.Array, cam: Extrinsics) -> jax.Array:
    """points (..., N, 3) world -> camera frame. Camera batch axes broadcast against the points' leading axes."""
    rel = points - cam.position[..., None, :]
    return jnp.einsum("...nw,...wc->...nc", rel, cam.rotation)


def camera_to_world(points: jax.Array, cam: Extrinsics) -> jax.Array:
    return jnp.einsum("...nc,...wc->...nw", points, cam.rotation) + cam.position[..., None, :]


def project(points_cam: jax.Array, intr: Intrinsics, eps: float = 1e-6) -> jax.Array:
    """Camera-frame points (..., 3) -> pixel coordinates (..., 2). Points must be in front of the camera."""
    z = jnp.maximum(points_cam[..., 2], eps)
    u = intr.fx[..., None] * points_cam[..., 0] / z + intr.cx[..., None]
    v = intr.fy[..., None] * points_cam[..., 1] / z + intr.cy[..., None]
    return jnp.stack([u, v], -1)


def back_project(pixels: jax.Array, depth: jax.Array, intr: Intrinsics) -> jax.Array:
    """Pixels (..., 2) with camera-frame depth z (...,) -> camera-frame points (..., 3)."""
    x = (pixels[..., 0] - intr.cx[..., None]) / intr.fx[..., None] * depth
    y = (pixels[..., 1] - intr.cy[..., None]) / intr.fy[..., None] * depth
    return jnp.stack([x, y, depth], -1)


def normalize_screen(pixels: jax.Array, width, height) -> jax.Array:
    """VideoPose3D's `normalize_screen_coordinates`: x in [0, w] -> [-1, 1], y keeps the aspect ratio."""
    width = jnp.asarray(width, pixels.dtype)[..., None, None] if jnp.ndim(width) else width
    height = jnp.asarray(height, pixels.dtype)[..., None, None] if jnp.ndim(height) else height
    scale = 2.0 / width
    return pixels * scale - jnp.concatenate(
        [jnp.ones_like(pixels[..., :1]), (height / width) * jnp.ones_like(pixels[..., 1:])], -1)


def unnormalize_screen(normalized: jax.Array, width, height) -> jax.Array:
    width = jnp.asarray(width, normalized.dtype)[..., None, None] if jnp.ndim(width) else width
    height = jnp.asarray(height, normalized.dtype)[..., None, None] if jnp.ndim(height) else height
    offset = jnp.concatenate(
        [jnp.ones_like(normalized[..., :1]), (height / width) * jnp.ones_like(normalized[..., 1:])], -1)
    return (normalized + offset) * width / 2.0


def project_normalized(points_cam: jax.Array, focal: float = POSETRIPLET_FOCAL, eps: float = 1e-6) -> jax.Array:
    """PoseTriplet's `project_to_2d_purelinear`: f * (x, y) / z in normalised screen units, no principal point."""
    z = jnp.maximum(points_cam[..., 2:3], eps)
    return focal * points_cam[..., :2] / z


def back_project_normalized(points2d: jax.Array, depth: jax.Array, focal: float = POSETRIPLET_FOCAL) -> jax.Array:
    return jnp.concatenate([points2d * depth[..., None] / focal, depth[..., None]], -1)


@flax.struct.dataclass
class CameraRanges:
    """Ranges of PoseTriplet's random virtual cameras (`world_to_camera_sktpos_v3`, reference §2.3).

    The camera stands at (x, 0, z) looking back at the subject near the world origin; its orientation is
    extrinsic Euler 'xyz' in degrees. With (-90, 0, 90) the camera looks along world -x, level.
    """
    x: tuple[float, float] = (3.5, 6.0)
    z: tuple[float, float] = (1.4, 1.7)
    euler_x_deg: tuple[float, float] = (-115.0, -95.0)
    euler_y_deg: tuple[float, float] = (-5.0, 5.0)
    euler_z_deg: tuple[float, float] = (80.0, 100.0)


def random_cameras(rng: jax.Array, shape: tuple[int, ...] = (), ranges: CameraRanges = CameraRanges()) -> Extrinsics:
    """Sample camera extrinsics with PoseTriplet's ranges; batch `shape`."""
    k = jax.random.split(rng, 5)
    u = lambda key, lo_hi: jax.random.uniform(key, shape, minval=lo_hi[0], maxval=lo_hi[1])  # noqa: E731
    position = jnp.stack([u(k[0], ranges.x), jnp.zeros(shape), u(k[1], ranges.z)], -1)
    angles = jnp.deg2rad(jnp.stack([u(k[2], ranges.euler_x_deg), u(k[3], ranges.euler_y_deg),
                                    u(k[4], ranges.euler_z_deg)], -1))
    return Extrinsics(rotation=euler_xyz(angles), position=position)


def look_at(position: jax.Array, target: jax.Array, up=(0.0, 0.0, 1.0)) -> Extrinsics:
    """A camera at `position` looking at `target` with world `up` pointing up in the image."""
    forward = target - position
    forward = forward / jnp.linalg.norm(forward, axis=-1, keepdims=True)
    right = jnp.cross(forward, jnp.asarray(up, forward.dtype))
    right = right / jnp.linalg.norm(right, axis=-1, keepdims=True)
    down = jnp.cross(forward, right)
    return Extrinsics(rotation=jnp.stack([right, down, forward], -1), position=position)


def h36m_like_intrinsics(width: float = 1000.0, height: float = 1000.0) -> Intrinsics:
    """Intrinsics with Human3.6M's typical focal length (~1145 px) and centred principal point."""
    f = np.float32(POSETRIPLET_FOCAL * width / 2)
    return Intrinsics(fx=jnp.float32(f), fy=jnp.float32(f), cx=jnp.float32(width / 2), cy=jnp.float32(height / 2),
                      width=jnp.float32(width), height=jnp.float32(height))
