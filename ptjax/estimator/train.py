"""The estimator's train state and its one jitted step: `init(rng, config)` and `update(state, batch, axis_name)`.

One `update` makes 2D-3D pairs on device (pairs.py; random cameras and/or the adversarial camera), trains G_cam
and D_cam (when real 2D windows are given), then PoseNet and TrajNet on the pairs (reference §2.3-2.5):

* PoseNet: MSE (or MPJPE) between the predicted and true root-relative 3D of the window's centre frame.
* TrajNet: VideoPose3D's `weighted_mpjpe` of the root position, weight 1 / true depth.
* G_cam: MSE between D's scores of its projections and of real 2D; D_cam: LSGAN with a history pool, real 2D
  scaled by U(real_scale) per sample, trained every `d_every` steps.
* Adam, lr * (1 - epoch / (num_epochs + 1)) (epoch = optimiser step // steps_per_epoch, floored at 0), gradients
  clipped to global norm `grad_clip`; gradients (and BN statistics) averaged over `axis_name` when given.
* NaN guard: a step whose losses or gradients are not finite changes nothing but the PRNG key and the counters
  (`skipped_steps`, metric `nonfinite`); the driver fails loudly when that repeats. Parameters never become NaN.

Batches (leading axis B per device; T = the receptive field):
* world motion: {"motion": (B, T, 17, 3) world windows, Z-up, metres; optional "real2d": (B_real, T, 17, 2)
  unpaired real 2D windows for D_cam}. Without "real2d" G_cam/D_cam are not trained and the whole batch goes
  through random cameras.
* ready pairs: {"keypoints2d": (B, T, 17, 2) normalised screen, "joints3d": (B, T, 17, 3) camera frame}.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ptjax import detector_noise
from ptjax.estimator import adversary, pairs
from ptjax.estimator.config import Spec, spec_from_config
from ptjax.estimator.model import pose_net, traj_net
from ptjax.parallel import pmean_tree


@flax.struct.dataclass
class NetState:
    params: Any
    batch_stats: Any
    opt_state: Any


@flax.struct.dataclass
class EstimatorState:
    step: jax.Array            # () int32 update count
    pose: NetState             # PoseNet
    traj: NetState             # TrajNet
    gcam: NetState             # G_cam
    dcam: NetState             # D_cam (no batch statistics)
    pool: jax.Array            # (P, 2, 17, 2) history of fake 2D (first and last frame)
    pool_filled: jax.Array     # () bool
    rng: jax.Array             # (2,) uint32 raw PRNG key
    skipped_steps: jax.Array   # () int32 steps dropped by the NaN guard
    spec: Spec = flax.struct.field(pytree_node=False)

    @property
    def receptive_field(self) -> int:
        return self.spec.receptive_field


def lr_schedule(spec: Spec, lr: float):
    """The original's LambdaLR per epoch: lr * (1 - epoch / (num_epochs + 1)), not below 0."""
    def schedule(count):
        epoch = count // spec.steps_per_epoch
        return lr * jnp.maximum(1.0 - epoch / (spec.num_epochs + 1), 0.0)
    return schedule


def optimizer(spec: Spec, lr: float) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(spec.grad_clip),
                       optax.adam(lr_schedule(spec, lr), b1=spec.b1, b2=spec.b2, eps=1e-8))


def _generator(spec: Spec, axis_name=None) -> adversary.CameraGenerator:
    return adversary.CameraGenerator(hidden=spec.hidden, cam_r_range=spec.cam_r_range,
                                     cam_t_range=spec.cam_t_range, bn_axis_name=axis_name)


def _discriminator(spec: Spec) -> adversary.CameraDiscriminator:
    return adversary.CameraDiscriminator(hidden=spec.hidden)


def _net_state(variables, tx) -> NetState:
    params = variables["params"]
    return NetState(params=params, batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params))


