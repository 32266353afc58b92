"""Training state, losses and the single pure update step of the hallucinator.

    state = init(rng, config)
    buffer = make_training_windows(motions, config)          # MotionBuffer at config.fps
    batch = sample_batch(rng, buffer, batch_size, config)     # jittable
    state, metrics = update(state, batch)                     # jittable; axis_name= for data parallelism

A batch holds world windows of W = context + max_transition + 1 frames and a transition length L per window:
frames [0, context) are given, [context, context + L) are generated, frame context + L is the target keyframe
(frames after it are padding and masked out). `update` canonicalises each window at its last context frame,
teacher-forces the context, rolls the generator out autoregressively to the target, and takes one Adam step on
the generator (L1 position / rotation / root / contact losses, foot sliding, LSGAN adversarial terms) and one on
each discriminator (LSGAN), with gradients averaged over `axis_name` when given.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ptjax import checkpoint as ckpt
from ptjax import kinematics as K
from ptjax import skeleton
from ptjax.data import Motion, MotionBuffer, pack_motions
from ptjax.hallucinator import config as config_lib
from ptjax.hallucinator.features import Features, flat_rot6d, unflat_rot6d, window_features
from ptjax.hallucinator.model import STATE_DIM, Generator, MotionDiscriminator

DISCRIMINATORS = ("short", "long")
_IK = jax.jit(K.inverse_kinematics)


@flax.struct.dataclass
class Batch:
    joints: jax.Array        # (B, W, 17, 3) world windows, metres, Z-up
    transition: jax.Array    # (B,) int32 transition length L in [min_transition, max_transition]


@flax.struct.dataclass
class HallucinatorState:
    step: jax.Array                 # () int32
    g_params: Any
    g_opt_state: Any
    d_params: Any                   # {"short": ..., "long": ...}
    d_opt_state: Any
    rng: jax.Array                  # raw uint32 PRNG key
    config: ml_collections.FrozenConfigDict = flax.struct.field(pytree_node=False)


def window_length(config) -> int:
    return int(config.context + config.max_transition + 1)


def generator(config) -> Generator:
    m = config.model
    return Generator(encoder_hidden=m.encoder_hidden, encoder_out=m.encoder_out, lstm_size=m.lstm_size,
                     decoder_hidden=tuple(m.decoder_hidden), fps=float(config.fps), noise_level=m.target_noise,
                     noise_start=m.noise_start, noise_end=m.noise_end,
                     tta_max=float(config.context + config.max_transition), residual=m.residual)


def discriminators(config) -> dict[str, MotionDiscriminator]:
    m = config.model
    windows = m.get("disc_windows", "conv")  # checkpoints of older configs lack the key
    return {"short": MotionDiscriminator(m.short_kernel, tuple(m.disc_hidden), windows),
            "long": MotionDiscriminator(m.long_kernel, tuple(m.disc_hidden), windows)}


def _optimizer(config, lr: float) -> optax.GradientTransformation:
    o = config.optim
    steps = max(int(o.get("decay_steps", 0) or config.train.steps), o.warmup_steps + 1)  # older configs lack it
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=lr if o.warmup_steps == 0 else 0.0, peak_value=lr, warmup_steps=o.warmup_steps,
        decay_steps=steps, end_value=lr * o.final_lr_ratio)
    return optax.chain(optax.clip_by_global_norm(o.grad_clip), optax.add_decayed_weights(o.weight_decay),
                       optax.scale_by_adam(b1=o.b1, b2=o.b2), optax.scale_by_learning_rate(schedule))


def _frames(feats: Features) -> dict[str, jax.Array]:
    """Features (B, T, ...) -> the generator's frame dict (B, T, ...)."""
    return {"rot6d": flat_rot6d(feats.rot), "root": feats.root, "vel": feats.vel, "contact": feats.contact}


