"""Pose metrics with the definitions VideoPose3D (`common/loss.py`) and PoseTriplet's evaluation use.

All take `(..., J, 3)` arrays (any unit; the result is in the same unit) and reduce over every axis unless a
function says otherwise. They are pure jnp, so they jit, vmap and run on NumPy inputs alike.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import skeleton

# 3DHP protocol: PCK at 150 mm; AUC over 31 thresholds from 0 to 150 mm.
PCK_THRESHOLD = 0.15
AUC_THRESHOLDS = np.linspace(0.0, 0.15, 31)


def _check_pair(pred, gt):
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    if pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(f"expected (..., J, 3) joint arrays, got shape {pred.shape}")


def joint_errors(pred: jax.Array, gt: jax.Array) -> jax.Array:
    """Per-joint Euclidean errors (..., J)."""
    _check_pair(pred, gt)
    return jnp.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred: jax.Array, gt: jax.Array) -> jax.Array:
    """Mean per-joint position error (protocol #1). Root alignment is the caller's choice."""
    return jnp.mean(joint_errors(pred, gt))


def procrustes_align(pred: jax.Array, gt: jax.Array) -> jax.Array:
    """Align each pose of `pred` to `gt` with the best similarity transform (rotation, scale, translation).

    Batched over leading axes; one pose is (J, 3). Reflections are excluded, as in VideoPose3D's p_mpjpe.
    """
    _check_pair(pred, gt)
    mu_x = jnp.mean(gt, axis=-2, keepdims=True)
    mu_y = jnp.mean(pred, axis=-2, keepdims=True)
    x0, y0 = gt - mu_x, pred - mu_y
    norm_x = jnp.sqrt(jnp.sum(x0 ** 2, axis=(-2, -1), keepdims=True))
    norm_y = jnp.sqrt(jnp.sum(y0 ** 2, axis=(-2, -1), keepdims=True))
    x0 = x0 / jnp.maximum(norm_x, 1e-12)
    y0 = y0 / jnp.maximum(norm_y, 1e-12)
    h = jnp.swapaxes(x0, -1, -2) @ y0
    u, s, vt = jnp.linalg.svd(h)
    v = jnp.swapaxes(vt, -1, -2)
    r = v @ jnp.swapaxes(u, -1, -2)
    # Flip the last singular direction where the optimum would be a reflection.
    sign_det = jnp.sign(jnp.linalg.det(r))[..., None]
    v = v.at[..., :, -1].multiply(sign_det)
    s = s.at[..., -1].multiply(sign_det[..., 0])
    r = v @ jnp.swapaxes(u, -1, -2)
    tr = jnp.sum(s, axis=-1)[..., None, None]
    a = tr * norm_x / jnp.maximum(norm_y, 1e-12)
    t = mu_x - a * (mu_y @ r)
    return a * (pred @ r) + t


def p_mpjpe(pred: jax.Array, gt: jax.Array) -> jax.Array:
    """MPJPE after per-pose similarity Procrustes alignment (protocol #2)."""
    return mpjpe(procrustes_align(pred, gt), gt)


def n_mpjpe(pred: jax.Array, gt: jax.Array) -> jax.Array:
    """MPJPE after the least-squares scale of each pose (VideoPose3D's n_mpjpe; no rotation or translation)."""
    _check_pair(pred, gt)
    return mpjpe(_scaled_to(pred, gt), gt)


def _scaled_to(pred: jax.Array, gt: jax.Array) -> jax.Array:
    """Each pose of `pred` times its least-squares scale onto `gt`."""
    norm_pred = jnp.sum(pred ** 2, axis=(-2, -1), keepdims=True)
    norm_target = jnp.sum(gt * pred, axis=(-2, -1), keepdims=True)
    return norm_target / jnp.maximum(norm_pred, 1e-12) * pred


def pck(pred: jax.Array, gt: jax.Array, threshold: float = PCK_THRESHOLD) -> jax.Array:
    """Fraction of joints with error strictly below `threshold` (same unit as the inputs), in [0, 1]."""
    return jnp.mean((joint_errors(pred, gt) < threshold).astype(jnp.float32))


def auc(pred: jax.Array, gt: jax.Array, thresholds=AUC_THRESHOLDS) -> jax.Array:
    """Area under the PCK curve: mean PCK over `thresholds` (3DHP: 0..150 mm in 31 steps)."""
    errors = joint_errors(pred, gt)
    thresholds = jnp.asarray(thresholds, errors.dtype)
    return jnp.mean((errors[..., None] < thresholds).astype(jnp.float32))


def accel_error(pred: jax.Array, gt: jax.Array) -> jax.Array:
    """Mean per-joint error of second finite differences over the time axis (-3): inputs (..., T, J, 3), T >= 3."""
    _check_pair(pred, gt)
    if pred.ndim < 3 or pred.shape[-3] < 3:
        raise ValueError(f"accel_error needs (..., T, J, 3) with T >= 3, got {pred.shape}")
    acc = lambda x: x[..., 2:, :, :] - 2 * x[..., 1:-1, :, :] + x[..., :-2, :, :]  # noqa: E731
    return jnp.mean(jnp.linalg.norm(acc(pred) - acc(gt), axis=-1))


def bone_length_error(pred: jax.Array, gt: jax.Array) -> jax.Array:
    """Mean absolute difference of H36M-17 bone lengths."""
    _check_pair(pred, gt)
    return jnp.mean(jnp.abs(skeleton.bone_lengths(pred) - skeleton.bone_lengths(gt)))


def root_relative(joints: jax.Array, root: int = 0) -> jax.Array:
    return joints - joints[..., root:root + 1, :]


@jax.jit
def pose_frame_metrics(pred: jax.Array, gt: jax.Array) -> dict[str, jax.Array]:
    """`pose_metrics`' quantities per pose, unreduced: (..., J, 3) pairs -> {name: (...)} (input units; pck and auc
    as fractions). A take's figure is the mean over its frames, as `pose_metrics` computes it."""
    pred, gt = root_relative(pred), root_relative(gt)
    errors = joint_errors(pred, gt)
    thresholds = jnp.asarray(AUC_THRESHOLDS, errors.dtype)
    return {"mpjpe": jnp.mean(errors, -1),
            "p_mpjpe": jnp.mean(joint_errors(procrustes_align(pred, gt), gt), -1),
            "n_mpjpe": jnp.mean(joint_errors(_scaled_to(pred, gt), gt), -1),
            "pck": jnp.mean((errors < PCK_THRESHOLD).astype(jnp.float32), -1),
            "auc": jnp.mean((errors[..., None] < thresholds).astype(jnp.float32), (-2, -1))}


def pose_metrics(pred, gt, unit_scale: float = 1000.0) -> dict[str, float]:
    """The paper-style table row for root-relative poses: MPJPE, P-MPJPE, N-MPJPE (in mm by default), PCK, AUC."""
    pred = root_relative(jnp.asarray(pred))
    gt = root_relative(jnp.asarray(gt))
    return {
        "mpjpe": float(mpjpe(pred, gt) * unit_scale),
        "p_mpjpe": float(p_mpjpe(pred, gt) * unit_scale),
        "n_mpjpe": float(n_mpjpe(pred, gt) * unit_scale),
        "pck": float(pck(pred, gt)),
        "auc": float(auc(pred, gt)),
    }
