"""Estimator: model forms, pair making, the training step, prediction, evaluation, checkpoints, world frame."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ptjax import metrics, skeleton
from ptjax import estimator as est
from ptjax.data import TRAIN_CLIPS, load_clips, pack_motions, sample_windows
from ptjax.data.takes import make_takes
from ptjax.estimator import pairs
from ptjax.estimator.model import (BatchNormReLUDropout, TemporalModel, dense_matmul, dropout_keep_mask, pose_net,
                                   traj_net)
from ptjax.estimator.train import update
from ptjax.estimator.world import up_direction


def tiny_config():
    c = est.default_config()
    c.model.filter_widths = (3, 3)
    c.model.channels = 16
    c.model.traj_channels = 16
    c.adversary.pool_size = 8
    c.adversary.hidden = 16
    c.adversary.noise_dim = 8
    c.predict.chunk = 64
    c.optim.steps_per_epoch = 10
    return c


@pytest.fixture(scope="module")
def config():
    return tiny_config()


@pytest.fixture(scope="module")
def buffer():
    return pack_motions(list(load_clips(TRAIN_CLIPS).values()), fps=30.0)


@pytest.fixture(scope="module")
def windows(buffer):
    return sample_windows(jax.random.PRNGKey(3), buffer, 16, 9)


@pytest.fixture(scope="module")
def jit_update():
    return jax.jit(update)


@pytest.fixture(scope="module")
def trained(config, windows, jit_update):
    """A state after a few motion updates (non-trivial BN statistics), and the metrics of each step."""
    state = est.init(jax.random.PRNGKey(0), config)
    history = []
    for _ in range(4):
        state, m = jit_update(state, {"motion": windows})
        history.append(jax.device_get(m))
    return state, history


@pytest.fixture(scope="module")
def heldout_take():
    takes = make_takes(load_clips(["run"]), num_cameras=1)
    return takes[0]


def _params_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


# --- model ----------------------------------------------------------------------------------------------------------

def test_strided_and_dilated_forms_agree():
    model = TemporalModel(num_joints_out=17, filter_widths=(3, 3, 3), channels=24)
    seq = jax.random.normal(jax.random.PRNGKey(0), (1, 40, 17, 2))
    variables = model.init(jax.random.PRNGKey(1), seq[:, :27], strided=True)
    keys = iter(jax.random.split(jax.random.PRNGKey(2), 100))
    stats = jax.tree_util.tree_map(lambda a: jax.random.uniform(next(keys), a.shape, minval=0.5, maxval=1.5),
                                   variables["batch_stats"])
    variables = {"params": variables["params"], "batch_stats": stats}
    dilated = model.apply(variables, seq)[0]                                  # (14, 17, 3)
    windows = jnp.stack([seq[0, i:i + 27] for i in range(seq.shape[1] - 26)])
    strided = model.apply(variables, windows, strided=True)[:, 0]
    assert dilated.shape == strided.shape == (14, 17, 3)
    assert float(jnp.max(jnp.abs(dilated))) > 1e-2
    np.testing.assert_allclose(np.asarray(dilated), np.asarray(strided), atol=1e-5, rtol=0)


def test_bfloat16_products_keep_float32_parameters_and_outputs_close():
    model = TemporalModel(num_joints_out=17, filter_widths=(3, 3), channels=32)
    half = model.clone(compute_dtype="bfloat16")
    windows = jax.random.normal(jax.random.PRNGKey(0), (4, 9, 17, 2))
    variables = model.init(jax.random.PRNGKey(1), windows, strided=True)
    full, mixed = model.apply(variables, windows, strided=True), half.apply(variables, windows, strided=True)
    assert mixed.dtype == jnp.float32
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(half.init(jax.random.PRNGKey(1), windows)))
    scale = float(jnp.max(jnp.abs(full)))
    assert 0 < float(jnp.max(jnp.abs(mixed - full))) < 0.02 * scale   # bf16 rounding, not a different function
    with pytest.raises(ValueError, match="compute_dtype"):
        config = est.default_config()
        config.model.compute_dtype = "float16"
        est.spec_from_config(config)


def test_strided_form_rejects_other_lengths():
    model = TemporalModel(num_joints_out=17, filter_widths=(3, 3), channels=8)
    with pytest.raises(ValueError, match="exactly 9"):
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 10, 17, 2)), strided=True)


# --- pairs ----------------------------------------------------------------------------------------------------------

def test_bone_augmentation_scales_bones_symmetrically(windows):
    factors = pairs.bone_factors(jax.random.PRNGKey(0), 16, (0.9, 1.1), 0.06)
    names = [skeleton.JOINT_NAMES[c] for _, c in skeleton.BONES]
    for left, right in zip(skeleton.LEFT_JOINTS, skeleton.RIGHT_JOINTS):
        i, j = names.index(skeleton.JOINT_NAMES[left]), names.index(skeleton.JOINT_NAMES[right])
        np.testing.assert_array_equal(factors[:, i], factors[:, j])
    assert float(jnp.std(factors)) > 0.01
    scaled = pairs.scale_bones(windows, factors)
    before, after = skeleton.bone_lengths(windows), skeleton.bone_lengths(scaled)
    np.testing.assert_allclose(after, before * factors[:, None, :], rtol=1e-4, atol=1e-6)

    out = pairs.augment_bone_lengths(jax.random.PRNGKey(0), windows, (0.9, 1.1), 0.06)
    np.testing.assert_allclose(skeleton.bone_lengths(out), after, rtol=1e-4, atol=1e-6)
    # Bone directions are kept, and the hips' height follows the legs (feet stay near the ground).
    unit = lambda j: (j[..., 1:, :] - j[..., jnp.array(skeleton.PARENTS[1:]), :]) / skeleton.bone_lengths(j)[..., None]  # noqa: E731
    np.testing.assert_allclose(unit(out), unit(windows), atol=1e-4)
    feet = list(skeleton.FEET)
    ground_before = jnp.min(windows[..., feet, 2], axis=(1, 2))
    ground_after = jnp.min(out[..., feet, 2], axis=(1, 2))
    # Windows in the air (jumps) scale their flight height with the legs; those on the ground stay on it.
    grounded = ground_before < 0.08
    assert bool(jnp.any(grounded))
    assert float(jnp.max(jnp.where(grounded, jnp.abs(ground_after - ground_before), 0.0))) < 0.02


def test_random_camera_pairs_project_and_stay_in_view(config, buffer):
    spec = est.spec_from_config(config)
    motion = sample_windows(jax.random.PRNGKey(7), buffer, 256, 27)
    world = pairs.augment_world(jax.random.PRNGKey(8), motion, spec)
    kp, cam = jax.jit(pairs.random_camera_pairs, static_argnums=2)(jax.random.PRNGKey(9), world, spec)
    assert kp.shape == (256, 27, 17, 2) and cam.shape == (256, 27, 17, 3)
    np.testing.assert_allclose(kp, spec.focal * cam[..., :2] / cam[..., 2:], rtol=1e-5, atol=1e-6)
    assert float(jnp.max(jnp.abs(kp))) <= spec.view_half
    assert float(jnp.min(cam[..., 2])) >= spec.min_depth - 1e-5
    # A camera is a rigid motion: distances between joints are those of the augmented world motion.
    dist = lambda j: jnp.linalg.norm(j[..., :, None, :] - j[..., None, :, :], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dist(cam), dist(world), atol=1e-4)
    # Cameras differ per window: PoseTriplet's ranges put the subject 3.5-6 m away (more when pushed back).
    depth = cam[:, 13, 0, 2]
    assert float(jnp.std(depth)) > 0.3 and float(jnp.min(depth)) > 2.5


def test_update_with_adversarial_camera(config, windows, jit_update):
    state = est.init(jax.random.PRNGKey(1), config)
    real2d = make_takes(load_clips(["walk"]), num_cameras=2)[0].keypoints2d[None, :9].repeat(8, 0)
    new, m = jit_update(state, {"motion": windows, "real2d": jnp.asarray(real2d)})
    assert float(m["adversarial_share"]) == 0.5 and float(m["nonfinite"]) == 0.0
    for key in ("g_loss", "d_loss", "loss_pose", "loss_traj"):
        assert np.isfinite(float(m[key])), key
    assert not _params_equal(new.gcam.params, state.gcam.params)
    assert float(m["d_step"]) == 1.0 and not _params_equal(new.dcam.params, state.dcam.params)
    assert bool(new.pool_filled)
    # D_cam trains every `d_every` steps only.
    newer, m2 = jit_update(new, {"motion": windows, "real2d": jnp.asarray(real2d)})
    assert float(m2["d_step"]) == 0.0 and _params_equal(newer.dcam.params, new.dcam.params)
    assert not _params_equal(newer.gcam.params, new.gcam.params)


def test_update_rejects_bad_batches(config):
    state = est.init(jax.random.PRNGKey(1), config)
    with pytest.raises(ValueError, match="expected"):
        update(state, {"motion": jnp.zeros((4, 27, 17, 3))})
    with pytest.raises(ValueError, match="keys"):
        update(state, {"joints": jnp.zeros((4, 9, 17, 3))})


# --- training step --------------------------------------------------------------------------------------------------

def test_update_is_finite_and_reduces_loss(config):
    state = est.init(jax.random.PRNGKey(0), config)
    motion = sample_windows(jax.random.PRNGKey(4),
                            pack_motions(list(load_clips(["walk", "kick"]).values()), fps=30.0), 32, 9)
    kp, cam = pairs.random_camera_pairs(jax.random.PRNGKey(5), motion, state.spec)
    batch = {"keypoints2d": kp, "joints3d": cam}
    step = jax.jit(update)
    losses = []
    for _ in range(40):
        state, m = step(state, batch)
        losses.append((float(m["loss_pose"]), float(m["loss_traj"])))
    losses = np.array(losses)
    assert np.isfinite(losses).all()
    assert losses[-5:, 0].mean() < 0.8 * losses[:5, 0].mean()
    assert losses[-5:, 1].mean() < losses[:5, 1].mean()
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(state))
    assert int(state.step) == 40 and int(state.skipped_steps) == 0


def test_nan_batch_is_skipped_not_applied(trained, windows, jit_update):
    state, history = trained
    assert all(h["nonfinite"] == 0.0 and np.isfinite(h["loss_pose"]) for h in history)
    bad = windows.at[3, 4, 5, 0].set(jnp.nan)
    new, m = jit_update(state, {"motion": bad})
    assert float(m["nonfinite"]) == 1.0
    assert int(new.skipped_steps) == int(state.skipped_steps) + 1 and int(new.step) == int(state.step) + 1
    assert _params_equal(new.pose.params, state.pose.params)
    assert _params_equal(new.pose.batch_stats, state.pose.batch_stats)
    assert _params_equal(new.traj.opt_state, state.traj.opt_state)
    assert not np.array_equal(new.rng, state.rng)


def test_restart_optimizers_keeps_networks_and_restarts_the_schedule(trained, config, windows, jit_update):
    state, _ = trained
    restarted = est.restart_optimizers(state)
    fresh = est.init(jax.random.PRNGKey(9), config)
    assert int(restarted.step) == 0
    assert _params_equal(restarted.pose.params, state.pose.params)
    assert _params_equal(restarted.pose.batch_stats, state.pose.batch_stats)
    assert _params_equal(restarted.gcam.params, state.gcam.params)
    for a, b in zip(jax.tree_util.tree_leaves(restarted.pose.opt_state), jax.tree_util.tree_leaves(fresh.pose.opt_state)):
        np.testing.assert_array_equal(a, b)  # zero moments, count 0
    # a schedule decayed to zero by many steps comes back to the initial learning rate
    decayed = state.replace(step=jnp.asarray(10_000, jnp.int32))
    _, m = jit_update(est.restart_optimizers(decayed), {"motion": windows})
    assert float(m["lr"]) == pytest.approx(config.optim.lr)


def test_data_parallel_update_matches_single_device(config):
    """pmap over 2 devices (sync BN, pmean of gradients) = one device on the whole batch (no dropout)."""
    c = tiny_config()
    c.model.dropout = 0.0
    state = est.init(jax.random.PRNGKey(0), c)
    motion = sample_windows(jax.random.PRNGKey(4), pack_motions(list(load_clips(["walk"]).values())), 16, 9)
    kp, cam = pairs.random_camera_pairs(jax.random.PRNGKey(5), motion, state.spec)
    single, m1 = jax.jit(update)(state, {"keypoints2d": kp, "joints3d": cam})
    replicated = jax.tree_util.tree_map(lambda x: jnp.stack([x, x]), state)  # one copy per device
    shard = lambda x: x.reshape((2, x.shape[0] // 2) + x.shape[1:])  # noqa: E731
    parallel, m2 = jax.pmap(lambda s, b: update(s, b, axis_name="data"), axis_name="data")(
        replicated, {"keypoints2d": shard(kp), "joints3d": shard(cam)})
    np.testing.assert_allclose(m2["loss_pose"][0], m1["loss_pose"], rtol=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(single.pose), jax.tree_util.tree_leaves(parallel.pose)):
        np.testing.assert_allclose(b[0], a, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(b[0], b[1])


def _reference_bn_relu(x, train, axis_name=None):
    """What the fused op replaces: Flax's BatchNorm (autodiff) and a ReLU."""
    return nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, axis_name=axis_name,
                                name="bn")(x))


