"""Detector-like 2D: the corruption model, lift-style gap filling, evaluation takes and the training switch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ptjax import detector_noise as dn
from ptjax import skeleton
from ptjax.data import keypoints as kp_io
from ptjax.data import load_clips
from ptjax.data.takes import make_takes

J = skeleton.JOINT_INDEX


@pytest.fixture(scope="module")
def walk_2d():
    take = make_takes(load_clips(["walk"]), num_cameras=1)[0]
    return take, jnp.asarray(take.keypoints2d)[None].repeat(8, 0)


@pytest.fixture(scope="module")
def corrupted(walk_2d):
    _, kp = walk_2d
    out, missing = jax.jit(dn.corrupt, static_argnums=2)(jax.random.PRNGKey(0), kp, dn.DetectorNoise())
    return np.asarray(out), np.asarray(missing)


def _box(kp):
    return (kp.max(-2) - kp.min(-2)).max(-1)


def test_errors_grow_at_the_extremities_and_scale_with_the_person(walk_2d, corrupted):
    _, kp = walk_2d
    kp = np.asarray(kp)
    out, missing = corrupted
    swapped_limbs = [J[n] for n in ("RKnee", "LKnee", "RAnkle", "LAnkle", "RElbow", "LElbow", "RWrist", "LWrist")]
    err = np.linalg.norm(out - kp, axis=-1) / _box(kp)[..., None]
    torso = err[..., [J["Hip"], J["Thorax"], J["RShoulder"], J["LShoulder"]]].mean()
    ends = np.median(err[..., swapped_limbs[2:4]])
    assert 0.01 < torso < 0.04 and ends > 1.5 * np.median(err[..., [J["Hip"], J["Thorax"]]])
    # Half the person's size: about half the error (a pixel floor keeps it from halving exactly).
    small = 0.5 * kp
    out_small, _ = dn.corrupt(jax.random.PRNGKey(0), jnp.asarray(small), dn.DetectorNoise())
    ratio = np.abs(np.asarray(out_small) - small).mean() / np.abs(out - kp).mean()
    assert 0.45 < ratio < 0.7
    # Misses come in bursts, more often at wrists and ankles.
    assert 0.01 < missing.mean() < 0.15
    assert missing[..., [J["RWrist"], J["LWrist"]]].mean() > missing[..., [J["Hip"], J["Spine"]]].mean()
    # Left/right swaps: some frames hold the left knee where the right one was.
    swap = np.linalg.norm(out[..., J["RKnee"], :] - kp[..., J["LKnee"], :], axis=-1) < \
        np.linalg.norm(out[..., J["RKnee"], :] - kp[..., J["RKnee"], :], axis=-1)
    assert swap.any() and swap.mean() < 0.2


def test_gap_filling_is_lifts_own(corrupted):
    out, missing = corrupted
    filled = np.asarray(dn.fill_and_smooth(jnp.asarray(out), jnp.asarray(missing)))
    assert np.isfinite(filled).all()
    for b in range(2):
        ref = kp_io.smooth(kp_io.fill_gaps(np.where(missing[b][..., None], np.nan, out[b].astype(np.float64)),
                                           missing[b]))
        # Identical inside; the two edge frames differ only in the filter's edge rule.
        np.testing.assert_allclose(filled[b, 2:-2], ref[2:-2], atol=1e-5)


def test_detector_like_takes_are_fixed_and_keep_the_3d(walk_2d):
    take, _ = walk_2d
    a = dn.detector_like_takes([take])[0]
    b = dn.detector_like_takes([take])[0]
    np.testing.assert_array_equal(a.keypoints2d, b.keypoints2d)
    np.testing.assert_array_equal(a.joints_cam, take.joints_cam)
    assert np.isfinite(a.keypoints2d).all() and not np.allclose(a.keypoints2d, take.keypoints2d)
    assert a.name == take.name


def test_training_switch_corrupts_the_chosen_share(walk_2d):
    from ptjax.estimator.train import detector_like_inputs
    _, kp = walk_2d
    windows = kp[:, :27]
    same = detector_like_inputs(jax.random.PRNGKey(1), windows, 0.0)
    np.testing.assert_array_equal(np.asarray(same), np.asarray(windows))
    changed = np.asarray(detector_like_inputs(jax.random.PRNGKey(1), windows, 1.0))
    assert all(not np.allclose(changed[i], windows[i]) for i in range(len(windows)))


def test_bad_settings_are_refused():
    from ptjax.config import load_config
    from ptjax.estimator.config import spec_from_config
    with pytest.raises(ValueError, match="sigma"):
        dn.DetectorNoise(sigma=-1.0)
    with pytest.raises(ValueError, match="correlation"):
        dn.DetectorNoise(correlation=1.0)
    config = load_config("configs/estimator_clips.py:large_detector")
    assert spec_from_config(config).detector_noise_fraction == 0.5
    config.pairs.detector_noise_fraction = 1.5
    with pytest.raises(ValueError, match="pairs.detector_noise_fraction"):
        spec_from_config(config)
