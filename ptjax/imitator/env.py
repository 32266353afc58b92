"""The motion-tracking environment: an MJX humanoid follows reference motion (Playground-style, pure functions).

`TrackingEnv.reset(rng, refs)` and `TrackingEnv.step(state, action, refs)` act on one environment and are vmapped by
the caller; the reference library `refs` is an explicit argument (device arrays of fixed shape), so the same
compiled step serves every co-evolution round's references. `step` auto-resets finished episodes (termination,
reference end, time limit, or a NaN guard) and reports completed-episode statistics in `state.info`.

Observation (in the root's heading frame; layout `OBSERVATION_LAYOUT`): root height, tilt (6-D rotation without
heading, `geometry.matrix_to_6d`), root linear and angular velocity, hinge angles and velocities, body positions
relative to the root; then for each of `horizon` future reference frames: reference hinge angles, reference root
position and orientation relative to the simulated root, and the offsets from simulated to reference body positions.

Action: PD target offsets (radians, times `action_scale`) added to the next reference frame's hinge angles and
clipped to the joint ranges, plus, with `residual_force`, a 6-D root wrench (RFC, Yuan & Kitani 2020) scaled by
`residual_force_scale`, the force rotated by the heading as in PoseTriplet.

Reward: a weighted average of exp(-k * error) kernels (weights and k in the config; presets for PoseTriplet's
quat_v7 (helix 3+), DeepMimic and PHC in `reward_preset`).
"""

from __future__ import annotations

from typing import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ptjax.mjx_support import check_jax_supports_mjx, mjx  # noqa: F401  (before brax: silences mujoco.mjx's notice)
from brax.envs.base import State  # noqa: E402

from ptjax import skeleton
from ptjax.imitator.humanoid import BODIES, Humanoid
from ptjax.geometry import heading_rotation, matrix_to_6d, matrix_to_quat, quat_to_matrix, rotation_angle, so3_log
from ptjax.imitator.humanoid_kinematics import body_transforms, kinematic_tree
from ptjax.imitator.retarget import ReferenceMotion

J = skeleton.JOINT_INDEX
REWARD_TERMS = ("pose", "velocity", "end_effector", "root_height", "root_orientation", "root_velocity",
                "root_angular_velocity", "joint_position", "residual_force")

# (weights, kernels) per preset. PoseTriplet quat_v7 weights (helix_3, reference §3.4) mapped to our terms;
# DeepMimic (Peng et al. 2018): 0.65 pose, 0.1 velocity, 0.15 end effector, 0.1 root/centre of mass;
# PHC (Luo et al. 2023): 0.5 global body position, 0.3 rotation, 0.1 velocity, 0.1 angular velocity.
REWARD_PRESETS = {
    "posetriplet": dict(pose=0.5, velocity=0.3, end_effector=1.5, root_height=0.7, root_orientation=0.7,
                        root_velocity=1.0, root_angular_velocity=1.0, joint_position=0.0, residual_force=0.3),
    "deepmimic": dict(pose=0.65, velocity=0.1, end_effector=0.15, root_height=0.05, root_orientation=0.0,
                      root_velocity=0.05, root_angular_velocity=0.0, joint_position=0.0, residual_force=0.0),
    "phc": dict(pose=0.3, velocity=0.1, end_effector=0.0, root_height=0.0, root_orientation=0.0,
                root_velocity=0.0, root_angular_velocity=0.1, joint_position=0.5, residual_force=0.0),
}
DEFAULT_KERNELS = dict(pose=2.0, velocity=0.02, end_effector=20.0, root_height=100.0, root_orientation=10.0,
                       root_velocity=1.0, root_angular_velocity=0.1, joint_position=100.0, residual_force=1.0)