def init(rng: jax.Array, config: ml_collections.ConfigDict) -> EstimatorState:
    """A fresh estimator state for `config` (validated; ValueError names a bad field)."""
    spec = spec_from_config(config)
    k_pose, k_traj, k_g, k_d, k_state = jax.random.split(rng, 5)
    rf = spec.receptive_field
    kp = jnp.zeros((1, rf, 17, 2), jnp.float32)
    pose_vars = pose_net(spec).init({"params": k_pose}, kp, train=False, strided=True)
    traj_vars = traj_net(spec).init({"params": k_traj}, kp, train=False, strided=True)
    noise = jnp.zeros((2, spec.noise_dim), jnp.float32)
    g_vars = _generator(spec).init({"params": k_g}, jnp.zeros((2, rf, 17, 3), jnp.float32), noise, noise)
    d_vars = _discriminator(spec).init({"params": k_d}, kp)
    return EstimatorState(
        step=jnp.zeros((), jnp.int32),
        pose=_net_state(pose_vars, optimizer(spec, spec.lr)),
        traj=_net_state(traj_vars, optimizer(spec, spec.lr)),
        gcam=_net_state(g_vars, optimizer(spec, spec.lr_gcam)),
        dcam=_net_state(d_vars, optimizer(spec, spec.lr_dcam)),
        pool=jnp.zeros((spec.pool_size, 2, 17, 2), jnp.float32),
        pool_filled=jnp.zeros((), bool),
        rng=k_state,
        skipped_steps=jnp.zeros((), jnp.int32),
        spec=spec)


def restart_optimizers(state: EstimatorState) -> EstimatorState:
    """The same networks (parameters, BN statistics) with fresh optimiser states: Adam's moments, the learning-rate
    schedule and the step count start again, for training on new data (co-evolution rounds that warm-start E).
    Without it a second training run would continue a schedule already decayed to zero."""
    spec = state.spec

    def fresh(net: NetState, lr: float) -> NetState:
        return net.replace(opt_state=optimizer(spec, lr).init(net.params))

    return state.replace(step=jnp.zeros_like(state.step), pose=fresh(state.pose, spec.lr),
                         traj=fresh(state.traj, spec.lr), gcam=fresh(state.gcam, spec.lr_gcam),
                         dcam=fresh(state.dcam, spec.lr_dcam))


# --- helpers --------------------------------------------------------------------------------------------------------

def _apply_grads(net: NetState, grads, tx, new_batch_stats=None) -> NetState:
    updates, opt_state = tx.update(grads, net.opt_state, net.params)
    return NetState(params=optax.apply_updates(net.params, updates),
                    batch_stats=net.batch_stats if new_batch_stats is None else new_batch_stats,
                    opt_state=opt_state)


def _select(pred, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)


def _check_shape(x, shape, name: str):
    if x.ndim != len(shape) or any(s is not None and a != s for a, s in zip(x.shape, shape)):
        want = "(" + ", ".join("B" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"batch[{name!r}] has shape {tuple(x.shape)}; expected {want}")


def _project_with(rotation, translation, joints, spec: Spec):
    """Camera-axis windows (B, T, 17, 3) through R (B, 3, 3), t (B, 3) -> (2D, camera-frame 3D), kept in view."""
    cam = jnp.einsum("btjc,bdc->btjd", joints, rotation) + translation[:, None, None, :]
    cam = pairs.fit_in_view(cam, spec.focal, spec.view_half, spec.min_depth)
    return pairs.project(cam, spec.focal), cam


# --- the adversarial camera -----------------------------------------------------------------------------------------

