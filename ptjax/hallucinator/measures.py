"""Quality measures of motion, for hallucinated samples and the data they are compared with.

All take H36M-17 world joints (Z-up, metres): one sequence (T, 17, 3), a batch (N, T, 17, 3), or a list of
sequences / `Motion`s of different lengths; they run on the host (NumPy). `measures_on_device` computes the
co-evolution's summary of them in one jitted program over a batch of samples and a padded reference buffer, drawing
at most a fixed number of windows for diversity and novelty (all of them when they fit).

* bone lengths: per sequence, the largest deviation of any bone in any frame from its length in the first frame (m).
* foot skating: mean horizontal ankle speed (m/s) over frames where that ankle is in contact; contact = the ankle
  within `contact_margin` (2 cm) of the sequence's own floor level (5th percentile of its ankle heights), so the
  measure does not depend on the skeleton's ankle height. Real motion is not zero here: feet roll and pivot.
* ground penetration: per frame, the depth of the lowest joint below the ground plane z = 0 (0 when above); mean
  depth (m) and the fraction of frames deeper than 1 cm.
* joint limits: simple anatomical limits on angles between bone directions (`LIMITS`): knee and elbow flexion
  <= 160 degrees, a knee bent more than 20 degrees must bend backwards (its bending axis within 90 degrees of the
  pelvis's left-right axis), trunk bend (Hip->Spine vs Spine->Thorax) <= 90, neck bend (Spine->Thorax vs
  Thorax->Head) <= 80, hip flexion (thigh vs the trunk's downward axis) <= 155. Fraction of frames violating each.
  All 20 bundled clips have no violation.
* diversity and novelty on windows of `window` frames every `stride` frames, each moved to its first frame's
  canonical frame (root on the ground origin, facing +x). The distance between two windows is the RMS over frames,
  joints and axes of their position difference (m). Diversity: mean distance between windows of different
  sequences. Novelty: per window, the distance to the nearest reference window (reference windows are also
  mirrored left/right and taken at every frame, so neither a shifted nor a mirrored copy counts as new).
* motion statistics: mean joint speed (m/s) and mean joint acceleration (m/s^2): frozen or jittery motion shows here.
"""

from __future__ import annotations

from typing import Sequence

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import geometry
from ptjax import kinematics as K
from ptjax import skeleton
from ptjax.data import Motion, MotionBuffer

J = skeleton.JOINT_INDEX
_HEADING = jax.jit(K.heading)
LIMITS = {  # name: max angle in degrees (knee_direction: min cosine)
    "knee_flexion": 160.0,
    "elbow_flexion": 160.0,
    "knee_direction": 0.0,
    "trunk_bend": 90.0,
    "neck_bend": 80.0,
    "hip_flexion": 155.0,
}
KNEE_DIRECTION_MIN_FLEXION = 20.0


def as_sequences(motion) -> list[np.ndarray]:
    """Normalise input to a list of (T, 17, 3) float64 arrays (ValueError for bad shapes or non-finite values)."""
    if isinstance(motion, Motion):
        seqs = [motion.joints]
    elif isinstance(motion, dict):
        seqs = [m.joints if isinstance(m, Motion) else m for m in motion.values()]
    elif isinstance(motion, (list, tuple)):
        seqs = [m.joints if isinstance(m, Motion) else m for m in motion]
    else:
        arr = np.asarray(motion)
        seqs = [arr] if arr.ndim == 3 else list(arr) if arr.ndim == 4 else [arr]
    out = []
    for i, s in enumerate(seqs):
        s = skeleton.check_joints(s, name=f"sequence {i}")
        if s.ndim != 3 or len(s) < 2:
            raise ValueError(f"sequence {i} must be (T >= 2, 17, 3), got shape {s.shape}")
        out.append(s.astype(np.float64))
    if not out:
        raise ValueError("no sequences given")
    return out


