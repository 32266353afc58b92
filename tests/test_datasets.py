"""Benchmark loaders on tiny files of the real layouts, and protocol scores against a NumPy reference."""

import pickle
import warnings

import numpy as np
import pytest

from ptjax import skeleton
from ptjax.data import datasets, h36m, mpi3dhp, pw3d
from ptjax.evaluate import clip_sequences, evaluate_predictor, format_table, score

# --- NumPy reference of the protocols (written independently of ptjax.metrics) --------------------------------------


def ref_procrustes(pred, gt):
    """Similarity transform of each pred (J, 3) onto gt minimising the squared error (Umeyama, no reflection)."""
    out = np.empty_like(pred)
    for i, (p, g) in enumerate(zip(pred, gt)):
        mp, mg = p.mean(0), g.mean(0)
        y, x = p - mp, g - mg
        u, s, vt = np.linalg.svd(y.T @ x)
        d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
        rot = u @ d @ vt
        scale = np.trace(np.diag(s) @ d) / (y ** 2).sum()
        out[i] = scale * y @ rot + mg
    return out


def ref_frame_scores(pred, gt, joints):
    pred = (pred - pred[:, :1])[:, joints].astype(np.float64)
    gt = (gt - gt[:, :1])[:, joints].astype(np.float64)
    err = np.sqrt(((pred - gt) ** 2).sum(-1))
    perr = np.sqrt(((ref_procrustes(pred, gt) - gt) ** 2).sum(-1))
    pck = np.array([(e * 1000 < 150).mean() * 100 for e in err])
    auc = np.array([np.mean([(e * 1000 < t).mean() * 100 for t in np.linspace(0, 150, 31)]) for e in err])
    return {"mpjpe": err.mean(1) * 1000, "p_mpjpe": perr.mean(1) * 1000, "pck": pck, "auc": auc}


def ref_table(preds, gts, groups, joints):
    per_group = {}
    for p, g, name in zip(preds, gts, groups):
        s = ref_frame_scores(p, g, joints)
        acc = per_group.setdefault(name, {k: [] for k in s})
        for k, v in s.items():
            acc[k].append(v)
    rows = {g: {k: np.concatenate(v).mean() for k, v in acc.items()} for g, acc in per_group.items()}
    everything = {k: np.concatenate([np.concatenate(acc[k]) for acc in per_group.values()]).mean()
                  for k in ("mpjpe", "p_mpjpe", "pck", "auc")}
    mean = {k: np.mean([r[k] for r in rows.values()]) for k in everything}
    return rows, mean, everything


def assert_matches_reference(result, rows, mean, everything, keys=("mpjpe", "p_mpjpe", "pck", "auc")):
    assert set(result["groups"]) == set(rows)
    for g, r in rows.items():
        for k in keys:
            assert result["groups"][g][k] == pytest.approx(r[k], abs=2e-3), (g, k)
    for k in keys:
        assert result["mean"][k] == pytest.approx(mean[k], abs=2e-3), k
        assert result["all"][k] == pytest.approx(everything[k], abs=2e-3), k


# --- Human3.6M ------------------------------------------------------------------------------------------------------

def qrot(q, v):
    """Rotate vectors v (..., 3) by unit quaternion q = (w, x, y, z) (VideoPose3D's convention)."""
    w, u = q[0], np.asarray(q[1:])
    return v + 2 * np.cross(u, np.cross(u, v) + w * v)


def ref_world_to_camera(x, subject, c):
    q, t = h36m.CAMERA_EXTRINSICS[subject][c]
    q = np.asarray(q) / np.linalg.norm(q)
    q_inv = np.concatenate([q[:1], -q[1:]])
    return qrot(q_inv, x - np.asarray(t) / 1000.0)


def ref_project(x_cam, c):
    intr = h36m.CAMERA_INTRINSICS[c]
    f, ctr = np.asarray(intr["focal_length"]), np.asarray(intr["center"])
    return f * x_cam[..., :2] / x_cam[..., 2:] + ctr


ACTIONS = {"S1": ("Walking",), "S9": ("Walking 1", "Walking", "Eating 2"), "S11": ("Walking", "Eating")}


