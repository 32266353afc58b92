"""In-betweening accuracy on held-out windows, against the interpolation and zero-velocity baselines of the LaFAN1
benchmark (Harvey et al. 2020): given `context` frames and the keyframe `gap + 1` frames after the last of them,
fill the `gap` frames between.

Errors are over the filled frames, in the world frame:
  l2p   -- per frame, the L2 norm of the whole pose's position error vector (17 joints x 3), in metres, averaged
           over frames and windows (LaFAN1's L2P, here without its per-dataset feature normalisation);
  mpjpe -- mean per-joint position error, millimetres.
Baselines: "interpolation" -- root position linear, every local rotation SLERPed between the last context frame
and the keyframe, forward kinematics with the context's bone lengths; "zero_velocity" -- the last context frame held;
"hermite" -- the analytic base of the default model (`model.residual="hermite"`, an untrained model's output): cubic
Hermite curves of the root and the 6D rotations leaving the last context frame with its velocity, so the table shows
what training adds to it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from ptjax import kinematics as K
from ptjax.data import Motion
from ptjax.hallucinator.features import flat_rot6d, unflat_rot6d
from ptjax.hallucinator.model import analytic_inbetween
from ptjax.hallucinator.sample import inbetween
from ptjax.hallucinator.train import HallucinatorState, resample_rigid, slerp_quaternions


def eval_windows(motions: Sequence[Motion], context: int, gap: int, fps: float, stride: int):
    """Windows of context + gap + 1 frames from each motion at `fps`: (N, W, 17, 3) and the clip name of each."""
    windows, names = [], []
    w = context + gap + 1
    for m in motions:
        j = resample_rigid(m, fps).joints
        for s in range(0, len(j) - w + 1, stride):
            windows.append(j[s:s + w])
            names.append(m.name)
    if not windows:
        return np.zeros((0, w, 17, 3), np.float32), []
    return np.stack(windows).astype(np.float32), names


def interpolation_baseline(last: np.ndarray, target: np.ndarray, gap: int) -> np.ndarray:
    """last (B, 17, 3), target (B, 17, 3) -> (B, gap, 17, 3): linear root + SLERP of local rotations."""
    r0, root0, lengths = (np.asarray(a, np.float64) for a in K.inverse_kinematics(last))
    r1, root1, _ = (np.asarray(a, np.float64) for a in K.inverse_kinematics(target))
    t = np.arange(1, gap + 1) / (gap + 1)
    q0 = Rotation.from_matrix(r0.reshape(-1, 3, 3)).as_quat().reshape(r0.shape[:-2] + (4,))
    q1 = Rotation.from_matrix(r1.reshape(-1, 3, 3)).as_quat().reshape(r1.shape[:-2] + (4,))
    q = slerp_quaternions(q0[None], q1[None], np.broadcast_to(t[:, None, None], (gap,) + q0.shape[:-1]))
    rot = Rotation.from_quat(q.reshape(-1, 4)).as_matrix().reshape(q.shape[:-1] + (3, 3))
    root = (1 - t)[:, None, None] * root0 + t[:, None, None] * root1  # (gap, B, 3)
    joints = np.asarray(K.forward_kinematics(rot.astype(np.float32), root.astype(np.float32),
                                             lengths.astype(np.float32)))
    return np.swapaxes(joints, 0, 1)


def hermite_baseline(previous: np.ndarray, last: np.ndarray, target: np.ndarray, gap: int) -> np.ndarray:
    """previous, last, target (B, 17, 3) -> (B, gap, 17, 3): the default model's analytic base (no network)."""
    def pose(joints):
        rot, root, lengths = K.inverse_kinematics(joints)
        return np.concatenate([np.asarray(root), np.asarray(flat_rot6d(rot))], -1), lengths
    p_prev, _ = pose(previous)
    p0, lengths = pose(last)
    p1, _ = pose(target)
    alpha = (np.arange(1, gap + 1) / (gap + 1))[:, None, None]
    p = np.asarray(analytic_inbetween("hermite", alpha, p0, p1, p0 - p_prev, np.float32(gap)))
    joints = K.forward_kinematics(unflat_rot6d(p[..., 3:].astype(np.float32)), p[..., :3].astype(np.float32),
                                  lengths)
    return np.swapaxes(np.asarray(joints), 0, 1)


