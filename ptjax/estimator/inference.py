"""Inference and evaluation: `predict(state, keypoints2d)` for sequences of any length, `evaluate(state, takes)`.

`predict` runs the dilated (full-sequence) form of PoseNet and TrajNet on the sequence padded at both ends by
repeating its first and last frame (VideoPose3D's evaluation padding), so T >= 1 frames give T outputs. Lengths are
rounded up to a few compiled sizes (powers of two up to `predict.chunk`, longer sequences go in chunks of that
size with their own context), which changes nothing in the result: a frame's output depends only on its window.
With flip test-time augmentation (config `predict.flip`), the mirrored input (x -> -x, left/right swapped) is
lifted too and its mirrored output averaged in (VideoPose3D / PoseTriplet `*_flip` evaluation).

Input checks (ValueError): shape must be (T, 17, 2) with T >= 1, H36M-17 order; NaN/inf anywhere; values far
outside normalised screen coordinates (pixels passed by mistake). `predict` does no gap filling: missing joints
must be filled before (`ptjax.data.keypoints` interpolates them when reading detector output).
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import metrics as pose_metrics_lib
from ptjax import skeleton
from ptjax.data.windows import pad_edges
from ptjax.estimator.config import Spec
from ptjax.estimator.model import pose_net, traj_net

# Normalised screen coordinates of in-frame points are within about +-1 (x) and +-h/w (y); beyond this the input
# is almost surely in pixels.
MAX_ABS_NORMALIZED = 20.0
_MIN_BUCKET = 32
# PoseTriplet scores 16 joints (no Nose), as ptjax.evaluate does.
SCORED_JOINTS: tuple[int, ...] = skeleton.POSETRIPLET16


def check_keypoints2d(keypoints2d) -> np.ndarray:
    """Validate a (T, 17, 2) normalised-screen sequence; returns float32."""
    kp = skeleton.check_joints(keypoints2d, name="keypoints2d", dims=2)
    if kp.ndim != 3:
        raise ValueError(f"keypoints2d must be one sequence (T, 17, 2), got shape {kp.shape}")
    if len(kp) < 1:
        raise ValueError("keypoints2d is empty (T = 0 frames)")
    peak = float(np.max(np.abs(kp)))
    if peak > MAX_ABS_NORMALIZED:
        raise ValueError(f"keypoints2d reach |{peak:.1f}|: expected normalised screen coordinates (about -1..1; "
                         "see ptjax.camera.normalize_screen), not pixels")
    return kp.astype(np.float32)


@functools.partial(jax.jit, static_argnames=("spec", "flip"))
def _lift_padded(pose_vars, traj_vars, padded: jax.Array, spec: Spec, flip: bool):
    """padded: (T + rf - 1, 17, 2) -> pose (T, 17, 3) root-relative, trajectory (T, 3); dilated form, eval mode."""
    pose_model, traj_model = pose_net(spec), traj_net(spec)

    def run(x):
        pose = pose_model.apply(pose_vars, x[None], train=False)[0]
        root = traj_model.apply(traj_vars, x[None], train=False)[0, :, 0]
        return pose, root

    pose, root = run(padded)
    if flip:
        pose_f, root_f = run(skeleton.flip_lr(padded, axis=0))
        pose = 0.5 * (pose + skeleton.flip_lr(pose_f, axis=0))
        root = 0.5 * (root + root_f * jnp.array([-1.0, 1.0, 1.0]))
    pose = pose - pose[:, :1]  # the root joint is the origin of the root-relative pose
    return pose, root


@functools.partial(jax.jit, static_argnames=("spec", "flip"))
def _lift_batch(pose_vars, traj_vars, padded: jax.Array, spec: Spec, flip: bool):
    """`_lift_padded` over a batch of segments of one size: padded (B, T + rf - 1, 17, 2) -> (B, T, 17, 3), (B, T, 3)."""
    pose_model, traj_model = pose_net(spec), traj_net(spec)

    def run(x):
        return pose_model.apply(pose_vars, x, train=False), traj_model.apply(traj_vars, x, train=False)[:, :, 0]

    pose, root = run(padded)
    if flip:
        pose_f, root_f = run(skeleton.flip_lr(padded, axis=0))
        pose = 0.5 * (pose + skeleton.flip_lr(pose_f, axis=0))
        root = 0.5 * (root + root_f * jnp.array([-1.0, 1.0, 1.0]))
    return pose - pose[:, :, :1], root


def _bucket(n: int, chunk: int) -> int:
    size = _MIN_BUCKET
    while size < n:
        size *= 2
    return min(size, max(chunk, n))


def predict(state, keypoints2d, flip: bool | None = None) -> dict[str, np.ndarray]:
    """Lift a (T, 17, 2) normalised-screen sequence of any length T >= 1.

    Returns dict(pose=(T, 17, 3) root-relative camera frame, trajectory=(T, 3) root in the camera frame,
    joints3d=(T, 17, 3) = pose + trajectory), metres, float32. `flip` overrides config `predict.flip`.
    """
    spec: Spec = state.spec
    kp = check_keypoints2d(keypoints2d)
    flip = spec.flip if flip is None else bool(flip)
    pose_vars = {"params": state.pose.params, "batch_stats": state.pose.batch_stats}
    traj_vars = {"params": state.traj.params, "batch_stats": state.traj.batch_stats}
    n_frames, pad = len(kp), spec.pad
    padded = pad_edges(kp, pad, pad)
    poses, roots = [], []
    for start in range(0, n_frames, spec.chunk):
        n = min(spec.chunk, n_frames - start)
        size = _bucket(n, spec.chunk)
        segment = pad_edges(padded[start:start + n + 2 * pad], 0, size - n)
        pose, root = _lift_padded(pose_vars, traj_vars, jnp.asarray(segment), spec, flip)
        poses.append(np.asarray(pose[:n]))
        roots.append(np.asarray(root[:n]))
    pose, root = np.concatenate(poses), np.concatenate(roots)
    if not (np.isfinite(pose).all() and np.isfinite(root).all()):
        raise FloatingPointError("the estimator produced non-finite output (corrupt parameters?)")
    return {"pose": pose.astype(np.float32), "trajectory": root.astype(np.float32),
            "joints3d": (pose + root[:, None, :]).astype(np.float32)}


def predict_many(state, sequences: Sequence, flip: bool | None = None, max_batch: int = 64) -> list[dict]:
    """`predict` for several (T_i, 17, 2) sequences at once: their segments (cut and padded exactly as `predict`
    cuts them) are lifted in batches of one size, up to `max_batch` segments per compiled call (batch sizes rounded
    up to powers of two, so a handful of programs serve any number of takes). Same results as `predict` per
    sequence, up to float rounding."""
    spec: Spec = state.spec
    flip = spec.flip if flip is None else bool(flip)
    pose_vars = {"params": state.pose.params, "batch_stats": state.pose.batch_stats}
    traj_vars = {"params": state.traj.params, "batch_stats": state.traj.batch_stats}
    pad = spec.pad
    groups: dict[int, list] = {}      # segment size -> [(sequence, start, n, padded segment)]
    lengths = []
    for i, seq in enumerate(sequences):
        kp = check_keypoints2d(seq)
        lengths.append(len(kp))
        padded = pad_edges(kp, pad, pad)
        for start in range(0, len(kp), spec.chunk):
            n = min(spec.chunk, len(kp) - start)
            size = _bucket(n, spec.chunk)
            groups.setdefault(size, []).append((i, start, n, pad_edges(padded[start:start + n + 2 * pad], 0, size - n)))
    poses = [np.empty((t, 17, 3), np.float32) for t in lengths]
    roots = [np.empty((t, 3), np.float32) for t in lengths]
    for size, items in groups.items():
        for lo in range(0, len(items), max_batch):
            part = items[lo:lo + max_batch]
            batch = min(1 << (len(part) - 1).bit_length(), max_batch)
            x = np.stack([seg for *_, seg in part] + [part[0][3]] * (batch - len(part)))
            pose, root = _lift_batch(pose_vars, traj_vars, jnp.asarray(x), spec, flip)
            pose, root = np.asarray(pose), np.asarray(root)
            for k, (i, start, n, _) in enumerate(part):
                poses[i][start:start + n] = pose[k, :n]
                roots[i][start:start + n] = root[k, :n]
    out = []
    for pose, root in zip(poses, roots):
        if not (np.isfinite(pose).all() and np.isfinite(root).all()):
            raise FloatingPointError("the estimator produced non-finite output (corrupt parameters?)")
        out.append({"pose": pose, "trajectory": root, "joints3d": (pose + root[:, None, :]).astype(np.float32)})
    return out


@functools.partial(jax.jit, static_argnames=("spec", "flip", "max_batch"))
def _lift_takes(pose_vars, traj_vars, keypoints: jax.Array, lengths: jax.Array, spec: Spec, flip: bool,
                max_batch: int):
    """Padded takes (B, T, 17, 2) of lengths (B,) -> pose (B, T, 17, 3), trajectory (B, T, 3), finite (B,)."""
    t = keypoints.shape[1]
    # Each take padded at both ends by its own first and last frame (as `predict`), whatever its slot holds past it.
    idx = jnp.clip(jnp.arange(-spec.pad, t + spec.pad)[None, :], 0, jnp.maximum(lengths[:, None] - 1, 0))
    padded = jnp.take_along_axis(keypoints, idx[..., None, None], axis=1)
    pose, root = jax.lax.map(lambda x: _lift_padded(pose_vars, traj_vars, x, spec, flip), padded,
                             batch_size=max_batch)
    valid = jnp.arange(t)[None, :] < lengths[:, None]
    finite = jnp.all((jnp.isfinite(pose).all((-2, -1)) & jnp.isfinite(root).all(-1)) | ~valid, axis=1)
    return pose, root, finite


def predict_padded(state, keypoints2d: jax.Array, lengths, flip: bool | None = None, max_batch: int = 64) -> dict:
    """`predict` for takes already padded on the device, in one program and without a per-take loop: (B, T, 17, 2)
    normalised-screen keypoints whose take b has lengths[b] >= 1 frames (e.g. a co-evolution state's `real2d`) ->
    dict(pose (B, T, 17, 3), trajectory (B, T, 3), joints3d (B, T, 17, 3)) on the device; frames past a take's end
    hold the lift of its last frame's padding. Each take is lifted whole (the dilated form over all its frames;
    `max_batch` takes at a time): the same output as `predict` per take up to float rounding. The input is not
    re-validated (it was when it was packed); non-finite output raises FloatingPointError naming the take index."""
    spec: Spec = state.spec
    flip = spec.flip if flip is None else bool(flip)
    pose_vars = {"params": state.pose.params, "batch_stats": state.pose.batch_stats}
    traj_vars = {"params": state.traj.params, "batch_stats": state.traj.batch_stats}
    keypoints = jnp.asarray(keypoints2d, jnp.float32)
    if keypoints.ndim != 4 or keypoints.shape[2:] != (skeleton.NUM_JOINTS, 2):
        raise ValueError(f"keypoints2d must be padded takes (B, T, {skeleton.NUM_JOINTS}, 2), got {keypoints.shape}")
    pose, root, finite = _lift_takes(pose_vars, traj_vars, keypoints, jnp.asarray(lengths, jnp.int32), spec, flip,
                                     int(max_batch))
    bad = np.flatnonzero(~np.asarray(finite))
    if len(bad):
        raise FloatingPointError(f"the estimator produced non-finite output for take {int(bad[0])} (corrupt "
                                 "parameters?)")
    return {"pose": pose, "trajectory": root, "joints3d": pose + root[..., None, :]}


@functools.partial(jax.jit, static_argnames=("joints",))
def score_padded(pose: jax.Array, joints_cam: jax.Array, lengths: jax.Array,
                 joints: tuple[int, ...] = SCORED_JOINTS) -> dict[str, jax.Array]:
    """`evaluate(...)["mean"]` from padded predictions, on the device: root-relative poses (B, T, 17, 3) against the
    takes' camera-frame 3D (B, T, 17, 3), take b scored on its first lengths[b] frames -> the mean over takes of each
    take's mean MPJPE, P-MPJPE, N-MPJPE (mm), PCK and AUC (fractions)."""
    per_frame = pose_metrics_lib.pose_frame_metrics(pose[..., list(joints), :], joints_cam[..., list(joints), :])
    valid = (jnp.arange(pose.shape[1])[None, :] < lengths[:, None]).astype(pose.dtype)
    unit = {"mpjpe": 1000.0, "p_mpjpe": 1000.0, "n_mpjpe": 1000.0, "pck": 1.0, "auc": 1.0}
    per_take = {k: jnp.sum(v * valid, 1) / jnp.maximum(jnp.sum(valid, 1), 1) for k, v in per_frame.items()}
    return {k: jnp.mean(v) * unit[k] for k, v in per_take.items()}