def failure(joints: jax.Array, r_joints: jax.Array, config) -> tuple[jax.Array, jax.Array]:
    """(failed, mean joint distance) of simulated vs reference joints (..., 17, 3): PHC's distance test (mean global
    joint distance > termination_distance) or a fall: the head's height above the lowest joint more than head_drop
    below the reference's. Like the original's test (reference head above the reference's lowest joint), it holds
    for a reference that floats or sinks, as lifted motion often does."""
    joint_error = jnp.mean(jnp.linalg.norm(joints - r_joints, axis=-1), -1)
    head = J["Head"]
    sim_head = joints[..., head, 2] - jnp.min(joints[..., 2], axis=-1)
    ref_head = r_joints[..., head, 2] - jnp.min(r_joints[..., 2], axis=-1)
    fell = sim_head < ref_head - config.head_drop
    return (joint_error > config.termination_distance) | fell, joint_error


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.horizon = 2                    # future reference frames in the observation
    c.action_scale = 0.5             # radians of PD target offset per unit action
    c.residual_force = True          # 6-D root wrench (RFC)
    c.residual_force_scale = 100.0   # N and N m per unit action (PoseTriplet: 100)
    # Root servo: a spring-damper wrench toward the reference root added to the residual force (0 = off).
    c.root_servo_kp = 0.0            # N/m
    c.root_servo_kd = 0.0            # N s/m
    c.root_servo_kr = 0.0            # N m/rad
    c.root_servo_kw = 0.0            # N m s/rad
    c.gravity_compensation = False   # feed-forward hinge torques against gravity (joint torques, not external)
    c.episode_length = 200           # control steps (PoseTriplet: 200)
    c.init = "reference"             # "reference" (reference state init) | "standing" (PoseTriplet's fixed start)
    c.termination_distance = 0.5     # m: mean joint distance to the reference that ends an episode (PHC)
    c.head_drop = 0.3                # m: head height above the lowest joint this much below the reference's
                                     # ends an episode (a fall; PoseTriplet's test uses 0.2)
    # Fail-safe rollouts (evaluation, co-evolution) put a failed body back in the rest pose at the reference's root
    # xy and heading ("reference"), or at its own ("current": PoseTriplet's naivefs, whose failure test is the fall
    # alone; with the distance test above, a body that has drifted 0.5 m is reset again every frame).
    c.failsafe_align = "reference"
    # What a fail-safe reset restores: the rest pose standing there ("rest", PoseTriplet's naivefs), or the
    # reference's own state at that frame ("reference": where training episodes start, so the policy goes on in
    # states it has learnt from; from the rest pose mid-take it often fails again within a few frames).
    c.failsafe_pose = "rest"
    c.min_start_margin = 10          # frames: episodes start at least this far before a take's end
    c.reward_preset = "posetriplet"
    c.reward_weights = ml_collections.ConfigDict(dict(REWARD_PRESETS["posetriplet"]))
    c.reward_kernels = ml_collections.ConfigDict(dict(DEFAULT_KERNELS))
    return c


def resolve_reward(config) -> tuple[dict, dict]:
    """Weights from the preset unless the config's reward_weights were changed from the posetriplet defaults."""
    preset = config.reward_preset
    if preset not in REWARD_PRESETS:
        raise ValueError(f"unknown reward_preset {preset!r}; choose from {sorted(REWARD_PRESETS)}")
    weights = dict(config.reward_weights)
    if weights == REWARD_PRESETS["posetriplet"]:
        weights = dict(REWARD_PRESETS[preset])
    kernels = dict(config.reward_kernels)
    for name in REWARD_TERMS:
        if name not in weights or name not in kernels:
            raise ValueError(f"reward term {name!r} needs a weight and a kernel")
        if weights[name] < 0 or kernels[name] < 0:
            raise ValueError(f"reward term {name!r}: weight and kernel must be >= 0")
    if sum(weights.values()) <= 0:
        raise ValueError("reward weights sum to zero")
    return weights, kernels


@flax.struct.dataclass
class ReferenceLibrary:
    """Reference motions padded to one shape, on device. Frame t of take i is valid for t < lengths[i]."""
    qpos: jax.Array        # (N, T, nq)
    qvel: jax.Array        # (N, T, nv)
    joints: jax.Array      # (N, T, 17, 3)
    body_pos: jax.Array    # (N, T, nb, 3)
    body_quat: jax.Array   # (N, T, nb, 4)
    lengths: jax.Array     # (N,) int32
    weights: jax.Array     # (N,) sampling weight of each take (0 = never sampled)

    @property
    def num_takes(self) -> int:
        return self.qpos.shape[0]

    @property
    def max_frames(self) -> int:
        return self.qpos.shape[1]


