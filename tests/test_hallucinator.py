"""Hallucinator (tiny config): the update step learns and stays finite, data parallelism matches one device,
sampling and in-betweening keep lengths and bone lengths, bad input is refused, checkpoints round-trip, CLI runs."""

import json
import os

import jax
import numpy as np
import pytest

import ptjax.hallucinator as H
from ptjax import kinematics as K
from ptjax import skeleton
from ptjax.data import HELDOUT_CLIPS, Motion, load_clips
from ptjax.hallucinator.evaluate import eval_windows, interpolation_baseline
from ptjax.hallucinator.train import resample_rigid



@pytest.fixture(scope="module")
def config():
    return H.tiny_config()


@pytest.fixture(scope="module")
def motions(config):
    return load_clips(config.data.clips)     # the clips `ptjax hallucinate train` uses with this config


@pytest.fixture(scope="module")
def buffer(config, motions):
    return H.make_training_windows(motions, config)


@pytest.fixture(scope="module")
def update_fn():
    return jax.jit(H.update)


@pytest.fixture(scope="module")
def trained(config, buffer):
    """A state after a few real training steps (shared by the sampling tests)."""
    state = H.init(jax.random.PRNGKey(0), config)
    for _ in range(10):
        state, _ = H.train_step(state, buffer, config.train.batch_size)
    return state


