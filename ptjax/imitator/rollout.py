"""Fail-safe evaluation rollout: a deterministic policy plays every take from start to end; when the body fails
(falls, or drifts beyond the termination distance) it is put back in the rest pose, and the reset is counted
(PoseTriplet's "naivefs" evaluation, reference §3.7). The rest pose stands at the reference's root xy and heading
(`env.config.failsafe_align = "reference"`, the default) or at the body's own ("current", as the original, whose
only failure test is the fall: with the distance test a drifted body would be reset in place every frame and
the output would be a standing body). The simulated H36M-17 joints are the imitator's output."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from ptjax.mjx_support import mjx  # noqa: F401  (before brax: silences mujoco.mjx's import notice)
from brax.envs.base import State  # noqa: E402

from ptjax.data.motion import Motion
from ptjax.geometry import heading_rotation, matrix_to_quat, quat_to_matrix
from ptjax.imitator.env import ReferenceLibrary, TrackingEnv, failure


@flax.struct.dataclass
class RolloutResult:
    joints: jax.Array        # (N, T, 17, 3) simulated joints, world frame
    qpos: jax.Array          # (N, T, nq) simulated body state (for renders)
    reference: jax.Array     # (N, T, 17, 3) reference joints
    lengths: jax.Array       # (N,) frames per take
    reset_mask: jax.Array    # (N, T) a fail-safe reset happened at this frame
    joint_error: jax.Array   # (N, T) mean global joint distance to the reference before any reset, metres
    fell_mask: jax.Array     # (N, T) the reset at this frame was a fall (the others: drifted beyond the distance)
    residual_force: jax.Array   # (N, T) magnitude of the residual root force applied over the step, N
    residual_torque: jax.Array  # (N, T) magnitude of the residual root torque, N m

    def summary(self, names=None, count: int | None = None) -> dict:
        """Per-take and mean tracking measures over the first `count` takes (default all): resets (and how many
        were falls), success (no reset = never deviating beyond the termination criteria), G-MPJPE (global) and
        MPJPE (root-relative) in mm, and the mean residual root wrench. Reduced on device: only per-take figures
        reach the host, never the rollouts' joints."""
        count = int(self.lengths.shape[0]) if count is None else int(count)
        per_take = {k: np.asarray(v)[:count] for k, v in _per_take_measures(self).items()}
        lengths, resets, fell = per_take["frames"], per_take["resets"], per_take["falls"]
        names = list(names) if names is not None else [f"take_{i}" for i in range(count)]
        takes = {names[i]: {"frames": int(lengths[i]), "resets": int(resets[i]), "success": bool(resets[i] == 0),
                            "g_mpjpe_mm": float(per_take["g_mpjpe"][i] * 1000),
                            "mpjpe_mm": float(per_take["mpjpe"][i] * 1000)} for i in range(count)}
        frames = lengths.astype(np.float64)
        total = max(float(frames.sum()), 1.0)
        return {
            "success_rate": float(np.mean(resets == 0)),
            "resets": int(resets.sum()),
            "resets_fell": int(fell.sum()),
            "resets_drift": int(resets.sum() - fell.sum()),
            "g_mpjpe_mm": float(np.average(per_take["g_mpjpe"] * 1000, weights=frames)),
            "mpjpe_mm": float(np.average(per_take["mpjpe"] * 1000, weights=frames)),
            # Mean magnitude of the residual root wrench (RFC) over every simulated frame: a body held up by it,
            # rather than by its feet, shows here (its weight is about 690 N).
            "residual_force_n": float(per_take["residual_force_sum"].sum() / total),
            "residual_torque_nm": float(per_take["residual_torque_sum"].sum() / total),
            "takes": takes,
        }

    def to_motions(self, names, fps: float) -> list[Motion]:
        joints, lengths = np.asarray(self.joints), np.asarray(self.lengths)
        return [Motion(n, fps, joints[i, :lengths[i]]) for i, n in enumerate(names)]


def standing_qpos(env: TrackingEnv, qpos: jax.Array) -> jax.Array:
    """The rest pose at `qpos`'s root position (on the floor) and heading."""
    heading = heading_rotation(quat_to_matrix(qpos[3:7]))
    rest = env.rest_qpos
    return rest.at[0:2].set(qpos[0:2]).at[3:7].set(matrix_to_quat(heading))