def _dummy_inputs(config, batch: int = 1):
    t = window_length(config) - 1
    frame = {"rot6d": jnp.zeros((batch, 102)), "root": jnp.zeros((batch, 3)), "vel": jnp.zeros((batch, 3)),
             "contact": jnp.zeros((batch, 2))}
    xs = (jax.tree_util.tree_map(lambda a: jnp.zeros((t,) + a.shape), frame), jnp.zeros((t,), bool),
          jnp.zeros((t, batch)))
    consts = {"target_rot6d": jnp.zeros((batch, 102)), "target_root": jnp.zeros((batch, 3)),
              "start_rot6d": jnp.zeros((batch, 102)), "start_root": jnp.zeros((batch, 3)),
              "start_step_rot6d": jnp.zeros((batch, 102)), "start_step_root": jnp.zeros((batch, 3)),
              "transition": jnp.zeros((batch,), jnp.int32), "noise": jnp.zeros((batch, config.model.encoder_out))}
    return frame, xs, consts


def init(rng: jax.Array, config: ml_collections.ConfigDict) -> HallucinatorState:
    """Fresh generator and discriminators with their optimiser states."""
    config_lib.validate(config)
    frozen = ml_collections.FrozenConfigDict(config)
    k_g, k_s, k_l, k_state = jax.random.split(rng, 4)
    g_params = generator(frozen).init(k_g, *_dummy_inputs(frozen))["params"]
    dummy = jnp.zeros((1, window_length(frozen), 2 * 17 * 3))
    d_params = {name: d.init(k, dummy)["params"]
                for (name, d), k in zip(discriminators(frozen).items(), (k_s, k_l))}
    return HallucinatorState(
        step=jnp.zeros((), jnp.int32), g_params=g_params,
        g_opt_state=_optimizer(frozen, frozen.optim.lr).init(g_params), d_params=d_params,
        d_opt_state=_optimizer(frozen, frozen.optim.d_lr).init(d_params), rng=k_state, config=frozen)


# --- data -----------------------------------------------------------------------------------------------------------

def min_frames(config) -> int:
    """Shortest motion (at config.fps) that yields one training window."""
    return int(config.context + config.min_transition + 1)


