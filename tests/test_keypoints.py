"""In-the-wild keypoint readers: COCO and OpenPose JSON, npz; tracking, gap filling, smoothing, normalisation."""

import json
import warnings

import numpy as np
import pytest
import scipy.signal

from ptjax import skeleton
from ptjax.data import keypoints as kpmod

# A front-facing person in pixels (x right, y down), hips at the origin: COCO-17 order.
TEMPLATE = np.array([
    (0, -170), (8, -178), (-8, -178), (16, -172), (-16, -172), (40, -130), (-40, -130), (55, -70), (-55, -70),
    (60, -15), (-60, -15), (25, 0), (-25, 0), (28, 100), (-28, 100), (30, 200), (-30, 200)], np.float64)
COCO = {n: i for i, n in enumerate(skeleton.COCO17_NAMES)}


def coco_motion(num_frames, center=(900.0, 600.0), speed=3.0, scale=1.0, seed=0):
    """(T, 17, 3) smooth COCO-17 keypoints with confidences in [0.6, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)[:, None, None]
    swing = np.zeros((num_frames, 17, 2))
    for limb, sign in ((COCO["left_wrist"], 1), (COCO["right_wrist"], -1), (COCO["left_ankle"], -1),
                       (COCO["right_ankle"], 1)):
        swing[:, limb, 0] = sign * 25 * np.sin(0.4 * np.arange(num_frames))
    xy = scale * TEMPLATE[None] + swing + np.array(center) + t * np.array([speed, 0.0])
    xy = xy + rng.normal(0, 1.0, xy.shape)
    conf = rng.uniform(0.6, 1.0, (num_frames, 17, 1))
    return np.concatenate([xy, conf], -1)


def to_body25(coco, variant):
    """COCO-17 (T, 17, 3) -> OpenPose BODY_25 or BODY_25B (T, 25, 3)."""
    c = {n: coco[:, i] for n, i in COCO.items()}
    foot = lambda ankle, dx: ankle + np.array([dx, 15.0, 0.0])  # noqa: E731
    if variant == "body25b":
        extra = {"UpperNeck": 0.5 * (c["left_shoulder"] + c["right_shoulder"]) + np.array([0, -20.0, 0]),
                 "HeadTop": c["nose"] + np.array([0, -40.0, 0]),
                 "LBigToe": foot(c["left_ankle"], 12), "LSmallToe": foot(c["left_ankle"], 18),
                 "LHeel": foot(c["left_ankle"], -8), "RBigToe": foot(c["right_ankle"], -12),
                 "RSmallToe": foot(c["right_ankle"], -18), "RHeel": foot(c["right_ankle"], 8)}
        return np.stack([coco[:, i] for i in range(17)] + [extra[n] for n in skeleton.BODY25B_NAMES[17:]], 1)
    names = {"Nose": "nose", "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
             "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist", "RHip": "right_hip",
             "RKnee": "right_knee", "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
             "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear",
             "LEar": "left_ear"}
    extra = {"Neck": 0.5 * (c["left_shoulder"] + c["right_shoulder"]), "MidHip": 0.5 * (c["left_hip"] + c["right_hip"]),
             "LBigToe": foot(c["left_ankle"], 12), "LSmallToe": foot(c["left_ankle"], 18),
             "LHeel": foot(c["left_ankle"], -8), "RBigToe": foot(c["right_ankle"], -12),
             "RSmallToe": foot(c["right_ankle"], -18), "RHeel": foot(c["right_ankle"], 8)}
    return np.stack([c[names[n]] if n in names else extra[n] for n in skeleton.BODY25_NAMES], 1)


def reference(track, layout, frame, smooth=True):
    """The documented pipeline, step by step in NumPy/SciPy: (T, J, 3) with NaN x/y for missing joints."""
    xy = track[..., :2].copy()
    w = skeleton.mapping_matrix(layout)
    t = np.arange(len(xy))
    for j in range(xy.shape[1]):
        ok = np.isfinite(xy[:, j, 0])
        if ok.any() and not ok.all():
            for c in range(2):
                xy[~ok, j, c] = np.interp(t[~ok], t[ok], xy[ok, j, c])
    xy = np.nan_to_num(xy)  # joints the mapping does not use
    if smooth and len(xy) >= 5:
        xy = scipy.signal.savgol_filter(xy, 5, 2, axis=0, mode="interp")
    h36m = np.einsum("js,tsc->tjc", w, xy)
    x0, y0, side = frame
    return (h36m - np.array([x0, y0])) / side * 2 - 1


def write_frames(folder, frames, fmt, digits=12):
    folder.mkdir(parents=True, exist_ok=True)
    for index, people in frames.items():
        if fmt == "openpose":
            content = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p.reshape(-1).tolist(),
                                                   "face_keypoints_2d": []} for p in people]}
            name = f"clip_{index:0{digits}d}_keypoints.json"
        else:
            content = [{"category_id": 1, "keypoints": p.reshape(-1).tolist(), "score": 0.9} for p in people]
            name = f"frame{index:05d}.json"
        (folder / name).write_text(json.dumps(content))


def scenario(num_frames=24):
    """Main person plus a farther, smaller distractor; frame 5 missing entirely (no file), frame 9 has nobody,
    the main person's left wrist is below the threshold in frames 12-14."""
    main = coco_motion(num_frames)
    other = coco_motion(num_frames, center=(1700.0, 500.0), speed=-2.0, scale=0.6, seed=1)
    main[12:15, COCO["left_wrist"], 2] = 0.05
    frames = {}
    for t in range(num_frames):
        if t == 5:
            continue
        frames[t] = [] if t == 9 else ([other[t], main[t]] if t % 2 else [main[t], other[t]])
    track = main.copy()
    track[[5, 9], :, :2] = np.nan
    track[12:15, COCO["left_wrist"], :2] = np.nan
    return frames, track


