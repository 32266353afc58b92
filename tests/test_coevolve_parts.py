"""Co-evolution parts: the sharded estimator and hallucinator steps on 1 and 2 devices, config checks, the replay
of earlier rounds' motion, cuts at fail-safe resets, cold-start walks and lift smoothing. (The round loop and
kill-and-resume are in test_coevolve.py; the two files run on different test workers.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ptjax import coevolve
from ptjax.data import load_clips

from coevolve_common import DEVICES, smoke_config


def _with_motion(co, state):
    """Fill E's and H's training buffer with real clips, as a rollout would."""
    clips = load_clips(["walk", "kick"])
    seqs = [m.resample(co.fps).joints for m in clips.values()]
    return co.place(state.replace(imitated=coevolve.fill_buffer(state.imitated, seqs),
                                  segments=coevolve.fill_buffer(state.segments, seqs)))


def test_one_and_two_devices_take_the_same_estimator_and_hallucinator_steps():
    assert len(jax.devices()) >= DEVICES, "conftest forces 4 host devices"
    results = {}
    for n in (1, DEVICES):
        config = smoke_config(num_devices=n)
        # Random cameras and augmentation are keyed per global sample; the adversarial camera draws per device.
        config.estimator.pairs.adversarial = False
        co = coevolve.CoEvolution.create(config)
        assert co.num_devices == n
        state = _with_motion(co, co.init(jax.random.PRNGKey(0)))
        # Same call sizes as the round driver, so the compiled steps are shared with the run tests. The imitator's
        # sharded update has its own 1-vs-4-device test (test_imitator.py) and is compared across layouts by the
        # two-process test in test_coevolve.py; compiling it here twice more would double this test's time.
        out = {}
        for phase, calls in (("estimator", 2), ("hallucinator", 2)):
            s, metrics = co.steps(state.replace(phase=phase), calls)
            out[phase] = {k: np.asarray(v) for k, v in metrics.items()}
            assert int(s.phase_step) == calls
        results[n] = out
    for phase in ("estimator", "hallucinator"):
        for k, v in results[1][phase].items():
            assert np.all(np.isfinite(v)), (phase, k)
            np.testing.assert_allclose(results[DEVICES][phase][k], v, rtol=2e-3, atol=2e-4, err_msg=f"{phase}/{k}")


def test_learners_are_initialised_as_their_components_initialise_them():
    """Every round re-initialises E and H with compiled initialisers (op by op they cost seconds of host time per
    round); the parameters are bit for bit those of the components' own `init`."""
    from ptjax import estimator as est
    from ptjax import hallucinator as H
    co = coevolve.CoEvolution.create(smoke_config())
    key = jax.random.PRNGKey(5)
    for ours, theirs in ((co.init_estimator(key), est.init(key, co.config.estimator)),
                         (co.init_hallucinator(key), H.init(key, co.config.hallucinator))):
        assert jax.tree_util.tree_structure(ours) == jax.tree_util.tree_structure(theirs)
        for a, b in zip(jax.tree_util.tree_leaves(ours), jax.tree_util.tree_leaves(theirs)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            assert a.dtype == b.dtype and a.weak_type == b.weak_type


def test_bad_configs_are_refused():
    c = smoke_config(num_devices=4)
    c.estimator.train.batch_size = 18
    with pytest.raises(ValueError, match="estimator.train.batch_size"):
        coevolve.CoEvolution.create(c)
    c = smoke_config()
    c.hallucinator.train.steps = 0
    with pytest.raises(ValueError, match="hallucinator.train.steps"):
        coevolve.CoEvolution.create(c)
    c = smoke_config()
    c.data.heldout_clips = ("walk",)
    with pytest.raises(ValueError, match="both splits"):
        coevolve.CoEvolution.create(c)
    with pytest.raises(ValueError, match="num_rounds"):
        coevolve.CoEvolution.create(smoke_config(num_rounds=-1))
    with pytest.raises(ValueError, match="refine_keep"):
        coevolve.CoEvolution.create(smoke_config(refine_keep="all"))
    c = smoke_config()
    c.imitator.retarget.ik_jacobian = "numeric"
    with pytest.raises(ValueError, match="imitator.retarget.ik_jacobian"):
        coevolve.CoEvolution.create(c)
    c = smoke_config()
    c.imitator.retarget.prepare = "gpu"
    with pytest.raises(ValueError, match="imitator.retarget.prepare"):
        coevolve.CoEvolution.create(c)


def test_earlier_rounds_motion_is_replayed_but_never_the_cold_start():
    co = coevolve.CoEvolution.create(smoke_config(replay_rounds=2))
    n, block = len(co.takes), co.imitated_block
    state_buffer = coevolve.empty_buffer(3 * block, co.max_frames, co.fps)

    def motion(value, frames=20):
        return np.full((frames, 17, 3), value, np.float32)

    def blocks(buffer):
        """Per block: the value of each filled slot (None where empty)."""
        joints, lengths = np.asarray(buffer.joints), np.asarray(buffer.lengths)
        return [[float(joints[b * block + i, 0, 0, 0]) if lengths[b * block + i] else None for i in range(block)]
                for b in range(3)]

    def rollouts(value):  # a round's rollouts of the takes, as the rollout phase hands them over
        return coevolve.fill_buffer(coevolve.empty_buffer(n, co.max_frames, co.fps), [motion(value)] * n)

    buffer = co.new_round_motion(state_buffer, rollouts(0.0), 0)
    for r in (1, 2, 3, 4):
        buffer = co.new_round_motion(buffer, rollouts(float(r)), r)
        buffer = coevolve.fill_buffer(buffer, [motion(r + 0.5, 30)], offset=n)   # the round's refined piece
        got = blocks(buffer)
        for b, round_of_block in enumerate((r, r - 1, r - 2)):
            if round_of_block >= 1:  # round 0's walks never come back; the oldest round drops out
                assert got[b] == [float(round_of_block)] * n + [round_of_block + 0.5] + [None] * (block - n - 1)
            else:
                assert got[b] == [None] * block
    with pytest.raises(ValueError, match="replay_rounds"):
        coevolve.CoEvolution.create(smoke_config(replay_rounds=-1))


def test_rollouts_are_cut_at_fail_safe_resets():
    """H's training motion and the refined samples E keeps hold no window across a reset (the body is teleported
    there): a take with resets at frames 10 and 40 of 100 gives the stretches 10-40 and 40-100; the first 10 frames
    are too short to keep. The cut runs on device, from the reset flags, into a buffer of fixed capacity."""
    from ptjax.data import break_free_takes, reset_free_stretches
    seq = np.arange(100, dtype=np.float32)[:, None, None] * np.ones((1, 17, 3), np.float32)
    clean = np.arange(30, dtype=np.float32)[:, None, None] * np.ones((1, 17, 3), np.float32)
    rollouts = coevolve.fill_buffer(coevolve.empty_buffer(3, 100, 30.0), [seq, clean, seq[:20]])
    flags = np.zeros((3, 100), bool)
    flags[0, [10, 40]] = True
    flags[1, 50] = True  # past the take's 30 frames: not a reset of it
    pieces, count = reset_free_stretches(rollouts, jnp.asarray(flags), 27, 4)
    lengths, joints = np.asarray(pieces.lengths), np.asarray(pieces.joints)
    assert int(count) == 3 and list(lengths) == [60, 30, 30, 0]          # longest first, then take and time order
    assert joints[0, 0, 0, 0] == 40 and joints[0, 59, 0, 0] == 99
    assert [joints[1, 0, 0, 0], joints[2, 0, 0, 0]] == [10.0, 0.0]
    for p, n in zip(joints, lengths):  # no jump inside a piece; the padding holds its last frame
        assert np.all(np.diff(p[:n, 0, 0]) == 1) and np.all(p[n:, 0, 0] == p[max(n - 1, 0), 0, 0])
    assert not joints[3].any()
    pieces, count = reset_free_stretches(rollouts, jnp.asarray(flags), 27, 1)   # over capacity: the longest kept
    assert int(count) == 3 and list(np.asarray(pieces.lengths)) == [60]
    whole, count = break_free_takes(rollouts, jnp.asarray(flags), 3)    # the original's rule: whole clean takes
    assert int(count) == 2 and list(np.asarray(whole.lengths)) == [30, 20, 0]


def test_cold_start_trajectories_are_smooth_walks():
    cfg = coevolve.default_config().cold_start
    trajs = coevolve.random_root_trajectories(np.random.default_rng(0), 8, 150, 30.0, cfg)
    for t in trajs:
        speed = np.linalg.norm(np.diff(t["xy"], axis=0), axis=1) * 30.0
        assert speed.max() <= cfg.speed[1] + 1e-6 and np.median(speed) > 0.3
        assert np.all(np.abs(np.diff(t["yaw"])) <= cfg.max_turn_rate / 30.0 + 1e-9)  # no heading jumps
        assert 0.0 <= t["bob"].min() and t["bob"].max() <= 2 * cfg.bob_amplitude[1] + 1e-9
    assert not np.allclose(trajs[0]["xy"], trajs[1]["xy"])


def test_lift_smoothing_removes_depth_jitter_and_keeps_the_motion():
    from scipy.ndimage import gaussian_filter1d
    walk = load_clips(["walk"])["walk"]
    jitter = np.zeros_like(walk.joints)
    jitter[:, :, 1] = 0.05 * (-1.0) ** np.arange(walk.num_frames)[:, None]    # the whole body jumps +-5 cm
    noisy = walk.joints + jitter
    # Two takes padded to one length, as the lift phase batches them: each is filtered over its own frames only.
    short = walk.num_frames // 2
    batch = coevolve.fill_buffer(coevolve.empty_buffer(2, walk.num_frames + 8, walk.fps), [noisy, noisy[:short] + 1.0])

    def smooth(root_s, pose_s):
        return np.asarray(coevolve.smooth_motion(batch.joints, batch.lengths, walk.fps, root_s, pose_s))

    out = smooth(0.1, 0.0)
    first, second = out[0, :walk.num_frames], out[1, :short]
    assert np.abs(first - walk.joints).mean() < 0.4 * np.abs(noisy - walk.joints).mean()
    # The pose relative to the root is untouched when only the root is smoothed, and 0 s changes nothing.
    np.testing.assert_allclose(first - first[:, :1], noisy - noisy[:, :1], atol=1e-6)
    np.testing.assert_allclose(smooth(0.0, 0.0)[0, :walk.num_frames], noisy, atol=1e-6)
    # scipy's Gaussian (mode "nearest") on each take alone: the padding of a shorter take never leaks in.
    for got, seq in ((first, noisy), (second, noisy[:short] + 1.0)):
        root = gaussian_filter1d(seq[:, :1].astype(np.float64), 0.1 * walk.fps, axis=0, mode="nearest")
        np.testing.assert_allclose(got[:, :1], root, atol=1e-5)
    both = smooth(0.1, 0.05)[1, :short]
    rel = gaussian_filter1d((noisy[:short] - noisy[:short, :1]).astype(np.float64), 0.05 * walk.fps, axis=0,
                            mode="nearest")
    np.testing.assert_allclose(both - both[:, :1], rel, atol=1e-5)
    with pytest.raises(ValueError, match="lift_root_smoothing_s"):
        coevolve.CoEvolution.create(smoke_config(lift_root_smoothing_s=-1.0))


def test_lift_builds_the_same_library_on_device_as_on_the_host():
    """With imitator.retarget.prepare="device" (configs/gpu.py), lift runs over the padded takes on the run's device
    mesh (E's prediction from the state's 2D takes, world frame, smoothing, IK, library, diagnostics; no Motion
    objects, no per-take loop): the library and figures the host path builds take by take, up to float rounding."""
    host = coevolve.CoEvolution.create(smoke_config(num_devices=DEVICES))
    state = host.init(jax.random.PRNGKey(3))
    config = smoke_config(num_devices=DEVICES)
    config.imitator.retarget.prepare = "device"
    device = coevolve.CoEvolution.create(config)
    assert device.retarget_on_device and not host.retarget_on_device
    (on_host, info_host), (on_device, info_device) = host.lift(state), device.lift(state)
    a, b = on_host.references, on_device.references
    np.testing.assert_array_equal(np.asarray(b.lengths), np.asarray(a.lengths))
    np.testing.assert_array_equal(np.asarray(b.weights), np.asarray(a.weights))
    assert np.mean(np.abs(np.asarray(b.qpos) - np.asarray(a.qpos))) < 1e-3
    assert np.mean(np.abs(np.asarray(b.joints) - np.asarray(a.joints))) < 1e-3
    assert abs(info_device["ik_error_mm"] - info_host["ik_error_mm"]) < 0.1
    for key in ("train_takes_mpjpe_mm", "train_takes_p_mpjpe_mm"):
        assert abs(info_device[key] - info_host[key]) < 0.05, key


def test_hallucinated_samples_are_drawn_cleaned_up_and_measured_on_device():
    """With sample_on_device (configs/gpu.py), H's samples start from real windows of the imitated segments drawn on
    device, are cleaned up there (bones kept, nothing below ground) and fill `generated`'s first slots; the summary
    equals the host's measures of the same samples against the segments."""
    from ptjax import hallucinator as H
    from ptjax import kinematics as K
    config = smoke_config(num_devices=DEVICES)
    config.sample_on_device = True
    co = coevolve.CoEvolution.create(config)
    state = _with_motion(co, co.init(jax.random.PRNGKey(0)))
    state = state.replace(hallucinator=co.replicate(co.init_hallucinator(jax.random.PRNGKey(1))))
    generated, stats = co.sample_on_device(state, jax.random.PRNGKey(2))
    hc = state.hallucinator.config
    frames = hc.context + hc.sample.num_segments * hc.sample.segment_length
    n, kept = len(co.takes), co.num_hallucinated
    assert list(np.asarray(generated.lengths)) == [frames] * kept + [0] * (n - kept)
    samples = np.asarray(generated.joints)[:kept, :frames]
    segments = [m.joints for m in co.segment_motions(state)]
    windows = np.stack([s[t:t + hc.context] for s in segments for t in range(len(s) - hc.context + 1)])
    for sample in samples:
        assert np.abs(windows - sample[None, :hc.context]).max(axis=(1, 2, 3)).min() < 1e-4
        bones = np.asarray(K.bone_lengths(sample))
        assert np.abs(bones - bones[:1]).max() < 1e-4
        assert sample[hc.context:, :, 2].min() > -1e-5
    host = H.measures(list(samples), hc.fps, reference=segments, window=hc.measures.window,
                      stride=hc.measures.stride, skip=hc.context)
    for key, value in stats.items():
        assert value == pytest.approx(host[key], rel=1e-3, abs=1e-5), key


def test_a_run_checkpointed_with_another_observation_layout_is_refused_on_resume(tmp_path):
    """A policy reads its inputs by position: resuming a run whose imitator saw another observation layout (runs
    written before layouts were recorded saw layout 1) must fail, naming the cause, instead of training on."""
    from ptjax import checkpoint
    from ptjax.coevolve.driver import open_run
    from ptjax.imitator.env import OBSERVATION_LAYOUT
    store = checkpoint.CheckpointStore(str(tmp_path / "checkpoints"))
    meta = {"round": 1, "next_phase": 0, "checkpoint": 1, "history": [], "current": {}, "learner_steps": {},
            "num_devices": 1}
    try:
        store.save(1, {"w": np.zeros(2, np.float32)}, metadata=meta)
        with pytest.raises(ValueError, match="observation layout 1 .* layout 2"):
            open_run(store, str(tmp_path), 1, resume=True)
        store.save(2, {"w": np.zeros(2, np.float32)}, metadata=dict(meta, observation_layout=OBSERVATION_LAYOUT))
        assert open_run(store, str(tmp_path), 1, resume=True)[1] == 2
    finally:
        store.close()