def slerp_quaternions(q0: np.ndarray, q1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) and fractions t (broadcast against (...)) -> (..., 4) along the shorter arc."""
    dot = np.sum(q0 * q1, -1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)
    theta = np.arccos(np.clip(np.abs(dot), 0.0, 1.0))
    sin = np.sin(theta)
    t = np.asarray(t)[..., None]
    small = sin < 1e-6
    safe = np.where(small, 1.0, sin)
    w0 = np.where(small, 1 - t, np.sin((1 - t) * theta) / safe)
    w1 = np.where(small, t, np.sin(t * theta) / safe)
    q = w0 * q0 + w1 * q1
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def resample_rigid(motion: Motion, fps: float) -> Motion:
    """Resample a motion to `fps` in rotation space: SLERP of local joint rotations, linear root, forward kinematics
    with the motion's median bone lengths. (`Motion.resample` interpolates positions linearly, which shortens bones
    between frames of fast rotations -- by up to 10 cm in the 16 fps backflip clip.)"""
    from scipy.spatial.transform import Rotation
    if abs(fps - motion.fps) < 1e-9 or motion.num_frames == 1:
        return Motion(motion.name, fps, motion.joints)
    n_out = int(np.floor(motion.duration * fps + 1e-6)) + 1
    t = np.arange(n_out) / fps * motion.fps
    i0 = np.clip(np.floor(t).astype(int), 0, motion.num_frames - 1)
    i1 = np.clip(i0 + 1, 0, motion.num_frames - 1)
    w = t - i0
    rot, root, lengths = (np.asarray(a, np.float64) for a in _IK(motion.joints))
    q = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_quat().reshape(rot.shape[:-2] + (4,))
    qi = slerp_quaternions(q[i0], q[i1], np.broadcast_to(w[:, None], (n_out, q.shape[1])))
    rot_out = Rotation.from_quat(qi.reshape(-1, 4)).as_matrix().reshape(n_out, -1, 3, 3)
    root_out = (1 - w)[:, None] * root[i0] + w[:, None] * root[i1]
    joints = K.forward_kinematics(rot_out.astype(np.float32), root_out.astype(np.float32),
                                  np.median(lengths, axis=0).astype(np.float32))
    return Motion(motion.name, fps, np.asarray(joints))


def make_training_windows(motions: Sequence[Motion] | dict, config) -> MotionBuffer:
    """Validate motions and pack them at config.fps into a padded `MotionBuffer`, the source `sample_batch` cuts
    training windows from (in co-evolution: the imitated motion; standalone: the bundled clips).

    ValueError for non-finite joints, impossible bone lengths (< 1 mm or > 2 m) and clips too short for one window
    (unless config.data.drop_short, which drops them instead).
    """
    config_lib.validate(config)
    motions = list(motions.values()) if isinstance(motions, dict) else list(motions)
    if not motions:
        raise ValueError("make_training_windows needs at least one motion")
    resampled, short = [], []
    for m in motions:
        if not isinstance(m, Motion):
            raise ValueError(f"expected ptjax.data.Motion objects, got {type(m).__name__}")
        K.check_positions(m.joints, name=f"motion {m.name!r}")
        r = resample_rigid(m, config.fps)
        (resampled if r.num_frames >= min_frames(config) else short).append(r)
    if short and not config.data.drop_short:
        names = ", ".join(f"{m.name!r} ({m.num_frames} frames)" for m in short)
        raise ValueError(f"motion(s) too short for a training window of {min_frames(config)} frames at "
                         f"{config.fps:g} fps (context {config.context} + min_transition {config.min_transition} "
                         f"+ target): {names}; set data.drop_short=True to drop them")
    if not resampled:
        raise ValueError(f"no motion has the {min_frames(config)} frames a training window needs")
    return pack_motions(resampled, fps=config.fps)


def sample_batch(rng: jax.Array, buffer: MotionBuffer, batch_size: int, config) -> Batch:
    """Cut `batch_size` training windows from `buffer` (jittable; batch_size and config are static).

    A take is drawn in proportion to its frames beyond the shortest window raised to `data.take_weight_power`
    (1: every frame alike; 0: every take alike), then a transition length that fits it, then a start. Augmentations:
    with config.data.mirror, half the windows are mirrored left/right; `data.speed_range` (lo, hi) plays each window
    at a speed drawn log-uniformly in [lo, hi] (positions interpolated between frames, bone lengths restored);
    `data.scale_range` scales each window's body and path about the ground origin by a factor in [lo, hi];
    with `data.reverse`, half the windows are played backwards.
    """
    c, lo, hi = config.context, config.min_transition, config.max_transition
    w = window_length(config)
    k_take, k_len, k_start, k_mirror = jax.random.split(rng, 4)
    k_speed, k_scale = jax.random.fold_in(k_len, 1), jax.random.fold_in(k_len, 2)
    speed_lo, speed_hi = config.data.get("speed_range", (1.0, 1.0))
    resampled = (speed_lo, speed_hi) != (1.0, 1.0)
    lengths = buffer.lengths
    weights = jnp.maximum(lengths - (c + lo), 0).astype(jnp.float32)
    power = config.data.get("take_weight_power", 1.0)
    if power != 1.0:
        weights = jnp.where(weights > 0, weights ** power, 0.0)
    take = jax.random.choice(k_take, buffer.num_takes, (batch_size,), p=weights / jnp.sum(weights))
    take_len = lengths[take]
    if resampled:
        speed = jnp.exp(jax.random.uniform(k_speed, (batch_size,), minval=np.log(speed_lo),
                                           maxval=np.log(speed_hi)))
        # A window of n frames at `speed` spans (n - 1) * speed source frames; slow the window down where the take
        # is too short for it.
        speed = jnp.minimum(speed, (take_len - 1) / (c + lo))
        longest = jnp.clip(jnp.floor((take_len - 1) / speed).astype(jnp.int32) - c, lo, hi)
    else:
        longest = jnp.clip(take_len - 1 - c, lo, hi)
    trans = lo + jnp.floor(jax.random.uniform(k_len, (batch_size,)) * (longest - lo + 1)).astype(jnp.int32)
    if resampled:
        max_start = jnp.maximum((take_len - 1) - (c + trans) * speed, 0.0)
        start = jax.random.uniform(k_start, (batch_size,)) * max_start
        position = jnp.clip(start[:, None] + speed[:, None] * jnp.arange(w)[None, :], 0.0,
                            (take_len - 1)[:, None].astype(jnp.float32))
        i0 = jnp.floor(position).astype(jnp.int32)
        i1 = jnp.minimum(i0 + 1, take_len[:, None] - 1)
        frac = (position - i0)[..., None, None]
        joints = (1.0 - frac) * buffer.joints[take[:, None], i0] + frac * buffer.joints[take[:, None], i1]
        # Interpolated positions shorten the bones of fast-turning limbs: restore the take's.
        joints = K.set_bone_lengths(joints, K.bone_lengths(buffer.joints[take, i0[:, 0]])[:, None])
    else:
        max_start = jnp.maximum(take_len - (c + trans + 1), 0)
        start = jnp.floor(jax.random.uniform(k_start, (batch_size,)) * (max_start + 1)).astype(jnp.int32)
        frame = jnp.clip(start[:, None] + jnp.arange(w)[None, :], 0, take_len[:, None] - 1)
        joints = buffer.joints[take[:, None], frame]
    scale_lo, scale_hi = config.data.get("scale_range", (1.0, 1.0))
    if not scale_lo == scale_hi == 1.0:
        joints = joints * jax.random.uniform(k_scale, (batch_size, 1, 1, 1), minval=scale_lo, maxval=scale_hi)
    if config.data.mirror:
        mirror = jax.random.uniform(k_mirror, (batch_size, 1, 1, 1)) < 0.5
        joints = jnp.where(mirror, skeleton.flip_lr(joints, axis=1), joints)
    if config.data.get("reverse", False):
        # The used frames (context + transition + target) backwards; the unused tail holds the new last frame.
        backwards = jax.random.uniform(jax.random.fold_in(k_mirror, 1), (batch_size, 1)) < 0.5
        t = jnp.arange(w)[None, :]
        frame = jnp.where(backwards, jnp.maximum(c + trans[:, None] - t, 0), t)
        joints = jnp.take_along_axis(joints, frame[:, :, None, None], axis=1)
    return Batch(joints=joints, transition=trans)


# --- losses ---------------------------------------------------------------------------------------------------------

def _masked_mean(x: jax.Array, mask: jax.Array, axis_name=None) -> jax.Array:
    """Mean of x (B, T, ...) over entries whose (B, T) mask is set.

    With `axis_name`, the count is averaged over that axis, so the pmean of the per-device results (and of their
    gradients) is the mean over the whole sharded batch, whatever each shard's count.
    """
    m = jnp.reshape(mask, mask.shape + (1,) * (x.ndim - mask.ndim)).astype(x.dtype)
    per_entry = np.prod(x.shape[mask.ndim:]) if x.ndim > mask.ndim else 1
    count = jnp.sum(m) * per_entry
    if axis_name is not None:
        count = jax.lax.pmean(count, axis_name)
    return jnp.sum(x * m) / jnp.maximum(count, 1.0)


def disc_features(joints: jax.Array, fps: float) -> jax.Array:
    """(B, W, 17, 3) canonical joints -> (B, W, 102): positions relative to the root's ground point, velocities."""
    rel = joints - joints[..., :1, :] * jnp.asarray([1.0, 1.0, 0.0])
    vel = jnp.diff(joints, axis=1) * fps
    vel = jnp.concatenate([vel[:, :1], vel], axis=1)
    b, w = joints.shape[:2]
    return jnp.concatenate([rel.reshape(b, w, -1), vel.reshape(b, w, -1)], -1)


