"""Clean-up of generated motion: per-frame ground and foot locking ("footskate cleanup", Kovar, Schreiner and
Gleicher, SCA 2002), after sampling: `clean_up` on the host (NumPy, float64), `clean_up_on_device` the same steps as
one jitted scan over frames for a whole batch (what the co-evolution's device-resident round runs).

An in-betweening generator moves the root smoothly toward each target while the legs blend between poses, so feet
that should stand glide over the ground (RMI predicts foot contacts for exactly this kind of clean-up). `clean_up`:

1. ground: each frame whose lowest joint is below z = 0 is lifted by that depth (PoseTriplet puts every frame of its
   references on the ground the same way, reference/posetriplet.md §2.6);
2. foot locking, per leg: an ankle lower than `lock_height` plants where it first touched down and stays there; the
   hip-knee-ankle chain is re-solved analytically (two-bone IK, the knee bending in its generated plane), so bone
   lengths are unchanged. A planted foot is released when it rises above `lock_height` or when the body has moved so
   far that the leg would stretch beyond `max_reach` of its length (or 1 % more than when it planted, if that was
   straighter) or the ankle would trail the hip by more than
   `max_stride` metres along the ground; it then swings back to its generated path over `blend_frames` frames,
   lifted by up to `swing_height` metres (a foot that moves over the ground is in the air), and may plant again.

Only the knees and ankles move in step 2, so the upper body is the generator's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import skeleton

J = skeleton.JOINT_INDEX
LEGS = ((J["RHip"], J["RKnee"], J["RAnkle"]), (J["LHip"], J["LKnee"], J["LAnkle"]))


def ground(joints, start: int = 0):
    """(..., T, 17, 3) -> the same motion with every frame from `start` on lifted so that no joint is below z = 0
    (NumPy or JAX)."""
    xp = skeleton._xp(joints)
    after = xp.arange(joints.shape[-3]) >= start
    depth = xp.maximum(-joints[..., 2].min(axis=-1), 0.0) * after
    return joints + depth[..., None, None] * xp.asarray([0.0, 0.0, 1.0], joints.dtype)


def two_bone_ik(hip, knee, ankle, target, lateral):
    """Knee and ankle (..., 3) that put the ankle at `target` (pulled toward the hip if out of reach) with the thigh
    and shin lengths of (hip, knee, ankle). The knee stays in the plane of the generated leg unless that would bend
    it backwards by more than 20 degrees (relative to `lateral`, the right-to-left hip axis); then it bends straight
    forward. NumPy or JAX, branch-free."""
    xp = skeleton._xp(hip)
    # Inner products as vecdot (NumPy's dot of 3-vectors, bit for bit), so the host's float64 figures are kept.
    dot = lambda a, b: xp.vecdot(a, b)[..., None]  # noqa: E731
    norm = lambda x: xp.sqrt(dot(x, x))  # noqa: E731
    l1, l2 = norm(knee - hip), norm(ankle - knee)
    v = target - hip
    d = norm(v)
    u = v / xp.maximum(d, 1e-9)
    d = xp.clip(d, xp.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
    forward = xp.cross(u, lateral)   # a knee displaced this way bends the right way round
    forward = forward / xp.maximum(norm(forward), 1e-9)
    pole = knee - hip
    n = pole - dot(pole, u) * u
    a = (l1 * l1 - l2 * l2 + d * d) / (2.0 * d)
    h = xp.sqrt(xp.maximum(l1 * l1 - a * a, 0.0))
    flexion = xp.degrees(xp.arccos(xp.clip((a * (d - a) - h * h) / (l1 * l2), -1.0, 1.0)))
    straight = (norm(n) < 1e-6) | ((dot(n, forward) < 0) & (flexion > 20.0))
    n = xp.where(straight, forward, n)
    n = n / xp.maximum(norm(n), 1e-9)
    return hip + a * u + h * n, hip + d * u


def lock_feet(joints: np.ndarray, lock_height: float = 0.1, max_reach: float = 0.98, max_stride: float = 0.45,
              blend_frames: int = 4, swing_height: float = 0.1, start: int = 0) -> np.ndarray:
    """(T, 17, 3) -> the same motion with planted feet held in place (module docstring); frames before `start`
    are kept as they are (a foot standing there plants where it is at `start`)."""
    out = joints.copy()
    for hip_i, knee_i, ankle_i in LEGS:
        planted = None        # xy where the foot is planted
        swing_from = None     # xy the foot swings from after a release
        swing_step = 0
        for t in range(start, len(out)):
            hip, knee, ankle = out[t, hip_i], out[t, knee_i], out[t, ankle_i]
            lateral = out[t, J["LHip"]] - out[t, J["RHip"]]
            leg = np.linalg.norm(knee - hip) + np.linalg.norm(ankle - knee)
            if planted is None and swing_from is None and ankle[2] < lock_height:
                planted = ankle[:2].copy()
                # A leg planted nearly straight (standing, heel strike) may keep its extension.
                reach_limit = max(max_reach * leg, min(np.linalg.norm(ankle - hip) + 0.01 * leg, leg))
            if planted is not None:
                target = np.array([planted[0], planted[1], ankle[2]])
                stretched = np.linalg.norm(target - hip) > reach_limit
                trailing = np.linalg.norm(target[:2] - hip[:2]) > max_stride
                if ankle[2] >= lock_height or stretched or trailing:
                    swing_from, swing_step, planted = planted, 0, None
                else:
                    out[t, knee_i], out[t, ankle_i] = two_bone_ik(hip, knee, ankle, target, lateral)
                    continue
            if swing_from is not None:
                swing_step += 1
                w = swing_step / (blend_frames + 1)
                xy = (1 - w) * swing_from + w * ankle[:2]
                target = np.array([xy[0], xy[1], ankle[2] + swing_height * np.sin(np.pi * w)])
                out[t, knee_i], out[t, ankle_i] = two_bone_ik(hip, knee, ankle, target, lateral)
                if swing_step >= blend_frames:
                    swing_from = None
    return out


def clean_up(joints: np.ndarray, lock_height: float = 0.1, max_reach: float = 0.98, max_stride: float = 0.45,
             blend_frames: int = 4, swing_height: float = 0.1, start: int = 0) -> np.ndarray:
    """(T, 17, 3) or (N, T, 17, 3) world joints (Z-up, metres) -> grounded, with planted feet locked, from frame
    `start` on (`sample` keeps its real start window as it is)."""
    joints = np.asarray(joints, np.float64)
    if joints.ndim == 4:
        return np.stack([clean_up(j, lock_height, max_reach, max_stride, blend_frames, swing_height, start)
                         for j in joints])
    if joints.ndim != 3 or joints.shape[1:] != (17, 3):
        raise ValueError(f"clean_up expects (T, 17, 3) or (N, T, 17, 3) joints, got shape {joints.shape}")
    if not np.all(np.isfinite(joints)):
        raise ValueError("clean_up: joints contain NaN or infinite values")
    return lock_feet(ground(joints, start), lock_height, max_reach, max_stride, blend_frames, swing_height, start)


def _lock_foot_jnp(joints, leg, lock_height, max_reach, max_stride, blend_frames, swing_height, start):
    """`lock_feet` for one leg of one (T, 17, 3) motion as a scan over frames: the planted / swinging state is the
    carry, each branch of the host loop a `where`."""
    hip_i, knee_i, ankle_i = leg
    norm = lambda x: jnp.linalg.norm(x, axis=-1)  # noqa: E731

    def frame(carry, inputs):
        planted, planted_xy, reach_limit, swinging, swing_from, swing_step = carry
        t, pose = inputs
        active = t >= start
        hip, knee, ankle = pose[hip_i], pose[knee_i], pose[ankle_i]
        lateral = pose[J["LHip"]] - pose[J["RHip"]]
        length = norm(knee - hip) + norm(ankle - knee)
        plant = active & ~planted & ~swinging & (ankle[2] < lock_height)
        planted_xy = jnp.where(plant, ankle[:2], planted_xy)
        reach_limit = jnp.where(plant, jnp.maximum(max_reach * length,
                                                   jnp.minimum(norm(ankle - hip) + 0.01 * length, length)),
                                reach_limit)
        planted = planted | plant
        held = jnp.concatenate([planted_xy, ankle[2:]])
        release = planted & ((ankle[2] >= lock_height) | (norm(held - hip) > reach_limit)
                             | (norm(held[:2] - hip[:2]) > max_stride))
        hold = planted & ~release
        swing_from = jnp.where(release, planted_xy, swing_from)
        swing_step = jnp.where(release, 0, swing_step)
        swinging = swinging | release
        planted = planted & ~release
        swing_step = jnp.where(swinging, swing_step + 1, swing_step)
        w = swing_step / (blend_frames + 1)
        xy = (1 - w) * swing_from + w * ankle[:2]
        swung = jnp.concatenate([xy, ankle[2:] + swing_height * jnp.sin(jnp.pi * w)])
        new_knee, new_ankle = two_bone_ik(hip, knee, ankle, jnp.where(hold, held, swung), lateral)
        moved = hold | swinging
        knee, ankle = jnp.where(moved, new_knee, knee), jnp.where(moved, new_ankle, ankle)
        swinging = swinging & (swing_step < blend_frames)
        return (planted, planted_xy, reach_limit, swinging, swing_from, swing_step), (knee, ankle)

    zero2 = jnp.zeros((2,), joints.dtype)
    init = (jnp.bool_(False), zero2, jnp.zeros((), joints.dtype), jnp.bool_(False), zero2, jnp.int32(0))
    _, (knees, ankles) = jax.lax.scan(frame, init, (jnp.arange(joints.shape[0]), joints))
    return joints.at[:, knee_i].set(knees).at[:, ankle_i].set(ankles)


@functools.partial(jax.jit, static_argnames=("blend_frames", "start"))
def clean_up_on_device(joints: jax.Array, lock_height: float = 0.1, max_reach: float = 0.98,
                       max_stride: float = 0.45, blend_frames: int = 4, swing_height: float = 0.1,
                       start: int = 0) -> jax.Array:
    """`clean_up` of a batch (N, T, 17, 3) on device, in the batch's precision: the frames' grounding, then each
    leg's foot locking as a scan over frames (the legs are independent: each moves only its own knee and ankle)."""
    out = ground(joints, start)
    args = (lock_height, max_reach, max_stride, blend_frames, swing_height, start)
    for leg in LEGS:
        out = jax.vmap(lambda j: _lock_foot_jnp(j, leg, *args))(out)
    return out


__all__ = ["clean_up", "clean_up_on_device", "ground", "lock_feet", "two_bone_ik"]