def make_h36m(folder, rng, frames=11, joints_2d=17, layout="h36m", extra_2d_frames=3):
    positions_3d, positions_2d = {}, {}
    for subject, actions in ACTIONS.items():
        positions_3d[subject], positions_2d[subject] = {}, {}
        for a, action in enumerate(actions):
            base = rng.normal(0, 0.25, (1, 32, 3)) + np.array([0.3 * a, -0.2, 0.9])
            motion = np.cumsum(rng.normal(0, 0.01, (frames + a, 32, 3)), 0)
            world = (base + motion).astype(np.float32)
            positions_3d[subject][action] = world
            views = []
            for c in range(4):
                n = len(world) + (extra_2d_frames if action == "Walking" else 0)
                padded = np.concatenate([world, np.repeat(world[-1:], n - len(world), 0)])
                pix = ref_project(ref_world_to_camera(padded, subject, c), c)[:, list(h36m.H36M32_TO_17)]
                if joints_2d == 16:
                    pix = pix[:, list(skeleton.POSETRIPLET16)]
                if layout == "coco":
                    pix = rng.normal(500, 50, (n, 17, 2))
                views.append(pix.astype(np.float32))
            positions_2d[subject][action] = views
    np.savez_compressed(folder / "data_3d_h36m.npz", positions_3d=positions_3d)
    meta = {"layout_name": layout, "num_joints": joints_2d,
            "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(folder / "data_2d_h36m_gt.npz", positions_2d=positions_2d, metadata=meta)
    return positions_3d, positions_2d


def test_h36m_cameras_look_at_the_capture_volume():
    for subject in h36m.CAMERA_EXTRINSICS:
        for c in range(4):
            cam = h36m.get_camera(subject, c)
            rot, pos = np.asarray(cam.extrinsics.rotation), np.asarray(cam.extrinsics.position)
            assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-5) and np.linalg.det(rot) > 0.99
            assert 4.0 < np.linalg.norm(pos[:2]) < 6.0 and 1.4 < pos[2] < 1.7  # metres, ~1.5 m high
            assert rot[:, 2] @ (-pos / np.linalg.norm(pos)) > 0.98  # optical axis towards the origin
            assert rot[:, 1] @ np.array([0.0, 0.0, -1.0]) > 0.95  # image down is world down
    with pytest.raises(ValueError, match="no Human3.6M camera extrinsics"):
        h36m.get_camera("S2", 0)


def test_h36m_loader_matches_reference_and_protocol(tmp_path):
    rng = np.random.default_rng(0)
    positions_3d, positions_2d = make_h36m(tmp_path, rng)
    seqs = h36m.eval_sequences(str(tmp_path))
    # S9 has 3 actions, S11 2; 4 cameras each; S1 is a training subject and is not evaluated.
    assert len(seqs) == 20 and not any(s.name.startswith("S1/") for s in seqs)
    assert {s.group for s in seqs} == {"Walking", "Eating"}
    by_name = {s.name: s for s in seqs}
    for subject in ("S9", "S11"):
        for action in ACTIONS[subject]:
            world = positions_3d[subject][action]
            for c in range(4):
                seq = by_name[f"{subject}/{action}/{h36m.CAMERA_INTRINSICS[c]['id']}"]
                ref_cam = ref_world_to_camera(world, subject, c)[:, list(h36m.H36M32_TO_17)][::2]
                np.testing.assert_allclose(seq.joints3d, ref_cam, atol=2e-5)
                intr = h36m.CAMERA_INTRINSICS[c]
                pix = positions_2d[subject][action][c][:len(world)]
                ref_norm = pix / intr["res_w"] * 2 - np.array([1.0, intr["res_h"] / intr["res_w"]])
                np.testing.assert_allclose(seq.keypoints2d, ref_norm[::2], atol=1e-5)
                assert seq.fps == 25.0 and seq.num_frames == (len(world) + 1) // 2

    # Scores of noisy predictions vs the NumPy reference, per action group and overall.
    preds = [s.joints3d + rng.normal(0, 0.04, s.joints3d.shape).astype(np.float32) + 0.3 for s in seqs]
    for joints in (datasets.SCORED_JOINTS, datasets.ALL_JOINTS):
        result = score(preds, seqs, joints)
        rows, mean, everything = ref_table(preds, [s.joints3d for s in seqs], [s.group for s in seqs], list(joints))
        assert_matches_reference(result, rows, mean, everything)
        assert result["frames"] == sum(s.num_frames for s in seqs)
    table = format_table(result, "H36M", "action")
    assert "Walking" in table and "mean over actions" in table and "all frames" in table