def test_coco_folder_tracks_fills_smooths_and_normalises(tmp_path):
    frames, track = scenario()
    write_frames(tmp_path / "coco", frames, "coco")
    kp = kpmod.load_keypoints(str(tmp_path / "coco"), "coco", image_size=(1920, 1080))
    assert kp.keypoints2d.shape == (24, 17, 2) and kp.confidence.shape == (24, 17)
    assert kp.image_size == (1920.0, 1080.0) and kp.image_size_source == "given"
    assert kp.square_frame == (0.0, -420.0, 1920.0)  # landscape: pad top and bottom by (1920 - 1080) / 2
    np.testing.assert_array_equal(np.flatnonzero(kp.missing_frames), [5, 9])
    assert kp.filled[[5, 9]].all() and kp.filled[12:15, skeleton.JOINT_INDEX["LWrist"]].all()
    # The Head is built from eyes and ears, not the wrist: only the wrist is filled in frames 12-14.
    assert kp.filled[12:15].sum() == 3 and not kp.filled[[0, 1, 2, 20]].any()
    assert (kp.confidence[kp.filled] == 0).all() and (kp.confidence[~kp.filled] >= 0.6).all()
    np.testing.assert_allclose(kp.keypoints2d, reference(track, "coco", (0.0, -420.0, 1920.0)), atol=1e-5)
    # Without smoothing, filled joints lie on the straight line between their neighbours.
    raw = kpmod.load_keypoints(str(tmp_path / "coco"), "coco", image_size=(1920, 1080), smoothing=False)
    np.testing.assert_allclose(raw.keypoints2d, reference(track, "coco", (0.0, -420.0, 1920.0), smooth=False),
                               atol=1e-5)
    np.testing.assert_allclose(raw.pixels[5], 0.5 * (raw.pixels[4] + raw.pixels[6]), atol=1e-3)


def test_coco_results_file_and_annotations_file_match_the_folder(tmp_path):
    frames, track = scenario()
    folder = kpmod.load_keypoints(_write_folder(tmp_path, frames), "coco", image_size=(1920, 1080))
    results = [{"image_id": t, "category_id": 1, "keypoints": p.reshape(-1).tolist(), "score": 0.9}
               for t, people in frames.items() for p in people]
    (tmp_path / "results.json").write_text(json.dumps(results))
    single = kpmod.load_keypoints(str(tmp_path / "results.json"), "coco", image_size=(1920, 1080))
    np.testing.assert_allclose(single.keypoints2d, folder.keypoints2d, atol=1e-6)
    np.testing.assert_array_equal(single.missing_frames, folder.missing_frames)
    # COCO annotations style: image sizes come from "images"; file names order the frames.
    images = [{"id": 100 + t, "file_name": f"img_{t:04d}.jpg", "width": 1920, "height": 1080} for t in range(24)]
    anns = [{"image_id": 100 + t, "keypoints": p.reshape(-1).tolist()} for t, people in frames.items()
            for p in people]
    (tmp_path / "anns.json").write_text(json.dumps({"images": images, "annotations": anns}))
    coco_gt = kpmod.load_keypoints(str(tmp_path / "anns.json"), "coco")
    assert coco_gt.image_size_source == "file"
    np.testing.assert_allclose(coco_gt.keypoints2d, folder.keypoints2d, atol=1e-6)


