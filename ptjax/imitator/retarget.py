"""Retargeting H36M-17 joint positions to the humanoid: the pipeline around its IK (`humanoid_kinematics`).

`retarget(humanoid, motion)` is the whole pipeline for one `Motion`: resample to the control rate, optional
handedness repair (for estimator output), bone lengths reset to the body's, ground alignment, IK, qvel by finite
differences, and the per-frame reference features the imitator tracks (`ReferenceMotion`).

What it does with noisy estimator output: per-frame flips that mirror a frame's limbs (knees bending forward
relative to the pelvis' facing) are repaired by swapping that frame's left/right labels when the swap makes the
knees bend anatomically (`fix_handedness`); bone lengths are reset to the body's; impossible joint angles are
clamped to the limits; frames the IK cannot fit stay in the output with their error in `ReferenceMotion.ik_error`
(mean joint distance, metres), so callers can drop or down-weight them.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from ptjax import skeleton
from ptjax.data.buffer import pack_motions
from ptjax.data.motion import Motion
from ptjax.geometry import matrix_to_quat, quat_to_matrix, so3_log
from ptjax.imitator.humanoid import Humanoid
from ptjax.imitator.humanoid_kinematics import (IKConfig, body_transforms, humanoid_inverse_kinematics,
                                                kinematic_tree, site_positions, solve_on_device)

J = skeleton.JOINT_INDEX


# --- preprocessing of joint positions --------------------------------------------------------------------------------

def set_bone_lengths(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rebuild (..., 17, 3) joints root-first with new bone lengths (16, skeleton.BONES order), keeping directions."""
    joints = np.asarray(joints, np.float64)
    out = np.empty_like(joints)
    out[..., 0, :] = joints[..., 0, :]
    for (parent, child), length in zip(skeleton.BONES, lengths):
        d = joints[..., child, :] - joints[..., parent, :]
        norm = np.linalg.norm(d, axis=-1, keepdims=True)
        if np.any(norm < 1e-9):
            raise ValueError(f"zero-length bone {skeleton.JOINT_NAMES[parent]}-{skeleton.JOINT_NAMES[child]} "
                             "in the input: its direction is undefined")
        out[..., child, :] = out[..., parent, :] + d / norm * length
    return out


def knee_bend_score(joints: np.ndarray, xp=np) -> np.ndarray:
    """(..., 17, 3) -> (...) how much the knees bend toward the pelvis' facing direction (positive = anatomical);
    numpy float64 (`xp=np`) or traced (`xp=jnp`, as `prepare_padded`).

    A knee sits in front of the hip-ankle line when the leg bends; mirrored (flipped) frames put it behind.
    Straight legs score near zero."""
    j = np.asarray(joints, np.float64) if xp is np else joints
    right = j[..., J["LHip"], :] - j[..., J["RHip"], :]
    up = j[..., J["Spine"], :] - j[..., J["Hip"], :]
    forward = xp.cross(right, up)  # right x up with right = +y (left hip - right hip) gives +x forward
    forward = forward / (xp.linalg.norm(forward, axis=-1, keepdims=True) + 1e-9)
    score = 0.0
    for hip, knee, ankle in ((J["RHip"], J["RKnee"], J["RAnkle"]), (J["LHip"], J["LKnee"], J["LAnkle"])):
        mid = 0.5 * (j[..., hip, :] + j[..., ankle, :])
        score = score + xp.sum((j[..., knee, :] - mid) * forward, -1)
    return score