def test_h36m_16_joint_and_coco_2d_files(tmp_path):
    rng = np.random.default_rng(1)
    (tmp_path / "a").mkdir()
    positions_3d, positions_2d = make_h36m(tmp_path / "a", rng, joints_2d=16)
    seqs = h36m.eval_sequences(str(tmp_path / "a"))
    seq = next(s for s in seqs if s.name == f"S9/Eating 2/{h36m.CAMERA_INTRINSICS[0]['id']}")
    kp16 = positions_2d["S9"]["Eating 2"][0][::2]
    intr = h36m.CAMERA_INTRINSICS[0]
    norm16 = kp16 / intr["res_w"] * 2 - np.array([1.0, intr["res_h"] / intr["res_w"]])
    np.testing.assert_allclose(seq.keypoints2d[:, list(skeleton.POSETRIPLET16)], norm16, atol=1e-5)
    np.testing.assert_allclose(seq.keypoints2d[:, 9], 0.5 * (norm16[:, 8] + norm16[:, 9]), atol=1e-5)

    (tmp_path / "b").mkdir()
    _, coco2d = make_h36m(tmp_path / "b", rng, layout="coco")
    seqs = h36m.eval_sequences(str(tmp_path / "b"))
    seq = next(s for s in seqs if s.name == f"S11/Eating/{h36m.CAMERA_INTRINSICS[1]['id']}")
    expected = skeleton.convert(coco2d["S11"]["Eating"][1][:len(seq.joints3d) * 2 - 1], "coco")[::2]
    np.testing.assert_allclose(seq.keypoints2d, expected / 500.0 - 1.0, atol=1e-5)


def test_h36m_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_3d_h36m.npz"):
        h36m.eval_sequences(str(tmp_path))
    make_h36m(tmp_path, np.random.default_rng(2))
    raw = (tmp_path / "data_2d_h36m_gt.npz").read_bytes()
    (tmp_path / "data_2d_h36m_gt.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated"):
        h36m.eval_sequences(str(tmp_path))
    np.savez(tmp_path / "data_2d_h36m_gt.npz", positions_2d={"S1": {}})
    with pytest.raises(ValueError, match="subject S9 is missing"):
        h36m.eval_sequences(str(tmp_path))
    np.savez(tmp_path / "data_2d_h36m_gt.npz", positions_2d={"S9": {}, "S11": {}})
    with pytest.raises(ValueError, match="action S9/Eating 2 is missing"):
        h36m.eval_sequences(str(tmp_path))
    np.savez(tmp_path / "data_2d_h36m_gt.npz", wrong_key=np.zeros(3))
    with pytest.raises(ValueError, match="no 'positions_2d' entry"):
        h36m.eval_sequences(str(tmp_path))
    np.savez(tmp_path / "data_3d_h36m.npz",
             positions_3d={"S9": {"Walking": np.zeros((5, 20, 3))}, "S11": {}})
    with pytest.raises(ValueError, match="20 joints"):
        h36m.eval_sequences(str(tmp_path))
    short = {s: {"Walking": [np.zeros((3, 17, 2), np.float32)] * 4} for s in ("S9", "S11")}
    np.savez(tmp_path / "data_3d_h36m.npz", positions_3d={s: {"Walking": np.ones((5, 17, 3))} for s in short})
    np.savez(tmp_path / "data_2d_h36m_gt.npz", positions_2d=short)
    with pytest.raises(ValueError, match="3 2D frames but 5 mocap frames"):
        h36m.eval_sequences(str(tmp_path))


# --- MPI-INF-3DHP and 3DPW --------------------------------------------------------------------------------------------

def make_bysub(path, rng, key_2d, subjects=("TS1", "TS2"), unit_scale=1.0, channels=3):
    data, clips = {}, []
    for s, subject in enumerate(subjects):
        n = 17 + 4 * s
        gt = (rng.normal(0, 0.3, (1, 16, 3)) + np.cumsum(rng.normal(0, 0.01, (n, 16, 3)), 0)
              + np.array([0, 0, 4.0])).astype(np.float32)
        kp = rng.normal(0, 0.5, (n, 16, channels)).astype(np.float32)
        clip_idx = [[0, 7], [7, n]]
        data[subject] = {key_2d: kp, "valid_kps_3d": gt * unit_scale, "clip_idx": clip_idx, "extra": "ignored"}
        clips += [(subject, gt[a:b], kp[a:b, :, :2]) for a, b in clip_idx]
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return clips


