"""Retargeting between H36M-17 joint positions and humanoid joint angles: batched, jittable IK and FK.

`humanoid_forward_kinematics(tree, qpos)` reproduces MuJoCo's kinematics of the humanoid (body rotations and H36M
sites) in plain jnp, so it is cheap to differentiate. `humanoid_inverse_kinematics` fits qpos to joint positions frame
by frame with damped Gauss-Newton (Levenberg-Marquardt) steps in the tangent space of the root orientation, warm-started
from the previous frame (so consecutive solutions stay on the same branch: no flips), with
  - joint limits respected by projecting hinge angles onto their anatomical ranges after every step,
  - a pull toward the previous frame's angles (smoothness) and toward zero for directions the 17 joints cannot see
    (ankle angles, limb twist when a limb is straight),
  - feet kept flat when they are near the floor (the H36M skeleton has no toes, so foot pitch is otherwise unseen).

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

from ptjax import parallel, skeleton
from ptjax.geometry import axis_rotation, matrix_to_quat, quat_to_matrix, so3_exp, so3_log
from ptjax.data.motion import Motion
from ptjax.imitator.humanoid import BODIES, LEAF_SITES, Humanoid

J = skeleton.JOINT_INDEX


@dataclasses.dataclass(frozen=True)
class KinematicTree:
    """Static tables for jnp forward kinematics of a built humanoid."""
    body_parent: tuple[int, ...]                    # per body (BODIES order), -1 for the pelvis
    body_offset: np.ndarray                         # (nb, 3) body origin in the parent body's frame
    body_hinges: tuple[tuple[tuple[int, int], ...], ...]  # per body: ((axis 0/1/2, qpos address), ...)
    site_body: tuple[int, ...]                      # (17,) body carrying each H36M joint
    site_offset: np.ndarray                         # (17, 3) joint position in that body's frame
    hinge_qpos_adr: np.ndarray                      # (nh,)
    hinge_range: np.ndarray                         # (nh, 2)
    nq: int

    @property
    def num_bodies(self) -> int:
        return len(self.body_parent)


@functools.lru_cache(maxsize=16)
def kinematic_tree(humanoid: Humanoid) -> KinematicTree:
    rest = humanoid.shape.rest_joints()
    names = [b[0] for b in BODIES]
    index = {n: i for i, n in enumerate(names)}
    parents, offsets, hinges = [], [], []
    adr = dict(zip([humanoid.model.actuator(i).name for i in range(humanoid.nu)], humanoid.hinge_qpos_adr))
    for name, parent, j, axes, _ in BODIES:
        parents.append(-1 if parent is None else index[parent])
        offsets.append(np.zeros(3) if parent is None else rest[j] - rest[BODIES[index[parent]][2]])
        hinges.append(tuple(("xyz".index(a), int(adr[f"{name}_{a}"])) for a in axes))
    site_body, site_offset = [], []
    for j in range(17):
        if j in LEAF_SITES:
            b = index[LEAF_SITES[j]]
            site_body.append(b)
            site_offset.append(rest[j] - rest[BODIES[b][2]])
        else:
            site_body.append(next(i for i, body in enumerate(BODIES) if body[2] == j))
            site_offset.append(np.zeros(3))
    return KinematicTree(tuple(parents), np.array(offsets), tuple(hinges), tuple(site_body), np.array(site_offset),
                         np.asarray(humanoid.hinge_qpos_adr), np.asarray(humanoid.hinge_range), humanoid.nq)


_axis_rotation_compiled = jax.jit(axis_rotation, static_argnums=0)


# --- forward kinematics ----------------------------------------------------------------------------------------------

def body_transforms(tree: KinematicTree, qpos: jax.Array, root_rot: jax.Array | None = None
                    ) -> tuple[jax.Array, jax.Array]:
    """qpos (..., nq) -> body origins (..., nb, 3) and rotations (..., nb, 3, 3), as MuJoCo's xpos/xmat.

    `root_rot` (..., 3, 3), when given, replaces the root quaternion qpos[3:7] (for differentiating without the
    quaternion's normalisation)."""
    # Run op by op, each hinge's matrix was ~20 dispatched ops; one compiled call builds it from the same cos/sin
    # (element-wise, so the same bits), while the products stay op by op (fused, they round differently).
    hinge = axis_rotation if isinstance(qpos, jax.core.Tracer) else _axis_rotation_compiled
    rots, poss = [], []
    for b, parent in enumerate(tree.body_parent):
        if parent < 0:
            rot = quat_to_matrix(qpos[..., 3:7]) if root_rot is None else root_rot
            pos = qpos[..., 0:3]
        else:
            rot = rots[parent]
            pos = poss[parent] + jnp.einsum("...ij,j->...i", rot, jnp.asarray(tree.body_offset[b], qpos.dtype))
        for axis, adr in tree.body_hinges[b]:
            rot = rot @ hinge(axis, qpos[..., adr])
        rots.append(rot)
        poss.append(pos)
    return jnp.stack(poss, -2), jnp.stack(rots, -3)


def humanoid_forward_kinematics(tree: KinematicTree, qpos: jax.Array) -> jax.Array:
    """qpos (..., nq) -> H36M-17 joints of the humanoid (..., 17, 3), world frame."""
    return _sites(tree, *body_transforms(tree, qpos))


def _sites(tree: KinematicTree, pos: jax.Array, rot: jax.Array) -> jax.Array:
    """Body origins (..., nb, 3) and rotations (..., nb, 3, 3) -> the H36M-17 joints they carry (..., 17, 3)."""
    body = np.asarray(tree.site_body)
    return pos[..., body, :] + jnp.einsum("...jab,jb->...ja", rot[..., body, :, :],
                                          jnp.asarray(tree.site_offset, pos.dtype))


# --- inverse kinematics ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class IKConfig:
    first_frame_iterations: int = 60
    iterations: int = 12
    smoothness: float = 0.03       # residual weight per radian of change from the previous frame
    rest_pull: float = 0.005       # residual weight per radian away from zero (unobservable directions)
    ankle_pull: float = 0.05       # ankle angles are unobservable from 17 joints
    foot_flat: float = 0.3         # feet near the floor are kept level
    foot_flat_height: float = 0.12  # sole height (m) under which a foot counts as near the floor
    damping: float = 1e-3


def _pelvis_rotation(target: jax.Array) -> jax.Array:
    """Root orientation from the hips and spine of a (17, 3) pose (the humanoid's rest pelvis frame is identity)."""
    z = target[J["Spine"]] - target[J["Hip"]]
    z = z / (jnp.linalg.norm(z) + 1e-9)
    y = target[J["LHip"]] - target[J["RHip"]]
    y = y - jnp.dot(y, z) * z
    y = y / (jnp.linalg.norm(y) + 1e-9)
    return jnp.stack([jnp.cross(y, z), y, z], -1)


def _retract(qpos: jax.Array, rot: jax.Array, delta: jax.Array, tree: KinematicTree):
    """Apply a tangent step (3 root translation, 3 root rotation in the body frame, nh hinges); clamp limits.
    The root orientation travels as a matrix: differentiating through quaternion extraction is not smooth."""
    adr = tree.hinge_qpos_adr
    hinges = jnp.clip(qpos[adr] + delta[6:], tree.hinge_range[:, 0], tree.hinge_range[:, 1])
    return qpos.at[0:3].add(delta[0:3]).at[adr].set(hinges), rot @ so3_exp(delta[3:6])


def _orthonormalize(rot: jax.Array) -> jax.Array:
    u, _, vt = jnp.linalg.svd(rot)
    return u @ vt


def _make_solver(tree: KinematicTree, cfg: IKConfig, ankle_height: float):
    adr = tree.hinge_qpos_adr
    nh = len(adr)
    hinge_body = [b[0] for b in BODIES for _ in b[3]]
    ankle_cols = np.array([i for i, name in enumerate(hinge_body) if name.endswith("foot")])
    # Knees and elbows: a start bent the anatomical way selects the right twist branch of hip and shoulder (a
    # straight limb's twist is ambiguous, and a wrong branch would pin the hinge at its straight limit).
    bend_cols = np.array([i for i, name in enumerate(hinge_body) if name.endswith(("shin", "forearm"))])
    bend_sign = np.array([1.0 if hinge_body[i].endswith("shin") else -1.0 for i in bend_cols], np.float32)
    foot_bodies = np.array([i for i, b in enumerate(BODIES) if b[0].endswith("foot")])
    reg_weight = np.full(nh, cfg.rest_pull, np.float32)
    reg_weight[ankle_cols] = cfg.ankle_pull
    body = np.asarray(tree.site_body)
    site_offset = jnp.asarray(tree.site_offset, jnp.float32)

    def residual(delta, qpos, rot, target, prev_hinges):
        q, r = _retract(qpos, rot, delta, tree)
        pos, rots = body_transforms(tree, q, root_rot=r)
        joints = pos[body] + jnp.einsum("jab,jb->ja", rots[body], site_offset)
        r_pos = (joints - target).ravel()
        r_smooth = cfg.smoothness * (q[adr] - prev_hinges)
        r_rest = reg_weight * q[adr]
        # Level feet near the floor: the x, y components of each foot's up axis.
        sole = pos[foot_bodies, 2] - ankle_height
        w_flat = cfg.foot_flat * jnp.clip((cfg.foot_flat_height - sole) / cfg.foot_flat_height, 0.0, 1.0)
        r_flat = (w_flat[:, None] * rots[foot_bodies, :2, 2]).ravel()
        return jnp.concatenate([r_pos, r_smooth, r_rest, r_flat])

    def lm_iterations(qpos, rot, target, prev_hinges, n):
        zero = jnp.zeros(6 + nh, qpos.dtype)

        def body_fn(_, carry):
            q, r, mu = carry
            r0 = residual(zero, q, r, target, prev_hinges)
            jac = jax.jacfwd(residual)(zero, q, r, target, prev_hinges)
            jtj = jac.T @ jac
            step = -jnp.linalg.solve(jtj + mu * (jnp.diag(jnp.diag(jtj)) + cfg.damping * jnp.eye(6 + nh)),
                                     jac.T @ r0)
            q_new, r_new = _retract(q, r, step, tree)
            better = jnp.sum(residual(zero, q_new, r_new, target, prev_hinges) ** 2) < jnp.sum(r0 ** 2)
            return (jnp.where(better, q_new, q), jnp.where(better, r_new, r),
                    jnp.where(better, mu * 0.3, mu * 4.0))

        q, r, _ = jax.lax.fori_loop(0, n, body_fn, (qpos, rot, jnp.asarray(1e-2, qpos.dtype)))
        return q, _orthonormalize(r)

    def cost(q, r, target, prev_hinges):
        return jnp.sum(residual(jnp.zeros(6 + nh, q.dtype), q, r, target, prev_hinges) ** 2)

    def rebent(q):
        """Bend straight knees and elbows by 0.5 rad the anatomical way."""
        cols = adr[bend_cols]
        return q.at[cols].set(bend_sign * jnp.maximum(bend_sign * q[cols], 0.5))

    def solve(targets):
        """targets (T, 17, 3) -> qpos (T, nq)."""
        first = targets[0]
        q0 = rebent(jnp.zeros(tree.nq, targets.dtype).at[0:3].set(first[J["Hip"]]))
        q0, r0 = lm_iterations(q0, _pelvis_rotation(first), first, jnp.zeros(nh, targets.dtype),
                               cfg.first_frame_iterations)

        def step(carry, target):
            q_prev, r_prev = carry
            q = q_prev.at[0:3].add(target[J["Hip"]] - q_prev[0:3])
            # Two starts: the previous solution, and the same with knees and elbows re-bent (escapes a limb
            # pinned at its straight limit by a wrong twist branch); keep the better fit.
            qa, ra = lm_iterations(q, r_prev, target, q_prev[adr], cfg.iterations)
            qb, rb = lm_iterations(rebent(q), r_prev, target, q_prev[adr], cfg.iterations)
            use_b = cost(qb, rb, target, q_prev[adr]) < cost(qa, ra, target, q_prev[adr])
            q, r = jnp.where(use_b, qb, qa), jnp.where(use_b, rb, ra)
            return (q, r), (q, r)

        _, (qs, rs) = jax.lax.scan(step, (q0, r0), targets[1:])
        qs = jnp.concatenate([q0[None], qs], 0)
        rs = jnp.concatenate([r0[None], rs], 0)
        return qs.at[:, 3:7].set(matrix_to_quat(rs))

    return solve


@functools.lru_cache(maxsize=8)
def _jitted_solver(humanoid: Humanoid, cfg: IKConfig, mesh: jax.sharding.Mesh | None = None):
    solver = jax.vmap(_make_solver(kinematic_tree(humanoid), cfg, float(humanoid.shape.ankle_height)))
    return jax.jit(solver if mesh is None else parallel.split_over_devices(solver, mesh))


def humanoid_inverse_kinematics(humanoid: Humanoid, joints: np.ndarray, cfg: IKConfig = IKConfig(),
                                mesh: jax.sharding.Mesh | None = None) -> np.ndarray:
    """Fit qpos to H36M-17 world joints: (T, 17, 3) -> (T, nq), or batched (B, T, 17, 3) -> (B, T, nq); with a
    `mesh`, the batch is split over its devices (each take solved on one; equal up to float rounding)."""
    joints = skeleton.check_joints(joints, name="IK target joints")
    batched = joints.ndim == 4
    if joints.ndim not in (3, 4):
        raise ValueError(f"IK targets must be (T, 17, 3) or (B, T, 17, 3), got {joints.shape}")
    if mesh is not None and parallel.num_devices(mesh) == 1:
        mesh = None  # the unsplit program, compiled once for both
    solver = _jitted_solver(humanoid, cfg, mesh)
    x = jnp.asarray(joints if batched else joints[None], jnp.float32)
    if mesh is not None:  # a global array: a multi-process job's mesh spans devices this process cannot address
        x = parallel.replicate(x, mesh)
    qpos = np.asarray(solver(x))
    return qpos if batched else qpos[0]


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


def knee_bend_score(joints: np.ndarray) -> np.ndarray:
    """(T, 17, 3) -> (T,) how much the knees bend toward the pelvis' facing direction (positive = anatomical).

    A knee sits in front of the hip-ankle line when the leg bends; mirrored (flipped) frames put it behind.
    Straight legs score near zero."""
    j = np.asarray(joints, np.float64)
    right = j[:, J["LHip"]] - j[:, J["RHip"]]
    up = j[:, J["Spine"]] - j[:, J["Hip"]]
    forward = np.cross(right, up)  # right x up with right = +y (left hip - right hip) gives +x forward
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True) + 1e-9
    score = np.zeros(len(j))
    for hip, knee, ankle in ((J["RHip"], J["RKnee"], J["RAnkle"]), (J["LHip"], J["LKnee"], J["LAnkle"])):
        mid = 0.5 * (j[:, hip] + j[:, ankle])
        score += np.sum((j[:, knee] - mid) * forward, -1)
    return score