def test_update_is_finite_and_learns(config, buffer, update_fn):
    state = H.init(jax.random.PRNGKey(0), config)
    batch = H.sample_batch(jax.random.PRNGKey(1), buffer, config.train.batch_size, config)
    w = config.context + config.max_transition + 1
    assert batch.joints.shape == (config.train.batch_size, w, 17, 3)
    assert np.all((batch.transition >= config.min_transition) & (batch.transition <= config.max_transition))
    losses = []
    for _ in range(config.train.steps):        # the learning-rate schedule spans train.steps
        state, metrics = update_fn(state, batch)
        losses.append(float(metrics["g_total"]))
        assert all(np.isfinite(float(v)) for v in metrics.values())
    assert int(state.step) == config.train.steps
    # The objective falls (its position term may not: an untrained model is already its analytic base, and the
    # first thing it learns is to stop predicting foot contacts where feet move).
    assert np.mean(losses[-5:]) < 0.85 * np.mean(losses[:5]), losses
    for leaf in jax.tree_util.tree_leaves((state.g_params, state.d_params)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    # Same seed, same result.
    again = H.init(jax.random.PRNGKey(0), config)
    again, m2 = update_fn(again, batch)
    first, m1 = update_fn(H.init(jax.random.PRNGKey(0), config), batch)
    assert float(m1["g_total"]) == float(m2["g_total"])


def test_update_data_parallel_matches_one_device(config, buffer, update_fn):
    devices = jax.devices()[:2]
    assert len(devices) == 2, "conftest forces 4 host devices"
    state = H.init(jax.random.PRNGKey(3), config)
    batch = H.sample_batch(jax.random.PRNGKey(4), buffer, config.train.batch_size, config)
    single, m_single = update_fn(state, batch)
    mesh = jax.sharding.Mesh(np.array(devices), ("data",))
    spec = jax.sharding.PartitionSpec
    sharded = jax.jit(jax.shard_map(lambda s, b: H.update(s, b, axis_name="data"), mesh=mesh,
                                    in_specs=(spec(), spec("data")), out_specs=(spec(), spec()), check_vma=False))
    multi, m_multi = sharded(state, batch)
    np.testing.assert_allclose(float(m_multi["g_total"]), float(m_single["g_total"]), rtol=1e-4)
    for a, b in zip(jax.tree_util.tree_leaves(multi.g_params), jax.tree_util.tree_leaves(single.g_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5)


def test_a_run_cut_short_follows_the_schedule_of_decay_steps(config, buffer, update_fn):
    """train.steps = 8 with optim.decay_steps = the full run's steps takes the full run's first 8 updates (the
    co-evolution trains H for fewer steps per round than the schedule it was tuned with)."""
    batch = H.sample_batch(jax.random.PRNGKey(5), buffer, config.train.batch_size, config)
    cut = H.tiny_config()
    cut.train.steps, cut.optim.decay_steps = 8, config.train.steps
    full_state, cut_state = H.init(jax.random.PRNGKey(0), config), H.init(jax.random.PRNGKey(0), cut)
    cut_update = jax.jit(H.update)
    for _ in range(8):
        full_state, _ = update_fn(full_state, batch)
        cut_state, _ = cut_update(cut_state, batch)
    for a, b in zip(jax.tree_util.tree_leaves(full_state.g_params), jax.tree_util.tree_leaves(cut_state.g_params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_sample_length_and_exact_bone_lengths(trained, buffer, config):
    start = H.start_windows_from(buffer, np.random.default_rng(0), 4, config.context + 2)
    segments = config.sample.num_segments
    motions = H.sample(trained, jax.random.PRNGKey(5), start, target_pool=buffer)
    assert len(motions) == 4
    expected = config.context + segments * config.sample.segment_length
    for m, s in zip(motions, start):
        assert isinstance(m, Motion) and m.fps == config.fps and m.num_frames == expected
        ref = np.asarray(K.bone_lengths(s[-1]))
        np.testing.assert_allclose(np.asarray(K.bone_lengths(m.joints)), np.broadcast_to(ref, (expected, 16)),
                                   atol=1e-5)
        # The first frames are the real context.
        np.testing.assert_allclose(m.joints[:config.context], s[-config.context:], atol=1e-5)
        # The motion continues from the context without a jump.
        step = np.linalg.norm(m.joints[config.context] - m.joints[config.context - 1], axis=-1).max()
        # (tiny config: a 5-frame segment moves a fifth of the way to a target up to 1 m and a whole pose away)
        assert step < 0.5
    other = H.sample(trained, jax.random.PRNGKey(6), start, target_pool=buffer)
    assert not np.allclose(other[0].joints, motions[0].joints)  # the rng matters
    longer = H.sample(trained, jax.random.PRNGKey(5), start, num_segments=segments + 1, target_pool=buffer,
                      return_array=True)
    assert longer.shape == (4, expected + config.sample.segment_length, 17, 3)


def test_target_pools_of_one_size_bucket_share_one_compiled_sampler(trained, motions, config):
    """The co-evolution's target pool (the round's imitated motion) changes length every round: pools padded to
    H.pool_bucket share one compiled sampler (padding that changes no sample: checked bit for bit on the demo's
    and the tiny model when it was introduced)."""
    compiles = []   # lowerings to XLA: one per new program, also when the persistent cache then has the binary
    counting = [True]
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **_: compiles.append(event) if counting[0] and "jaxpr_to_mlir" in event else None)
    poses = np.concatenate([m.joints for m in motions.values()])
    start = H.start_windows_from(motions, np.random.default_rng(0), 2, config.context)
    try:
        assert H.pool_bucket(300) == H.pool_bucket(700) == 1024 and H.pool_bucket(1025) == 2048
        H.sample(trained, jax.random.PRNGKey(0), start, target_pool=poses[:300], return_array=True)
        compiled = len(compiles)
        H.sample(trained, jax.random.PRNGKey(0), start, target_pool=poses[:700], return_array=True)
        assert len(compiles) == compiled            # no new program for a longer pool in the same bucket
    finally:
        counting[0] = False


def test_sample_and_inbetween_refuse_bad_input(trained, buffer, config):
    start = H.start_windows_from(buffer, np.random.default_rng(1), 2, config.context)
    with pytest.raises(ValueError, match="num_segments"):
        H.sample(trained, jax.random.PRNGKey(0), start, num_segments=0)
    with pytest.raises(ValueError, match="segment_length"):
        H.sample(trained, jax.random.PRNGKey(0), start, segment_length=config.max_transition + 5)
    with pytest.raises(ValueError, match="at least context"):
        H.sample(trained, jax.random.PRNGKey(0), start[:, :1])
    bad = start.copy()
    bad[0, 1, 4] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        H.sample(trained, jax.random.PRNGKey(0), bad)
    target = start[:, -1] + np.array([0.3, 0.0, 0.0], np.float32)
    out = H.inbetween(trained, start, target, 4)
    assert out.shape == (2, 4, 17, 3) and np.all(np.isfinite(out))
    np.testing.assert_allclose(np.asarray(K.bone_lengths(out)),
                               np.broadcast_to(np.asarray(K.bone_lengths(start[:, -1]))[:, None], (2, 4, 16)),
                               atol=1e-5)
    with pytest.raises(ValueError, match="max_transition"):
        H.inbetween(trained, start, target, config.max_transition + 1)
    giant = np.asarray(K.set_bone_lengths(target, 2 * np.asarray(K.bone_lengths(target))))
    with pytest.raises(ValueError, match="bone lengths that do not match"):
        H.inbetween(trained, start, giant, 4)
    broken = target.copy()
    broken[1, 2] = broken[1, 1]   # zero-length thigh: impossible keyframe
    with pytest.raises(ValueError, match="impossible bone length"):
        H.inbetween(trained, start, broken, 4)
    with pytest.raises(ValueError, match=r"\(B, 17, 3\)"):
        H.inbetween(trained, start, target[:1], 4)


def test_training_windows_refuse_bad_motions(config, motions):
    short = Motion("short", 30.0, motions["walk"].joints[:4])
    with pytest.raises(ValueError, match="too short.*'short'"):
        H.make_training_windows([motions["walk"], short], config)
    cfg = H.tiny_config()
    cfg.data.drop_short = True
    assert H.make_training_windows([motions["walk"], short], cfg).num_takes == 1
    broken = motions["walk"].joints.copy()
    broken[5, 13] = broken[5, 12]  # zero-length forearm
    with pytest.raises(ValueError, match="impossible bone length"):
        H.make_training_windows([Motion("broken", 30.0, broken)], config)
    nan = motions["walk"].joints.copy()
    nan[3, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        H.make_training_windows([Motion("nan", 30.0, nan)], config)
    with pytest.raises(ValueError, match="at least one"):
        H.make_training_windows([], config)


def test_config_validation():
    for key, value, message in [("context", 1, "context"), ("max_transition", 1, "min_transition"),
                                ("model.encoder_out", 15, "even"), ("optim.lr", 0.0, "lr"),
                                ("sample.segment_length", 99, "segment_length"), ("loss.position", -1.0, "loss"),
                                ("model.residual", "cubic", "residual"), ("sample.max_reach", 1.5, "max_reach"),
                                ("sample.blend_frames", 0, "blend_frames"),
                                ("data.speed_range", (1.2, 0.8), "speed_range"),
                                ("data.scale_range", (0.0, 1.0), "scale_range"),
                                ("data.take_weight_power", -1.0, "take_weight_power"),
                                ("optim.decay_steps", -1, "decay_steps"),
                                ("model.disc_windows", "fft", "disc_windows")]:
        cfg = H.tiny_config()
        section, _, leaf = key.rpartition(".")
        (cfg[section] if section else cfg)[leaf] = value
        with pytest.raises(ValueError, match=message):
            H.init(jax.random.PRNGKey(0), cfg)


@pytest.mark.parametrize("kernel", [2, 10])
def test_discriminator_window_product_is_the_convolution(kernel):
    """`model.disc_windows="product"` must score and train as the convolution does, with the same weights (a checkpoint
    of either form loads into the other), and its kernel gradient inside a scan (the co-evolution's loop)."""
    from ptjax.hallucinator.model import MotionDiscriminator
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 14, 6))
    conv, product = MotionDiscriminator(kernel, (8, 4)), MotionDiscriminator(kernel, (8, 4), "product")
    params, product_params = conv.init(jax.random.PRNGKey(0), x), product.init(jax.random.PRNGKey(0), x)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(product_params)
    for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(product_params)):
        np.testing.assert_array_equal(a, b)  # same initial weights
    np.testing.assert_allclose(product.apply(params, x), conv.apply(params, x), atol=1e-5)
    assert product.apply(params, x).shape == (4, 14 - kernel + 1)

    def scanned_grad(model):
        grad = jax.grad(lambda p: jax.numpy.sum(model.apply(p, x) ** 2))
        return jax.jit(lambda p: jax.lax.scan(lambda c, _: (c, grad(c)), p, None, length=1)[1])(params)
    for a, b in zip(jax.tree_util.tree_leaves(scanned_grad(product)), jax.tree_util.tree_leaves(scanned_grad(conv))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_speed_and_scale_augmentation_keep_windows_real(buffer):
    """Windows played faster or slower and scaled stay inside their take, keep their bones rigid and scale them."""
    cfg = H.tiny_config()
    cfg.data.mirror = False
    plain = H.sample_batch(jax.random.PRNGKey(3), buffer, 64, cfg)
    cfg.data.speed_range, cfg.data.scale_range, cfg.data.take_weight_power = (0.7, 1.4), (0.9, 1.1), 0.0
    augmented = H.sample_batch(jax.random.PRNGKey(3), buffer, 64, cfg)
    assert augmented.joints.shape == plain.joints.shape
    assert np.all(np.isfinite(np.asarray(augmented.joints)))
    lengths = np.asarray(K.bone_lengths(augmented.joints))               # (B, W, 16)
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[:, :1], lengths.shape), atol=1e-4)
    # Scaled bodies: per-window total bone length relative to the takes' own lies in the scale range.
    takes = np.asarray(K.bone_lengths(buffer.joints[:, 0])).sum(-1)      # (takes,)
    total = lengths[:, 0].sum(-1)
    ratio = total[:, None] / takes[None, :]
    assert np.all(np.any((ratio > 0.9 - 1e-3) & (ratio < 1.1 + 1e-3), axis=1))
    assert not np.allclose(total, np.asarray(K.bone_lengths(plain.joints[:, 0])).sum(-1))
    assert np.all(np.asarray(augmented.transition) >= cfg.min_transition)


