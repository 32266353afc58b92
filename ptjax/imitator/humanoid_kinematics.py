"""The humanoid's kinematics in plain jnp: forward kinematics (`humanoid_forward_kinematics`, MuJoCo's body
rotations and H36M sites, cheap to differentiate) and batched, jittable inverse kinematics
(`humanoid_inverse_kinematics`).

The IK fits qpos to H36M-17 joint positions frame by frame with damped Gauss-Newton (Levenberg-Marquardt) steps in
the tangent space of the root orientation, warm-started from the previous frame (so consecutive solutions stay on the
same branch: no flips), with
  - joint limits respected by projecting hinge angles onto their anatomical ranges after every step,
  - a pull toward the previous frame's angles (smoothness) and toward zero for directions the 17 joints cannot see
    (ankle angles, limb twist when a limb is straight),
  - feet kept flat when they are near the floor (the H36M skeleton has no toes, so foot pitch is otherwise unseen).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import parallel, skeleton
from ptjax.geometry import axis_rotation, matrix_to_quat, quat_to_matrix, so3_exp
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

def body_transforms(tree: KinematicTree, qpos: jax.Array, root_rot: jax.Array | None = None,
                    with_hinge_axes: bool = False):
    """qpos (..., nq) -> body origins (..., nb, 3) and rotations (..., nb, 3, 3), as MuJoCo's xpos/xmat.

    `root_rot` (..., 3, 3), when given, replaces the root quaternion qpos[3:7] (for differentiating without the
    quaternion's normalisation). `with_hinge_axes`: also each hinge's world axis (..., nh, 3), in
    `tree.hinge_qpos_adr` order (what a geometric Jacobian needs)."""
    # Run op by op, each hinge's matrix was ~20 dispatched ops; one compiled call builds it from the same cos/sin
    # (element-wise, so the same bits), while the products stay op by op (fused, they round differently).
    hinge = axis_rotation if isinstance(qpos, jax.core.Tracer) else _axis_rotation_compiled
    rots, poss, axes = [], [], {}
    for b, parent in enumerate(tree.body_parent):
        if parent < 0:
            rot = quat_to_matrix(qpos[..., 3:7]) if root_rot is None else root_rot
            pos = qpos[..., 0:3]
        else:
            rot = rots[parent]
            pos = poss[parent] + jnp.einsum("...ij,j->...i", rot, jnp.asarray(tree.body_offset[b], qpos.dtype))
        for axis, adr in tree.body_hinges[b]:
            rot = rot @ hinge(axis, qpos[..., adr])
            if with_hinge_axes:  # a rotation leaves its own axis fixed: the world axis is a column of `rot`
                axes[adr] = rot[..., :, axis]
        rots.append(rot)
        poss.append(pos)
    if with_hinge_axes:
        return (jnp.stack(poss, -2), jnp.stack(rots, -3),
                jnp.stack([axes[int(a)] for a in tree.hinge_qpos_adr], -2))
    return jnp.stack(poss, -2), jnp.stack(rots, -3)


def humanoid_forward_kinematics(tree: KinematicTree, qpos: jax.Array) -> jax.Array:
    """qpos (..., nq) -> H36M-17 joints of the humanoid (..., 17, 3), world frame."""
    return site_positions(tree, *body_transforms(tree, qpos))


def site_positions(tree: KinematicTree, pos: jax.Array, rot: jax.Array) -> jax.Array:
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
    # "autodiff": jax.jacfwd of the residual (the measured figures' IK); "geometric": the same Jacobian in closed
    # form from one kinematics pass (each column a joint's twist: axis x lever arm), solved by Cholesky: ~2.5x
    # faster, the same fits up to float rounding.
    jacobian: str = "autodiff"

    def __post_init__(self):
        if self.jacobian not in ("autodiff", "geometric"):
            raise ValueError(f"IK jacobian must be 'autodiff' or 'geometric', got {self.jacobian!r}")


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


def _inside_derivative(x, lo, hi):
    """d clip(x, lo, hi) / dx as JAX differentiates `jnp.clip` (1 inside, 1/2 on a bound, 0 outside)."""
    return jnp.where((x > lo) & (x < hi), 1.0, jnp.where((x == lo) | (x == hi), 0.5, 0.0))


def _geometric_jacobian(tree: KinematicTree, cfg: IKConfig, ankle_height: float, reg_weight: np.ndarray,
                        foot_bodies: np.ndarray):
    """The IK residual's Jacobian (R, 6 + nh) in closed form, at delta = 0: tangent column m moves every body it
    carries (mask[m]) rigidly with linear velocity lin[m] and angular velocity omega[m] about pivot[m] (root
    translation; root rotation in the body frame; each hinge about its world axis through its body's origin)."""
    adr = tree.hinge_qpos_adr
    nh, nb = len(adr), tree.num_bodies
    hinge_body = np.zeros(nh, int)
    for b, hinges in enumerate(tree.body_hinges):
        for _, a in hinges:
            hinge_body[list(adr).index(a)] = b
    carried = np.zeros((6 + nh, nb), np.float32)   # column m moves body b
    carried[:6] = 1.0
    for b in range(nb):
        a = b
        while a >= 0:
            carried[6 + np.flatnonzero(hinge_body == a), b] = 1.0
            a = tree.body_parent[a]
    body = np.asarray(tree.site_body)
    lo, hi = tree.hinge_range[:, 0], tree.hinge_range[:, 1]

    def jacobian(q, r, pos, rots, axes, joints):
        hinge_rate = _inside_derivative(q[adr], lo, hi)       # the step's clip to the joint limits
        omega = jnp.concatenate([jnp.zeros((3, 3)), r.T, hinge_rate[:, None] * axes])
        lin = jnp.concatenate([jnp.eye(3), jnp.zeros((3 + nh, 3))])
        pivot = jnp.concatenate([jnp.zeros((3, 3)), jnp.broadcast_to(pos[0], (3, 3)), pos[hinge_body]])

        def point_velocity(points, bodies):                    # (P, 3) on bodies (P,) -> (P, 3, M)
            v = lin[None] + jnp.cross(omega[None], points[:, None] - pivot[None])
            return jnp.swapaxes(v * carried[:, bodies].T[..., None], 1, 2)

        j_pos = point_velocity(joints, body).reshape(3 * len(body), -1)
        j_smooth = jnp.zeros((nh, 6 + nh)).at[:, 6:].set(jnp.diag(cfg.smoothness * hinge_rate))
        j_rest = jnp.zeros((nh, 6 + nh)).at[:, 6:].set(jnp.diag(reg_weight * hinge_rate))
        sole = pos[foot_bodies, 2] - ankle_height
        u = (cfg.foot_flat_height - sole) / cfg.foot_flat_height
        w_flat = cfg.foot_flat * jnp.clip(u, 0.0, 1.0)
        dw = (-cfg.foot_flat / cfg.foot_flat_height * _inside_derivative(u, 0.0, 1.0)[:, None]
              * point_velocity(pos[foot_bodies], foot_bodies)[:, 2])                     # (2, M)
        up = rots[foot_bodies, :, 2]
        d_up = jnp.cross(omega[None], up[:, None]) * carried[:, foot_bodies].T[..., None]  # (2, M, 3)
        j_flat = dw[:, None] * up[:, :2, None] + w_flat[:, None, None] * jnp.swapaxes(d_up[..., :2], 1, 2)
        return jnp.concatenate([j_pos, j_smooth, j_rest, j_flat.reshape(-1, 6 + nh)])

    return jacobian


def _make_residual(tree: KinematicTree, cfg: IKConfig, ankle_height: float):
    """The IK's least-squares residual (R,): `residual(delta, qpos, rot, target, prev_hinges)` after a tangent step
    delta (6 + nh) from (qpos, rot); `residual_and_jacobian(q, r, target, prev_hinges)` it and its Jacobian (R, 6 + nh)
    at delta = 0 (by `cfg.jacobian`)."""
    adr = tree.hinge_qpos_adr
    nh = len(adr)
    hinge_body = [b[0] for b in BODIES for _ in b[3]]
    ankle_cols = np.array([i for i, name in enumerate(hinge_body) if name.endswith("foot")])
    foot_bodies = np.array([i for i, b in enumerate(BODIES) if b[0].endswith("foot")])
    reg_weight = np.full(nh, cfg.rest_pull, np.float32)
    reg_weight[ankle_cols] = cfg.ankle_pull

    def joints_at(pos, rots):
        return site_positions(tree, pos, rots)

    def residual_at(q, pos, rots, joints, target, prev_hinges):
        r_pos = (joints - target).ravel()
        r_smooth = cfg.smoothness * (q[adr] - prev_hinges)
        r_rest = reg_weight * q[adr]
        # Level feet near the floor: the x, y components of each foot's up axis.
        sole = pos[foot_bodies, 2] - ankle_height
        w_flat = cfg.foot_flat * jnp.clip((cfg.foot_flat_height - sole) / cfg.foot_flat_height, 0.0, 1.0)
        r_flat = (w_flat[:, None] * rots[foot_bodies, :2, 2]).ravel()
        return jnp.concatenate([r_pos, r_smooth, r_rest, r_flat])

    def residual(delta, qpos, rot, target, prev_hinges):
        q, r = _retract(qpos, rot, delta, tree)
        pos, rots = body_transforms(tree, q, root_rot=r)
        return residual_at(q, pos, rots, joints_at(pos, rots), target, prev_hinges)

    geometric_jacobian = _geometric_jacobian(tree, cfg, ankle_height, reg_weight, foot_bodies)

    def residual_and_jacobian(q, r, target, prev_hinges):
        if cfg.jacobian == "geometric":
            pos, rots, axes = body_transforms(tree, q, root_rot=r, with_hinge_axes=True)
            joints = joints_at(pos, rots)
            return (residual_at(q, pos, rots, joints, target, prev_hinges),
                    geometric_jacobian(q, r, pos, rots, axes, joints))
        zero = jnp.zeros(6 + nh, q.dtype)
        return (residual(zero, q, r, target, prev_hinges),
                jax.jacfwd(residual)(zero, q, r, target, prev_hinges))

    return residual, residual_and_jacobian


def _make_solver(tree: KinematicTree, cfg: IKConfig, ankle_height: float):
    adr = tree.hinge_qpos_adr
    nh = len(adr)
    hinge_body = [b[0] for b in BODIES for _ in b[3]]
    # Knees and elbows: a start bent the anatomical way selects the right twist branch of hip and shoulder (a
    # straight limb's twist is ambiguous, and a wrong branch would pin the hinge at its straight limit).
    bend_cols = np.array([i for i, name in enumerate(hinge_body) if name.endswith(("shin", "forearm"))])
    bend_sign = np.array([1.0 if hinge_body[i].endswith("shin") else -1.0 for i in bend_cols], np.float32)
    residual, residual_and_jacobian = _make_residual(tree, cfg, ankle_height)

    def lm_iterations(qpos, rot, target, prev_hinges, n):
        zero = jnp.zeros(6 + nh, qpos.dtype)

        def body_fn(_, carry):
            q, r, mu = carry
            r0, jac = residual_and_jacobian(q, r, target, prev_hinges)
            jtj = jac.T @ jac
            lhs = jtj + mu * (jnp.diag(jnp.diag(jtj)) + cfg.damping * jnp.eye(6 + nh))
            if cfg.jacobian == "geometric":
                step = -jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(lhs), jac.T @ r0)
            else:
                step = -jnp.linalg.solve(lhs, jac.T @ r0)
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
    qpos = np.asarray(solve_on_device(humanoid, jnp.asarray(joints if batched else joints[None]), cfg, mesh))
    return qpos if batched else qpos[0]


def solve_on_device(humanoid: Humanoid, joints: jax.Array, cfg: IKConfig = IKConfig(),
                    mesh: jax.sharding.Mesh | None = None) -> jax.Array:
    """`humanoid_inverse_kinematics`' batched solve, on the device and unchecked (the caller has validated the
    targets): (B, T, 17, 3) -> qpos (B, T, nq), a device array."""
    if mesh is not None and parallel.num_devices(mesh) == 1:
        mesh = None  # the unsplit program, compiled once for both
    x = jnp.asarray(joints, jnp.float32)
    if mesh is not None:  # a global array: a multi-process job's mesh spans devices this process cannot address
        x = parallel.replicate(x, mesh)
    return _jitted_solver(humanoid, cfg, mesh)(x)