def _bn_loss(module, variables, x, target):
    def loss(params, x):
        y, new_vars = module.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                                   mutable=["batch_stats"])
        return jnp.mean((y - target) ** 2 * jnp.arange(1, y.shape[-1] + 1)), (y, new_vars["batch_stats"])
    return loss


class _Fused(nn.Module):
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x):
        return BatchNormReLUDropout(rate=0.0, momentum=0.9, axis_name=self.axis_name, name="bn")(x, train=True)


class _Reference(nn.Module):
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x):
        return _reference_bn_relu(x, True, self.axis_name)


def test_fused_batch_norm_matches_flax_batch_norm_values_gradients_and_statistics():
    """BatchNormReLUDropout (no dropout) = Flax BatchNorm + ReLU: output, gradients of input, scale and bias, and
    the running statistics; also with the batch split over 4 devices (statistics and gradients over the global
    batch) and in eval mode."""
    x = jax.random.normal(jax.random.PRNGKey(0), (32, 6)) * 2.0 + 0.5
    target = jax.random.normal(jax.random.PRNGKey(1), (32, 6))
    fused, reference = _Fused(), _Reference()
    variables = reference.init(jax.random.PRNGKey(2), x)
    variables = {"params": {"bn": {"scale": jnp.linspace(0.5, 1.5, 6), "bias": jnp.linspace(-0.3, 0.3, 6)}},
                 "batch_stats": variables["batch_stats"]}
    assert jax.tree_util.tree_structure(fused.init(jax.random.PRNGKey(2), x)) == jax.tree_util.tree_structure(
        variables)
    grad = lambda module: jax.grad(_bn_loss(module, variables, x, target), argnums=(0, 1), has_aux=True)  # noqa
    (gp_f, gx_f), (y_f, stats_f) = grad(fused)(variables["params"], x)
    (gp_r, gx_r), (y_r, stats_r) = grad(reference)(variables["params"], x)
    np.testing.assert_allclose(y_f, y_r, atol=1e-5)
    np.testing.assert_allclose(gx_f, gx_r, atol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves((gp_f, stats_f)), jax.tree_util.tree_leaves((gp_r, stats_r))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    shard = lambda a: a.reshape((4, a.shape[0] // 4) + a.shape[1:])  # noqa: E731
    def per_device(module):
        return jax.pmap(lambda x, t: jax.grad(_bn_loss(module, variables, x, t), argnums=(0, 1), has_aux=True)(
            variables["params"], x), axis_name="data", devices=jax.devices()[:4])
    (gp_f4, gx_f4), (y_f4, _) = per_device(_Fused("data"))(shard(x), shard(target))
    (gp_r4, gx_r4), (y_r4, _) = per_device(_Reference("data"))(shard(x), shard(target))
    np.testing.assert_allclose(y_f4.reshape(y_r.shape), y_r, atol=1e-5)
    np.testing.assert_allclose(gx_f4, gx_r4, atol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(gp_f4), jax.tree_util.tree_leaves(gp_r4)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    stats = {"bn": {"mean": jnp.linspace(0, 1, 6), "var": jnp.linspace(1, 2, 6)}}
    eval_vars = {"params": variables["params"], "batch_stats": stats}
    y_eval = BatchNormReLUDropout(momentum=0.9).apply({"params": eval_vars["params"]["bn"],
                                                        "batch_stats": stats["bn"]}, x, train=False)
    y_ref = nn.BatchNorm(use_running_average=True, epsilon=1e-5).apply(
        {"params": eval_vars["params"]["bn"], "batch_stats": stats["bn"]}, x)
    np.testing.assert_allclose(y_eval, nn.relu(y_ref), atol=1e-6)


@pytest.mark.parametrize("width", [1, 3])
def test_valid_conv_matches_flax_conv(width):
    """G_cam's convolution as a product: same variables, initialisation and outputs as nn.Conv(padding="VALID")."""
    from ptjax.estimator.adversary import ValidConv1d
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 9, 51))
    ours, flax_conv = ValidConv1d(8, width), nn.Conv(8, (width,), padding="VALID")
    variables = ours.init(jax.random.PRNGKey(1), x)
    reference = flax_conv.init(jax.random.PRNGKey(1), x)
    for a, b in zip(jax.tree_util.tree_leaves(variables), jax.tree_util.tree_leaves(reference)):
        np.testing.assert_array_equal(a, b)
    variables = jax.tree_util.tree_map(lambda v: v + 0.1, variables)  # a non-zero bias too
    np.testing.assert_allclose(ours.apply(variables, x), flax_conv.apply(variables, x), atol=1e-5)


def test_dropout_keep_mask_rate_and_independence():
    for rate in (0.25, 0.1):
        keep = np.asarray(dropout_keep_mask(jax.random.PRNGKey(0), (1000, 300), rate))
        assert keep.shape == (1000, 300) and keep.dtype == bool
        assert abs(1.0 - keep.mean() - rate) < 0.004, (rate, keep.mean())
        # neighbouring elements come from the same random word: they must still be uncorrelated
        assert abs(np.corrcoef(keep[:, :-1].ravel(), keep[:, 1:].ravel())[0, 1]) < 0.01
    other = np.asarray(dropout_keep_mask(jax.random.PRNGKey(1), (1000, 300), 0.25))
    assert (other != keep).mean() > 0.3


def test_custom_matmul_gradient_matches_autodiff():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 5, 7))
    w = jax.random.normal(jax.random.PRNGKey(1), (7, 3))
    loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))  # noqa: E731
    ours = jax.grad(loss(lambda x, w: dense_matmul(x, w, jnp.float32)), argnums=(0, 1))(x, w)
    plain = jax.grad(loss(lambda x, w: x @ w), argnums=(0, 1))(x, w)
    for a, b in zip(ours, plain):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


