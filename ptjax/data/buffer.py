"""`MotionBuffer`: many motions packed into one padded device array, and jittable window sampling from it.

This is how motion travels between the components inside jit: the imitator's rollouts, the hallucinator's samples
and the estimator's training data are all `MotionBuffer`s of H36M-17 world joints at one frame rate.
"""

from __future__ import annotations

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