def _write_folder(tmp_path, frames):
    write_frames(tmp_path / "coco_folder", frames, "coco")
    return str(tmp_path / "coco_folder")


@pytest.mark.parametrize("variant", ["body25", "body25b"])
def test_openpose_folders_with_layout_detection(tmp_path, variant):
    frames, track = scenario()
    op_frames = {t: [to_body25(p[None], variant)[0] for p in people] for t, people in frames.items()}
    write_frames(tmp_path / variant, op_frames, "openpose")
    kp = kpmod.load_keypoints(str(tmp_path / variant), "openpose", image_size=(1080, 1920))  # portrait
    assert kp.source_layout == variant and kp.square_frame == (-420.0, 0.0, 1920.0)
    expected = reference(to_body25(track, variant), variant, (-420.0, 0.0, 1920.0))
    np.testing.assert_allclose(kp.keypoints2d, expected, atol=1e-5)
    np.testing.assert_array_equal(np.flatnonzero(kp.missing_frames), [5, 9])
    # The explicit layout gives the same; BODY_25B's head top is used for the Head.
    same = kpmod.load_keypoints(str(tmp_path / variant), "openpose", image_size=(1080, 1920), layout=variant)
    np.testing.assert_allclose(same.keypoints2d, kp.keypoints2d)


def test_multi_person_start_choice_and_jump_limit(tmp_path):
    main = coco_motion(10)
    far = coco_motion(10, center=(200.0, 600.0), scale=1.2, seed=3)
    frames = {t: [main[t], far[t]] for t in range(10)}
    # Frames 6-7: the main person is gone; the far person is not taken in their place.
    for t in (6, 7):
        frames[t] = [far[t]]
    write_frames(tmp_path / "f", frames, "coco")
    largest = kpmod.load_keypoints(str(tmp_path / "f"), "coco", image_size=(1920, 1080))
    chosen = kpmod.load_keypoints(str(tmp_path / "f"), "coco", image_size=(1920, 1080), person=0)
    assert not largest.missing_frames.any()  # follows the larger (far) person throughout
    np.testing.assert_array_equal(np.flatnonzero(chosen.missing_frames), [6, 7])
    np.testing.assert_allclose(chosen.pixels[0, 0], 0.5 * (main[0, 11, :2] + main[0, 12, :2]), atol=3.0)
    with pytest.raises(ValueError, match="person 5 not found"):
        kpmod.load_keypoints(str(tmp_path / "f"), "coco", image_size=(1920, 1080), person=5)


def test_npz_inputs(tmp_path):
    rng = np.random.default_rng(5)
    pix = rng.uniform(100, 900, (12, 17, 2))
    conf = np.ones((12, 17))
    pix[3, 13] = np.nan  # a NaN joint counts as missing
    conf[7, 2] = 0.0
    np.savez(tmp_path / "h.npz", keypoints=pix, confidence=conf, image_width=1000, image_height=1000)
    kp = kpmod.load_keypoints(str(tmp_path / "h.npz"), "h36m", smoothing=False)
    assert kp.filled[3, 13] and kp.filled[7, 2] and kp.filled.sum() == 2
    np.testing.assert_allclose(kp.pixels[3, 13], 0.5 * (pix[2, 13] + pix[4, 13]), atol=1e-4)
    ok = ~kp.filled
    np.testing.assert_allclose(kp.keypoints2d[ok], (pix / 500.0 - 1.0)[ok], atol=1e-5)
    norm = rng.uniform(-0.5, 0.5, (6, 17, 2))
    np.savez(tmp_path / "n.npz", keypoints=norm, normalized=True)
    np.testing.assert_allclose(kpmod.load_keypoints(str(tmp_path / "n.npz"), "h36m", smoothing=False).keypoints2d,
                               norm, atol=1e-6)
    coco = coco_motion(8)
    np.savez(tmp_path / "c.npz", kpts=coco)  # PoseTriplet's cached AlphaPose detections
    kp = kpmod.load_keypoints(str(tmp_path / "c.npz"), "coco", image_size=(1920, 1080))
    np.testing.assert_allclose(kp.keypoints2d, reference(coco, "coco", (0.0, -420.0, 1920.0)), atol=1e-5)


def test_estimated_frame_when_image_size_is_unknown(tmp_path):
    frames, _ = scenario()
    write_frames(tmp_path / "c", frames, "coco")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kp = kpmod.load_keypoints(str(tmp_path / "c"), "coco")
    assert any("image size unknown" in str(w.message) for w in caught)
    assert kp.image_size_source == "estimated"
    assert np.abs(kp.keypoints2d).max() <= 0.5 + 1e-6  # keypoints span half the estimated square