def _take_arrays(take):
    kp = getattr(take, "keypoints2d", None)
    gt = getattr(take, "joints_cam", None)
    if gt is None:
        gt = getattr(take, "joints3d", None)
    if kp is None or gt is None:
        raise ValueError(f"{type(take).__name__} has no keypoints2d and joints_cam/joints3d: expected "
                         "ptjax.data.takes.Take (or an EvalSequence)")
    gt = skeleton.check_joints(gt, name=f"{getattr(take, 'name', 'take')} joints_cam", dims=3)
    if gt.ndim != 3 or len(gt) != len(kp):
        raise ValueError(f"{getattr(take, 'name', 'take')}: joints {gt.shape} do not match keypoints {np.shape(kp)}")
    return kp, gt


def evaluate(state, takes: Sequence, joints: Sequence[int] = SCORED_JOINTS, flip: bool | None = None) -> dict:
    """Score the estimator on 2D takes with known camera-frame 3D (`ptjax.data.takes.Take`).

    Root-relative (Hip) MPJPE, P-MPJPE (per-frame Procrustes), N-MPJPE in mm, PCK@150 mm and AUC (0-150 mm) as
    fractions, from `ptjax.metrics`, on `joints` (default PoseTriplet's 16: no Nose). Returns
    {"takes": {name: metrics + frames}, "mean": mean over takes, "all": over all frames, "frames", "num_takes"}.
    """
    takes = list(takes)
    if not takes:
        raise ValueError("evaluate needs at least one take")
    joints = list(joints)
    keys = ("mpjpe", "p_mpjpe", "n_mpjpe", "pck", "auc")
    pairs = [_take_arrays(take) for take in takes]
    preds = predict_many(state, [kp for kp, _ in pairs], flip=flip)
    # Every take's frames scored in one call (padded to a power of two, so few programs serve any set of takes).
    frames = [len(kp) for kp, _ in pairs]
    total = sum(frames)
    size = 1 << max(total - 1, 255).bit_length()
    pred_all = np.zeros((size, len(joints), 3), np.float32)
    gt_all = np.zeros((size, len(joints), 3), np.float32)
    pred_all[:total] = np.concatenate([p["pose"][:, joints] for p in preds])
    gt_all[:total] = np.concatenate([gt[:, joints] for _, gt in pairs])
    scores = {k: np.asarray(v, np.float64)[:total] for k, v in
              pose_metrics_lib.pose_frame_metrics(jnp.asarray(pred_all), jnp.asarray(gt_all)).items()}
    unit = {"mpjpe": 1000.0, "p_mpjpe": 1000.0, "n_mpjpe": 1000.0, "pck": 1.0, "auc": 1.0}
    per_take, start = {}, 0
    for i, (take, n) in enumerate(zip(takes, frames)):
        row = {k: float(np.mean(scores[k][start:start + n]) * unit[k]) for k in keys}
        row["frames"] = int(n)
        per_take[str(getattr(take, "name", f"take_{i}"))] = row
        start += n
    weights = np.asarray(frames, np.float64)
    rows = list(per_take.values())
    return {
        "takes": per_take,
        "mean": {k: float(np.mean([r[k] for r in rows])) for k in keys},
        "all": {k: float(np.sum([r[k] * w for r, w in zip(rows, weights)]) / weights.sum()) for k in keys},
        "frames": int(weights.sum()),
        "num_takes": len(rows),
        "joints": joints,
    }