def fix_handedness(joints: np.ndarray, threshold: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Swap left/right labels in frames whose knees bend backward (by more than `threshold` m in sum) when the
    swap makes them bend forward. Returns the repaired joints and the mask of swapped frames."""
    joints = np.asarray(joints)
    swapped_joints = joints[:, list(skeleton.FLIP_PERMUTATION)]
    score, swapped_score = knee_bend_score(joints), knee_bend_score(swapped_joints)
    swap = (score < -threshold) & (swapped_score > threshold)
    return np.where(swap[:, None, None], swapped_joints, joints), swap


def ground_offset(joints: np.ndarray, ankle_height: float, per_frame: bool = False) -> np.ndarray:
    """Height to subtract so the lowest contact point touches z = 0: soles (ankle - ankle_height), hands, knees,
    head and pelvis (minus their approximate radii). Per clip (keeps jumps) or per frame (PoseTriplet's choice for
    noisy estimates)."""
    j = np.asarray(joints)
    lows = [j[..., J["RAnkle"], 2] - ankle_height, j[..., J["LAnkle"], 2] - ankle_height,
            j[..., J["RWrist"], 2] - 0.05, j[..., J["LWrist"], 2] - 0.05,
            j[..., J["RKnee"], 2] - 0.05, j[..., J["LKnee"], 2] - 0.05,
            j[..., J["Head"], 2] - 0.1, j[..., J["Hip"], 2] - 0.09]
    lowest = np.min(np.stack(lows, -1), -1)
    return lowest if per_frame else np.min(lowest, -1, keepdims=True)


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

    def __post_init__(self):
        if self.ground not in ("clip", "frame", "none"):
            raise ValueError(f"ground must be 'clip', 'frame' or 'none', got {self.ground!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


def prepare_joints(humanoid: Humanoid, motion: Motion, cfg: RetargetConfig = RetargetConfig()):
    """The preprocessing half of `retarget`: resampled, repaired, bone-reset, grounded joints (T, 17, 3)."""
    if motion.num_frames < 2:
        raise ValueError(f"motion {motion.name!r} has {motion.num_frames} frame(s); retargeting needs at least 2")
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
    joints, quat = _sites(tree, pos, rot), matrix_to_quat(rot)
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
    """Retarget several motions with one batched IK call (padded to the longest; split over `mesh`'s devices)."""
    prepared = [prepare_joints(humanoid, m, cfg)[0] for m in motions]
    t_max = max(len(p) for p in prepared)
    batch = np.stack([np.concatenate([p, np.repeat(p[-1:], t_max - len(p), 0)]) for p in prepared])
    qpos = humanoid_inverse_kinematics(humanoid, batch, cfg.ik, mesh)
    return references_from_qpos(humanoid, qpos, [len(p) for p in prepared], cfg.fps, targets=batch)