def _angle(a, b):
    xp = skeleton._xp(a)
    a = a / xp.maximum(xp.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / xp.maximum(xp.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    return xp.degrees(xp.arccos(xp.clip(xp.sum(a * b, -1), -1.0, 1.0)))


def bone_length_deviation(motion) -> np.ndarray:
    """(num_sequences,) max |bone length - its first-frame length| over frames and bones, metres."""
    out = []
    for s in as_sequences(motion):
        bl = np.asarray(skeleton.bone_lengths(s))
        out.append(np.abs(bl - bl[:1]).max())
    return np.asarray(out)


def foot_contacts(seq, contact_margin: float = 0.02):
    """(..., T, 17, 3) -> (..., T, 2) bool: ankle within `contact_margin` of its sequence's floor level (NumPy or
    JAX)."""
    xp = skeleton._xp(seq)
    h = seq[..., list(skeleton.FEET), 2]
    return h < xp.percentile(h, 5, axis=(-2, -1), keepdims=True) + contact_margin


def foot_skating(motion, fps: float, contact_margin: float = 0.02) -> dict[str, float]:
    """Mean horizontal ankle speed in contact frames (m/s) and the fraction of foot-frames in contact."""
    speeds, contacts = [], []
    for s in as_sequences(motion):
        feet = s[:, list(skeleton.FEET), :2]
        v = np.linalg.norm(np.diff(feet, axis=0), axis=-1) * fps      # (T-1, 2)
        c = foot_contacts(s, contact_margin)
        c = c[1:] & c[:-1]                                            # in contact at both ends of the step
        speeds.append(v[c])
        contacts.append(c.ravel())
    speeds, contacts = np.concatenate(speeds), np.concatenate(contacts)
    return {"skating_mps": float(speeds.mean()) if len(speeds) else 0.0,
            "contact_fraction": float(contacts.mean())}


def ground_penetration(motion, ground: float = 0.0) -> dict[str, float]:
    depth = np.concatenate([np.maximum(ground - s[:, :, 2].min(-1), 0.0) for s in as_sequences(motion)])
    return {"penetration_m": float(depth.mean()), "penetration_frames": float(np.mean(depth > 0.01)),
            "max_penetration_m": float(depth.max())}


def joint_angles(seq) -> dict:
    """Per-frame angles (degrees) and the knee bending-direction cosines of (..., T, 17, 3) joints (NumPy or JAX)."""
    xp = skeleton._xp(seq)
    at = lambda j: seq[..., j, :]  # noqa: E731
    out = {}
    lateral = at(J["LHip"]) - at(J["RHip"])
    trunk = at(J["Spine"]) - at(J["Hip"])
    for side, (hip, knee, ankle) in {"r": (1, 2, 3), "l": (4, 5, 6)}.items():
        thigh, shin = at(knee) - at(hip), at(ankle) - at(knee)
        flex = _angle(thigh, shin)
        out[f"knee_flexion_{side}"] = flex
        t = thigh / xp.linalg.norm(thigh, axis=-1, keepdims=True)
        lat = lateral - xp.sum(lateral * t, -1, keepdims=True) * t
        n = xp.cross(thigh, shin)
        cos = xp.sum(n * lat, -1) / xp.maximum(xp.linalg.norm(n, axis=-1) * xp.linalg.norm(lat, axis=-1), 1e-12)
        out[f"knee_direction_{side}"] = xp.where(flex > KNEE_DIRECTION_MIN_FLEXION, cos, 1.0)
        out[f"hip_flexion_{side}"] = _angle(thigh, -trunk)
    for side, (sh, el, wr) in {"r": (14, 15, 16), "l": (11, 12, 13)}.items():
        out[f"elbow_flexion_{side}"] = _angle(at(el) - at(sh), at(wr) - at(el))
    out["trunk_bend"] = _angle(trunk, at(J["Thorax"]) - at(J["Spine"]))
    out["neck_bend"] = _angle(at(J["Thorax"]) - at(J["Spine"]), at(J["Head"]) - at(J["Thorax"]))
    return out


def _limits_broken(angles: dict, xp=np) -> dict:
    """Per limit of `LIMITS`, per frame: is it broken on either side."""
    out = {}
    for k, limit in LIMITS.items():
        vals = xp.stack([angles[n] for n in angles if n == k or n.startswith(k + "_")], -1)
        out[k] = ((vals < limit) if k == "knee_direction" else (vals > limit)).any(-1)
    return out


def joint_limit_violations(motion) -> dict[str, float]:
    """Fraction of frames violating each limit of `LIMITS`, and of frames violating any."""
    per_seq = [_limits_broken(joint_angles(s)) for s in as_sequences(motion)]
    out = {k: np.concatenate([p[k] for p in per_seq]) for k in LIMITS}
    result = {f"limit_{k}": float(v.mean()) for k, v in out.items()}
    result["limit_any"] = float(np.mean(np.stack(list(out.values()), -1).any(-1)))
    return result


def motion_statistics(motion, fps: float) -> dict[str, float]:
    speed, acc = [], []
    for s in as_sequences(motion):
        v = np.diff(s, axis=0) * fps
        speed.append(np.linalg.norm(v, axis=-1).ravel())
        if len(s) >= 3:
            acc.append(np.linalg.norm(np.diff(v, axis=0) * fps, axis=-1).ravel())
    return {"joint_speed_mps": float(np.concatenate(speed).mean()),
            "joint_accel_mps2": float(np.concatenate(acc).mean()) if acc else 0.0}


def window_descriptors(motion, window: int, stride: int, start: int = 0, mirror: bool = False):
    """Canonical windows flattened: ((M, window * 51) descriptors, (M,) sequence index of each).

    Windows start at frames start, start + stride, ... of each sequence; `mirror` appends left/right mirrored copies.
    """
    windows, owner = [], []
    for i, s in enumerate(as_sequences(motion)):
        for t in range(start, len(s) - window + 1, stride):
            windows.append(s[t:t + window])
            owner.append(i)
    if not windows:
        return np.zeros((0, window * 51)), np.zeros((0,), np.int64)
    w = np.stack(windows)
    owner = np.asarray(owner)
    if mirror:
        w = np.concatenate([w, np.asarray(skeleton.flip_lr(w, axis=1))])  # mirror y
        owner = np.concatenate([owner, owner])
    return _canonical(w, _headings(w[:, 0])), owner


def _canonical(windows, yaw):
    """Windows (M, W, 17, 3) turned by -yaw (M,) about their first frame's root on the ground, flattened (M, W * 51)
    (NumPy or JAX)."""
    xp = skeleton._xp(windows)
    rot = geometry.yaw_matrix(-yaw, xp=xp)
    origin = windows[:, :1, :1] * xp.asarray([1.0, 1.0, 0.0])
    return xp.einsum("nij,ntkj->ntki", rot, windows - origin).reshape(windows.shape[0], -1)


def _headings(poses: np.ndarray) -> np.ndarray:
    """(N, 17, 3) -> (N,) headings; padded to a power-of-two count so few shapes are ever compiled."""
    n = len(poses)
    size = 1 << max(n - 1, 1).bit_length()
    padded = np.concatenate([poses, np.repeat(poses[-1:], size - n, 0)]).astype(np.float32)
    return np.asarray(_HEADING(padded), np.float64)[:n]


def pairwise_rms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(Na, D), (Nb, D) descriptors -> (Na, Nb) RMS distances over the D/3 joint positions (metres)."""
    sq = (np.sum(a * a, 1)[:, None] + np.sum(b * b, 1)[None, :] - 2.0 * a @ b.T) / (a.shape[1] / 3)
    return np.sqrt(np.maximum(sq, 0.0))


def diversity(desc: np.ndarray, owner: np.ndarray) -> float:
    """Mean RMS distance between windows of different sequences (NaN with fewer than two sequences)."""
    if len(np.unique(owner)) < 2:
        return float("nan")
    d = pairwise_rms(desc, desc)
    other = owner[:, None] != owner[None, :]
    return float(d[other].mean())


def nearest_distance(desc: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(N,) RMS distance from each window to its nearest reference window."""
    if len(reference) == 0:
        raise ValueError("no reference windows to compare with")
    out = np.empty(len(desc))
    for i in range(0, len(desc), 512):
        out[i:i + 512] = pairwise_rms(desc[i:i + 512], reference).min(1)
    return out


def measures(samples, fps: float, reference=None, window: int = 30, stride: int = 10, skip: int = 0,
             novelty_threshold: float | None = None) -> dict[str, float]:
    """All measures of `samples`; with `reference` (e.g. the training motions), diversity of the reference and the
    novelty of the samples' windows (those starting at frame >= `skip`, e.g. after the real start context)."""
    seqs = as_sequences(samples)
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    bone = bone_length_deviation(seqs)
    out = {"sequences": len(seqs), "frames": int(sum(len(s) for s in seqs)),
           "seconds_mean": float(np.mean([(len(s) - 1) / fps for s in seqs])),
           "bone_length_dev_max_m": float(bone.max()), "bone_length_dev_mean_m": float(bone.mean())}
    out.update(foot_skating(seqs, fps))
    out.update(ground_penetration(seqs))
    out.update(joint_limit_violations(seqs))
    out.update(motion_statistics(seqs, fps))
    desc, owner = window_descriptors(seqs, window, stride, start=skip)
    out["windows"] = int(len(desc))
    out["diversity_m"] = diversity(desc, owner) if len(desc) else float("nan")
    if reference is not None:
        ref_desc, ref_owner = window_descriptors(reference, window, stride)
        out["reference_windows"] = int(len(ref_desc))
        out["reference_diversity_m"] = diversity(ref_desc, ref_owner) if len(ref_desc) else float("nan")
        if len(desc) and len(ref_desc):
            mirrored, _ = window_descriptors(reference, window, 1, mirror=True)
            near = nearest_distance(desc, mirrored)
            out["nearest_reference_mean_m"] = float(near.mean())
            out["nearest_reference_median_m"] = float(np.median(near))
            out["nearest_reference_min_m"] = float(near.min())
            if novelty_threshold is not None:
                out["novel_fraction"] = float(np.mean(near > novelty_threshold))
                out["novelty_threshold_m"] = float(novelty_threshold)
    return out


def _pick(rng: jax.Array, valid: jax.Array, cap: int) -> tuple[jax.Array, jax.Array]:
    """Indices of `cap` entries of the flat mask `valid`, drawn at random among the valid ones (all entries when
    there are no more than `cap`), and which of them are valid."""
    if valid.shape[0] <= cap:
        return jnp.arange(valid.shape[0]), valid
    score = jnp.where(valid, jax.random.gumbel(rng, valid.shape), -jnp.inf)
    index = jax.lax.top_k(score, cap)[1]
    return index, valid[index]


def _canonical_descriptors(joints: jax.Array, slot: jax.Array, start: jax.Array, mirror: jax.Array, window: int
                           ) -> jax.Array:
    """`window_descriptors` of the windows joints[slot, start:start + window] (mirrored where `mirror`)."""
    w = joints[slot[:, None], start[:, None] + jnp.arange(window)[None, :]]
    w = jnp.where(mirror[:, None, None, None], skeleton.flip_lr(w, axis=1), w)
    return _canonical(w, K.heading(w[:, 0]))


def _pairwise_rms_jnp(a: jax.Array, b: jax.Array) -> jax.Array:
    # Full float32 products: a TF32 matmul (an accelerator's default) would swamp the differences of large norms.
    ab = jnp.matmul(a, b.T, precision=jax.lax.Precision.HIGHEST)
    sq = (jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2.0 * ab) / (a.shape[1] / 3)
    return jnp.sqrt(jnp.maximum(sq, 0.0))


def _diversity_jnp(desc: jax.Array, owner: jax.Array, valid: jax.Array) -> jax.Array:
    other = (owner[:, None] != owner[None, :]) & valid[:, None] & valid[None, :]
    total = jnp.sum(jnp.where(other, _pairwise_rms_jnp(desc, desc), 0.0))
    count = jnp.sum(other)
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)


def _nearest_mean_jnp(desc: jax.Array, valid: jax.Array, reference: jax.Array, reference_valid: jax.Array,
                      chunk: int = 512) -> jax.Array:
    """Mean over the valid windows of `desc` of the distance to the nearest valid reference window, by chunks."""
    pad = -desc.shape[0] % chunk
    chunks = jnp.pad(desc, ((0, pad), (0, 0))).reshape(-1, chunk, desc.shape[1])
    near = jax.lax.map(lambda d: jnp.min(jnp.where(reference_valid[None, :], _pairwise_rms_jnp(d, reference),
                                                   jnp.inf), axis=1), chunks).reshape(-1)[:desc.shape[0]]
    ok = valid & jnp.any(reference_valid)
    return jnp.where(jnp.any(ok), jnp.sum(jnp.where(ok, near, 0.0)) / jnp.maximum(jnp.sum(ok), 1), jnp.nan)


def _window_grid(lengths: jax.Array, frames: int, window: int, stride: int, start: int = 0, mirror: bool = False):
    """Every window of `window` frames at start, start + stride, ... of each slot of a padded buffer, as flat
    (slot, start, mirrored, valid) arrays (valid: the window lies within the slot's frames)."""
    starts = np.arange(start, frames - window + 1, stride)
    mirrors = np.array([False, True]) if mirror else np.array([False])
    slot, begin, flip = (a.reshape(-1) for a in np.meshgrid(np.arange(lengths.shape[0]), starts, mirrors,
                                                            indexing="ij"))
    slot, begin = jnp.asarray(slot, jnp.int32), jnp.asarray(begin, jnp.int32)
    return slot, begin, jnp.asarray(flip), begin + window <= lengths[slot]


@functools.partial(jax.jit, static_argnames=("fps", "window", "stride", "skip", "max_windows",
                                             "max_reference_windows"))
def measures_on_device(samples: jax.Array, reference: MotionBuffer, rng: jax.Array, fps: float, window: int = 30,
                       stride: int = 10, skip: int = 0, max_windows: int = 4096,
                       max_reference_windows: int = 32768) -> dict[str, jax.Array]:
    """What `measures(samples, fps, reference, window, stride, skip)` reports of samples (N, T, 17, 3) against a
    padded reference buffer, as device scalars: bone_length_dev_max_m, skating_mps, penetration_frames, limit_any,
    seconds_mean, diversity_m, reference_diversity_m, nearest_reference_mean_m (NaN where there is no window).

    Diversity uses at most `max_windows` windows of the samples and as many of the reference, novelty at most
    `max_reference_windows` of the reference's (every frame, mirrored too), drawn with `rng` when there are more:
    the host's all-pairs comparison grows with the square of the motion, which at Human3.6M scale is terabytes.
    """
    n, t = samples.shape[:2]
    bones = skeleton.bone_lengths(samples)
    feet = list(skeleton.FEET)
    contact = foot_contacts(samples)
    contact = contact[:, 1:] & contact[:, :-1]
    speed = jnp.linalg.norm(jnp.diff(samples[..., feet, :2], axis=1), axis=-1) * fps
    broken = _limits_broken(joint_angles(samples), jnp)
    out = {"bone_length_dev_max_m": jnp.max(jnp.abs(bones - bones[:, :1])),
           "skating_mps": jnp.sum(jnp.where(contact, speed, 0.0)) / jnp.maximum(jnp.sum(contact), 1),
           "penetration_frames": jnp.mean(jnp.maximum(-samples[..., 2].min(-1), 0.0) > 0.01),
           "limit_any": jnp.mean(jnp.stack(list(broken.values()), -1).any(-1)),
           "seconds_mean": jnp.asarray((t - 1) / fps)}
    k_samples, k_reference, k_nearest = jax.random.split(rng, 3)
    nan = jnp.asarray(jnp.nan)
    slot, begin, flip, valid = _window_grid(jnp.full((n,), t), t, window, stride, start=skip)
    if slot.shape[0] == 0:
        return {**out, "diversity_m": nan, "reference_diversity_m": nan, "nearest_reference_mean_m": nan}
    index, valid = _pick(k_samples, valid, max_windows)
    desc = _canonical_descriptors(samples, slot[index], begin[index], flip[index], window)
    out["diversity_m"] = _diversity_jnp(desc, slot[index], valid)
    if reference.max_frames < window:
        return {**out, "reference_diversity_m": nan, "nearest_reference_mean_m": nan}
    r_slot, r_begin, r_flip, r_valid = _window_grid(reference.lengths, reference.max_frames, window, stride)
    r_index, r_valid = _pick(k_reference, r_valid, max_windows)
    out["reference_diversity_m"] = _diversity_jnp(
        _canonical_descriptors(reference.joints, r_slot[r_index], r_begin[r_index], r_flip[r_index], window),
        r_slot[r_index], r_valid)
    m_slot, m_begin, m_flip, m_valid = _window_grid(reference.lengths, reference.max_frames, window, 1, mirror=True)
    m_index, m_valid = _pick(k_nearest, m_valid, max_reference_windows)
    mirrored = _canonical_descriptors(reference.joints, m_slot[m_index], m_begin[m_index], m_flip[m_index], window)
    out["nearest_reference_mean_m"] = _nearest_mean_jnp(desc, valid, mirrored, m_valid)
    return out


__all__: Sequence[str] = [
    "measures", "measures_on_device", "bone_length_deviation", "foot_skating", "foot_contacts", "ground_penetration",
    "joint_limit_violations", "joint_angles", "motion_statistics", "window_descriptors", "pairwise_rms",
    "diversity", "nearest_distance", "LIMITS"]