def test_reverse_augmentation_plays_the_used_frames_backwards():
    """With data.reverse, about half the windows run backwards in time over exactly the frames a window uses
    (context, transition, target), the others forwards: on a ramp every used stretch steps by +1 or -1."""
    from ptjax.data import MotionBuffer
    cfg = H.tiny_config()
    cfg.data.mirror, cfg.data.reverse = False, True
    ramp = np.arange(60, dtype=np.float32)[:, None, None] * np.ones((1, 17, 3), np.float32)
    batch = H.sample_batch(jax.random.PRNGKey(0), MotionBuffer(joints=ramp[None], lengths=np.array([60])), 64, cfg)
    steps = [np.unique(np.diff(row[:cfg.context + t + 1, 0, 0]))
             for row, t in zip(np.asarray(batch.joints), np.asarray(batch.transition))]
    assert all(len(s) == 1 and s[0] in (-1.0, 1.0) for s in steps)
    backwards = sum(s[0] == -1.0 for s in steps)
    assert 16 <= backwards <= 48


def test_resample_keeps_bone_lengths():
    backflip = load_clips(["backflip"])["backflip"]          # 16 fps: fast rotations between frames
    out = resample_rigid(backflip, 30.0)
    assert out.fps == 30.0 and out.num_frames == int(backflip.duration * 30 + 1e-6) + 1
    lengths = np.asarray(skeleton.bone_lengths(out.joints))
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), atol=1e-5)
    np.testing.assert_allclose(out.joints[0], backflip.joints[0], atol=1e-5)


