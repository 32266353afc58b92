"""Real footage: faces the detector misses (a camera behind the person, a turned head). H36M's Nose and Head
fall back on what is still seen, each fallback flagged; a clip is refused only when a body part is missing beyond
--max-missing; OpenPose's layout is told apart from files whose undetected joints are zeros."""

import json

import numpy as np
import pytest

from ptjax import skeleton
from ptjax.data import keypoints as kp_io
from test_lift import coco_to_body25, walking_person

J = skeleton.JOINT_INDEX
FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


def coco_to_body25b(p):
    """COCO-17 (17, 3) -> BODY_25B (25, 3): COCO order, UpperNeck, HeadTop, then six foot points."""
    upper_neck = 0.5 * (p[5] + p[6]) + np.array([0.0, -15.0, 0.0])
    head_top = p[0] + np.array([0.0, -40.0, 0.0])
    head_top[2] = upper_neck[2] = 0.9
    feet = [p[15] + np.array([10.0, 10.0, 0.0])] * 3 + [p[16] + np.array([10.0, 10.0, 0.0])] * 3
    return np.concatenate([p, np.stack([upper_neck, head_top] + feet)])


def hide(person, names, zero=True):
    """Undetected joints as detectors write them: confidence 0 (and coordinates 0, 0)."""
    person = person.copy()
    for n in names:
        i = skeleton.COCO17_NAMES.index(n)
        person[:, i, 2] = 0.0
        if zero:
            person[:, i, :2] = 0.0
    return person


def write_openpose(folder, people, layout):
    folder.mkdir()
    convert = coco_to_body25b if layout == "body25b" else coco_to_body25
    for t, p in enumerate(people):
        body = convert(p)
        if layout == "body25":  # BODY_25's Neck and MidHip are detected only when both sides are
            body[:, 2] = np.where(np.isclose(body[:, :2], 0).all(-1), 0.0, body[:, 2])
        content = {"people": [{"pose_keypoints_2d": body.reshape(-1).tolist()}]}
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps(content))
    return str(folder)


def write_coco(folder, people):
    folder.mkdir()
    for t, p in enumerate(people):
        (folder / f"{t:06d}.json").write_text(json.dumps([{"image_id": t, "keypoints": p.reshape(-1).tolist()}]))
    return str(folder)


def test_body25b_without_a_nose_lifts_from_eyes_and_head_top(tmp_path):
    person = hide(walking_person(30), ["nose"])
    folder = write_openpose(tmp_path / "op", person, "body25b")
    kp = kp_io.load_keypoints(folder, "openpose", image_size=(1920, 1080))
    assert kp.source_layout == "body25b"                                     # auto, though the nose is (0, 0)
    names = [n for n, _ in skeleton.head_fallbacks("body25b")["Nose"]]
    assert (kp.fallback[:, J["Nose"]] == 1 + names.index("mid-eyes")).all()
    assert (kp.fallback[:, J["Head"]] == 0).all()                            # the head top is seen
    assert kp.filled[:, J["Nose"]].all() and not kp.filled[:, J["Head"]].any()
    eyes = 0.5 * (person[:, 1, :2] + person[:, 2, :2])
    np.testing.assert_allclose(kp.pixels[:, J["Nose"]], eyes, atol=1e-3)
    assert np.isfinite(kp.keypoints2d).all()