# --- prediction -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1, 5, 8, 9, 70, 150])
def test_predict_any_length(trained, heldout_take, length):
    state, _ = trained
    kp = np.resize(heldout_take.keypoints2d, (length, 17, 2))  # repeats the take for long lengths
    out = est.predict(state, kp)
    assert out["pose"].shape == (length, 17, 3) and out["trajectory"].shape == (length, 3)
    np.testing.assert_allclose(out["joints3d"], out["pose"] + out["trajectory"][:, None], atol=1e-6)
    np.testing.assert_array_equal(out["pose"][:, 0], 0.0)
    assert all(np.isfinite(v).all() for v in out.values())


def test_predict_matches_training_form_on_padded_windows(trained, heldout_take):
    """Each output frame is the strided (training) model on the edge-padded window centred on it."""
    state, _ = trained
    spec = state.spec
    kp = heldout_take.keypoints2d[:12]
    out = est.predict(state, kp, flip=False)
    padded = np.concatenate([kp[:1].repeat(spec.pad, 0), kp, kp[-1:].repeat(spec.pad, 0)])
    wins = jnp.stack([padded[i:i + spec.receptive_field] for i in range(len(kp))])
    pose = pose_net(spec).apply({"params": state.pose.params, "batch_stats": state.pose.batch_stats},
                                          wins, strided=True)[:, 0]
    root = traj_net(spec).apply({"params": state.traj.params, "batch_stats": state.traj.batch_stats},
                                          wins, strided=True)[:, 0, 0]
    np.testing.assert_allclose(out["pose"], pose - pose[:, :1], atol=1e-5)
    np.testing.assert_allclose(out["trajectory"], root, atol=1e-5)
    # Chunked long sequences equal one pass (chunk 64 vs 4096).
    long_kp = np.resize(heldout_take.keypoints2d, (150, 17, 2))
    one_pass = est.predict(state.replace(spec=dataclasses.replace(spec, chunk=4096)), long_kp)
    np.testing.assert_allclose(est.predict(state, long_kp)["joints3d"], one_pass["joints3d"], atol=1e-5)


