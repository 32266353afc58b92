"""Quality measures on constructed cases with known answers, and on the real clips."""

import numpy as np
import pytest

from ptjax import geometry
from ptjax import kinematics as K
from ptjax import skeleton
from ptjax.data import load_clips
from ptjax.hallucinator.measures import (bone_length_deviation, diversity, foot_skating, ground_penetration,
                                         joint_limit_violations, measures, nearest_distance, window_descriptors)

FPS = 30.0


@pytest.fixture(scope="module")
def walk():
    return load_clips(["walk"])["walk"].joints.astype(np.float64)


def _standing(walk, frames=30):
    """A pose with both ankles on the floor level, held still."""
    pose = walk[0].copy()
    pose[:, 2] -= pose[list(skeleton.FEET), 2].min() - 0.05
    pose[3, 2] = pose[6, 2] = 0.05
    return np.repeat(pose[None], frames, axis=0)


def test_foot_skating_of_a_sliding_body(walk):
    still = _standing(walk)
    assert foot_skating(still, FPS)["skating_mps"] == pytest.approx(0.0, abs=1e-9)
    sliding = still + (np.arange(len(still)) / FPS)[:, None, None] * np.array([0.6, 0.8, 0.0])  # 1 m/s, planted
    out = foot_skating(sliding, FPS)
    assert out["skating_mps"] == pytest.approx(1.0, rel=1e-6)
    assert out["contact_fraction"] == pytest.approx(1.0)
    # A foot lifted 20 cm is not in contact: its motion is not skating.
    swing = sliding.copy()
    swing[:, 3, 2] += 0.2
    assert foot_skating(swing, FPS)["contact_fraction"] == pytest.approx(0.5)


def test_ground_penetration(walk):
    seq = _standing(walk, 10)
    assert ground_penetration(seq)["penetration_m"] == 0.0
    sunk = seq.copy()
    sunk[5:, :, 2] -= 0.08              # half the frames: ankles 3 cm below the ground
    out = ground_penetration(sunk)
    assert out["penetration_m"] == pytest.approx(0.015, abs=1e-9)
    assert out["penetration_frames"] == pytest.approx(0.5)
    assert out["max_penetration_m"] == pytest.approx(0.03, abs=1e-9)


def test_bone_length_deviation(walk):
    seq = walk.copy()
    assert bone_length_deviation(seq)[0] < 1e-6
    lengths = np.asarray(skeleton.bone_lengths(seq[7]))
    lengths[2] += 0.03                                   # shin 3 cm longer in frame 7
    seq[7] = np.asarray(K.set_bone_lengths(seq[7], lengths))
    assert bone_length_deviation(seq)[0] == pytest.approx(0.03, abs=1e-5)


def _with_knee(pose, flexion_deg, forward=False):
    """Bend the right knee by `flexion_deg` in the sagittal plane, backwards (anatomical) or forwards."""
    out = pose.copy()
    thigh = out[2] - out[1]
    shin_len = np.linalg.norm(out[3] - out[2])
    t = thigh / np.linalg.norm(thigh)
    forward_axis = np.array([1.0, 0.0, 0.0]) - t[0] * t
    forward_axis /= np.linalg.norm(forward_axis)
    a = np.radians(flexion_deg)
    direction = np.cos(a) * t + np.sin(a) * (forward_axis if forward else -forward_axis)
    out[3] = out[2] + shin_len * direction
    return out


def test_joint_limits(walk):
    rest = np.asarray(K.rest_pose(K.bone_lengths(walk[0])), np.float64)   # upright, facing +x
    ok = np.stack([_with_knee(rest, 90.0)] * 4)
    assert joint_limit_violations(ok)["limit_any"] == 0.0
    backwards = np.stack([_with_knee(rest, 90.0, forward=True)] * 4)       # knee bending the wrong way
    out = joint_limit_violations(backwards)
    assert out["limit_knee_direction"] == 1.0 and out["limit_any"] == 1.0
    folded = np.stack([_with_knee(rest, 170.0)] * 4)
    assert joint_limit_violations(folded)["limit_knee_flexion"] == 1.0
    # The real mocap clips respect every limit.
    assert joint_limit_violations(list(load_clips().values()))["limit_any"] == 0.0


