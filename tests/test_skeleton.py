import numpy as np
import pytest

from ptjax import skeleton


def test_tree_is_consistent():
    assert len(skeleton.JOINT_NAMES) == len(skeleton.PARENTS) == 17
    assert skeleton.PARENTS[0] == -1
    assert all(p < c for p, c in skeleton.BONES)  # parents come before children
    assert len(skeleton.BONES) == 16
    assert skeleton.POSETRIPLET16 == (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16)
    flip = np.array(skeleton.FLIP_PERMUTATION)
    assert np.all(flip[flip] == np.arange(17))
    assert [skeleton.JOINT_NAMES[i] for i in (flip[1], flip[11])] == ["LHip", "RShoulder"]


def test_flip_lr_mirrors_and_swaps_labels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 17, 3)).astype(np.float32)
    y = skeleton.flip_lr(x, axis=0)
    assert np.allclose(y[:, 1, 0], -x[:, 4, 0]) and np.allclose(y[:, 1, 1:], x[:, 4, 1:])
    assert np.allclose(skeleton.flip_lr(y, axis=0), x)
    assert np.allclose(skeleton.bone_lengths(y)[:, [0, 1, 2]], skeleton.bone_lengths(x)[:, [3, 4, 5]])


def _coco_pose():
    names = skeleton.COCO17_NAMES
    rng = np.random.default_rng(1)
    pts = {n: rng.normal(size=2) for n in names}
    return np.stack([pts[n] for n in names]), pts


def test_coco_mapping_by_hand():
    kp, p = _coco_pose()
    out = skeleton.convert(kp, "coco")
    hip = (p["left_hip"] + p["right_hip"]) / 2
    thorax = (p["left_shoulder"] + p["right_shoulder"]) / 2
    head = (0.1 * p["nose"] + 0.6 * (thorax + 0.5 * (thorax - hip)) + 0.1 * (p["left_eye"] + p["right_eye"]) / 2
            + 0.2 * (p["left_ear"] + p["right_ear"]) / 2)
    np.testing.assert_allclose(out[0], hip, atol=1e-12)
    np.testing.assert_allclose(out[8], thorax, atol=1e-12)
    np.testing.assert_allclose(out[7], (hip + thorax) / 2, atol=1e-12)
    np.testing.assert_allclose(out[10], head, atol=1e-12)
    np.testing.assert_allclose(out[13], p["left_wrist"], atol=1e-12)
    np.testing.assert_allclose(out[3], p["right_ankle"], atol=1e-12)


def test_body25_and_body25b_agree_with_coco_on_shared_joints():
    kp, p = _coco_pose()
    b25 = np.zeros((25, 2))
    for i, n in enumerate(skeleton.BODY25_NAMES):
        coco = skeleton.BODY25_TO_COCO.get(n)
        if coco is not None:
            b25[i] = p[coco]
    b25[skeleton.BODY25_NAMES.index("MidHip")] = (p["left_hip"] + p["right_hip"]) / 2
    b25[skeleton.BODY25_NAMES.index("Neck")] = (p["left_shoulder"] + p["right_shoulder"]) / 2
    coco_out = skeleton.convert(kp, "coco")
    np.testing.assert_allclose(skeleton.convert(b25, "body25"), coco_out, atol=1e-12)
    b25b = np.zeros((25, 2))
    b25b[:17] = kp
    b25b[18] = [7.0, 8.0]  # HeadTop
    out = skeleton.convert(b25b, "body25b")
    np.testing.assert_allclose(out[10], [7.0, 8.0])
    np.testing.assert_allclose(np.delete(out, 10, 0), np.delete(coco_out, 10, 0), atol=1e-12)


def test_confidence_of_derived_joints_is_the_weakest_source():
    kp, _ = _coco_pose()
    conf = np.ones(17)
    conf[skeleton.COCO17_NAMES.index("left_hip")] = 0.2
    _, c = skeleton.convert(kp[None], "coco", confidence=conf[None])
    assert c.shape == (1, 17)
    assert c[0, 0] == pytest.approx(0.2)  # Hip uses left_hip
    assert c[0, 7] == pytest.approx(0.2) and c[0, 10] == pytest.approx(0.2)  # Spine, Head use the hip too
    assert c[0, 1] == 1.0 and c[0, 4] == pytest.approx(0.2)


@pytest.mark.parametrize("bad, match", [
    (dict(keypoints=np.zeros((18, 2)), source="coco"), "17 joints"),
    (dict(keypoints=np.zeros((17, 2)), source="mpii"), "unknown keypoint layout"),
    (dict(keypoints=np.zeros((17, 2), np.int32), source="coco"), "floating point"),
    (dict(keypoints=np.zeros((17, 2)), source="coco", confidence=np.ones(16)), "confidence shape"),
])
def test_convert_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        skeleton.convert(**bad)


def test_check_joints_names_the_problem():
    with pytest.raises(ValueError, match="16 joints"):
        skeleton.check_joints(np.zeros((4, 16, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        x = np.zeros((4, 17, 3))
        x[2, 5, 1] = np.nan
        skeleton.check_joints(x)
    with pytest.raises(ValueError, match="coordinates"):
        skeleton.check_joints(np.zeros((4, 17, 2)))
    with pytest.raises(ValueError, match="numeric"):
        skeleton.check_joints(np.array([["a"] * 3] * 17))