@pytest.mark.parametrize("flip", [False, True])
def test_predict_many_matches_predict_per_sequence(trained, heldout_take, flip):
    """Sequences of several lengths (one longer than the 64-frame chunk) lifted together give each one's own lift."""
    state, _ = trained
    seqs = [np.resize(heldout_take.keypoints2d[k:], (n, 17, 2)) for k, n in ((0, 1), (3, 20), (5, 20), (0, 150))]
    many = est.predict_many(state, seqs, flip=flip, max_batch=2)
    for seq, out in zip(seqs, many):
        one = est.predict(state, seq, flip=flip)
        for k in ("pose", "trajectory", "joints3d"):
            assert out[k].shape == one[k].shape
            np.testing.assert_allclose(out[k], one[k], atol=1e-5, err_msg=k)
    with pytest.raises(ValueError, match="non-finite"):
        est.predict_many(state, [seqs[1], np.full((4, 17, 2), np.nan, np.float32)])


@pytest.mark.parametrize("flip", [False, True])
def test_padded_takes_lift_and_score_as_take_by_take(trained, heldout_take, flip):
    """`predict_padded` (the device lift of configs/gpu.py's co-evolution) lifts each take of a padded batch whole:
    the same output as `predict` on its frames, whatever its slot holds past its end; `score_padded` gives
    `evaluate`'s mean over takes."""
    state, _ = trained
    sizes = ((0, 1), (3, 20), (5, 20), (0, 150))
    seqs = [np.resize(heldout_take.keypoints2d[k:], (n, 17, 2)) for k, n in sizes]
    gts = [np.resize(heldout_take.joints_cam[k:], (n, 17, 3)) for k, n in sizes]
    padded = np.full((len(seqs), 160, 17, 2), 7.0, np.float32)  # junk past each take's end: never read
    for i, seq in enumerate(seqs):
        padded[i, :len(seq)] = seq
    lengths = np.array([len(s) for s in seqs])
    out = est.predict_padded(state, padded, lengths, flip=flip, max_batch=3)
    for i, seq in enumerate(seqs):
        one = est.predict(state, seq, flip=flip)
        for k in ("pose", "trajectory", "joints3d"):
            np.testing.assert_allclose(np.asarray(out[k][i, :len(seq)]), one[k], atol=1e-5, err_msg=k)
    takes = [dataclasses.replace(heldout_take, name=f"t{i}", keypoints2d=kp, joints_cam=gt)
             for i, (kp, gt) in enumerate(zip(seqs, gts))]
    gt_padded = np.zeros((len(seqs), 160, 17, 3), np.float32)
    for i, gt in enumerate(gts):
        gt_padded[i, :len(gt)] = gt
    scores = est.score_padded(out["pose"], gt_padded, lengths)
    expected = est.evaluate(state, takes, flip=flip)["mean"]
    for k, v in expected.items():
        assert abs(float(scores[k]) - v) < 1e-3 * max(1.0, abs(v)), k
    with pytest.raises(FloatingPointError, match="take 1"):
        broken = padded.copy()
        broken[1, 4] = np.nan
        est.predict_padded(state, broken, lengths, flip=flip)