def fix_handedness(joints: np.ndarray, threshold: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Swap left/right labels in frames whose knees bend backward (by more than `threshold` m in sum) when the
    swap makes them bend forward. Returns the repaired joints and the mask of swapped frames."""
    joints = np.asarray(joints)
    swapped_joints = joints[:, list(skeleton.FLIP_PERMUTATION)]
    score, swapped_score = knee_bend_score(joints), knee_bend_score(swapped_joints)
    swap = (score < -threshold) & (swapped_score > threshold)
    return np.where(swap[:, None, None], swapped_joints, joints), swap


def ground_offset(joints: np.ndarray, ankle_height: float, per_frame: bool = False, xp=np) -> np.ndarray:
    """Height to subtract so the lowest contact point touches z = 0: soles (ankle - ankle_height), hands, knees,
    head and pelvis (minus their approximate radii). Per clip (keeps jumps) or per frame (PoseTriplet's choice for
    noisy estimates); numpy (`xp=np`) or traced (`xp=jnp`)."""
    j = np.asarray(joints) if xp is np else joints
    lows = [j[..., J["RAnkle"], 2] - ankle_height, j[..., J["LAnkle"], 2] - ankle_height,
            j[..., J["RWrist"], 2] - 0.05, j[..., J["LWrist"], 2] - 0.05,
            j[..., J["RKnee"], 2] - 0.05, j[..., J["LKnee"], 2] - 0.05,
            j[..., J["Head"], 2] - 0.1, j[..., J["Hip"], 2] - 0.09]
    lowest = xp.min(xp.stack(lows, -1), -1)
    return lowest if per_frame else xp.min(lowest, -1, keepdims=True)


# --- finite differences ----------------------------------------------------------------------------------------------

def qpos_to_qvel(qpos: np.ndarray, fps: float, hinge_adr: np.ndarray, hinge_dof: np.ndarray, nv: int) -> np.ndarray:
    """Central finite differences: root linear velocity (world), root angular velocity (body frame, as MuJoCo's
    free joint), hinge rates. (T, nq) -> (T, nv)."""
    return qpos_to_qvel_many(np.asarray(qpos)[None], [len(qpos)], fps, hinge_adr, hinge_dof, nv)[0]


def qpos_to_qvel_many(qpos: np.ndarray, lengths, fps: float, hinge_adr: np.ndarray, hinge_dof: np.ndarray,
                      nv: int) -> list[np.ndarray]:
    """`qpos_to_qvel` of every motion of a padded batch qpos (B, T, nq) whose motion i has lengths[i] frames, with
    the rotation maths in one pass over the batch (motion by motion it is a few hundred small ops each, most of a
    round's host time at 120 takes); a frame's velocity does not depend on the batch."""
    qpos = np.asarray(qpos, np.float64)
    rot = np.asarray(quat_to_matrix(jnp.asarray(qpos[..., 3:7])), np.float64)
    steps = []  # per motion: (next frame, previous frame, their time apart) of each frame's central difference
    for t in lengths:
        idx_next, idx_prev = np.minimum(np.arange(t) + 1, t - 1), np.maximum(np.arange(t) - 1, 0)
        steps.append((idx_next, idx_prev, (idx_next - idx_prev)[:, None] / fps))
    # Motions of fewer than 2 frames have no difference to take (their velocity is zero): no relative rotations.
    rel = [np.einsum("tji,tjk->tik", rot[i, prev], rot[i, nxt]) if len(nxt) > 1 else np.zeros((0, 3, 3))
           for i, (nxt, prev, _) in enumerate(steps)]
    angular = np.asarray(so3_log(jnp.asarray(np.concatenate(rel))))
    angular = np.split(angular, np.cumsum([len(r) for r in rel])[:-1])  # back to one array per motion
    out = []
    for q, (idx_next, idx_prev, span), w in zip(qpos, steps, angular):
        qvel = np.zeros((len(idx_next), nv))
        if len(idx_next) > 1:
            qvel[:, 0:3] = (q[idx_next, 0:3] - q[idx_prev, 0:3]) / span
            qvel[:, 3:6] = w / span
            qvel[:, hinge_dof] = (q[idx_next][:, hinge_adr] - q[idx_prev][:, hinge_adr]) / span
        out.append(qvel)
    return out


# --- reference motion ------------------------------------------------------------------------------------------------

@flax.struct.dataclass
class ReferenceMotion:
    """A motion as the imitator tracks it, at the control rate."""
    qpos: jax.Array        # (T, nq)
    qvel: jax.Array        # (T, nv)
    joints: jax.Array      # (T, 17, 3) the humanoid's H36M joints at qpos (FK), world
    body_pos: jax.Array    # (T, nb, 3) body origins
    body_quat: jax.Array   # (T, nb, 4) body orientations (w, x, y, z)
    ik_error: jax.Array    # (T,) mean distance between the input joints and `joints`, metres
    fps: float = flax.struct.field(pytree_node=False, default=30.0)

    @property
    def num_frames(self) -> int:
        return self.qpos.shape[0]

    def end_effectors(self) -> jax.Array:
        """(T, 5, 3) ankles, head, wrists."""
        return self.joints[:, list(skeleton.END_EFFECTORS)]


@dataclasses.dataclass(frozen=True)
class RetargetConfig:
    fps: float = 30.0
    fix_handedness: bool = False
    reset_bone_lengths: bool = True
    ground: str = "clip"  # "clip" | "frame" | "none"
    ik: IKConfig = IKConfig()
    # Where the joints are prepared for the IK: "host" (numpy float64, take by take: the measured figures') or
    # "device" (`prepare_padded`: one jitted float32 program over the padded takes; equal up to float rounding).
    prepare: str = "host"

    def __post_init__(self):
        if self.ground not in ("clip", "frame", "none"):
            raise ValueError(f"ground must be 'clip', 'frame' or 'none', got {self.ground!r}")
        if self.prepare not in ("host", "device"):
            raise ValueError(f"prepare must be 'host' or 'device', got {self.prepare!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


def _check_frames(motion: Motion) -> None:
    if motion.num_frames < 2:
        raise ValueError(f"motion {motion.name!r} has {motion.num_frames} frame(s); retargeting needs at least 2")


def prepare_joints(humanoid: Humanoid, motion: Motion, cfg: RetargetConfig = RetargetConfig()):
    """The preprocessing half of `retarget`: resampled, repaired, bone-reset, grounded joints (T, 17, 3)."""
    _check_frames(motion)
    m = motion.resample(cfg.fps)
    joints = m.joints.astype(np.float64)
    swapped = np.zeros(len(joints), bool)
    if cfg.fix_handedness:
        joints, swapped = fix_handedness(joints)
    if cfg.reset_bone_lengths:
        joints = set_bone_lengths(joints, humanoid.shape.bone_lengths)
    if cfg.ground != "none":
        offset = ground_offset(joints, humanoid.shape.ankle_height, per_frame=cfg.ground == "frame")
        joints = joints - np.concatenate([np.zeros(offset.shape + (2,)), offset[..., None]], -1)[..., None, :]
    return joints.astype(np.float32), swapped


@functools.partial(jax.jit, static_argnames=("fix_handedness", "reset_bone_lengths", "ground"))
def prepare_padded(joints: jax.Array, lengths: jax.Array, bone_lengths: jax.Array, ankle_height: float, *,
                   fix_handedness: bool = False, reset_bone_lengths: bool = True, ground: str = "clip"
                   ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`prepare_joints` for a padded batch of takes already at the control rate, as one program: (B, T, 17, 3)
    world joints whose take b has lengths[b] frames -> (prepared joints (B, T, 17, 3) float32 with each take's
    frames past its end holding its last frame, as `retarget_many` pads; swapped frames (B, T); per take, whether a
    bone of zero length made its direction undefined (B,): the caller refuses those takes)."""
    t = joints.shape[1]
    valid = jnp.arange(t)[None, :] < lengths[:, None]
    last = jnp.minimum(jnp.arange(t)[None, :], jnp.maximum(lengths[:, None] - 1, 0))
    j = jnp.take_along_axis(jnp.asarray(joints, jnp.float32), last[..., None, None], axis=1)
    swap = jnp.zeros(j.shape[:2], bool)
    if fix_handedness:
        flipped = j[..., list(skeleton.FLIP_PERMUTATION), :]
        swap = (knee_bend_score(j, jnp) < -0.02) & (knee_bend_score(flipped, jnp) > 0.02)
        j = jnp.where(swap[..., None, None], flipped, j)
    degenerate = jnp.zeros(j.shape[0], bool)
    if reset_bone_lengths:
        out = [j[..., 0, :]] + [None] * (skeleton.NUM_JOINTS - 1)
        for (parent, child), length in zip(skeleton.BONES, bone_lengths):
            d = j[..., child, :] - j[..., parent, :]
            norm = jnp.linalg.norm(d, axis=-1, keepdims=True)
            degenerate = degenerate | jnp.any((norm[..., 0] < 1e-9) & valid, axis=1)
            out[child] = out[parent] + d / jnp.maximum(norm, 1e-9) * length
        j = jnp.stack(out, axis=-2)
    if ground != "none":
        lows = ground_offset(j, ankle_height, per_frame=True, xp=jnp)  # (B, T)
        if ground == "clip":
            lows = jnp.broadcast_to(jnp.min(jnp.where(valid, lows, jnp.inf), axis=1, keepdims=True), lows.shape)
        j = j.at[..., 2].add(-lows[..., None])
    return j, swap & valid, degenerate


def reference_from_qpos(humanoid: Humanoid, qpos: np.ndarray, fps: float, targets: np.ndarray | None = None
                        ) -> ReferenceMotion:
    """One motion's `ReferenceMotion` from its joint angles qpos (T, nq); `targets` (T, 17, 3): the joints the IK
    aimed at, for its error."""
    return references_from_qpos(humanoid, np.asarray(qpos)[None], [len(qpos)], fps,
                                None if targets is None else np.asarray(targets)[None])[0]


def retarget(humanoid: Humanoid, motion: Motion, cfg: RetargetConfig = RetargetConfig()) -> ReferenceMotion:
    """A `Motion` (H36M-17 world joints) -> the humanoid's `ReferenceMotion` at `cfg.fps`."""
    joints, _ = prepare_joints(humanoid, motion, cfg)
    qpos = humanoid_inverse_kinematics(humanoid, joints, cfg.ik)
    return reference_from_qpos(humanoid, qpos, cfg.fps, joints)


def references_from_qpos(humanoid: Humanoid, qpos: np.ndarray, lengths, fps: float, targets=None
                         ) -> list[ReferenceMotion]:
    """The `ReferenceMotion` of every motion of a padded batch qpos (B, T, nq) whose motion i has lengths[i] frames
    (targets: (B, T, 17, 3) or None), with the kinematics and the velocities in one pass over the batch: motion by
    motion they cost about 1,500 small ops each (at 120 takes, most of a round's host time on a CPU). A frame's
    values do not depend on the batch (checked bit for bit); the pass runs op by op, not jitted, because a fused
    program rounds differently (up to 2e-5 in the quaternions) and the imitator's training amplifies any change."""
    tree = kinematic_tree(humanoid)
    q = jnp.asarray(qpos, jnp.float32)
    pos, rot = body_transforms(tree, q)
    joints, quat = site_positions(tree, pos, rot), matrix_to_quat(rot)
    qvels = qpos_to_qvel_many(qpos, lengths, fps, humanoid.hinge_qpos_adr, humanoid.hinge_dof_adr, humanoid.nv)
    errors = (np.asarray(jnp.linalg.norm(joints - jnp.asarray(targets, jnp.float32), axis=-1))
              if targets is not None else None)
    # One transfer per array, then numpy slices: per-motion device slices were a few hundred more dispatched ops.
    q, pos, joints, quat = (np.asarray(x) for x in (q, pos, joints, quat))
    refs = []
    for i, (n, qvel) in enumerate(zip(lengths, qvels)):
        err = jnp.asarray(errors[i, :n]).mean(-1) if errors is not None else jnp.zeros(n)
        refs.append(ReferenceMotion(qpos=jnp.asarray(q[i, :n]), qvel=jnp.asarray(qvel, jnp.float32),
                                    joints=jnp.asarray(joints[i, :n]), body_pos=jnp.asarray(pos[i, :n]),
                                    body_quat=jnp.asarray(quat[i, :n]), ik_error=err, fps=float(fps)))
    return refs


def retarget_many(humanoid: Humanoid, motions, cfg: RetargetConfig = RetargetConfig(),
                  mesh: jax.sharding.Mesh | None = None) -> list[ReferenceMotion]:
    """Retarget several motions with one batched IK call (padded to the longest; split over `mesh`'s devices); with
    `cfg.prepare="device"`, their preparation is one program over the padded batch too (`prepare_padded`)."""
    if cfg.prepare == "device":
        batch, lengths = _prepare_on_device(humanoid, motions, cfg)
    else:
        prepared = [prepare_joints(humanoid, m, cfg)[0] for m in motions]
        t_max = max(len(p) for p in prepared)
        batch = np.stack([np.concatenate([p, np.repeat(p[-1:], t_max - len(p), 0)]) for p in prepared])
        lengths = [len(p) for p in prepared]
    qpos = humanoid_inverse_kinematics(humanoid, batch, cfg.ik, mesh)
    return references_from_qpos(humanoid, qpos, lengths, cfg.fps, targets=batch)


@functools.lru_cache(maxsize=8)
def _padded_references_program(humanoid: Humanoid, fps: float):
    """The jitted (qpos (C, T', nq), lengths (C,), targets (C, T', 17, 3), slots (S,), num_frames T) -> (reference
    fields (S, T, ...), each take's mean IK error (C,)) of `retarget_padded`: slot s holds take slots[s]."""
    tree = kinematic_tree(humanoid)
    hinge_adr, hinge_dof = np.asarray(humanoid.hinge_qpos_adr), np.asarray(humanoid.hinge_dof_adr)
    nv = int(humanoid.nv)

    def program(qpos, lengths, targets, slots, num_frames):
        last = jnp.maximum(lengths[:, None] - 1, 0)
        at = lambda x, i: jnp.take_along_axis(x, i.reshape(i.shape + (1,) * (x.ndim - 2)), axis=1)
        # Frames past a take's end repeat its last frame (and its last velocity), as `make_library` pads.
        idx = jnp.minimum(jnp.arange(num_frames)[None, :], last)
        q = at(qpos, idx)
        pos, rot = body_transforms(tree, q)
        joints, quat = site_positions(tree, pos, rot), matrix_to_quat(rot)
        # Central differences as `qpos_to_qvel_many` (one-sided at the ends; zero for a one-frame take).
        nxt, prev = jnp.minimum(idx + 1, last), jnp.maximum(idx - 1, 0)
        steps = (nxt - prev)[..., None]
        span = jnp.where(steps > 0, steps, 1) / fps
        q_next, q_prev = at(qpos, nxt), at(qpos, prev)
        r_next, r_prev = quat_to_matrix(q_next[..., 3:7]), quat_to_matrix(q_prev[..., 3:7])
        angular = so3_log(jnp.einsum("...ji,...jk->...ik", r_prev, r_next))
        qvel = jnp.zeros(q.shape[:2] + (nv,), q.dtype)
        qvel = qvel.at[..., 0:3].set((q_next[..., 0:3] - q_prev[..., 0:3]) / span)
        qvel = qvel.at[..., 3:6].set(angular / span)
        qvel = qvel.at[..., hinge_dof].set((q_next[..., hinge_adr] - q_prev[..., hinge_adr]) / span)
        qvel = jnp.where(steps > 0, qvel, 0.0)
        fields = dict(qpos=q, qvel=qvel, joints=joints, body_pos=pos, body_quat=quat)
        fitted = site_positions(tree, *body_transforms(tree, qpos))
        valid = jnp.arange(qpos.shape[1])[None, :] < lengths[:, None]
        error = jnp.mean(jnp.linalg.norm(fitted - targets, axis=-1), -1)  # (C, T')
        take_error = jnp.sum(jnp.where(valid, error, 0), 1) / jnp.maximum(lengths, 1)
        return {k: v[slots] for k, v in fields.items()}, take_error

    return jax.jit(program, static_argnames=("num_frames",))


def retarget_padded(humanoid: Humanoid, joints: jax.Array, lengths, cfg: RetargetConfig = RetargetConfig(),
                    mesh: jax.sharding.Mesh | None = None, names=None) -> tuple[dict, jax.Array]:
    """`retarget_many` for takes already padded at the control rate, without leaving the device: (B, T, 17, 3) world
    joints whose slot b holds a take of lengths[b] frames (0: an empty slot) -> (the fields of a `ReferenceLibrary`
    of B slots: qpos, qvel, joints, body_pos, body_quat (B, T, ...), each take padded with its last frame, lengths,
    weights; each take's mean IK error in metres (number of takes,)). As `make_library(retarget_many(...),
    num_takes=B)` builds it: the takes first, in their order, then the empty slots as zero-weight copies of the
    first take. Only the takes' frames are solved (the non-empty slots, up to the longest take), in three programs:
    preparation (`prepare_padded`), IK, and the references' kinematics and velocities. What reaches the host is the
    slots' lengths (host values already, in the co-evolution) and per-take flags of refused input. float32
    throughout: equal to `retarget_many` up to float rounding. `names` (B,) name refused takes in errors."""
    lengths = np.asarray(lengths, np.int64)
    joints = jnp.asarray(joints, jnp.float32)
    if joints.ndim != 4 or joints.shape[2:] != (skeleton.NUM_JOINTS, 3) or lengths.shape != joints.shape[:1]:
        raise ValueError(f"retarget_padded needs joints (B, T, {skeleton.NUM_JOINTS}, 3) and lengths (B,), got "
                         f"{joints.shape} and {lengths.shape}")
    takes = np.flatnonzero(lengths > 0)
    if len(takes) == 0:
        raise ValueError("retarget_padded needs at least one take with frames")
    longest = int(lengths.max())
    if longest > joints.shape[1]:
        raise ValueError(f"a take of {longest} frames does not fit joints of {joints.shape[1]} frames")
    num_frames = joints.shape[1]
    joints, take_lengths = joints[takes, :longest], lengths[takes]
    valid = jnp.arange(longest)[None, :] < jnp.asarray(take_lengths)[:, None]
    finite = jnp.all(jnp.isfinite(joints) | ~valid[..., None, None], axis=(1, 2, 3))
    prepared, _, degenerate = prepare_padded(joints, take_lengths,
                                             jnp.asarray(humanoid.shape.bone_lengths, jnp.float32),
                                             float(humanoid.shape.ankle_height), fix_handedness=cfg.fix_handedness,
                                             reset_bone_lengths=cfg.reset_bone_lengths, ground=cfg.ground)
    flags = np.stack([take_lengths < 2, ~np.asarray(finite), np.asarray(degenerate)])  # one small transfer
    for row, problem in zip(flags, ("has fewer than 2 frames (retargeting needs at least 2)",
                                    "holds NaN or infinite joints",
                                    "has a zero-length bone in the input: its direction is undefined")):
        bad = np.flatnonzero(row)
        if len(bad):
            slot = int(takes[bad[0]])
            raise ValueError(f"take {repr(names[slot]) if names is not None else slot} {problem}")
    qpos = solve_on_device(humanoid, prepared, cfg.ik, mesh)
    slots = np.r_[np.arange(len(takes)), np.zeros(len(lengths) - len(takes), np.int64)]
    fields, errors = _padded_references_program(humanoid, float(cfg.fps))(
        qpos, jnp.asarray(take_lengths, jnp.int32), prepared, jnp.asarray(slots, jnp.int32),
        num_frames=num_frames)
    fields.update(lengths=jnp.asarray(take_lengths[slots], jnp.int32),
                  weights=jnp.asarray(np.arange(len(lengths)) < len(takes), jnp.float32))
    return fields, errors


def _prepare_on_device(humanoid: Humanoid, motions, cfg: RetargetConfig) -> tuple[np.ndarray, list[int]]:
    for m in motions:
        _check_frames(m)
    packed = pack_motions(motions, fps=cfg.fps)  # resampling is a no-op at the control rate, the co-evolution's case
    batch, _, degenerate = prepare_padded(packed.joints, packed.lengths,
                                          np.asarray(humanoid.shape.bone_lengths, np.float32),
                                          float(humanoid.shape.ankle_height), fix_handedness=cfg.fix_handedness,
                                          reset_bone_lengths=cfg.reset_bone_lengths, ground=cfg.ground)
    bad = np.flatnonzero(np.asarray(degenerate))
    if len(bad):
        raise ValueError(f"motion {motions[bad[0]].name!r} has a zero-length bone in the input: its direction is "
                         "undefined")
    return np.asarray(batch), [int(n) for n in np.asarray(packed.lengths)]