def failsafe_rollout(env: TrackingEnv, act_fn, refs: ReferenceLibrary, rng: jax.Array | None = None
                     ) -> RolloutResult:
    """Roll every take of `refs` out with `act_fn(obs (B, obs)) -> actions (B, A)` (deterministic policy)."""
    rng = jax.random.PRNGKey(0) if rng is None else rng
    c = env.config
    align_reference = env.failsafe_align == "reference"
    t_max = refs.max_frames
    takes = jnp.arange(refs.num_takes)
    start = jax.vmap(lambda i: env.reset_at(rng, refs, i, 0))(takes)

    def one_step(state, t):
        action = act_fn(state.obs)
        data, wrench = jax.vmap(env.physics_step, in_axes=(0, 0, None))(state, action, refs)
        frame = t + 1
        active = frame < refs.lengths

        def features(d, take):
            pos, rot = env.body_kinematics(d.qpos)
            joints = env.joint_positions(pos, rot)
            r_joints = env.reference_frame(refs, take, frame)[2]
            return pos, rot, joints, r_joints

        pos, rot, joints, r_joints = jax.vmap(features)(data, takes)
        fell, err = failure(joints, r_joints, c)
        finite = jnp.all(jnp.isfinite(data.qpos), -1) & jnp.all(jnp.isfinite(data.qvel), -1)
        reset = active & (fell | ~finite)
        safe_qpos = jnp.where(finite[:, None], data.qpos, state.pipeline_state.qpos)
        r_qpos, r_qvel = jax.vmap(lambda i: env.reference_frame(refs, i, frame)[:2])(takes)
        if env.failsafe_pose == "reference":
            restart_qpos, restart_qvel = r_qpos, r_qvel
        else:
            anchor = r_qpos if align_reference else safe_qpos
            restart_qpos, restart_qvel = jax.vmap(lambda q: standing_qpos(env, q))(anchor), jnp.zeros_like(data.qvel)
        new_qpos = jnp.where(reset[:, None], restart_qpos, safe_qpos)
        new_qvel = jnp.where(reset[:, None], restart_qvel, jnp.where(~finite[:, None], 0.0, data.qvel))
        data = data.replace(qpos=new_qpos, qvel=new_qvel)
        pos, rot, joints, _ = jax.vmap(features)(data, takes)
        obs = jax.vmap(lambda d, p, r, i: env.observation(d, p, r, refs, i, frame))(data, pos, rot, takes)
        info = dict(state.info)
        info["frame"] = jnp.where(active, frame, state.info["frame"])
        # Finished takes keep their last state.
        data = jax.tree_util.tree_map(
            lambda new, old: jnp.where(active.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
            data, state.pipeline_state)
        new_state = State(pipeline_state=data, obs=jnp.where(active[:, None], obs, state.obs),
                          reward=state.reward, done=state.done, metrics=state.metrics, info=info)
        force, torque = jnp.linalg.norm(wrench[:, :3], axis=-1), jnp.linalg.norm(wrench[:, 3:], axis=-1)
        return new_state, (joints, r_joints, reset, err, fell & active, force, torque, data.qpos)

    first_joints = jax.vmap(lambda d: env.joint_positions(*env.body_kinematics(d.qpos)))(start.pipeline_state)
    first_ref = refs.joints[:, 0]
    _, (joints, r_joints, reset, err, fell, force, torque, qpos) = jax.lax.scan(one_step, start,
                                                                                 jnp.arange(t_max - 1))
    joints = jnp.concatenate([first_joints[None], joints], 0).swapaxes(0, 1)
    r_joints = jnp.concatenate([first_ref[None], r_joints], 0).swapaxes(0, 1)
    reset = jnp.concatenate([jnp.zeros((1, refs.num_takes), bool), reset], 0).swapaxes(0, 1)
    err0 = jnp.mean(jnp.linalg.norm(first_joints - first_ref, axis=-1), -1)
    err = jnp.concatenate([err0[None], err], 0).swapaxes(0, 1)
    valid = jnp.arange(t_max)[None, :] < refs.lengths[:, None]

    def per_frame(x):  # (T-1, N) per step -> (N, T), the wrench of step t-1 -> t at frame t (none at frame 0)
        return jnp.concatenate([jnp.zeros_like(x[:1]), x], 0).swapaxes(0, 1)

    qpos = jnp.concatenate([start.pipeline_state.qpos[None], qpos], 0).swapaxes(0, 1)
    return RolloutResult(joints=joints, qpos=qpos, reference=r_joints, lengths=refs.lengths,
                         reset_mask=reset & valid,
                         joint_error=jnp.where(valid, err, 0.0), fell_mask=per_frame(fell) & valid,
                         residual_force=jnp.where(valid, per_frame(force), 0.0),
                         residual_torque=jnp.where(valid, per_frame(torque), 0.0))


@jax.jit
def _per_take_measures(result: RolloutResult) -> dict:
    """(N,) per-take figures of a rollout over each take's valid frames: frames, resets, falls, mean global and
    root-relative joint error (m), and the sums of the residual root force and torque magnitudes."""
    valid = jnp.arange(result.reset_mask.shape[1])[None, :] < result.lengths[:, None]
    sim, ref = result.joints, result.reference
    frames = jnp.maximum(result.lengths, 1).astype(jnp.float32)

    def mean_over_frames(x):
        return jnp.sum(jnp.where(valid, x, 0.0), axis=1) / frames

    relative = (sim - sim[:, :, :1]) - (ref - ref[:, :, :1])
    resets = result.reset_mask & valid
    return {"frames": result.lengths, "resets": jnp.sum(resets, axis=1),
            "falls": jnp.sum(resets & result.fell_mask, axis=1),
            "g_mpjpe": mean_over_frames(jnp.mean(jnp.linalg.norm(sim - ref, axis=-1), axis=-1)),
            "mpjpe": mean_over_frames(jnp.mean(jnp.linalg.norm(relative, axis=-1), axis=-1)),
            "residual_force_sum": jnp.sum(jnp.where(valid, result.residual_force, 0.0), axis=1),
            "residual_torque_sum": jnp.sum(jnp.where(valid, result.residual_torque, 0.0), axis=1)}