def _disc_mask(kernel: int, width: int, context: int, transition: jax.Array) -> jax.Array:
    """(B, width - kernel + 1): windows that end inside the generated part (context .. context + L)."""
    end = jnp.arange(width - kernel + 1)[None, :] + kernel - 1
    return (end >= context) & (end <= context + transition[:, None])


def _sample_noise(rng: jax.Array, batch: int, dim: int, axis_name) -> jax.Array:
    """Per-sample N(0, 1) noise keyed by the sample's global index, so sharding the batch does not change it."""
    offset = 0 if axis_name is None else jax.lax.axis_index(axis_name) * batch
    index = jnp.arange(batch) + offset
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(rng, i), (dim,)))(index)


def rollout(g_params, config, feats: Features, transition: jax.Array, target: dict[str, jax.Array],
            noise: jax.Array, steps: int) -> dict[str, jax.Array]:
    """Teacher-force the context of `feats` (B, >= context, ...) and generate up to frame `steps`.

    target: {rot6d (B, 102), root (B, 3)} of the keyframe at frame context + transition (B,). Returns frames
    1..steps predicted (B, steps, ...), with the decoder's "residual" (B, steps, 105); entries for frames < context
    are the model's one-step predictions.
    """
    c = config.context
    given = _frames(feats)
    have = given["root"].shape[1]
    if have < steps:  # inference: only the context is given; later frames are never read
        given = jax.tree_util.tree_map(
            lambda a: jnp.concatenate([a, jnp.repeat(a[:, -1:], steps - have, axis=1)], axis=1), given)
    xs_frames = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a[:, :steps], 0, 1), given)
    t = jnp.arange(steps)
    is_context = t < c
    tta = ((c + transition)[None, :] - t[:, None]).astype(jnp.float32)
    first = jax.tree_util.tree_map(lambda a: a[:, 0], given)
    consts = {"target_rot6d": target["rot6d"], "target_root": target["root"],
              "start_rot6d": given["rot6d"][:, c - 1], "start_root": given["root"][:, c - 1],
              "start_step_rot6d": given["rot6d"][:, c - 1] - given["rot6d"][:, c - 2],
              "start_step_root": given["root"][:, c - 1] - given["root"][:, c - 2],
              "transition": transition, "noise": noise}
    out = generator(config).apply({"params": g_params}, first, (xs_frames, is_context, tta), consts)
    return jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), out)