@pytest.mark.parametrize("module,key_2d", [(mpi3dhp, "valid_kps_2d_imgnorm"), (pw3d, "joints_2d_imgnorm")])
def test_bysub_loaders_and_pck_auc_match_reference(tmp_path, module, key_2d):
    rng = np.random.default_rng(3)
    clips = make_bysub(tmp_path / module.FILE_NAME, rng, key_2d)
    seqs = module.eval_sequences(str(tmp_path))  # a folder holding the file
    assert [s.group for s in seqs] == ["TS1", "TS1", "TS2", "TS2"]
    for seq, (subject, gt, kp) in zip(seqs, clips):
        np.testing.assert_allclose(seq.joints3d[:, list(skeleton.POSETRIPLET16)], gt, atol=1e-6)
        np.testing.assert_allclose(seq.keypoints2d[:, list(skeleton.POSETRIPLET16)], kp, atol=1e-6)
    # Errors around the 150 mm threshold so PCK and AUC are informative.
    preds = [s.joints3d + rng.normal(0, 0.07, s.joints3d.shape).astype(np.float32) for s in seqs]
    result = score(preds, seqs)
    rows, mean, everything = ref_table(preds, [s.joints3d for s in seqs], [s.group for s in seqs],
                                       list(skeleton.POSETRIPLET16))
    assert_matches_reference(result, rows, mean, everything)
    assert 10 < result["all"]["pck"] < 95 and 5 < result["all"]["auc"] < result["all"]["pck"]


