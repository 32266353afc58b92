"""`MotionBuffer`: many motions packed into one padded device array, and jittable window sampling from it.

This is how motion travels between the components inside jit: the imitator's rollouts, the hallucinator's samples
and the estimator's training data are all `MotionBuffer`s of H36M-17 world joints at one frame rate.
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from ptjax.data.motion import Motion


@flax.struct.dataclass
class MotionBuffer:
    joints: jax.Array          # (N, T_max, 17, 3) world joints, each take edge-padded after its last frame
    lengths: jax.Array         # (N,) int32 valid frames per take
    fps: float = flax.struct.field(pytree_node=False, default=30.0)

    @property
    def num_takes(self) -> int:
        return self.joints.shape[0]

    @property
    def max_frames(self) -> int:
        return self.joints.shape[1]

    def to_motions(self, names: Sequence[str] | None = None) -> list[Motion]:
        joints, lengths = np.asarray(self.joints), np.asarray(self.lengths)
        names = names or [f"take_{i:04d}" for i in range(len(lengths))]
        return [Motion(n, self.fps, joints[i, :lengths[i]]) for i, n in enumerate(names)]


def pack_motions(motions: Sequence[Motion], fps: float | None = None, max_frames: int | None = None) -> MotionBuffer:
    """Resample motions to one `fps` (default: the first's) and pad them to a common length.

    Takes longer than `max_frames` are cut. Padding repeats the last frame, so windows that run past a take's end
    see a held pose rather than zeros.
    """
    if not motions:
        raise ValueError("pack_motions needs at least one motion")
    fps = float(fps or motions[0].fps)
    resampled = [m.resample(fps) for m in motions]
    longest = max(m.num_frames for m in resampled)
    t_max = int(max_frames or longest)
    joints = np.zeros((len(resampled), t_max, 17, 3), np.float32)
    lengths = np.zeros((len(resampled),), np.int32)
    for i, m in enumerate(resampled):
        n = min(m.num_frames, t_max)
        joints[i, :n] = m.joints[:n]
        joints[i, n:] = m.joints[n - 1]
        lengths[i] = n
    return MotionBuffer(joints=jnp.asarray(joints), lengths=jnp.asarray(lengths), fps=fps)


def sample_windows(rng: jax.Array, buffer: MotionBuffer, batch_size: int, length: int,
                   take_weights: jax.Array | None = None) -> jax.Array:
    """Sample `batch_size` windows of `length` frames: (B, length, 17, 3). Jittable.

    Takes are drawn with probability proportional to their number of window starts (so every frame is about
    equally likely), or to `take_weights` (N,) when given (zero weight excludes a take). A take shorter than
    `length` yields its frames followed by its held last pose.
    """
    k_take, k_start = jax.random.split(rng)
    starts_per_take = jnp.maximum(buffer.lengths - length + 1, 1).astype(jnp.float32)
    weights = starts_per_take if take_weights is None else take_weights * starts_per_take
    take = jax.random.choice(k_take, buffer.num_takes, (batch_size,), p=weights / jnp.sum(weights))
    max_start = jnp.maximum(buffer.lengths[take] - length, 0)
    start = jnp.floor(jax.random.uniform(k_start, (batch_size,)) * (max_start + 1)).astype(jnp.int32)
    frame = jnp.clip(start[:, None] + jnp.arange(length)[None, :], 0, buffer.max_frames - 1)
    return buffer.joints[take[:, None], frame]



@functools.partial(jax.jit, static_argnames=("frames", "fps"))
def gather_slots(joints: jax.Array, take: jax.Array, start: jax.Array, count: jax.Array, frames: int,
                 fps: float = 30.0) -> MotionBuffer:
    """A buffer of `frames` frames whose slot k holds `joints[take[k], start[k]:start[k] + count[k]]` (joints:
    (N, T, 17, 3)), edge-padded after its last frame; slots with count 0 are all zeros, as empty slots are."""
    t = jnp.arange(frames)[None, :]
    frame = jnp.clip(start[:, None] + jnp.minimum(t, jnp.maximum(count[:, None] - 1, 0)), 0, joints.shape[1] - 1)
    out = jnp.where((count > 0)[:, None, None, None], joints[take[:, None], frame], 0.0)
    return MotionBuffer(joints=out, lengths=count.astype(jnp.int32), fps=fps)


@functools.partial(jax.jit, static_argnames=("shortest", "capacity"))
def reset_free_stretches(buffer: MotionBuffer, breaks: jax.Array, shortest: int, capacity: int
                         ) -> tuple[MotionBuffer, jax.Array]:
    """The stretches of `buffer`'s takes between the frames flagged in `breaks` (N, T) (a flagged frame starts a
    new stretch: a fail-safe reset teleports the body there, so no window may cross it) that hold at least
    `shortest` frames, longest first (ties in take, then time, order), as a buffer of `capacity` slots; and how
    many such stretches there are (possibly more than `capacity`)."""
    n, t_max = breaks.shape
    t = jnp.arange(t_max)[None, :]
    starts = (t < buffer.lengths[:, None]) & ((t == 0) | breaks)
    # The next start after each frame (or the take's end), by a running minimum from the end.
    start_at = jnp.where(starts, t, t_max)
    next_start = jnp.flip(jax.lax.cummin(jnp.flip(start_at, 1), axis=1), 1)
    after = jnp.concatenate([next_start[:, 1:], jnp.full((n, 1), t_max)], axis=1)
    stretch = (jnp.minimum(after, buffer.lengths[:, None]) - t).reshape(-1)
    keep = starts.reshape(-1) & (stretch >= shortest)
    order = jnp.argsort(jnp.where(keep, -stretch, 1), stable=True)
    order = jnp.concatenate([order, jnp.zeros((max(capacity - n * t_max, 0),), order.dtype)])[:capacity]
    kept = keep[order] & (jnp.arange(capacity) < n * t_max)
    count = jnp.where(kept, stretch[order], 0)
    out = gather_slots(buffer.joints, order // t_max, order % t_max, count, buffer.max_frames, buffer.fps)
    return out, jnp.sum(keep)


@functools.partial(jax.jit, static_argnames=("capacity",))
def break_free_takes(buffer: MotionBuffer, breaks: jax.Array, capacity: int) -> tuple[MotionBuffer, jax.Array]:
    """The whole takes of `buffer` with no frame flagged in `breaks` (N, T), in order, as a buffer of `capacity`
    slots; and how many there are."""
    n, t_max = breaks.shape
    valid = jnp.arange(t_max)[None, :] < buffer.lengths[:, None]
    clean = (buffer.lengths > 0) & ~jnp.any(breaks & valid, axis=1)
    order = jnp.argsort(~clean, stable=True)
    order = jnp.concatenate([order, jnp.zeros((max(capacity - n, 0),), order.dtype)])[:capacity]
    count = jnp.where(clean[order] & (jnp.arange(capacity) < n), buffer.lengths[order], 0)
    out = gather_slots(buffer.joints, order, jnp.zeros_like(order), count, buffer.max_frames, buffer.fps)
    return out, jnp.sum(clean)


def write_slots(buffer: MotionBuffer, part: MotionBuffer, offset: int) -> MotionBuffer:
    """`buffer` with slots offset.. replaced by `part`'s (same frame count)."""
    end = offset + part.num_takes
    if part.max_frames != buffer.max_frames or end > buffer.num_takes:
        raise ValueError(f"cannot write {part.num_takes} slots of {part.max_frames} frames at slot {offset} of a "
                         f"buffer of {buffer.num_takes} slots of {buffer.max_frames} frames")
    return buffer.replace(joints=buffer.joints.at[offset:end].set(part.joints),
                          lengths=buffer.lengths.at[offset:end].set(part.lengths))