def _splice(given: dict, predicted: dict, context: int) -> dict:
    """Whole sequence (B, W, ...): given frames before `context`, predicted frames from it on."""
    return jax.tree_util.tree_map(lambda g, p: jnp.concatenate([g[:, :context], p[:, context - 1:]], axis=1),
                                  given, predicted)


def _generator_loss(g_params, d_params, config, feats: Features, canon: jax.Array, transition: jax.Array,
                    noise: jax.Array, axis_name=None):
    c, fps, w = config.context, float(config.fps), canon.shape[1]
    given = _frames(feats)
    target_index = (c + transition)[:, None]
    target = {k: jnp.take_along_axis(given[k], target_index.reshape((-1, 1) + (1,) * (given[k].ndim - 2)),
                                     axis=1)[:, 0] for k in ("rot6d", "root")}
    pred = rollout(g_params, config, feats, transition, target, noise, w - 1)
    residual = pred.pop("residual")                 # (B, w - 1, 105): the correction of frames 1 .. w - 1
    seq = _splice(given, pred, c)
    rot = unflat_rot6d(seq["rot6d"])
    joints = K.forward_kinematics(rot, seq["root"], feats.lengths[:, None, :])
    frame = jnp.arange(w)[None, :]
    mask = (frame >= c) & (frame <= c + transition[:, None])
    # sqrt(. + eps): a foot that does not move between two frames (padding after the target, an exact analytic
    # in-between) would give the norm a NaN gradient.
    step = jnp.diff(joints[:, :, list(skeleton.FEET)], axis=1)
    foot_speed = jnp.sqrt(jnp.sum(step ** 2, axis=-1) + 1e-12) * fps
    foot_speed = jnp.concatenate([foot_speed[:, :1], foot_speed], axis=1)
    mean = functools.partial(_masked_mean, axis_name=axis_name)
    losses = {
        "position": mean(jnp.abs(joints - canon), mask),
        "rotation": mean(jnp.abs(rot - feats.rot), mask),
        "root": mean(jnp.abs(seq["root"] - feats.root), mask),
        "contact": mean(jnp.abs(seq["contact"] - feats.contact), mask),
        "foot_slide": mean(foot_speed * seq["contact"], mask),
        # Squared size of the correction of the analytic base: the prior that the base is right unless the data
        # say otherwise (0 for residual="state", where the output is the motion itself).
        "residual": (mean(residual ** 2, mask[:, 1:]) if config.model.residual != "state"
                     else jnp.zeros((), residual.dtype)),
    }
    fake = disc_features(joints, fps)
    for name, d in discriminators(config).items():
        s = d.apply({"params": d_params[name]}, fake)
        dm = _disc_mask(d.kernel, w, c, transition)
        losses[f"adv_{name}"] = mean((s - 1.0) ** 2, dm)
    weights = config.loss
    total = (weights.position * losses["position"] + weights.rotation * losses["rotation"]
             + weights.root * losses["root"] + weights.contact * losses["contact"]
             + weights.foot_slide * losses["foot_slide"] + weights.get("residual", 0.0) * losses["residual"]
             + weights.adversarial * (losses["adv_short"] + losses["adv_long"]))
    return total, (losses, jax.lax.stop_gradient(fake))