def test_flip_tta_is_mirror_equivariant(trained, heldout_take):
    state, _ = trained
    kp = heldout_take.keypoints2d[:20]
    out = est.predict(state, kp, flip=True)
    mirrored = est.predict(state, skeleton.flip_lr(kp, axis=0), flip=True)
    np.testing.assert_allclose(skeleton.flip_lr(mirrored["pose"], axis=0), out["pose"], atol=1e-5)
    np.testing.assert_allclose(mirrored["trajectory"] * np.array([-1, 1, 1]), out["trajectory"], atol=1e-5)
    plain = est.predict(state, kp, flip=False)
    assert np.abs(plain["pose"] - out["pose"]).max() > 1e-4


def test_predict_rejects_bad_input(trained):
    state, _ = trained
    good = np.zeros((10, 17, 2), np.float32)
    with pytest.raises(ValueError, match="16 joints"):
        est.predict(state, good[:, :16])
    with pytest.raises(ValueError, match="coordinates"):
        est.predict(state, np.zeros((10, 17, 3)))
    nan = good.copy()
    nan[4, 2, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        est.predict(state, nan)
    with pytest.raises(ValueError, match="empty"):
        est.predict(state, good[:0])
    with pytest.raises(ValueError, match="pixels"):
        est.predict(state, good + 500.0)
    with pytest.raises(ValueError, match="one sequence"):
        est.predict(state, good[None])


def test_evaluate_scores_with_ptjax_metrics(trained, heldout_take):
    state, _ = trained
    result = est.evaluate(state, [heldout_take])
    row = result["takes"][heldout_take.name]
    pred = est.predict(state, heldout_take.keypoints2d)["pose"]
    joints = list(skeleton.POSETRIPLET16)
    gt = metrics.root_relative(heldout_take.joints_cam)[:, joints]
    assert row["frames"] == len(pred) and result["num_takes"] == 1
    np.testing.assert_allclose(row["mpjpe"], 1000 * float(metrics.mpjpe(pred[:, joints], gt)), rtol=1e-4)
    np.testing.assert_allclose(row["p_mpjpe"], 1000 * float(metrics.p_mpjpe(pred[:, joints], gt)), rtol=1e-4)
    assert row["p_mpjpe"] < row["mpjpe"] and 0 <= row["pck"] <= 1 and 0 <= row["auc"] <= row["pck"]
    assert result["mean"]["mpjpe"] == pytest.approx(row["mpjpe"])
    # Several takes of different lengths, scored together: each row is that take's own score.
    short = dataclasses.replace(heldout_take, name="short", keypoints2d=heldout_take.keypoints2d[:12],
                                joints_cam=heldout_take.joints_cam[:12])
    both = est.evaluate(state, [short, heldout_take])
    assert both["takes"][heldout_take.name] == pytest.approx(row, rel=1e-4)
    short_pred = est.predict(state, short.keypoints2d)["pose"][:, joints]
    np.testing.assert_allclose(both["takes"]["short"]["p_mpjpe"],
                               1000 * float(metrics.p_mpjpe(short_pred, gt[:12])), rtol=1e-4)
    assert both["frames"] == 12 + len(pred)
    with pytest.raises(ValueError, match="at least one"):
        est.evaluate(state, [])


# --- checkpoints ----------------------------------------------------------------------------------------------------

def test_checkpoint_round_trip_and_resume(trained, config, windows, heldout_take, tmp_path, jit_update):
    state, _ = trained
    est.save(str(tmp_path), state, config, step=int(state.step))
    loaded, loaded_config = est.load(str(tmp_path))
    assert loaded.spec == state.spec and loaded_config.model.filter_widths == (3, 3)
    for a, b in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(est.predict(loaded, heldout_take.keypoints2d)["joints3d"],
                                  est.predict(state, heldout_take.keypoints2d)["joints3d"])
    # Resuming continues exactly: the next update from the restored state equals the original's.
    a, ma = jit_update(state, {"motion": windows})
    b, mb = jit_update(loaded, {"motion": windows})
    assert float(ma["loss_pose"]) == float(mb["loss_pose"]) and _params_equal(a.pose.params, b.pose.params)
    assert est.load(str(tmp_path / "checkpoints"))[0].spec == state.spec
    with pytest.raises(FileNotFoundError):
        est.load(str(tmp_path / "nowhere"))


def test_config_validation():
    for key, value, match in [("model.filter_widths", (3, 4), "odd"), ("model.dropout", 1.5, "dropout"),
                              ("model.channels", 0, "channels"), ("loss.pose", "l1", "loss.pose"),
                              ("pairs.bone_scale", (1.2, 0.8), "bone_scale")]:
        c = est.default_config()
        section, name = key.split(".")
        c[section][name] = value
        with pytest.raises(ValueError, match=match):
            est.init(jax.random.PRNGKey(0), c)
    c = est.default_config()
    c.pairs.random_camera = False
    c.pairs.adversarial = False
    with pytest.raises(ValueError, match="at least one"):
        est.spec_from_config(c)


# --- world frame ----------------------------------------------------------------------------------------------------

def test_camera_to_world_is_upright_and_grounded():
    takes = make_takes(load_clips(["walker_0walk_forward"]), num_cameras=4)
    for take in takes:
        world = est.camera_to_world(take.joints_cam)
        assert world.shape == take.joints_cam.shape
        assert world[..., 2].min() == pytest.approx(0.0, abs=1e-6)
        np.testing.assert_allclose(world[0, 0, :2], 0.0, atol=1e-6)
        head, ankles = world[:, skeleton.JOINT_INDEX["Head"], 2], world[:, list(skeleton.FEET), 2].max(-1)
        assert (head > ankles + 1.2).all()
        # Rigid: the body keeps its shape.
        np.testing.assert_allclose(skeleton.bone_lengths(world), skeleton.bone_lengths(take.joints_cam), atol=1e-4)
        # With a prior within the 5-degree agreement cone the clip's own vertical axis is used: up is recovered.
        true_up = take.rotation[2]  # world z in camera coordinates
        tilted = true_up + np.array([0.03, 0.0, 0.0])
        up = up_direction(take.joints_cam, prior=tilted)
        # (the body axis of a walker leans forward a few degrees; PCA recovers up to within that)
        assert np.degrees(np.arccos(np.clip(up @ true_up, -1, 1))) < 6.0
    # Batched over padded takes of different lengths (as the co-evolution's lift runs it): each take as if alone,
    # its padding ignored for the up direction and the ground.
    seqs = [takes[0].joints_cam, takes[1].joints_cam[:50], takes[2].joints_cam[:7]]
    padded = np.stack([np.concatenate([q, np.full((len(seqs[0]) - len(q), 17, 3), 9.0)]) for q in seqs])
    batch = np.asarray(est.camera_to_world_padded(jnp.asarray(padded, jnp.float32),
                                                  jnp.asarray([len(q) for q in seqs])))
    for world, q in zip(batch, seqs):
        np.testing.assert_allclose(world[:len(q)], est.camera_to_world(q), atol=1e-5)
    with pytest.raises(ValueError):
        est.camera_to_world(np.zeros((5, 16, 3)))
