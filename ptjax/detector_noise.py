"""Detector-like 2D: what a real keypoint detector does to clean projections, to train and test lifting against it.

Clean 2D (normalised screen coordinates, H36M-17) is corrupted the way detectors err (Ronchi and Perona, ICCV 2017,
"Benchmarking and Error Diagnosis in Multi-Instance Pose Estimation", sort detector errors into jitter, inversion
(left/right swaps) and misses):

* jitter: per joint, Gaussian in units of the person's box size (the larger side of the 2D box per frame), so a
  small (far) person gets the same relative error as a near one, plus a floor of a few pixels (`floor`, normalised
  units: 0.004 = 2 px of a 1,000-pixel frame). The standard deviation grows towards the extremities, as COCO's
  per-keypoint spreads and detector errors do: torso and head x1, elbows and knees `x mid_scale`, wrists and ankles
  `x end_scale`. Part of it is slow (an AR(1) offset with correlation `correlation` per frame: a detector's bias
  drifts with appearance) and part white (frame-to-frame jitter);
* swaps: bursts of `swap_frames` frames in which a limb's left and right joints (knee and ankle, or elbow and wrist)
  trade places, starting with probability `swap_rate` per frame and limb;
* misses: bursts of `miss_frames` frames in which a joint is not detected, starting with probability `miss_rate`
  per frame (doubled at wrists and ankles); misses are filled as `ptjax lift` fills them (linear interpolation over
  time, then its 5-frame Savitzky-Golay smoothing).

`corrupt` is jittable (training augmentation, `pairs.detector_noise_fraction`); `detector_like_takes` applies it
with a fixed key to evaluation takes, filling gaps with `ptjax.data.keypoints`' own numpy code.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import skeleton

_J = skeleton.JOINT_INDEX
_MID = (_J["RKnee"], _J["LKnee"], _J["RElbow"], _J["LElbow"])
_END = (_J["RAnkle"], _J["LAnkle"], _J["RWrist"], _J["LWrist"])
# Limbs whose left and right joints a detector swaps: (right joints, left joints).
_LIMBS = (((_J["RKnee"], _J["RAnkle"]), (_J["LKnee"], _J["LAnkle"])),
          ((_J["RElbow"], _J["RWrist"]), (_J["LElbow"], _J["LWrist"])))
# Savitzky-Golay smoothing coefficients, window 5, order 2 (ptjax lift's filter).
_SAVGOL5 = np.array([-3.0, 12.0, 17.0, 12.0, -3.0]) / 35.0
EVAL_SEED = 20221  # the fixed corruption of the evaluation takes


@dataclasses.dataclass(frozen=True)
class DetectorNoise:
    """Detector error model (module docstring); hashable, so it can live in a jit-static spec."""
    sigma: float = 0.02           # torso/head joint std, as a fraction of the person's box size
    mid_scale: float = 1.5        # elbows and knees
    end_scale: float = 2.0        # wrists and ankles
    floor: float = 0.004          # normalised units added in quadrature (pixel-level error)
    correlation: float = 0.8      # per-frame AR(1) correlation of the slow part
    slow_share: float = 0.5       # share of the variance in the slow part
    swap_rate: float = 0.01       # swap-burst starts per frame and limb
    swap_frames: int = 4
    miss_rate: float = 0.01       # miss-burst starts per frame and joint (x2 at wrists and ankles)
    miss_frames: int = 5

    def __post_init__(self):
        for name in ("sigma", "floor", "swap_rate", "miss_rate"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"DetectorNoise.{name} must be a non-negative number, got {v!r}")
        for name in ("mid_scale", "end_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"DetectorNoise.{name} must be positive, got {getattr(self, name)!r}")
        if not 0.0 <= self.correlation < 1.0 or not 0.0 <= self.slow_share <= 1.0:
            raise ValueError("DetectorNoise.correlation must be in [0, 1) and slow_share in [0, 1]")
        if int(self.swap_frames) < 1 or int(self.miss_frames) < 1:
            raise ValueError("DetectorNoise.swap_frames and miss_frames must be at least 1")

    def joint_scales(self) -> np.ndarray:
        s = np.ones(skeleton.NUM_JOINTS)
        s[list(_MID)] = self.mid_scale
        s[list(_END)] = self.end_scale
        return s


def _bursts(rng, shape, rate, frames: int) -> jax.Array:
    """(B, T, K) bool: bursts of `frames` frames starting with probability `rate` (a number or (K,)) per frame."""
    starts = (jax.random.uniform(rng, shape) < rate).astype(jnp.float32)
    t = shape[1]
    c = jnp.cumsum(starts, axis=1)
    shifted = jnp.concatenate([jnp.zeros_like(c[:, :frames]), c[:, :t - frames]], axis=1) if frames < t else 0.0
    return (c - shifted) > 0


def _ar1(rng, shape, correlation: float) -> jax.Array:
    """(B, T, …) unit-variance AR(1) noise along axis 1."""
    noise = jax.random.normal(rng, shape)
    scale = np.sqrt(1.0 - correlation ** 2)

    def step(prev, n):
        x = correlation * prev + scale * n
        return x, x

    _, out = jax.lax.scan(step, noise[:, 0], jnp.moveaxis(noise[:, 1:], 1, 0))
    return jnp.concatenate([noise[:, :1], jnp.moveaxis(out, 0, 1)], axis=1)


def fill_and_smooth(kp: jax.Array, missing: jax.Array) -> jax.Array:
    """Jittable version of lift's gap filling (linear in time, held at the ends) and 5-frame smoothing.
    kp (B, T, 17, 2), missing (B, T, 17) -> (B, T, 17, 2); a joint missing in every frame keeps its values."""
    t = missing.shape[1]
    idx = jnp.broadcast_to(jnp.arange(t)[None, :, None], missing.shape)
    valid = ~missing
    prev = jax.lax.cummax(jnp.where(valid, idx, -1), axis=1)
    nxt = jax.lax.cummin(jnp.where(valid, idx, t), axis=1, reverse=True)
    has_prev, has_next = prev >= 0, nxt < t
    p, n = jnp.clip(prev, 0, t - 1), jnp.clip(nxt, 0, t - 1)
    take = lambda i: jnp.take_along_axis(kp, i[..., None], axis=1)  # noqa: E731
    kp_p, kp_n = take(p), take(n)
    w = jnp.where(has_prev & has_next, (idx - prev) / jnp.maximum(nxt - prev, 1), 0.0)[..., None]
    interp = jnp.where((has_prev & has_next)[..., None], (1 - w) * kp_p + w * kp_n,
                       jnp.where(has_prev[..., None], kp_p, jnp.where(has_next[..., None], kp_n, kp)))
    filled = jnp.where(missing[..., None], interp, kp)
    if t < len(_SAVGOL5):
        return filled
    padded = jnp.concatenate([filled[:, :1], filled[:, :1], filled, filled[:, -1:], filled[:, -1:]], axis=1)
    return sum(c * padded[:, k:k + t] for k, c in enumerate(_SAVGOL5))


def corrupt(rng: jax.Array, kp: jax.Array, noise: DetectorNoise) -> tuple[jax.Array, jax.Array]:
    """Clean 2D (B, T, 17, 2) -> (detector-like 2D before gap filling, missing (B, T, 17) bool)."""
    b, t = kp.shape[:2]
    k_slow, k_white, k_swap, k_miss = jax.random.split(rng, 4)
    extent = jnp.max(kp, axis=2) - jnp.min(kp, axis=2)                        # (B, T, 2)
    box = jnp.max(extent, axis=-1)[..., None, None]                           # (B, T, 1, 1)
    std = jnp.sqrt((noise.sigma * box * jnp.asarray(noise.joint_scales())[:, None]) ** 2 + noise.floor ** 2)
    slow = _ar1(k_slow, kp.shape, noise.correlation)
    white = jax.random.normal(k_white, kp.shape)
    out = kp + std * (np.sqrt(noise.slow_share) * slow + np.sqrt(1.0 - noise.slow_share) * white)
    swaps = _bursts(k_swap, (b, t, len(_LIMBS)), noise.swap_rate, int(noise.swap_frames))
    for k, (right, left) in enumerate(_LIMBS):
        r, l_ = jnp.array(right), jnp.array(left)
        on = swaps[:, :, k, None, None]
        out_r, out_l = out[:, :, r], out[:, :, l_]
        out = out.at[:, :, r].set(jnp.where(on, out_l, out_r)).at[:, :, l_].set(jnp.where(on, out_r, out_l))
    rates = jnp.full((skeleton.NUM_JOINTS,), noise.miss_rate).at[jnp.array(_END)].multiply(2.0)
    return out, _bursts(k_miss, (b, t, skeleton.NUM_JOINTS), rates, int(noise.miss_frames))


def corrupt_and_fill(rng: jax.Array, kp: jax.Array, noise: DetectorNoise) -> jax.Array:
    """`corrupt` then lift's gap filling and smoothing: what the estimator sees from a detector (jittable)."""
    out, missing = corrupt(rng, kp, noise)
    return fill_and_smooth(out, missing)


_corrupt_one = jax.jit(corrupt, static_argnums=2)


def detector_like_takes(takes, noise: DetectorNoise | None = None, seed: int = EVAL_SEED) -> list:
    """Evaluation takes with their 2D replaced by a fixed detector-like corruption, gaps filled and smoothed with
    `ptjax lift`'s own code (`ptjax.data.keypoints.fill_gaps` and `smooth`); the 3D is unchanged."""
    from ptjax.data import keypoints as kp_io
    noise = noise or DetectorNoise()
    out = []
    for i, take in enumerate(takes):
        kp, missing = _corrupt_one(jax.random.fold_in(jax.random.PRNGKey(seed), i),
                                   jnp.asarray(take.keypoints2d)[None], noise)
        kp, missing = np.asarray(kp[0], np.float64), np.asarray(missing[0])
        kp = kp_io.smooth(kp_io.fill_gaps(np.where(missing[..., None], np.nan, kp), missing))
        out.append(dataclasses.replace(take, keypoints2d=kp.astype(np.float32)))
    return out