def _adversarial_step(state: EstimatorState, rng, windows, real2d, axis_name):
    """Train G_cam (and D_cam every d_every steps) on camera-axis windows (B, T, 17, 3); return its pairs."""
    spec = state.spec
    k_noise, k_pool, k_scale = jax.random.split(rng, 3)
    noise_r, noise_t = jax.random.normal(k_noise, (2, windows.shape[0], spec.noise_dim))
    g_model, d_model = _generator(spec, axis_name), _discriminator(spec)
    d_params = state.dcam.params

    def g_loss_fn(g_params):
        (rotation, translation), new_vars = g_model.apply(
            {"params": g_params, "batch_stats": state.gcam.batch_stats}, windows, noise_r, noise_t,
            mutable=["batch_stats"])
        kp, cam = _project_with(rotation, translation, windows, spec)
        d_fake = d_model.apply({"params": d_params}, kp)
        d_real = d_model.apply({"params": d_params}, real2d)
        return adversary.generator_loss(d_fake, d_real), (kp, cam, new_vars["batch_stats"])

    (g_loss, (kp, cam, g_stats)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.gcam.params)
    g_grads = pmean_tree(g_grads, axis_name)
    gcam = _apply_grads(state.gcam, g_grads, optimizer(spec, spec.lr_gcam), g_stats)
    # The estimator trains on the pairs of G_cam before its update (as the original).
    kp, cam = jax.lax.stop_gradient(kp), jax.lax.stop_gradient(cam)

    fakes, pool, filled = adversary.pool_query(k_pool, state.pool, state.pool_filled, kp[:, jnp.array([0, -1])])
    scale = jax.random.uniform(k_scale, (real2d.shape[0], 1, 1, 1), minval=spec.real_scale[0],
                               maxval=spec.real_scale[1])

    def d_loss_fn(params):
        d_real = d_model.apply({"params": params}, real2d * scale)
        d_fake = d_model.apply({"params": params}, fakes)
        return adversary.discriminator_loss(d_real, d_fake), (d_real, d_fake)

    (d_loss, (d_real, d_fake)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
    d_grads = pmean_tree(d_grads, axis_name)
    d_trained = _apply_grads(state.dcam, d_grads, optimizer(spec, spec.lr_dcam))
    do_d = (state.step % spec.d_every) == 0
    dcam = _select(do_d, d_trained, state.dcam)
    pool, filled = _select(do_d, (pool, filled), (state.pool, state.pool_filled))
    real_acc, fake_acc = adversary.accuracy(d_real, d_fake)
    metrics = {"g_loss": g_loss, "d_loss": d_loss, "d_real_acc": real_acc, "d_fake_acc": fake_acc,
               "d_step": do_d.astype(jnp.float32),
               "g_grad_norm": optax.global_norm(g_grads), "d_grad_norm": optax.global_norm(d_grads)}
    finite = jnp.isfinite(g_loss) & jnp.isfinite(d_loss) & jnp.isfinite(metrics["g_grad_norm"]) & jnp.isfinite(
        metrics["d_grad_norm"])
    return (gcam, dcam, pool, filled), kp, cam, metrics, finite


_ADV_KEYS = ("g_loss", "d_loss", "d_real_acc", "d_fake_acc", "d_step", "g_grad_norm", "d_grad_norm")


# --- pairs ----------------------------------------------------------------------------------------------------------

def _sample_keys(rng: jax.Array, count: int, axis_name=None) -> jax.Array:
    """One key per sample from its index in the global batch (device shards hold consecutive samples), so the
    augmentation and random cameras of a sample do not depend on how many devices share the batch."""
    offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * count
    return jax.vmap(lambda i: jax.random.fold_in(rng, i))(offset + jnp.arange(count))


def make_training_pairs(state: EstimatorState, rng: jax.Array, batch: dict, axis_name=None):
    """Turn a batch into (2D (B, T, 17, 2), camera 3D (B, T, 17, 3), adversarial update or None, metrics, finite)."""
    spec = state.spec
    rf = spec.receptive_field
    if "motion" in batch:
        motion = batch["motion"]
        _check_shape(motion, (None, rf, 17, 3), "motion")
        k_aug, k_cam, k_adv = jax.random.split(rng, 3)
        b = motion.shape[0]
        world = jax.vmap(lambda k, x: pairs.augment_world(k, x[None], spec)[0])(
            _sample_keys(k_aug, b, axis_name), motion)
        real2d = batch.get("real2d")
        n_random = b
        if spec.adversarial and real2d is not None:
            _check_shape(real2d, (None, rf, 17, 2), "real2d")
            n_random = int(round(b * spec.random_camera_fraction)) if spec.random_camera else 0
        kp_list, cam_list = [], []
        if n_random:
            kp, cam = jax.vmap(lambda k, x: tuple(a[0] for a in pairs.random_camera_pairs(k, x[None], spec)))(
                _sample_keys(k_cam, n_random, axis_name), world[:n_random])
            kp_list.append(kp)
            cam_list.append(cam)
        adv_update, metrics, finite = None, {k: jnp.zeros(()) for k in _ADV_KEYS}, jnp.array(True)
        if n_random < b:
            if axis_name is not None:  # the adversarial camera draws per device (not device-count invariant)
                k_adv = jax.random.fold_in(k_adv, jax.lax.axis_index(axis_name))
            adv_update, kp, cam, metrics, finite = _adversarial_step(
                state, k_adv, pairs.camera_axes(world[n_random:]), real2d, axis_name)
            kp_list.append(kp)
            cam_list.append(cam)
        metrics["adversarial_share"] = jnp.asarray((b - n_random) / b, jnp.float32)
        return jnp.concatenate(kp_list), jnp.concatenate(cam_list), adv_update, metrics, finite
    if "keypoints2d" in batch and "joints3d" in batch:
        kp, cam = batch["keypoints2d"], batch["joints3d"]
        _check_shape(kp, (None, rf, 17, 2), "keypoints2d")
        _check_shape(cam, (kp.shape[0], rf, 17, 3), "joints3d")
        metrics = {k: jnp.zeros(()) for k in _ADV_KEYS}
        metrics["adversarial_share"] = jnp.zeros(())
        return kp, cam, None, metrics, jnp.array(True)
    raise ValueError(f"a batch holds 'motion' (+ optional 'real2d') or 'keypoints2d' and 'joints3d'; "
                     f"got keys {sorted(batch)}")


def detector_like_inputs(rng: jax.Array, kp: jax.Array, fraction: float, axis_name=None) -> jax.Array:
    """Give a `fraction` of the 2D windows (B, T, 17, 2) detector-like errors, filled as `ptjax lift` fills them
    (`ptjax.detector_noise`); the 3D targets stay clean, so PoseNet learns to see through the errors."""
    keys = _sample_keys(rng, kp.shape[0], axis_name)
    noisy = jax.vmap(lambda k, x: detector_noise.corrupt_and_fill(k, x[None], detector_noise.DetectorNoise())[0])(
        keys, kp)
    chosen = jax.vmap(lambda k: jax.random.uniform(jax.random.fold_in(k, 1)) < fraction)(keys)
    return jnp.where(chosen[:, None, None, None], noisy, kp)


# --- the step -------------------------------------------------------------------------------------------------------

def pose_loss(pred: jax.Array, target: jax.Array, kind: str) -> jax.Array:
    """pred, target: (B, 17, 3) root-relative."""
    if kind == "mse":
        return jnp.mean((pred - target) ** 2)
    return jnp.mean(jnp.linalg.norm(pred - target, axis=-1))


def traj_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
    """VideoPose3D's weighted_mpjpe of the root: pred, target (B, 3) camera frame, weight 1 / target depth."""
    return jnp.mean(jnp.linalg.norm(pred - target, axis=-1) / target[:, 2])


def update(state: EstimatorState, batch: dict, axis_name: str | None = None):
    """One training step (module docstring). Returns (new state, dict of scalar metrics)."""
    spec = state.spec
    rng, k_pairs, k_drop_pose, k_drop_traj = jax.random.split(state.rng, 4)
    if axis_name is not None:  # different dropout per device shard (pairs are keyed per global sample)
        index = jax.lax.axis_index(axis_name)
        k_drop_pose, k_drop_traj = (jax.random.fold_in(k, index) for k in (k_drop_pose, k_drop_traj))
    kp, cam, adv_update, metrics, finite = make_training_pairs(state, k_pairs, batch, axis_name)
    if spec.detector_noise_fraction > 0:
        kp = detector_like_inputs(jax.random.fold_in(k_pairs, 7), kp, spec.detector_noise_fraction, axis_name)

    centre = cam[:, spec.receptive_field // 2]
    pose_target = centre - centre[:, :1]
    root_target = centre[:, 0]

    def pose_loss_fn(params):
        out, new_vars = pose_net(spec, axis_name).apply(
            {"params": params, "batch_stats": state.pose.batch_stats}, kp, train=True, strided=True,
            rngs={"dropout": k_drop_pose}, mutable=["batch_stats"])
        pred = out[:, 0]
        return pose_loss(pred, pose_target, spec.pose_loss), (new_vars["batch_stats"], pred)

    def traj_loss_fn(params):
        out, new_vars = traj_net(spec, axis_name).apply(
            {"params": params, "batch_stats": state.traj.batch_stats}, kp, train=True, strided=True,
            rngs={"dropout": k_drop_traj}, mutable=["batch_stats"])
        root = out[:, 0, 0]
        return spec.traj_weight * traj_loss(root, root_target), (new_vars["batch_stats"], root)

    (loss_p, (stats_p, pred)), grads_p = jax.value_and_grad(pose_loss_fn, has_aux=True)(state.pose.params)
    (loss_t, (stats_t, root)), grads_t = jax.value_and_grad(traj_loss_fn, has_aux=True)(state.traj.params)
    grads_p, grads_t = pmean_tree(grads_p, axis_name), pmean_tree(grads_t, axis_name)
    pose = _apply_grads(state.pose, grads_p, optimizer(spec, spec.lr), stats_p)
    traj = _apply_grads(state.traj, grads_t, optimizer(spec, spec.lr), stats_t)

    pred_rel = pred - pred[:, :1]
    metrics.update(
        loss_pose=loss_p, loss_traj=loss_t,
        mpjpe=jnp.mean(jnp.linalg.norm(pred_rel - pose_target, axis=-1)) * 1000.0,
        traj_error=jnp.mean(jnp.linalg.norm(root - root_target, axis=-1)) * 1000.0,
        grad_norm_pose=optax.global_norm(grads_p), grad_norm_traj=optax.global_norm(grads_t),
        lr=lr_schedule(spec, spec.lr)(state.step).astype(jnp.float32))
    metrics = pmean_tree(metrics, axis_name)
    finite = (finite & jnp.isfinite(metrics["loss_pose"]) & jnp.isfinite(metrics["loss_traj"])
              & jnp.isfinite(metrics["grad_norm_pose"]) & jnp.isfinite(metrics["grad_norm_traj"]))
    if axis_name is not None:
        finite = jax.lax.pmin(finite.astype(jnp.int32), axis_name).astype(bool)

    new = state.replace(pose=pose, traj=traj)
    if adv_update is not None:
        gcam, dcam, pool, filled = adv_update
        new = new.replace(gcam=gcam, dcam=dcam, pool=pool, pool_filled=filled)
    guarded = _select(finite, new, state)
    metrics["nonfinite"] = (~finite).astype(jnp.float32)
    return guarded.replace(step=state.step + 1, rng=rng,
                           skipped_steps=state.skipped_steps + (~finite).astype(jnp.int32)), metrics


def param_count(state: EstimatorState) -> dict[str, int]:
    count = lambda tree: int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))  # noqa: E731
    return {"pose": count(state.pose.params), "traj": count(state.traj.params),
            "gcam": count(state.gcam.params), "dcam": count(state.dcam.params)}
