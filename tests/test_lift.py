"""`ptjax lift` end to end on COCO / OpenPose folders and npz with a tiny estimator; exports; the example."""

import importlib.util
import json
import os

import jax
import numpy as np
import pytest

from ptjax import cli, estimator, export, skeleton
from ptjax.data import keypoints as kp_io

# A front-facing person in pixels (COCO-17 order), hips at the origin.
TEMPLATE = np.array([
    (0, -170), (8, -178), (-8, -178), (16, -172), (-16, -172), (40, -130), (-40, -130), (55, -70), (-55, -70),
    (60, -15), (-60, -15), (25, 0), (-25, 0), (28, 100), (-28, 100), (30, 200), (-30, 200)], np.float64)
LWRIST = skeleton.COCO17_NAMES.index("left_wrist")


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    config = estimator.default_config()
    config.model.filter_widths = (3, 3)
    config.model.channels = config.model.traj_channels = 16
    state = estimator.init(jax.random.PRNGKey(1), config)
    folder = tmp_path_factory.mktemp("estimator")
    estimator.save(str(folder), state, config)
    return str(folder), state


def walking_person(num_frames, center=(800.0, 500.0), scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    xy = scale * TEMPLATE[None] + np.array(center) + np.arange(num_frames)[:, None, None] * np.array([4.0, 0.0])
    xy[:, LWRIST, 1] += 20 * np.sin(0.5 * np.arange(num_frames))
    return np.concatenate([xy, rng.uniform(0.7, 1.0, (num_frames, 17, 1))], -1)


def coco_to_body25(p):
    """COCO-17 (J, 3) -> OpenPose BODY_25 (25, 3)."""
    c = {n: p[i] for i, n in enumerate(skeleton.COCO17_NAMES)}
    alias = {"Nose": "nose", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear"}
    for side, prefix in (("R", "right_"), ("L", "left_")):
        for part in ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"):
            alias[side + part] = prefix + part.lower()
    rows = []
    for name in skeleton.BODY25_NAMES:
        if name in alias:
            rows.append(c[alias[name]])
        elif name == "Neck":
            rows.append(0.5 * (c["left_shoulder"] + c["right_shoulder"]))
        elif name == "MidHip":
            rows.append(0.5 * (c["left_hip"] + c["right_hip"]))
        else:  # feet: near the ankle of that side
            rows.append(c["left_ankle" if name[0] == "L" else "right_ankle"] + np.array([10.0, 10.0, 0.0]))
    return np.stack(rows)


def write_folder(folder, fmt, num_frames=30):
    """Missing files (frames 4-5), a frame without people (10), a low-confidence wrist (14-16), a background
    person listed first in odd frames."""
    main, other = walking_person(num_frames), walking_person(num_frames, center=(1600.0, 400.0), scale=0.5, seed=1)
    main[14:17, LWRIST, 2] = 0.02
    folder.mkdir()
    for t in range(num_frames):
        if t in (4, 5):
            continue
        people = [] if t == 10 else ([other[t], main[t]] if t % 2 else [main[t], other[t]])
        if fmt == "openpose":
            content = {"version": 1.3, "people": [{"pose_keypoints_2d": coco_to_body25(p).reshape(-1).tolist()}
                                                  for p in people]}
            name = f"video_{t:012d}_keypoints.json"
        else:
            content = [{"image_id": t, "keypoints": p.reshape(-1).tolist(), "score": 0.9} for p in people]
            name = f"{t:06d}.json"
        (folder / name).write_text(json.dumps(content))
    return str(folder)


def test_lift_coco_folder_end_to_end(tmp_path, tiny_checkpoint, capsys):
    ckpt, state = tiny_checkpoint
    folder = write_folder(tmp_path / "coco", "coco")
    out, gif, bvh = tmp_path / "out.npz", tmp_path / "out.gif", tmp_path / "out.bvh"
    rc = cli.main(["lift", folder, "--format", "coco", "--checkpoint", ckpt, "--out", str(out), "--world",
                   "--gif", str(gif), "--bvh", str(bvh), "--image-size", "1920", "1080", "--fps", "25"])
    assert rc == 0, capsys.readouterr().err
    assert "filled" in capsys.readouterr().out
    data = np.load(out)
    assert data["joints3d"].shape == (30, 17, 3) and np.isfinite(data["joints3d"]).all()
    kp = kp_io.load_keypoints(folder, "coco", image_size=(1920, 1080))
    np.testing.assert_allclose(data["keypoints2d"], kp.keypoints2d)
    pred = estimator.predict(state, kp.keypoints2d)
    np.testing.assert_allclose(data["joints3d"], pred["joints3d"], atol=1e-6)
    np.testing.assert_allclose(data["joints3d"], data["pose"] + data["trajectory"][:, None], atol=1e-6)
    np.testing.assert_allclose(data["joints_world"], estimator.camera_to_world(pred["joints3d"]), atol=1e-6)
    np.testing.assert_array_equal(np.flatnonzero(data["missing_frames"]), [4, 5, 10])
    assert data["filled"][14:17, skeleton.JOINT_INDEX["LWrist"]].all()
    assert data["fps"] == 25 and list(data["image_size"]) == [1920, 1080]
    assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    from ptjax import bvh as bvh_io
    joints, fps = bvh_io.read_bvh(str(bvh))
    assert fps == pytest.approx(25.0) and joints.shape == (30, 17, 3)
    # BVH keeps one bone length per bone (the mean over frames): root path and bone directions survive exactly.
    np.testing.assert_allclose(joints[:, 0], data["joints_world"][:, 0], atol=1e-4)
    parents, children = np.array(skeleton.BONES).T
    unit = lambda j: (j[:, children] - j[:, parents]) / np.linalg.norm(j[:, children] - j[:, parents], axis=-1,  # noqa
                                                                        keepdims=True)
    np.testing.assert_allclose(unit(joints), unit(data["joints_world"]), atol=1e-3)


@pytest.mark.parametrize("layout", ["body25", "body25b"])
def test_lift_openpose_folder(tmp_path, tiny_checkpoint, layout):
    ckpt, _ = tiny_checkpoint
    folder = tmp_path / "op"
    write_folder(folder, "openpose")
    if layout == "body25b":  # same folder re-written in BODY_25B order: COCO-17 first, then 8 extra points
        for f in folder.iterdir():
            content = json.loads(f.read_text())
            for person in content["people"]:
                b25 = np.asarray(person["pose_keypoints_2d"]).reshape(25, 3)
                coco = np.stack([b25[skeleton.BODY25_NAMES.index(n)] for n in (
                    "Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow",
                    "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle")])
                extra = np.stack([b25[1], coco[0] + np.array([0, -40.0, 0])] + [b25[19 + i] for i in range(6)])
                person["pose_keypoints_2d"] = np.concatenate([coco, extra]).reshape(-1).tolist()
            f.write_text(json.dumps(content))
    out = tmp_path / "op.npz"
    with pytest.warns(UserWarning, match="image size unknown"):
        assert cli.main(["lift", str(folder), "--format", "openpose", "--checkpoint", ckpt, "--out", str(out)]) == 0
    data = np.load(out)
    assert str(data["source_layout"]) == layout and str(data["image_size_source"]) == "estimated"
    assert data["joints3d"].shape == (30, 17, 3) and "joints_world" not in data.files
    np.testing.assert_array_equal(np.flatnonzero(data["missing_frames"]), [4, 5, 10])


def test_lift_h36m_npz(tmp_path, tiny_checkpoint):
    ckpt, state = tiny_checkpoint
    rng = np.random.default_rng(2)
    pix = 500 + rng.normal(0, 80, (9, 17, 2))
    pix[2, 5] = np.nan
    np.savez(tmp_path / "k.npz", keypoints=pix, image_size=[1000, 1000])
    assert cli.main(["lift", str(tmp_path / "k.npz"), "--format", "h36m", "--checkpoint", ckpt,
                     "--out", str(tmp_path / "o.npz"), "--no-smooth"]) == 0
    data = np.load(tmp_path / "o.npz")
    assert data["filled"].sum() == 1 and data["filled"][2, 5]
    ok = ~data["filled"]
    np.testing.assert_allclose(data["keypoints2d"][ok], (pix / 500 - 1)[ok], atol=1e-5)


def test_lift_refuses_bad_inputs(tmp_path, tiny_checkpoint, capsys):
    ckpt, _ = tiny_checkpoint
    out = tmp_path / "never.npz"

    def run(path, fmt, *extra):
        rc = cli.main(["lift", str(path), "--format", fmt, "--checkpoint", ckpt, "--out", str(out), *extra])
        return rc, capsys.readouterr().err

    (tmp_path / "empty").mkdir()
    assert run(tmp_path / "empty", "coco") == (2, f"ptjax lift: error: keypoint folder '{tmp_path / 'empty'}' "
                                                   "has no .json files\n")
    folder = write_folder(tmp_path / "trunc", "coco")
    victim = sorted(os.listdir(folder))[6]
    with open(os.path.join(folder, victim), "r+") as f:
        f.truncate(30)
    rc, err = run(folder, "coco", "--image-size", "1920", "1080")
    assert rc == 2 and victim in err and "truncated" in err
    bad = tmp_path / "count"
    bad.mkdir()
    (bad / "0.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 54}]}))
    rc, err = run(bad, "openpose", "--layout", "body25")
    assert rc == 2 and "54 pose_keypoints_2d numbers" in err
    np.savez(tmp_path / "nan.npz", keypoints=np.full((6, 17, 2), np.nan))
    rc, err = run(tmp_path / "nan.npz", "h36m")
    assert rc == 2 and "no usable keypoints" in err
    np.savez(tmp_path / "j.npz", keypoints=np.zeros((6, 15, 2)))
    rc, err = run(tmp_path / "j.npz", "h36m")
    assert rc == 2 and "expected (T, 17, 2|3)" in err
    assert not out.exists()
    good = write_folder(tmp_path / "good", "coco")
    rc, err = run(good, "coco", "--image-size", "1920", "1080", "--fps", "-1")
    assert rc == 2 and "fps must be a positive number" in err and not out.exists()
    rc = cli.main(["lift", good, "--format", "coco", "--checkpoint", str(tmp_path / "nothing"), "--out", str(out)])
    assert rc == 2 and "no estimator checkpoint" in capsys.readouterr().err


def test_exports(tmp_path):
    rng = np.random.default_rng(3)
    joints = rng.normal(0, 0.3, (5, 17, 3)).astype(np.float32) + np.array([0, 0, 1.0], np.float32)
    path = export.write_npz(str(tmp_path / "sub" / "a.npz"), {"joints3d": joints, "fps": 30.0})
    np.testing.assert_array_equal(np.load(path)["joints3d"], joints)
    assert not any(name.endswith(".tmp.npz") for name in os.listdir(tmp_path / "sub"))
    bad = joints.copy()
    bad[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        export.write_npz(str(tmp_path / "b.npz"), {"joints3d": bad})
    with pytest.raises(ValueError, match="must end in .npz"):
        export.write_npz(str(tmp_path / "b.npy"), {"joints3d": joints})
    for writer, args in ((export.save_keypoints_animation, (joints[..., :2],)),
                         (export.save_skeleton_animation, (joints,)),
                         (export.save_comparison, (joints, joints[:3] + 0.1)),
                         (export.save_lift_animation, (joints[..., :2], joints))):
        gif = tmp_path / f"{writer.__name__}.gif"
        writer(*args, str(gif), fps=10)
        assert gif.read_bytes()[:6] in (b"GIF87a", b"GIF89a")
    with pytest.raises(ValueError, match="expected \\(T, 17, 3\\)"):
        export.save_skeleton_animation(joints[..., :2], str(tmp_path / "x.gif"))
    display = export.camera_to_display(np.array([[[0.0, -1.0, 3.0]] * 17]))
    np.testing.assert_allclose(display[0, 0], [0.0, 3.0, 0.0])


def test_example_smoke_mode(tmp_path, capsys):
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "lift_keypoints.py")
    spec = importlib.util.spec_from_file_location("lift_keypoints_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--smoke", "--out-dir", str(tmp_path / "smoke"), "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "54 joints filled, 3 frames without the person" in out and "MPJPE" in out
    data = np.load(tmp_path / "smoke" / "lifted.npz")
    assert data["joints3d"].shape == (39, 17, 3) and np.isfinite(data["joints_world"]).all()
    assert (tmp_path / "smoke" / "lifted.gif").exists()