def test_interpolation_baseline_exact_on_linear_motion():
    pose = load_clips(["walk"])["walk"].joints[0]
    step = np.array([0.05, -0.02, 0.0], np.float32)
    seq = np.stack([pose + i * step for i in range(7)])[None]    # constant pose, constant velocity
    out = interpolation_baseline(seq[:, 0], seq[:, -1], 5)
    np.testing.assert_allclose(out, seq[:, 1:6], atol=1e-5)


def test_untrained_model_is_its_hermite_base_which_beats_interpolation(config, motions):
    """The decoder's last layer starts at zero, so an untrained model returns its analytic base exactly; that base
    (leaving the context with its velocity) is already closer to real held-out motion than interpolation."""
    gap, c = 4, config.context
    windows, _ = eval_windows(list(load_clips(HELDOUT_CLIPS).values()), c, gap, config.fps, 3)
    context, target, truth = windows[:, :c], windows[:, c + gap], windows[:, c:c + gap]
    base = H.hermite_baseline(context[:, -2], context[:, -1], target, gap)
    state = H.init(jax.random.PRNGKey(0), config)
    np.testing.assert_allclose(H.inbetween(state, context, target, gap), base, atol=2e-4)
    error = lambda pred: np.mean(np.linalg.norm(pred - truth, axis=-1))
    assert error(base) < 0.9 * error(interpolation_baseline(context[:, -1], target, gap))
    # Constant pose moving at constant velocity: the Hermite curve is the straight line, exactly.
    pose = load_clips(["walk"])["walk"].joints[0]
    seq = np.stack([pose + i * np.array([0.05, -0.02, 0.0], np.float32) for i in range(8)])[None]
    np.testing.assert_allclose(H.hermite_baseline(seq[:, 0], seq[:, 1], seq[:, -1], 5), seq[:, 2:7], atol=1e-5)