def test_coco_fallbacks_in_order(tmp_path):
    person = walking_person(30)
    person = np.concatenate([person[:10], hide(person[10:20], ["nose"]), hide(person[20:], FACE)])
    kp = kp_io.load_keypoints(write_coco(tmp_path / "c", person), "coco", image_size=(1920, 1080),
                              smoothing=False)
    nose_names = [n for n, _ in skeleton.head_fallbacks("coco")["Nose"]]
    head_names = [n for n, _ in skeleton.head_fallbacks("coco")["Head"]]
    np.testing.assert_array_equal(kp.fallback[:10, [J["Nose"], J["Head"]]], 0)
    assert (kp.fallback[10:20, J["Nose"]] == 1 + nose_names.index("mid-eyes")).all()
    assert (kp.fallback[10:20, J["Head"]] == 1 + head_names.index("face: left_eye, right_eye, left_ear, "
                                                                     "right_ear")).all()
    assert (kp.fallback[20:, J["Nose"]] == len(nose_names)).all()               # the neck line, last resort
    assert (kp.fallback[20:, J["Head"]] == len(head_names)).all()
    # The neck line: the Head continues the torso 0.46 of its length above the thorax.
    thorax = 0.5 * (person[20:, 5, :2] + person[20:, 6, :2])
    hip = 0.5 * (person[20:, 11, :2] + person[20:, 12, :2])
    np.testing.assert_allclose(kp.pixels[20:, J["Head"]], thorax + 0.46 * (thorax - hip), atol=1e-3)
    assert kp.filled[10:, J["Nose"]].all() and not kp.filled[:10].any()


def test_refused_only_when_a_body_part_is_gone(tmp_path):
    person = hide(walking_person(30), FACE)
    kp_io.load_keypoints(write_coco(tmp_path / "face", person), "coco", image_size=(1920, 1080))  # lifts
    no_wrist = hide(walking_person(30), ["left_wrist"])
    with pytest.raises(ValueError, match="LWrist"):
        kp_io.load_keypoints(write_coco(tmp_path / "wrist", no_wrist), "coco", image_size=(1920, 1080))
    no_shoulders = hide(walking_person(30), FACE + ("left_shoulder", "right_shoulder"))
    with pytest.raises(ValueError, match="missing in too many"):
        kp_io.load_keypoints(write_coco(tmp_path / "head", no_shoulders), "coco", image_size=(1920, 1080))


@pytest.mark.parametrize("layout", ["body25", "body25b"])
def test_layout_auto_with_zeros_for_undetected_joints(tmp_path, layout):
    person = hide(walking_person(30), ["nose", "left_eye", "left_ear"])        # a head turned away
    folder = write_openpose(tmp_path / layout, person, layout)
    assert kp_io.load_keypoints(folder, "openpose", image_size=(1920, 1080)).source_layout == layout


@pytest.mark.parametrize("layout", ["coco", "body25", "body25b"])
def test_every_fallback_is_reachable_and_follows_its_recipe(layout):
    """For each alternative of Nose and Head: hide one keypoint of every better recipe (none of its own), and that
    alternative builds the joint, flagged with its index."""
    names = skeleton.SOURCE_LAYOUTS[layout]
    rng = np.random.default_rng(0)
    base = np.concatenate([rng.uniform(100, 900, (12, len(names), 2)), np.full((12, len(names), 1), 0.9)], -1)
    raw = kp_io.RawFrames(people=[], names=[str(t) for t in range(12)], layout=layout, image_size=(1000, 1000))
    for joint, alternatives in skeleton.head_fallbacks(layout).items():
        j = J[joint]
        recipes = [{names[s]: w for s, w in enumerate(skeleton.mapping_matrix(layout)[j]) if w}]
        recipes += [r for _, r in alternatives]
        for k in range(1, len(recipes)):
            own = set(recipes[k])
            hidden = set()
            for better in recipes[:k]:
                if not set(better) & hidden:
                    candidates = sorted(set(better) - own)
                    assert candidates, f"{layout} {joint}: alternative {k} can never be reached"
                    hidden.add(candidates[0])
            people = base.copy()
            for name in hidden:
                people[:, names.index(name), 2] = 0.0
            raw.people = [[p] for p in people]
            kp = kp_io.process(raw, smoothing=False)
            assert (kp.fallback[:, j] == k).all(), (layout, joint, k, sorted(hidden))
            expected = sum(w * people[:, names.index(n), :2] for n, w in recipes[k].items())
            np.testing.assert_allclose(kp.pixels[:, j], expected, atol=1e-3)