def test_bysub_units_and_bad_files(tmp_path):
    rng = np.random.default_rng(4)
    clips = make_bysub(tmp_path / "mm.pkl", rng, mpi3dhp.KEY_2D, unit_scale=1000.0, channels=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        seqs = mpi3dhp.eval_sequences(str(tmp_path / "mm.pkl"))
    assert any("millimetres" in str(w.message) for w in caught)
    np.testing.assert_allclose(seqs[0].joints3d[:, list(skeleton.POSETRIPLET16)], clips[0][1], atol=1e-5)
    seqs_mm = mpi3dhp.eval_sequences(str(tmp_path / "mm.pkl"), unit="mm")
    np.testing.assert_allclose(seqs_mm[0].joints3d, seqs[0].joints3d)

    (tmp_path / "trunc.pkl").write_bytes((tmp_path / "mm.pkl").read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable pickle"):
        mpi3dhp.eval_sequences(str(tmp_path / "trunc.pkl"))
    with open(tmp_path / "nokey.pkl", "wb") as f:
        pickle.dump({"TS1": {"valid_kps_3d": np.zeros((3, 16, 3))}}, f)
    with pytest.raises(ValueError, match="lacks key"):
        mpi3dhp.eval_sequences(str(tmp_path / "nokey.pkl"))
    with open(tmp_path / "clip.pkl", "wb") as f:
        pickle.dump({"TS1": {"joints_2d_imgnorm": np.zeros((3, 16, 2)), "valid_kps_3d": np.ones((3, 16, 3)),
                             "clip_idx": [[0, 5]]}}, f)
    with pytest.raises(ValueError, match=r"clip \[0, 5\) is outside the 3 frames"):
        pw3d.eval_sequences(str(tmp_path / "clip.pkl"))
    with open(tmp_path / "joints.pkl", "wb") as f:
        pickle.dump({"TS1": {"joints_2d_imgnorm": np.zeros((3, 14, 2)), "valid_kps_3d": np.ones((3, 14, 3)),
                             "clip_idx": [[0, 3]]}}, f)
    with pytest.raises(ValueError, match="expected .* 17, C.* or .* 16, C"):
        pw3d.eval_sequences(str(tmp_path / "joints.pkl"))
    with open(tmp_path / "nan.pkl", "wb") as f:
        gt = np.ones((3, 16, 3))
        gt[1, 2] = np.nan
        pickle.dump({"TS1": {"joints_2d_imgnorm": np.zeros((3, 16, 2)), "valid_kps_3d": gt, "clip_idx": [[0, 3]]}}, f)
    with pytest.raises(ValueError, match="non-finite"):
        pw3d.eval_sequences(str(tmp_path / "nan.pkl"))
    with pytest.raises(FileNotFoundError, match="3dpw_testset_bySub.pkl"):
        pw3d.eval_sequences(str(tmp_path / "nowhere"))


def test_clip_benchmark_with_oracle_predictor_scores_zero():
    seqs = clip_sequences()
    assert len(seqs) == 20 and {s.group for s in seqs} == {"walker_turn_right1", "run", "jump", "dance_b", "punch"}
    lookup = {s.keypoints2d.tobytes(): s.joints3d for s in seqs}
    result, table = evaluate_predictor("clips", lambda kp: lookup[np.asarray(kp).tobytes()])
    assert result["all"]["mpjpe"] < 1e-3 and result["all"]["pck"] == 100.0 and result["all"]["auc"] > 96
    assert "punch" in table


# --- ptjax eval with a tiny estimator checkpoint ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    import jax

    from ptjax import estimator
    config = estimator.default_config()
    config.model.filter_widths = (3, 3)
    config.model.channels = config.model.traj_channels = 16
    state = estimator.init(jax.random.PRNGKey(0), config)
    folder = tmp_path_factory.mktemp("estimator")
    estimator.save(str(folder), state, config)
    return str(folder), state


def test_eval_cli_h36m_and_3dhp_match_reference(tmp_path, tiny_checkpoint, capsys):
    import json

    from ptjax import cli, estimator
    ckpt, state = tiny_checkpoint
    rng = np.random.default_rng(6)
    make_h36m(tmp_path, rng)
    assert cli.main(["eval", "--dataset", "h36m", "--checkpoint", ckpt, "--data-dir", str(tmp_path),
                     "--json", str(tmp_path / "h36m.json")]) == 0
    assert "mean over actions" in capsys.readouterr().out
    result = json.loads((tmp_path / "h36m.json").read_text())
    seqs = h36m.eval_sequences(str(tmp_path))
    preds = [estimator.predict(state, s.keypoints2d)["pose"] for s in seqs]
    rows, mean, everything = ref_table(preds, [s.joints3d for s in seqs], [s.group for s in seqs],
                                       list(skeleton.POSETRIPLET16))
    assert_matches_reference(result, rows, mean, everything)
    assert result["frames"] == sum(s.num_frames for s in seqs) and result["dataset"] == "h36m"

    make_bysub(tmp_path / mpi3dhp.FILE_NAME, rng, mpi3dhp.KEY_2D)
    assert cli.main(["eval", "--dataset", "3dhp", "--checkpoint", ckpt, "--data-dir", str(tmp_path),
                     "--json", str(tmp_path / "3dhp.json")]) == 0
    assert "PCK150" in capsys.readouterr().out
    result = json.loads((tmp_path / "3dhp.json").read_text())
    seqs = mpi3dhp.eval_sequences(str(tmp_path))
    preds = [estimator.predict(state, s.keypoints2d)["pose"] for s in seqs]
    assert_matches_reference(result, *ref_table(preds, [s.joints3d for s in seqs], [s.group for s in seqs],
                                                list(skeleton.POSETRIPLET16)))

    assert cli.main(["eval", "--dataset", "3dpw", "--checkpoint", ckpt]) == 2
    assert "--data-dir is required" in capsys.readouterr().err
    assert cli.main(["eval", "--dataset", "h36m", "--checkpoint", str(tmp_path / "none"),
                     "--data-dir", str(tmp_path)]) == 2
    assert "no estimator checkpoint" in capsys.readouterr().err


def test_eval_cli_clips_agrees_with_protocol_scores(tmp_path, tiny_checkpoint, capsys):
    import json

    from ptjax import cli, estimator
    ckpt, state = tiny_checkpoint
    assert cli.main(["eval", "--dataset", "clips", "--checkpoint", ckpt, "--json", str(tmp_path / "c.json")]) == 0
    assert "walker_turn_right1" in capsys.readouterr().out
    result = json.loads((tmp_path / "c.json").read_text())
    seqs = clip_sequences()
    reference = score([estimator.predict(state, s.keypoints2d)["pose"] for s in seqs], seqs)
    for k in ("mpjpe", "p_mpjpe", "pck", "auc"):
        assert result["all"][k] == pytest.approx(reference["all"][k], abs=0.05), k
        assert result["mean"][k] == pytest.approx(reference["mean"][k], abs=0.05), k
        for g in reference["groups"]:
            assert result["groups"][g][k] == pytest.approx(reference["groups"][g][k], abs=0.05), (g, k)