def test_novelty_ignores_placement_and_mirroring(walk):
    window, stride = 10, 5
    ref = [walk]
    # The same motion elsewhere, turned, and mirrored: not new.
    yaw = geometry.yaw_matrix(np.float32(1.1))
    moved = walk @ np.asarray(yaw, np.float64).T + np.array([3.0, -2.0, 0.0])
    mirrored = np.asarray(skeleton.flip_lr(walk, axis=1))
    ref_desc, _ = window_descriptors(ref, window, 1, mirror=True)
    for copy in (walk, moved, mirrored):
        desc, _ = window_descriptors([copy], window, stride)
        assert nearest_distance(desc, ref_desc).max() < 1e-4
    other = load_clips(["cartwheel"])["cartwheel"].joints
    desc, _ = window_descriptors([other], window, stride)
    assert nearest_distance(desc, ref_desc).min() > 0.1
    # Diversity does not see placement, and two different motions are more diverse than two copies of one.
    copies = diversity(*window_descriptors([walk, moved], window, stride))
    assert copies == pytest.approx(diversity(*window_descriptors([walk, walk], window, stride)), abs=1e-5)
    assert copies < 0.5 * diversity(*window_descriptors([walk, other], window, stride))


def test_measures_summary_and_bad_input(walk):
    clips = [m.joints for m in load_clips(["walk", "run", "kick"]).values()]
    out = measures(clips, FPS, reference=clips, window=10, stride=5, novelty_threshold=0.05)
    assert out["sequences"] == 3 and out["bone_length_dev_max_m"] < 1e-5
    assert out["nearest_reference_min_m"] < 1e-6
    assert out["novel_fraction"] == 0.0  # the reference itself is not new
    assert out["diversity_m"] > 0.1
    with pytest.raises(ValueError, match="non-finite"):
        bad = walk.copy()
        bad[2, 3, 1] = np.nan
        measures([bad], FPS)
    with pytest.raises(ValueError, match="joints"):
        measures(walk[:, :15], FPS)
    with pytest.raises(ValueError, match="fps"):
        measures([walk], 0.0)


def test_measures_on_device_agree_with_the_host():
    """The co-evolution's device-resident summary equals the host's measures on the same samples against a padded
    reference buffer (empty slots ignored); with caps below the window counts it draws windows and stays close."""
    import jax
    import jax.numpy as jnp
    from ptjax.data import pack_motions
    from ptjax.hallucinator.measures import measures_on_device
    clips = load_clips(["kick", "jump", "punch", "walk", "run", "spinkick", "dance_a"])
    samples = np.stack([clips[n].joints[:40] for n in ("kick", "jump", "punch")]).astype(np.float32)
    reference = pack_motions([clips[n] for n in ("walk", "run", "spinkick", "dance_a")], FPS, 120)
    empty = 2
    reference = reference.replace(joints=jnp.concatenate([reference.joints, jnp.zeros((empty, 120, 17, 3))]),
                                  lengths=jnp.concatenate([reference.lengths, jnp.zeros((empty,), jnp.int32)]))
    kept = [np.asarray(reference.joints[i, :n]) for i, n in enumerate(np.asarray(reference.lengths)) if n]
    host = measures(list(samples), FPS, reference=kept, window=10, stride=5, skip=5)
    device = jax.device_get(measures_on_device(jnp.asarray(samples), reference, jax.random.PRNGKey(0), FPS,
                                              window=10, stride=5, skip=5))
    assert set(device) == {"bone_length_dev_max_m", "skating_mps", "penetration_frames", "limit_any",
                           "seconds_mean", "diversity_m", "reference_diversity_m", "nearest_reference_mean_m"}
    for key, value in device.items():
        assert float(value) == pytest.approx(host[key], rel=1e-4, abs=1e-5), key
    capped = jax.device_get(measures_on_device(jnp.asarray(samples), reference, jax.random.PRNGKey(0), FPS,
                                              window=10, stride=5, skip=5, max_windows=12,
                                              max_reference_windows=60))
    for key in ("diversity_m", "reference_diversity_m", "nearest_reference_mean_m"):
        assert np.isfinite(capped[key]) and float(capped[key]) == pytest.approx(host[key], rel=0.3), key


def test_window_caps_must_be_positive_integers():
    from ptjax.hallucinator.config import tiny_config, validate
    for key, value in (("max_windows", 0), ("max_reference_windows", -1)):
        config = tiny_config()
        config.measures[key] = value
        with pytest.raises(ValueError, match=f"measures.{key}"):
            validate(config)
