"""The co-evolution's state: one pytree with the three learners, the references I tracks and the motion buffers,
and the host helpers that fill those buffers."""

from __future__ import annotations

from typing import Any, Sequence

import flax
import jax
import jax.numpy as jnp
import numpy as np

from ptjax.data import MotionBuffer


@flax.struct.dataclass
class CoEvolutionState:
    estimator: Any                 # ptjax.estimator.EstimatorState (replicated)
    imitator: Any                  # ptjax.imitator.ppo.PPOState, stacked over devices (leading axis)
    hallucinator: Any              # ptjax.hallucinator.HallucinatorState (replicated)
    references: Any                # ptjax.imitator.env.ReferenceLibrary that I tracks now
    imitated: MotionBuffer         # E's training motion: blocks of (rollouts of the takes, refined samples), this
                                   # round's first, then those of `replay_rounds` earlier rounds (zero lengths)
    segments: MotionBuffer         # H's training motion: the rollouts cut at fail-safe resets (no teleports)
    generated: MotionBuffer        # H's latest samples (lengths 0 before the first)
    real2d: MotionBuffer           # the 2D takes, D_cam's unpaired real 2D
    rng: jax.Array
    round: jax.Array               # () int32
    phase_step: jax.Array          # () int32 updates of the current phase
    phase: str = flax.struct.field(pytree_node=False, default="imitator")  # the learner `step` advances


def empty_buffer(num: int, frames: int, fps: float) -> MotionBuffer:
    """An all-padding buffer of `num` slots of `frames` frames (lengths 0)."""
    return MotionBuffer(joints=jnp.zeros((num, frames, 17, 3), jnp.float32), lengths=jnp.zeros((num,), jnp.int32),
                        fps=fps)


def fill_buffer(buffer: MotionBuffer, motions: Sequence[np.ndarray], offset: int = 0) -> MotionBuffer:
    """Write (T_i, 17, 3) sequences into slots offset.. (cut to the buffer's length, padded with the last frame)."""
    joints, lengths = np.array(buffer.joints), np.array(buffer.lengths)
    t_max = joints.shape[1]
    for i, seq in enumerate(motions):
        seq = np.asarray(seq, np.float32)[:t_max]
        joints[offset + i, :len(seq)] = seq
        joints[offset + i, len(seq):] = seq[-1]
        lengths[offset + i] = len(seq)
    return buffer.replace(joints=jnp.asarray(joints), lengths=jnp.asarray(lengths))