def _discriminator_loss(d_params, config, real: jax.Array, fake: jax.Array, transition: jax.Array,
                        axis_name=None):
    w, c = real.shape[1], config.context
    mean = functools.partial(_masked_mean, axis_name=axis_name)
    total, metrics = 0.0, {}
    for name, d in discriminators(config).items():
        dm = _disc_mask(d.kernel, w, c, transition)
        s_real = d.apply({"params": d_params[name]}, real)
        s_fake = d.apply({"params": d_params[name]}, fake)
        loss = mean((s_real - 1.0) ** 2, dm) + mean(s_fake ** 2, dm)
        metrics[f"d_{name}"] = loss
        metrics[f"d_{name}_real"] = mean(s_real, dm)
        metrics[f"d_{name}_fake"] = mean(s_fake, dm)
        total = total + loss
    return total, metrics


def prepare(batch: Batch, config) -> tuple[Features, jax.Array]:
    """Canonical features and joints of a batch (anchor: the last context frame)."""
    feats, canon, _, _ = window_features(batch.joints, config.context - 1, float(config.fps),
                                         config.data.contact_speed, config.data.contact_height)
    return feats, canon


def update(state: HallucinatorState, batch: Batch, axis_name=None) -> tuple[HallucinatorState, dict]:
    """One generator step and one discriminator step. Pure and jittable; with `axis_name`, call it under
    pmap / shard_map with the batch split over that axis: gradients and metrics are averaged over it."""
    config = state.config
    rng, k_noise = jax.random.split(state.rng)
    feats, canon = prepare(batch, config)
    noise = _sample_noise(k_noise, batch.joints.shape[0], config.model.encoder_out, axis_name)

    (g_total, (g_losses, fake)), g_grads = jax.value_and_grad(_generator_loss, has_aux=True)(
        state.g_params, state.d_params, config, feats, canon, batch.transition, noise, axis_name)
    real = disc_features(canon, float(config.fps))
    (d_total, d_metrics), d_grads = jax.value_and_grad(_discriminator_loss, has_aux=True)(
        state.d_params, config, real, fake, batch.transition, axis_name)
    metrics = {"g_total": g_total, **g_losses, "d_total": d_total, **d_metrics}
    if axis_name is not None:
        g_grads, d_grads, metrics = jax.lax.pmean((g_grads, d_grads, metrics), axis_name)
    metrics["g_grad_norm"] = optax.tree.norm(g_grads)
    metrics["d_grad_norm"] = optax.tree.norm(d_grads)

    g_updates, g_opt_state = _optimizer(config, config.optim.lr).update(g_grads, state.g_opt_state, state.g_params)
    d_updates, d_opt_state = _optimizer(config, config.optim.d_lr).update(d_grads, state.d_opt_state, state.d_params)
    learned = {"g_params": optax.apply_updates(state.g_params, g_updates), "g_opt_state": g_opt_state,
               "d_params": optax.apply_updates(state.d_params, d_updates), "d_opt_state": d_opt_state}
    # NaN guard: a step whose losses or new parameters are not finite is dropped (the models keep their last good
    # values) and counted in the metric `nonfinite`.
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves((learned, metrics))
                                if jnp.issubdtype(x.dtype, jnp.inexact)]))
    old = {"g_params": state.g_params, "g_opt_state": state.g_opt_state, "d_params": state.d_params,
           "d_opt_state": state.d_opt_state}
    kept = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), learned, old)
    metrics["nonfinite"] = 1.0 - finite.astype(jnp.float32)
    new_state = state.replace(step=state.step + 1, rng=rng, **kept)
    return new_state, metrics