def test_bad_inputs_get_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .json files"):
        kpmod.load_keypoints(str(tmp_path / "empty"), "coco")
    with pytest.raises(ValueError, match="no .json files"):
        kpmod.load_keypoints(str(tmp_path / "empty"), "openpose")
    with pytest.raises(FileNotFoundError, match="not found"):
        kpmod.load_keypoints(str(tmp_path / "nothing"), "coco")
    frames, _ = scenario()
    write_frames(tmp_path / "trunc", frames, "coco")
    victim = sorted((tmp_path / "trunc").iterdir())[3]
    victim.write_text(victim.read_text()[:40])
    with pytest.raises(ValueError, match=f"{victim.name}: not valid JSON.*truncated"):
        kpmod.load_keypoints(str(tmp_path / "trunc"), "coco")
    # Wrong keypoint counts: an 18-joint COCO detection, an OpenPose COCO-18 (54 numbers) file.
    write_frames(tmp_path / "c18", {0: [np.ones((18, 3))]}, "coco")
    with pytest.raises(ValueError, match="18 keypoints, expected 17"):
        kpmod.load_keypoints(str(tmp_path / "c18"), "coco")
    write_frames(tmp_path / "op18", {0: [np.ones((18, 3))]}, "openpose")
    with pytest.raises(ValueError, match="54 pose_keypoints_2d numbers; BODY_25"):
        kpmod.load_keypoints(str(tmp_path / "op18"), "openpose", layout="body25")
    (tmp_path / "notop").mkdir()
    (tmp_path / "notop" / "a.json").write_text(json.dumps({"frame": 1}))
    with pytest.raises(ValueError, match="not an OpenPose file"):
        kpmod.load_keypoints(str(tmp_path / "notop"), "openpose")
    # All NaN / all below the threshold / nobody at all.
    np.savez(tmp_path / "nan.npz", keypoints=np.full((5, 17, 2), np.nan), image_size=[100, 100])
    with pytest.raises(ValueError, match="no usable keypoints"):
        kpmod.load_keypoints(str(tmp_path / "nan.npz"), "h36m")
    low = coco_motion(6)
    low[..., 2] = 0.01
    write_frames(tmp_path / "low", {t: [low[t]] for t in range(6)}, "coco")
    with pytest.raises(ValueError, match="no usable keypoints.*confidence threshold 0.2"):
        kpmod.load_keypoints(str(tmp_path / "low"), "coco", image_size=(1920, 1080))
    write_frames(tmp_path / "nobody", {t: [] for t in range(4)}, "openpose")
    with pytest.raises(ValueError, match="no person detected"):
        kpmod.load_keypoints(str(tmp_path / "nobody"), "openpose", layout="body25")
    # Too much missing: one joint in 70% of the frames; the person in 60% of the frames.
    wrist = coco_motion(10)
    wrist[:7, COCO["right_wrist"], 2] = 0.0
    write_frames(tmp_path / "wrist", {t: [wrist[t]] for t in range(10)}, "coco")
    with pytest.raises(ValueError, match=r"RWrist \(70%, from \['right_wrist'\]\)"):
        kpmod.load_keypoints(str(tmp_path / "wrist"), "coco", image_size=(1920, 1080))
    assert kpmod.load_keypoints(str(tmp_path / "wrist"), "coco", image_size=(1920, 1080), max_missing=0.8)
    sparse = coco_motion(10)
    write_frames(tmp_path / "sparse", {t: ([sparse[t]] if t in (0, 4, 9, 2) else []) for t in range(10)}, "coco")
    with pytest.raises(ValueError, match="missing in 6 of 10 frames"):
        kpmod.load_keypoints(str(tmp_path / "sparse"), "coco", image_size=(1920, 1080))
    np.savez(tmp_path / "shape.npz", keypoints=np.zeros((5, 16, 2)))
    with pytest.raises(ValueError, match=r"shape \(5, 16, 2\); expected \(T, 17, 2\|3\)"):
        kpmod.load_keypoints(str(tmp_path / "shape.npz"), "h36m")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a readable npz"):
        kpmod.load_keypoints(str(tmp_path / "bad.npz"), "h36m")
    with pytest.raises(ValueError, match="image size must be two positive numbers"):
        kpmod.load_keypoints(str(tmp_path / "wrist"), "coco", image_size=(0, 1080))
    with pytest.raises(ValueError, match="unknown keypoint format"):
        kpmod.load_keypoints(str(tmp_path / "wrist"), "alphapose")