def test_checkpoint_round_trip(tmp_path, trained):
    H.save(str(tmp_path), trained)
    restored = H.load(str(tmp_path))
    assert int(restored.step) == int(trained.step)
    assert restored.config == trained.config
    for a, b in zip(jax.tree_util.tree_leaves(restored), jax.tree_util.tree_leaves(trained)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_cli_train_and_sample(tmp_path, capsys):
    from ptjax.cli import main
    workdir = str(tmp_path / "run")
    assert main(["hallucinate", "train", "--config", "configs/hallucinator.py:tiny", "--workdir", workdir]) == 0
    with open(os.path.join(workdir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["steps"] == 30
    gaps = {int(g) for g in metrics["inbetweening"]}
    assert gaps == set(H.tiny_config().train.eval_gaps)
    for r in metrics["inbetweening"].values():
        assert r["windows"] > 0 and np.isfinite(r["model"]["l2p"]) and np.isfinite(r["interpolation"]["l2p"])
    assert metrics["samples"]["bone_length_dev_max_m"] < 1e-4
    assert os.path.isdir(os.path.join(workdir, "tensorboard")) and os.listdir(os.path.join(workdir, "tensorboard"))
    out = str(tmp_path / "s.npz")
    bvh_dir = str(tmp_path / "bvh")
    cfg = H.tiny_config()
    assert main(["hallucinate", "sample", "--workdir", workdir, "--num", str(cfg.sample.num_samples), "--out", out,
                 "--bvh-dir", bvh_dir]) == 0
    data = np.load(out)
    frames = cfg.context + cfg.sample.num_segments * cfg.sample.segment_length
    assert data["joints"].shape == (cfg.sample.num_samples, frames, 17, 3)
    assert len(os.listdir(bvh_dir)) == cfg.sample.num_samples
    assert main(["hallucinate", "sample", "--workdir", str(tmp_path / "nothing")]) == 2
    assert main(["hallucinate", "train", "--config", "configs/hallucinator.py:tiny", "--workdir", workdir,
                 "--config.optim.lr=-1"]) == 2
    assert "optim.lr" in capsys.readouterr().err
