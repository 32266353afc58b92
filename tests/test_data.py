import json

import numpy as np
import pytest

from ptjax import skeleton
from ptjax.data import Motion, centered_windows, deepmimic, load_clips, make_windows, window_starts

WALKING = ("walk", "run", "walker_0walk_forward", "walker_turn_left0", "walker_turn_left1", "walker_turn_right0",
           "walker_turn_right1")


def test_twenty_clips_1810_frames():
    clips = load_clips()
    assert len(clips) == 20
    assert sum(m.num_frames for m in clips.values()) == 1810
    assert {m.fps for m in clips.values()} == {16.0, 24.0, 30.0, 60.0}
    for m in clips.values():
        assert m.joints.shape[1:] == (17, 3) and m.joints.dtype == np.float32


def test_bone_lengths_constant_per_clip():
    for name, m in load_clips().items():
        spread = np.ptp(skeleton.bone_lengths(m.joints), axis=0).max()
        assert spread < 1e-3, name


def test_feet_touch_ground_and_walk_moves_forward():
    clips = load_clips()
    for name in WALKING:
        ankle_min = clips[name].joints[:, [3, 6], 2].min()
        assert -0.01 <= ankle_min <= 0.15, (name, ankle_min)
    walk = clips["walk"].joints
    travel = walk[-1, 0] - walk[0, 0]
    assert 1.1 < travel[0] < 1.35 and abs(travel[1]) < 0.05  # forward is +x, about 1.2 m
    assert walk[:, 10, 2].min() > 1.4  # head stays up; Z is up
    # Handedness: a left turn ends to the left (+y) of a character facing +x.
    left = clips["walker_turn_left0"].joints
    assert left[-1, 0, 1] - left[0, 0, 1] > 0.2
    # The right hip is on the right: facing +x with Z up, right is -y.
    assert np.mean(walk[:, 1, 1] - walk[:, 4, 1]) < 0


def test_motion_validation_and_resample():
    with pytest.raises(ValueError, match="joints"):
        Motion("bad", 30.0, np.zeros((5, 16, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        j = np.zeros((5, 17, 3))
        j[1, 1, 1] = np.nan
        Motion("bad", 30.0, j)
    with pytest.raises(ValueError, match="fps"):
        Motion("bad", 0.0, np.zeros((5, 17, 3)))
    walk = load_clips(["walk"])["walk"]
    up = walk.resample(60.0)
    assert up.num_frames == 2 * walk.num_frames - 1
    np.testing.assert_allclose(up.joints[::2], walk.joints, atol=1e-6)
    with pytest.raises(ValueError, match="unknown clip"):
        load_clips(["moonwalk"])


def test_bad_files_give_clear_errors(tmp_path):
    good = json.load(open(deepmimic.__file__.replace("deepmimic.py", "clips/humanoid3d_walk.txt")))
    truncated = tmp_path / "truncated.txt"
    truncated.write_text(json.dumps(good)[:500])
    with pytest.raises(ValueError, match="truncated or not JSON"):
        deepmimic.load_motion_file(truncated)
    short = tmp_path / "short.txt"
    short.write_text(json.dumps({"Frames": [good["Frames"][0][:40]]}))
    with pytest.raises(ValueError, match="44 numbers"):
        deepmimic.load_motion_file(short)
    nan = tmp_path / "nan.txt"
    nan.write_text(json.dumps({"Frames": [[float("nan")] * 44]}).replace("NaN", "NaN"))
    with pytest.raises(ValueError, match="NaN"):
        deepmimic.load_motion_file(nan)
    empty = tmp_path / "empty.txt"
    empty.write_text(json.dumps({"Loop": "none", "Frames": []}))
    with pytest.raises(ValueError, match="empty"):
        deepmimic.load_motion_file(empty)


def test_windows():
    x = np.arange(10)
    w = make_windows(x, 4, stride=3)
    assert w.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    w = make_windows(x, 4, stride=4)
    assert w[-1].tolist() == [6, 7, 8, 9]  # the last window is moved back to cover the final frame
    assert make_windows(np.arange(3), 5).tolist() == [[0, 1, 2, 2, 2]]
    assert make_windows(np.arange(3), 5, pad=False).shape == (0, 5)
    c = centered_windows(np.arange(5), 3)
    assert c.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 4]]
    assert window_starts(100, 50, 10).tolist() == [0, 10, 20, 30, 40, 50]
    with pytest.raises(ValueError, match="odd"):
        centered_windows(x, 4)
    with pytest.raises(ValueError, match="stride"):
        make_windows(x, 4, stride=0)


def test_split_is_disjoint_and_complete():
    from ptjax.data import HELDOUT_CLIPS, TRAIN_CLIPS
    assert len(TRAIN_CLIPS) == 15 and len(HELDOUT_CLIPS) == 5
    assert set(TRAIN_CLIPS) | set(HELDOUT_CLIPS) == set(load_clips())
    assert not set(TRAIN_CLIPS) & set(HELDOUT_CLIPS)


def test_motion_buffer_pack_and_sample():
    import jax
    from ptjax.data import pack_motions, sample_windows
    clips = load_clips(["walk", "run", "kick"])
    buf = pack_motions(list(clips.values()), fps=30.0)
    assert buf.joints.shape == (3, 47, 17, 3) and buf.lengths.tolist() == [39, 25, 47]
    np.testing.assert_allclose(buf.joints[1, 30], clips["run"].joints[-1])  # held last pose
    w = jax.jit(sample_windows, static_argnums=(2, 3))(jax.random.PRNGKey(0), buf, 64, 27)
    assert w.shape == (64, 27, 17, 3)
    # Every window is a contiguous piece of one take (or its held end).
    flat = np.asarray(buf.joints).reshape(-1, 17, 3)
    for win in np.asarray(w[:8]):
        first = np.argmin(np.abs(flat - win[0]).sum((1, 2)))
        assert np.abs(flat - win[0]).sum((1, 2))[first] < 1e-5
    only_kick = sample_windows(jax.random.PRNGKey(1), buf, 16, 10, take_weights=jax.numpy.array([0.0, 0.0, 1.0]))
    assert np.all(np.abs(np.asarray(only_kick)[:, 0, None] - np.asarray(buf.joints[2])[None]).sum((-1, -2)).min(1) < 1e-4)
    back = buf.to_motions(["walk", "run", "kick"])
    assert back[1].num_frames == 25