def make_library(refs: Sequence[ReferenceMotion], max_frames: int | None = None, num_takes: int | None = None,
                 weights: Sequence[float] | None = None) -> ReferenceLibrary:
    """Stack references, padding each with its last frame (and padding the take count with zero-weight copies)."""
    if not refs:
        raise ValueError("make_library needs at least one reference motion")
    t_max = max_frames or max(r.num_frames for r in refs)
    n = num_takes or len(refs)
    if n < len(refs):
        raise ValueError(f"{len(refs)} references do not fit num_takes={n}")
    if any(r.num_frames < 2 for r in refs):
        raise ValueError("every reference needs at least 2 frames")

    def pad(x):
        x = np.asarray(x)[:t_max]
        return np.concatenate([x, np.repeat(x[-1:], t_max - len(x), 0)], 0)

    fields = {}
    for name in ("qpos", "qvel", "joints", "body_pos", "body_quat"):
        arrs = [pad(getattr(r, name)) for r in refs]
        arrs += [arrs[0]] * (n - len(refs))
        fields[name] = jnp.asarray(np.stack(arrs), jnp.float32)
    lengths = [min(r.num_frames, t_max) for r in refs] + [refs[0].num_frames] * (n - len(refs))
    w = list(weights) if weights is not None else [1.0] * len(refs)
    w += [0.0] * (n - len(refs))
    return ReferenceLibrary(lengths=jnp.asarray(lengths, jnp.int32), weights=jnp.asarray(w, jnp.float32), **fields)


# --- the observation's layout ---------------------------------------------------------------------------------------

# Version of `TrackingEnv.observation`'s layout, recorded with every imitator checkpoint: a policy reads its inputs by
# position, so a checkpoint of another layout is refused rather than fed permuted inputs. 1: rotations as 6-D row
# by row (r00, r01, r10, ...); 2: `geometry.matrix_to_6d`'s layout (the first two columns, concatenated).
OBSERVATION_LAYOUT = 2


def check_observation_layout(recorded, where: str) -> None:
    """Refuse a checkpoint of another layout than `OBSERVATION_LAYOUT` (None: one written before layouts were)."""
    recorded = 1 if recorded is None else int(recorded)
    if recorded != OBSERVATION_LAYOUT:
        raise ValueError(f"{where} holds an imitator trained on observation layout {recorded} and this ptjax builds "
                         f"layout {OBSERVATION_LAYOUT} (ptjax.imitator.env.OBSERVATION_LAYOUT: 6-D rotations in "
                         "geometry.matrix_to_6d's order); its policy would read permuted inputs, so train it again")