def _errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    diff = pred.astype(np.float64) - gt
    return {"l2p": float(np.mean(np.linalg.norm(diff.reshape(diff.shape[:2] + (-1,)), axis=-1))),
            "mpjpe_mm": float(np.mean(np.linalg.norm(diff, axis=-1)) * 1000.0)}


def _inbetween_padded(state, context, target, gap: int, batch_size: int) -> np.ndarray:
    """`inbetween` over fixed-size batches (the last one padded), so one compiled shape serves every call."""
    n = len(context)
    size = min(batch_size, 1 << (n - 1).bit_length())
    out = []
    for i in range(0, n, size):
        c, t = context[i:i + size], target[i:i + size]
        pad = size - len(c)
        if pad:
            c = np.concatenate([c, np.repeat(c[-1:], pad, 0)])
            t = np.concatenate([t, np.repeat(t[-1:], pad, 0)])
        out.append(inbetween(state, c, t, gap)[:size - pad])
    return np.concatenate(out)


def evaluate_inbetweening(state: HallucinatorState, motions: Sequence[Motion] | dict, gaps: Sequence[int] = None,
                          stride: int | None = None, batch_size: int = 256) -> dict:
    """{gap: {"windows", "clips", "model": {l2p, mpjpe_mm}, "interpolation": {...}, "zero_velocity": {...},
    "hermite": {...}}}."""
    config = state.config
    motions = list(motions.values()) if isinstance(motions, dict) else list(motions)
    gaps = tuple(config.train.eval_gaps if gaps is None else gaps)
    stride = config.train.eval_stride if stride is None else stride
    out = {}
    for gap in gaps:
        windows, names = eval_windows(motions, config.context, gap, config.fps, stride)
        if len(windows) == 0:
            out[int(gap)] = {"windows": 0, "clips": []}
            continue
        c = config.context
        context, target, gt = windows[:, :c], windows[:, c + gap], windows[:, c:c + gap]
        pred = _inbetween_padded(state, context, target, int(gap), batch_size)
        interp = interpolation_baseline(context[:, -1], target, gap)
        zero = np.repeat(context[:, -1:], gap, axis=1)
        hermite = hermite_baseline(context[:, -2], context[:, -1], target, gap)
        out[int(gap)] = {"windows": int(len(windows)), "clips": sorted(set(names)), "model": _errors(pred, gt),
                         "interpolation": _errors(interp, gt), "zero_velocity": _errors(zero, gt),
                         "hermite": _errors(hermite, gt)}
    return out


def format_table(results: dict) -> str:
    """Markdown table of `evaluate_inbetweening` results."""
    rows = ["| gap (frames) | windows | model L2P (m) | interp. L2P (m) | zero-vel. L2P (m) | Hermite base L2P (m) | "
            "model MPJPE (mm) | interp. MPJPE (mm) |", "|---|---|---|---|---|---|---|---|"]
    for gap, r in results.items():
        if not r.get("windows"):
            rows.append(f"| {gap} | 0 | - | - | - | - | - | - |")
            continue
        rows.append(f"| {gap} | {r['windows']} | {r['model']['l2p']:.3f} | {r['interpolation']['l2p']:.3f} | "
                    f"{r['zero_velocity']['l2p']:.3f} | {r['hermite']['l2p'] if 'hermite' in r else float('nan'):.3f} | "
                    f"{r['model']['mpjpe_mm']:.1f} | "
                    f"{r['interpolation']['mpjpe_mm']:.1f} |")
    return "\n".join(rows)
