"""Generation: in-betweening toward given keyframes, and long hallucinated sequences toward random targets.

`sample` follows PoseTriplet's `test-randomfuture-v1.py`: start from real windows, then chain segments, each toward
a random target whose pose (all local rotations, root height) is a frame drawn from the data, whose root is the
current root displaced by U(-root_range, root_range) m along each ground axis, and -- our addition, the original
reuses the drawn frame's heading -- whose heading is the current heading turned by U(-yaw_range, yaw_range);
the LSTM state starts afresh each segment, with the last `context` generated frames as its context. Bone lengths
stay those of the start window (forward kinematics), so they are exact in every frame.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import geometry
from ptjax import kinematics as K
from ptjax.data import Motion, MotionBuffer, sample_windows
from ptjax.hallucinator import cleanup
from ptjax.hallucinator.features import (canonical_frame, flat_rot6d, from_canonical, unflat_rot6d,
                                         window_features)
from ptjax.hallucinator.train import HallucinatorState, rollout


def _context_features(context: jax.Array, lengths: jax.Array | None, config):
    """World context (B, C, 17, 3) -> features in the canonical frame of its last frame (+ yaw, origin)."""
    if lengths is not None:
        context = K.set_bone_lengths(context, lengths[:, None, :])
    return window_features(context, context.shape[1] - 1, float(config.fps), config.data.contact_speed,
                           config.data.contact_height)


def _segment(g_params, config, context: jax.Array, lengths: jax.Array, target_rot: jax.Array,
             target_root: jax.Array, noise: jax.Array, transition: int, canonical_target: bool):
    """Generate `transition + 1` frames after `context` (B, C, 17, 3) toward a keyframe at frame C + transition.

    The target (rotations (B, 17, 3, 3), root (B, 3)) is in the world frame, or in the canonical frame of the last
    context frame when `canonical_target`. Returns world joints (B, transition + 1, 17, 3); the last is the arrival.
    """
    c = context.shape[1]
    feats, _, yaw, origin = _context_features(context, lengths, config)
    if not canonical_target:
        turn = geometry.yaw_matrix(-yaw)
        target_rot = target_rot.at[:, 0].set(turn @ target_rot[:, 0])
        target_root = jnp.einsum("bij,bj->bi", turn, target_root - origin)
    target = {"rot6d": flat_rot6d(target_rot), "root": target_root}
    steps = c + transition
    trans = jnp.full((context.shape[0],), transition, jnp.int32)
    pred = rollout(g_params, config, feats, trans, target, noise, steps)
    new = jax.tree_util.tree_map(lambda a: a[:, c - 1:], pred)   # frames c .. c + transition
    joints = K.forward_kinematics(unflat_rot6d(new["rot6d"]), new["root"], lengths[:, None, :])
    return from_canonical(joints, yaw, origin)


@functools.partial(jax.jit, static_argnames=("config", "transition", "use_noise"))
def _inbetween(g_params, rng, context, target, config, transition: int, use_noise: bool):
    lengths = K.bone_lengths(context[:, -1])
    rot, root, _ = K.inverse_kinematics(target)
    noise = (jax.random.normal(rng, (context.shape[0], config.model.encoder_out)) if use_noise
             else jnp.zeros((context.shape[0], config.model.encoder_out)))
    out = _segment(g_params, config, context, lengths, rot, root, noise, transition, canonical_target=False)
    return out[:, :-1]


def _check_context(context, config, name="context") -> np.ndarray:
    context = K.check_positions(context, name=name)
    if context.ndim != 4:
        raise ValueError(f"{name} must be (B, T, 17, 3), got shape {context.shape}")
    if context.shape[1] < config.context:
        raise ValueError(f"{name} has {context.shape[1]} frames; the model needs at least context={config.context}")
    return context[:, -config.context:]


def inbetween(state: HallucinatorState, context, target, transition: int, rng: jax.Array | None = None,
              noise: bool = False, max_bone_mismatch: float = 0.2) -> np.ndarray:
    """Fill `transition` frames between the context and a target keyframe.

    context (B, >= config.context, 17, 3) and target (B, 17, 3): world joints (Z-up, metres) of one character each;
    returns the missing frames (B, transition, 17, 3), built with the context's bone lengths. ValueError for
    non-finite input, impossible bone lengths, keyframe bones differing from the context's by more than
    `max_bone_mismatch` (relative), or a transition longer than the model was trained for.
    """
    config = state.config
    context = _check_context(context, config)
    target = K.check_positions(target, name="target keyframe")
    if target.shape != (context.shape[0], 17, 3):
        raise ValueError(f"target keyframes must be (B, 17, 3) with B={context.shape[0]}, got {target.shape}")
    if not (isinstance(transition, (int, np.integer)) and 1 <= transition <= config.max_transition):
        raise ValueError(f"transition must be an integer in [1, max_transition={config.max_transition}] "
                         f"(the longest gap the model was trained on), got {transition!r}")
    ref = np.asarray(K.bone_lengths(context[:, -1]))
    tgt = np.asarray(K.bone_lengths(target))
    mismatch = np.abs(tgt - ref) / ref
    if mismatch.max() > max_bone_mismatch:
        b, bone = np.unravel_index(mismatch.argmax(), mismatch.shape)
        raise ValueError(f"target keyframe {b} has bone lengths that do not match its context (bone {bone}: "
                         f"{tgt[b, bone]:.3f} m vs {ref[b, bone]:.3f} m, more than {max_bone_mismatch:.0%} off)")
    rng = jax.random.PRNGKey(0) if rng is None else rng
    out = _inbetween(state.g_params, rng, jnp.asarray(context), jnp.asarray(target), config, int(transition),
                     bool(noise))
    return np.asarray(out)


@functools.partial(jax.jit, static_argnames=("config", "num_segments", "segment_length", "use_noise"))
def _sample(g_params, rng, start, pool, pool_size, config, num_segments: int, segment_length: int,
            root_range: float, yaw_range: float, use_noise: bool):
    """pool: (N', 17, 3) target poses of which the first `pool_size` (traced) are drawn from."""
    b = start.shape[0]
    lengths = K.bone_lengths(start[:, -1])
    pool_rot, pool_root, _ = K.inverse_kinematics(pool)
    pool_yaw, _ = canonical_frame(pool)

    def segment(carry, key):
        context = carry
        k_idx, k_xy, k_yaw, k_noise = jax.random.split(key, 4)
        idx = jax.random.randint(k_idx, (b,), 0, pool_size)
        turn = jax.random.uniform(k_yaw, (b,), minval=-1.0, maxval=1.0) * yaw_range
        rot = pool_rot[idx]
        rot = rot.at[:, 0].set(geometry.yaw_matrix(turn - pool_yaw[idx]) @ rot[:, 0])
        xy = jax.random.uniform(k_xy, (b, 2), minval=-1.0, maxval=1.0) * root_range
        root = jnp.concatenate([xy, pool_root[idx, 2:]], axis=-1)
        noise = (jax.random.normal(k_noise, (b, config.model.encoder_out)) if use_noise
                 else jnp.zeros((b, config.model.encoder_out)))
        new = _segment(g_params, config, context, lengths, rot, root, noise, segment_length - 1,
                       canonical_target=True)
        return jnp.concatenate([context, new], axis=1)[:, -context.shape[1]:], new

    _, frames = jax.lax.scan(segment, start, jax.random.split(rng, num_segments))
    frames = jnp.swapaxes(frames, 0, 1).reshape(b, num_segments * segment_length, 17, 3)
    start = K.set_bone_lengths(start, lengths[:, None, :])
    return jnp.concatenate([start, frames], axis=1)


def pool_bucket(num_poses: int) -> int:
    """The padded size of a target pool: a power of two, at least 1,024. The co-evolution's pool is the round's
    imitated motion, whose length changes every round; padded, one compiled sampler serves them all."""
    return max(1024, 1 << (int(num_poses) - 1).bit_length())


def _padded_pool(pool: np.ndarray) -> np.ndarray:
    """`pool` followed by copies of its first pose (valid poses, never drawn) up to `pool_bucket(len(pool))`."""
    extra = pool_bucket(len(pool)) - len(pool)
    return np.concatenate([pool, np.broadcast_to(pool[:1], (extra,) + pool.shape[1:])]) if extra else pool


def _pool_array(target_pool) -> np.ndarray:
    if isinstance(target_pool, MotionBuffer):
        joints, lengths = np.asarray(target_pool.joints), np.asarray(target_pool.lengths)
        return np.concatenate([joints[i, :n] for i, n in enumerate(lengths)])
    if isinstance(target_pool, dict):
        target_pool = list(target_pool.values())
    if isinstance(target_pool, (list, tuple)) and target_pool and isinstance(target_pool[0], Motion):
        return np.concatenate([m.joints for m in target_pool])
    pool = np.asarray(target_pool)
    return pool.reshape(-1, 17, 3) if pool.ndim == 4 else pool


def _clean_up_args(config) -> dict:
    """config.sample's clean-up settings; frames from `context` on (the real start window is kept as it is)."""
    s = config.sample
    return dict(lock_height=s.lock_height, max_reach=s.max_reach, max_stride=s.max_stride,
                blend_frames=int(s.blend_frames), swing_height=s.swing_height, start=int(config.context))


def sample(state: HallucinatorState, rng: jax.Array, start_windows, num_segments: int | None = None,
           segment_length: int | None = None, target_pool=None, root_range: float | None = None,
           yaw_range_deg: float | None = None, noise: bool | None = None, name: str = "hallucinated",
           return_array: bool = False, clean_up: bool | None = None):
    """Hallucinate B sequences of context + num_segments * segment_length frames.

    start_windows: (B, T >= context, 17, 3) world joints (the last `context` frames seed the generator; they are the
    first frames of each output). target_pool: poses the random targets are drawn from -- (N, 17, 3) joints, a list
    or dict of Motions, or a MotionBuffer (default: the start windows' frames). Other arguments default to
    config.sample; with clean_up (config.sample.clean_up) every frame is grounded and planted feet are locked
    (`ptjax.hallucinator.cleanup`). Returns a list of `Motion`s at config.fps (or the (B, T, 17, 3) array with
    return_array).
    """
    config = state.config
    s = config.sample
    num_segments = s.num_segments if num_segments is None else num_segments
    segment_length = s.segment_length if segment_length is None else segment_length
    root_range = s.root_range if root_range is None else root_range
    yaw_range = np.radians(s.yaw_range if yaw_range_deg is None else yaw_range_deg)
    noise = s.noise if noise is None else noise
    if not (isinstance(num_segments, (int, np.integer)) and num_segments >= 1):
        raise ValueError(f"num_segments must be a positive integer, got {num_segments!r}")
    if not (isinstance(segment_length, (int, np.integer)) and 2 <= segment_length <= config.max_transition + 1):
        raise ValueError(f"segment_length must be an integer in [2, max_transition + 1 = "
                         f"{config.max_transition + 1}], got {segment_length!r}")
    if not (np.isfinite(root_range) and root_range >= 0 and np.isfinite(yaw_range) and yaw_range >= 0):
        raise ValueError(f"root_range and yaw_range must be non-negative, got {root_range}, {yaw_range}")
    start = _check_context(start_windows, config, name="start_windows")
    pool = start.reshape(-1, 17, 3) if target_pool is None else _pool_array(target_pool)
    pool = K.check_positions(pool, name="target pool")
    if pool.ndim != 3 or len(pool) == 0:
        raise ValueError(f"target pool must hold (N, 17, 3) poses, got shape {pool.shape}")
    out = _sample(state.g_params, rng, jnp.asarray(start), jnp.asarray(_padded_pool(pool)),
                  jnp.asarray(len(pool), jnp.int32), config, int(num_segments), int(segment_length),
                  float(root_range), float(yaw_range), bool(noise))
    out = np.asarray(out)
    if not np.all(np.isfinite(out)):
        raise FloatingPointError("hallucinated motion contains non-finite values (diverged model?)")
    if s.get("clean_up", False) if clean_up is None else clean_up:
        out = cleanup.clean_up(out, **_clean_up_args(config)).astype(np.float32)
    if return_array:
        return out
    return [Motion(f"{name}_{i:04d}", config.fps, out[i]) for i in range(len(out))]


def start_windows_from(buffer_or_motions, rng: np.random.Generator, count: int, length: int) -> np.ndarray:
    """`count` random real windows of `length` frames (from Motions or a MotionBuffer) to seed `sample`."""
    if isinstance(buffer_or_motions, MotionBuffer):
        motions = buffer_or_motions.to_motions()
    elif isinstance(buffer_or_motions, dict):
        motions = list(buffer_or_motions.values())
    else:
        motions = list(buffer_or_motions)
    usable = [m for m in motions if m.num_frames >= length]
    if not usable:
        raise ValueError(f"no motion has the {length} frames a start window needs")
    weights = np.array([m.num_frames - length + 1 for m in usable], np.float64)
    out = np.empty((count, length, 17, 3), np.float32)
    for i in range(count):
        m = usable[rng.choice(len(usable), p=weights / weights.sum())]
        s = rng.integers(0, m.num_frames - length + 1)
        out[i] = m.joints[s:s + length]
    return out


@functools.partial(jax.jit, static_argnames=("count", "length"))
def _windows_and_pool(rng: jax.Array, buffer: MotionBuffer, count: int, length: int):
    """`count` start windows of `length` frames drawn as `start_windows_from` draws them (a take in proportion to its
    window starts, among the takes that hold one), and the buffer's valid frames first as the target pool:
    ((count, length, 17, 3), (N * T, 17, 3), number of valid frames)."""
    usable = (buffer.lengths >= length).astype(jnp.float32)
    start = sample_windows(rng, buffer, count, length, take_weights=usable)
    valid = (jnp.arange(buffer.max_frames)[None, :] < buffer.lengths[:, None]).reshape(-1)
    order = jnp.argsort(~valid, stable=True)
    size = jnp.sum(valid).astype(jnp.int32)
    pool = buffer.joints.reshape(-1, 17, 3)[order]
    # Never drawn, but kept valid poses for the pool's IK (an empty slot holds zeros).
    pool = jnp.where((jnp.arange(pool.shape[0]) < size)[:, None, None], pool, pool[0])
    return start, pool, size


def sample_from_buffer(state: HallucinatorState, rng: jax.Array, buffer: MotionBuffer, count: int,
                       clean_up: bool | None = None) -> jax.Array:
    """`sample` with its start windows and target pool drawn from a padded `MotionBuffer` on device: (count, T,
    17, 3) device joints (config.sample's sizes; clean-up by `cleanup.clean_up_on_device`). Nothing of the buffer
    reaches the host but its lengths; the caller checks the result for non-finite values with whatever else it
    fetches. Draws differ from `sample(start_windows_from(...))` (a JAX key, not a NumPy generator), not their law.
    """
    config, s = state.config, state.config.sample
    lengths = np.asarray(buffer.lengths)
    if not (lengths >= config.context).any():
        raise ValueError(f"no motion in the buffer has the {config.context} frames a start window needs "
                         f"(longest: {int(lengths.max(initial=0))})")
    k_start, k_sample = jax.random.split(rng)
    start, pool, size = _windows_and_pool(k_start, buffer, int(count), int(config.context))
    out = _sample(state.g_params, k_sample, start, pool, size, config, int(s.num_segments), int(s.segment_length),
                  float(s.root_range), float(np.radians(s.yaw_range)), bool(s.noise))
    if s.get("clean_up", False) if clean_up is None else clean_up:
        out = cleanup.clean_up_on_device(out, **_clean_up_args(config))
    return out


__all__: Sequence[str] = ["inbetween", "pool_bucket", "sample", "sample_from_buffer", "start_windows_from"]