class TrackingEnv:
    """Motion tracking with one humanoid; `reset`/`step` are pure and vmappable."""

    def __init__(self, humanoid: Humanoid, config: ml_collections.ConfigDict | None = None):
        check_jax_supports_mjx()
        self.humanoid = humanoid
        self.config = config or default_config()
        self._validate()
        self.weights, self.kernels = resolve_reward(self.config)
        # This process's first device: MJX's default, jax.devices()[0], belongs to process 0 in a multi-process job.
        device = jax.local_devices()[0]
        self.mjx_model = mjx.put_model(humanoid.model, impl="jax", device=device)
        self.tree = kinematic_tree(humanoid)
        self.nu = humanoid.nu
        self.hinge_adr = jnp.asarray(humanoid.hinge_qpos_adr)
        self.hinge_dof = jnp.asarray(humanoid.hinge_dof_adr)
        self.hinge_low = jnp.asarray(humanoid.hinge_range[:, 0], jnp.float32)
        self.hinge_high = jnp.asarray(humanoid.hinge_range[:, 1], jnp.float32)
        self.torque_limit = jnp.asarray(humanoid.model.actuator_forcerange[:, 1], jnp.float32)
        self.ee_joints = np.array(skeleton.END_EFFECTORS)
        self._action_size = self.nu + (6 if self.config.residual_force else 0)
        # Template data: every reset starts from it (arrays of the right shapes and solver buffers).
        import mujoco
        d = mujoco.MjData(humanoid.model)
        d.qpos[:] = humanoid.rest_qpos()
        mujoco.mj_forward(humanoid.model, d)
        self._data_template = mjx.put_data(humanoid.model, d, impl="jax", device=device)
        self.rest_qpos = jnp.asarray(humanoid.rest_qpos(), jnp.float32)

    def _validate(self):
        c = self.config
        if c.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {c.horizon}")
        if c.episode_length < 2:
            raise ValueError(f"episode_length must be >= 2, got {c.episode_length}")
        if c.init not in ("reference", "standing"):
            raise ValueError(f"init must be 'reference' or 'standing', got {c.init!r}")
        if not c.action_scale > 0:
            raise ValueError(f"action_scale must be positive, got {c.action_scale}")
        if not c.termination_distance > 0 or not c.head_drop > 0:
            raise ValueError("termination_distance and head_drop must be positive")
        if self.failsafe_align not in ("reference", "current"):
            raise ValueError(f"failsafe_align must be 'reference' or 'current', got {self.failsafe_align!r}")
        if self.failsafe_pose not in ("rest", "reference"):
            raise ValueError(f"failsafe_pose must be 'rest' or 'reference', got {self.failsafe_pose!r}")

    @property
    def failsafe_pose(self) -> str:
        return self.config.get("failsafe_pose", "rest")

    @property
    def failsafe_align(self) -> str:
        """Where fail-safe rollouts stand a failed body (configs saved before the field existed: "reference")."""
        return self.config.get("failsafe_align", "reference")

    # --- sizes (brax Env interface) ---
    @property
    def action_size(self) -> int:
        return self._action_size

    @property
    def observation_size(self) -> int:
        nb, nh = len(BODIES), self.nu
        return (1 + 6 + 3 + 3 + 2 * nh + 3 * (nb - 1)) + self.config.horizon * (nh + 3 + 6 + 3 * nb)

    # --- reference lookups ---
    def reference_frame(self, refs: ReferenceLibrary, take, frame):
        """Take `take`'s reference at `frame` (clamped to the take): qpos, qvel, H36M joints (17, 3), body
        positions and quaternions."""
        frame = jnp.clip(frame, 0, refs.lengths[take] - 1)
        return (refs.qpos[take, frame], refs.qvel[take, frame], refs.joints[take, frame],
                refs.body_pos[take, frame], refs.body_quat[take, frame])

    # --- features of the simulated body ---
    def body_kinematics(self, qpos):
        """qpos -> every body's world position (nb, 3) and rotation (nb, 3, 3), as MuJoCo's xpos/xmat."""
        pos, rot = body_transforms(self.tree, qpos)
        return pos, rot

    def observation(self, data, pos, rot, refs, take, frame):
        """The policy's input (`observation_size`,): the body in its heading frame, then `config.horizon` future
        reference frames relative to it."""
        c = self.config
        root_rot = rot[0]
        heading = heading_rotation(root_rot)
        inv_h = heading.T
        root = pos[0]
        qvel = data.qvel
        proprio = [
            root[2:3],
            matrix_to_6d(inv_h @ root_rot),
            inv_h @ qvel[0:3],
            qvel[3:6],
            data.qpos[self.hinge_adr],
            qvel[self.hinge_dof],
            ((pos[1:] - root) @ heading).ravel(),
        ]
        task = []
        for k in range(1, c.horizon + 1):
            r_qpos, _, _, r_pos, r_quat = self.reference_frame(refs, take, frame + k)
            r_root_rot = quat_to_matrix(r_quat[0])
            task += [
                r_qpos[self.hinge_adr],
                inv_h @ (r_pos[0] - root),
                matrix_to_6d(inv_h @ r_root_rot),
                ((r_pos - pos) @ heading).ravel(),
            ]
        return jnp.concatenate(proprio + task)

    def reward(self, data, pos, rot, joints, action, refs, take, frame):
        """(weighted reward, each term exp(-k * error), the reference joints) after a step, at `frame` of `take`."""
        w, k = self.weights, self.kernels
        r_qpos, r_qvel, r_joints, r_pos, r_quat = self.reference_frame(refs, take, frame)
        r_rot = quat_to_matrix(r_quat)
        rel = jnp.swapaxes(rot[0], -1, -2) @ rot[1:]
        r_rel = jnp.swapaxes(r_rot[0], -1, -2) @ r_rot[1:]
        heading, r_heading = heading_rotation(rot[0]), heading_rotation(r_rot[0])
        ee = (joints[self.ee_joints] - pos[0]) @ heading
        r_ee = (r_joints[self.ee_joints] - r_pos[0]) @ r_heading
        v_local = heading.T @ data.qvel[0:3]
        r_v_local = r_heading.T @ r_qvel[0:3]
        errors = {
            "pose": jnp.sum(rotation_angle(rel, r_rel, clip_eps=1e-7) ** 2),
            "velocity": jnp.sum((data.qvel[self.hinge_dof] - r_qvel[self.hinge_dof]) ** 2),
            "end_effector": jnp.sum((ee - r_ee) ** 2),
            "root_height": (pos[0, 2] - r_pos[0, 2]) ** 2,
            "root_orientation": rotation_angle(rot[0], r_rot[0], clip_eps=1e-7) ** 2,
            "root_velocity": jnp.sum((v_local - r_v_local) ** 2),
            "root_angular_velocity": jnp.sum((data.qvel[3:6] - r_qvel[3:6]) ** 2),
            "joint_position": jnp.mean(jnp.sum((joints - r_joints) ** 2, -1)),
            "residual_force": (jnp.sum(action[self.nu:] ** 2) if self.config.residual_force else jnp.zeros(())),
        }
        terms = {name: jnp.exp(-k[name] * errors[name]) for name in REWARD_TERMS}
        total_w = sum(w.values())
        reward = sum(w[name] * terms[name] for name in REWARD_TERMS) / total_w
        return reward, terms, r_joints

    def joint_positions(self, pos, rot):
        """Body transforms -> the humanoid's H36M-17 joint sites (17, 3), world frame."""
        body = np.asarray(self.tree.site_body)
        return pos[body] + jnp.einsum("jab,jb->ja", rot[body], jnp.asarray(self.tree.site_offset, jnp.float32))

    # --- API ---
    def _initial_data(self, rng, refs, take, frame):
        r_qpos, r_qvel, *_ = self.reference_frame(refs, take, frame)
        if self.config.init == "standing":
            # PoseTriplet's fixed start: the rest pose at the reference root's position and heading.
            heading = heading_rotation(quat_to_matrix(r_qpos[3:7]))
            qpos = self.rest_qpos.at[0:2].set(r_qpos[0:2]).at[3:7].set(matrix_to_quat(heading))
            qvel = jnp.zeros_like(r_qvel)
        else:
            qpos, qvel = r_qpos, r_qvel
        # No mjx.forward here: mjx.step recomputes everything from qpos/qvel, and observations use our own FK,
        # so a reset costs almost nothing (it runs for every env at every step under vmap).
        return self._data_template.replace(qpos=qpos, qvel=qvel, ctrl=qpos[self.hinge_adr],
                                           qfrc_applied=jnp.zeros_like(qvel), time=jnp.zeros(()))

    def _sample_start(self, rng, refs):
        k_take, k_frame = jax.random.split(rng)
        usable = jnp.maximum(refs.lengths - 1 - self.config.min_start_margin, 1)
        p = refs.weights * usable
        take = jax.random.choice(k_take, refs.num_takes, p=p / jnp.sum(p))
        frame = jnp.floor(jax.random.uniform(k_frame) * usable[take]).astype(jnp.int32)
        return take, frame

    def reset(self, rng: jax.Array, refs: ReferenceLibrary) -> State:
        rng, k_start = jax.random.split(rng)
        take, frame = self._sample_start(k_start, refs)
        return self._reset_at(rng, refs, take, frame)

    def reset_at(self, rng: jax.Array, refs: ReferenceLibrary, take, frame) -> State:
        """Start an episode at a given take and frame (evaluation)."""
        return self._reset_at(rng, refs, jnp.asarray(take, jnp.int32), jnp.asarray(frame, jnp.int32))

    def _reset_at(self, rng, refs, take, frame) -> State:
        data = self._initial_data(rng, refs, take, frame)
        pos, rot = self.body_kinematics(data.qpos)
        obs = self.observation(data, pos, rot, refs, take, frame)
        zero = jnp.zeros(())
        info = {
            "rng": rng, "take": take, "frame": frame, "steps": jnp.zeros((), jnp.int32),
            "truncation": zero, "episode_return": zero, "episode_length": zero,
            "done_return": zero, "done_length": zero, "done": zero, "nan_reset": zero, "fell": zero,
        }
        metrics = {name: zero for name in REWARD_TERMS}
        metrics["joint_error"] = zero
        return State(pipeline_state=data, obs=obs, reward=zero, done=zero, metrics=metrics, info=info)

    def residual_wrench(self, action: jax.Array) -> jax.Array:
        """(..., A) actions -> (..., 6) residual root force (N, heading frame) and torque (N m); zeros without RFC."""
        if not self.config.residual_force:
            return jnp.zeros(action.shape[:-1] + (6,), action.dtype)
        return self.config.residual_force_scale * action[..., self.nu:self.nu + 6]

    def physics_step(self, state: State, action: jax.Array, refs: ReferenceLibrary) -> tuple[mjx.Data, jax.Array]:
        """Apply an action for one control step (the substeps of physics). Returns the new data and the root wrench
        applied on average over the substeps (6: force in the world frame, N; torque in the root's frame, N m):
        the policy's residual force plus the root servo's, when it is on."""
        c = self.config
        data = state.pipeline_state
        take, frame = state.info["take"], state.info["frame"]
        r_next, r_next_vel, *_ = self.reference_frame(refs, take, frame + 1)
        target = jnp.clip(r_next[self.hinge_adr] + c.action_scale * action[:self.nu],
                          self.hinge_low, self.hinge_high)
        policy = self.residual_wrench(action)
        heading = heading_rotation(quat_to_matrix(data.qpos[3:7]))  # the policy's force is in its heading frame
        policy = jnp.concatenate([heading @ policy[0:3], policy[3:6]])
        servo_on = c.root_servo_kp > 0 or c.root_servo_kr > 0

        def substep(_, carry):
            d, total = carry
            wrench = policy
            if servo_on:
                wrench = wrench + self._root_servo(d, r_next, r_next_vel)
            qfrc = jnp.zeros_like(d.qvel).at[0:6].set(wrench)
            if c.gravity_compensation:
                # Feed-forward joint torques against gravity and Coriolis forces (MuJoCo's bias forces of the last
                # step), within each hinge's torque limit: PD servos alone sag under load.
                qfrc = qfrc.at[self.hinge_dof].set(jnp.clip(d.qfrc_bias[self.hinge_dof], -self.torque_limit,
                                                             self.torque_limit))
            d = d.replace(ctrl=target, qfrc_applied=qfrc)
            return mjx.step(self.mjx_model, d), total + wrench

        data, total = jax.lax.fori_loop(0, self.humanoid.sim.substeps, substep, (data, jnp.zeros(6, data.qvel.dtype)))
        return data, total / self.humanoid.sim.substeps

    def _root_servo(self, data, r_qpos, r_qvel) -> jax.Array:
        """A spring-damper wrench pulling the root toward the reference root (a residual force prior: the policy's
        own residual adds to it): force in the world frame, torque in the root's frame."""
        c = self.config
        force = c.root_servo_kp * (r_qpos[0:3] - data.qpos[0:3]) + c.root_servo_kd * (r_qvel[0:3] - data.qvel[0:3])
        rot, r_rot = quat_to_matrix(data.qpos[3:7]), quat_to_matrix(r_qpos[3:7])
        torque = (c.root_servo_kr * so3_log(rot.T @ r_rot)
                  + c.root_servo_kw * (r_qvel[3:6] - data.qvel[3:6]))
        return jnp.concatenate([force, torque])

    def step(self, state: State, action: jax.Array, refs: ReferenceLibrary) -> State:
        c = self.config
        data, wrench = self.physics_step(state, action, refs)
        take, frame = state.info["take"], state.info["frame"] + 1
        finite = jnp.all(jnp.isfinite(data.qpos)) & jnp.all(jnp.isfinite(data.qvel))
        # NaN guard: evaluate features on a safe copy; the episode ends and the env resets below.
        data = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), data, state.pipeline_state)
        pos, rot = self.body_kinematics(data.qpos)
        joints = self.joint_positions(pos, rot)
        reward, terms, r_joints = self.reward(data, pos, rot, joints, action, refs, take, frame)
        fell, joint_error = failure(joints, r_joints, c)
        steps = state.info["steps"] + 1
        ref_end = frame + 1 >= refs.lengths[take]
        truncation = (ref_end | (steps >= c.episode_length)) & ~fell & finite
        done = fell | ~finite | truncation
        reward = jnp.where(finite, reward, 0.0)
        episode_return = state.info["episode_return"] + reward
        episode_length = state.info["episode_length"] + 1
        obs = self.observation(data, pos, rot, refs, take, frame)
        info = dict(state.info)
        info.update(frame=frame, steps=steps, truncation=truncation.astype(jnp.float32),
                    episode_return=episode_return, episode_length=episode_length,
                    done=done.astype(jnp.float32), done_return=jnp.where(done, episode_return, 0.0),
                    done_length=jnp.where(done, episode_length, 0.0),
                    nan_reset=(~finite).astype(jnp.float32), fell=(fell & finite).astype(jnp.float32))
        metrics = {**{name: terms[name] for name in REWARD_TERMS}, "joint_error": joint_error}
        new = State(pipeline_state=data, obs=obs, reward=reward, done=done.astype(jnp.float32),
                    metrics=metrics, info=info)
        # Auto-reset: a finished episode continues as a fresh one (its statistics stay in info["done_*"]).
        rng, k_reset = jax.random.split(state.info["rng"])
        fresh = self.reset(k_reset, refs)
        fresh_info = dict(fresh.info)
        for key in ("truncation", "done", "done_return", "done_length", "nan_reset", "fell"):
            fresh_info[key] = info[key]
        fresh = fresh.replace(info=fresh_info, reward=new.reward, done=new.done, metrics=new.metrics)
        out = jax.tree_util.tree_map(lambda a, b: jnp.where(done, a, b), fresh, new)
        out.info["rng"] = rng
        return out


