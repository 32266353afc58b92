"""Foot locking and grounding of generated motion: planted feet stop sliding, bone lengths and the upper body are
kept, nothing stays below the ground, the knees bend the right way, bad input is refused."""

import numpy as np
import pytest

from ptjax import kinematics as K
from ptjax import skeleton
from ptjax.data import load_clips
from ptjax.hallucinator.cleanup import LEGS, clean_up, ground, two_bone_ik
from ptjax.hallucinator.measures import bone_length_deviation, foot_skating, joint_limit_violations

FPS = 30.0
LEG_JOINTS = sorted({j for leg in LEGS for j in leg[1:]})     # knees and ankles: all that foot locking moves


@pytest.fixture(scope="module")
def walk():
    return load_clips(["walk"])["walk"].joints.astype(np.float64)


def _gliding(walk, frames=45, speed=1.0):
    """The walk's double-support pose (both feet down), carried along the ground at `speed` m/s: pure skating."""
    feet = list(skeleton.FEET)
    pose = walk[int(np.argmin(walk[:, feet, 2].max(axis=-1)))].copy()
    pose[:, 2] -= pose[feet, 2].min() - 0.06
    still = np.repeat(pose[None], frames, axis=0)
    return still + (np.arange(frames) / FPS * speed)[:, None, None] * np.array([1.0, 0.0, 0.0])


def test_planted_feet_stop_sliding_and_step(walk):
    glide = _gliding(walk)
    assert foot_skating(glide, FPS)["skating_mps"] == pytest.approx(1.0, rel=1e-6)
    out = clean_up(glide)
    assert foot_skating(out, FPS)["skating_mps"] < 0.3
    # The feet still travel with the body (they step: plant, release, swing), and the upper body is untouched.
    feet = list(skeleton.FEET)
    assert np.all(out[-1, feet, 0] - out[0, feet, 0] > 0.8)
    others = [j for j in range(17) if j not in LEG_JOINTS]
    np.testing.assert_array_equal(out[:, others], glide[:, others])
    assert bone_length_deviation(out).max() < 1e-9
    assert joint_limit_violations(out)["limit_any"] == 0.0
    # A released foot is lifted while it swings.
    assert out[:, feet, 2].max() > glide[:, feet, 2].max() + 0.05


def test_start_keeps_the_first_frames(walk):
    glide = _gliding(walk)
    out = clean_up(glide, start=10)
    np.testing.assert_array_equal(out[:10], glide[:10])
    assert np.abs(out[10] - glide[10]).max() < 1e-9          # planting starts where the foot is: no jump
    assert foot_skating(out[10:], FPS)["skating_mps"] < 0.3


def test_ground_lifts_sunken_frames_only(walk):
    sunk = walk.copy()
    sunk[5:10, :, 2] -= 0.2
    out = ground(sunk)
    assert out[..., 2].min() >= -1e-12
    np.testing.assert_array_equal(out[:5], sunk[:5])
    np.testing.assert_allclose(out[5:10, :, 2].min(axis=-1), 0.0, atol=1e-12)


def test_two_bone_ik_reaches_with_the_same_bones(walk):
    pose = walk[10]
    lateral = pose[skeleton.JOINT_INDEX["LHip"]] - pose[skeleton.JOINT_INDEX["RHip"]]
    hip, knee, ankle = (pose[j] for j in LEGS[0])
    target = ankle + np.array([0.1, 0.05, 0.1])
    new_knee, new_ankle = two_bone_ik(hip, knee, ankle, target, lateral)
    np.testing.assert_allclose(new_ankle, target, atol=1e-9)
    assert np.linalg.norm(new_knee - hip) == pytest.approx(np.linalg.norm(knee - hip))
    assert np.linalg.norm(new_ankle - new_knee) == pytest.approx(np.linalg.norm(ankle - knee))
    # Out of reach: the leg points at the target, straight.
    far = hip + np.array([0.0, 0.0, -3.0])
    _, reached = two_bone_ik(hip, knee, ankle, far, lateral)
    leg = np.linalg.norm(knee - hip) + np.linalg.norm(ankle - knee)
    assert np.linalg.norm(reached - hip) == pytest.approx(leg, rel=1e-5)


def test_clean_up_refuses_bad_input(walk):
    with pytest.raises(ValueError, match="shape"):
        clean_up(walk[:, :16])
    bad = walk.copy()
    bad[3, 2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clean_up(bad)


def test_bone_lengths_of_real_motion_survive(walk):
    out = clean_up(walk)
    np.testing.assert_allclose(np.asarray(K.bone_lengths(out)), np.asarray(K.bone_lengths(walk)), atol=1e-6)


def test_device_clean_up_is_the_host_clean_up(walk):
    """The device-resident round's clean-up (one scan over frames, a batch at once, float32) moves the same
    joints as the host's loop: skating, sunken real motion, from frame 0 and from a later start."""
    import jax.numpy as jnp
    from ptjax.hallucinator.cleanup import clean_up_on_device
    rng = np.random.default_rng(0)
    clips = [m.joints[:60] for m in load_clips(["jump", "spin", "roll"]).values()]
    batch = np.stack([_gliding(walk, 60)] + [c + np.array([0.0, 0.0, -0.03]) for c in clips])
    batch = batch + rng.normal(0.0, 0.003, batch.shape)
    for start in (0, 10):
        host = clean_up(batch, start=start)
        device = np.asarray(clean_up_on_device(jnp.asarray(batch, jnp.float32), start=start))
        assert np.abs(device - host).max() < 1e-3, start
        assert np.abs(device - batch).max() > 0.05   # it did move feet