@functools.partial(jax.jit, static_argnames=("batch_size",), donate_argnums=(0,))
def train_step(state: HallucinatorState, buffer: MotionBuffer, batch_size: int):
    """sample_batch + update in one jitted call (single device)."""
    rng, k_batch = jax.random.split(state.rng)
    batch = sample_batch(k_batch, buffer, batch_size, state.config)
    return update(state.replace(rng=rng), batch)


# --- checkpoints ----------------------------------------------------------------------------------------------------

def save(directory: str, state: HallucinatorState, metadata: dict | None = None, max_to_keep: int = 3,
         store: ckpt.CheckpointStore | None = None) -> str:
    """Checkpoint `state` under `directory` at its step (through `store`, a run's open `CheckpointStore` of that
    folder, when given); the config travels in the metadata, so `load` needs none."""
    meta = _jsonable({"config": state.config.to_dict(), **(metadata or {})})
    if store is not None:
        return store.save(int(state.step), state, metadata=meta)
    return ckpt.save(directory, int(state.step), state, metadata=meta, max_to_keep=max_to_keep)


def latest_checkpoint_step(directory: str) -> int | None:
    return ckpt.latest_step(directory)


def load(directory: str, config: ml_collections.ConfigDict | None = None,
         step: int | None = None) -> HallucinatorState:
    """Restore a checkpoint written by `save` (latest step by default)."""
    step = ckpt.latest_step(directory) if step is None else step
    if step is None:
        raise FileNotFoundError(f"no hallucinator checkpoint in {directory!r}")
    if config is None:
        meta = ckpt.load_metadata(directory, step)
        if meta is None or "config" not in meta:
            raise ValueError(f"checkpoint {directory!r} step {step} has no config metadata; pass config=")
        config = ml_collections.ConfigDict(_tuples(meta["config"]))
        config.lock()  # as every config file's
    template = init(jax.random.PRNGKey(0), config)
    state, _ = ckpt.restore(directory, template, step)
    return state


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _tuples(x):
    """JSON lists back to the tuples the config uses."""
    if isinstance(x, dict):
        return {k: _tuples(v) for k, v in x.items()}
    if isinstance(x, list):
        return tuple(_tuples(v) for v in x)
    return x


__all__ = ["Batch", "HallucinatorState", "init", "update", "sample_batch", "make_training_windows", "train_step",
           "save", "load", "rollout", "prepare", "window_length", "STATE_DIM"]