class BraxTrackingEnv:
    """brax.envs.base.Env view of a `TrackingEnv` with fixed references and no auto-reset of its own, for brax's
    own training loop (which adds its episode/auto-reset wrappers). Used by benchmarks/ppo.py."""

    def __init__(self, env: TrackingEnv, refs: ReferenceLibrary):
        self.env, self.refs = env, refs

    def reset(self, rng):
        return self.env.reset(rng, self.refs)

    def step(self, state, action):
        env = self.env
        data, _ = env.physics_step(state, action, self.refs)
        take, frame = state.info["take"], state.info["frame"] + 1
        pos, rot = env.body_kinematics(data.qpos)
        joints = env.joint_positions(pos, rot)
        reward, terms, r_joints = env.reward(data, pos, rot, joints, action, self.refs, take, frame)
        done = failure(joints, r_joints, env.config)[0] | ~jnp.all(jnp.isfinite(data.qpos))
        info = dict(state.info)
        info.update(frame=jnp.minimum(frame, self.refs.lengths[take] - 2))
        return state.replace(pipeline_state=data, obs=env.observation(data, pos, rot, self.refs, take, frame),
                             reward=reward, done=done.astype(jnp.float32), info=info)

    @property
    def observation_size(self):
        return self.env.observation_size

    @property
    def action_size(self):
        return self.env.action_size

    @property
    def backend(self):
        return "mjx"

    @property
    def unwrapped(self):
        return self
