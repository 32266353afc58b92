"""Co-evolution: the sharded step on 1 and 4 devices, the whole round loop, and kill-and-resume."""

import json
import os

import jax
import numpy as np
import pytest

from ptjax import coevolve
from ptjax.config import get_config
from ptjax.data import load_clips

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "smoke.py")


def smoke_config(**overrides):
    c = get_config(CONFIG)
    for k, v in overrides.items():
        c[k] = v
    return c


def _with_motion(co, state):
    """Fill E's and H's training buffer with real clips, as a rollout would."""
    clips = load_clips(["walk", "kick"])
    seqs = [m.resample(co.fps).joints for m in clips.values()]
    return co._place(state.replace(imitated=coevolve._fill_buffer(state.imitated, seqs),
                                   segments=coevolve._fill_buffer(state.segments, seqs)))


def _comparable(history):
    """Round records without wall-clock fields."""
    drop = ("phase_seconds", "round_seconds", "gif")
    return [{k: v for k, v in rec.items() if k not in drop} for rec in history]


def _differences(a, b, path="") -> list[str]:
    """Paths at which two nested records differ, with both values (NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("coevolve_full"))
    history = coevolve.run(smoke_config(), workdir, progress=False)
    return workdir, history


def test_one_and_four_devices_take_the_same_steps():
    assert len(jax.devices()) >= 4, "conftest forces 4 host devices"
    results = {}
    for n in (1, 4):
        config = smoke_config(num_devices=n)
        # Random cameras and augmentation are keyed per global sample; the adversarial camera draws per device.
        config.estimator.pairs.adversarial = False
        co = coevolve.CoEvolution.create(config)
        assert co.num_devices == n
        state = _with_motion(co, co.init(jax.random.PRNGKey(0)))
        # Same call sizes as the round driver, so the compiled steps are shared with the run tests.
        out = {}
        for phase, calls in (("imitator", 1), ("estimator", 2), ("hallucinator", 2)):
            s, metrics = co.steps(state.replace(phase=phase), calls)
            out[phase] = {k: np.asarray(v) for k, v in metrics.items()}
            assert int(s.phase_step) == calls
        results[n] = out
    for phase in ("imitator", "estimator", "hallucinator"):
        for k, v in results[1][phase].items():
            assert np.all(np.isfinite(v)), (phase, k)
            np.testing.assert_allclose(results[4][phase][k], v, rtol=2e-3, atol=2e-4, err_msg=f"{phase}/{k}")


def test_round_loop_writes_metrics_checkpoints_and_pictures(full_run):
    workdir, history = full_run
    config = smoke_config()
    assert [r["round"] for r in history] == list(range(config.num_rounds + 1))
    with open(os.path.join(workdir, "metrics.json")) as f:
        assert json.load(f) == json.loads(json.dumps(history))
    for rec in history:
        e, i = rec["estimator"], rec["imitator"]
        assert all(np.isfinite(e[k]) and e[k] > 0 for k in ("mpjpe_mm", "p_mpjpe_mm"))
        assert e["p_mpjpe_mm"] <= e["mpjpe_mm"] + 1e-6
        assert np.isfinite(e["detector_like_p_mpjpe_mm"]) and e["detector_like_p_mpjpe_mm"] > 0
        assert 0.0 <= i["success_rate"] <= 1.0 and np.isfinite(i["mpjpe_mm"])
        assert os.path.isfile(os.path.join(workdir, rec["gif"]))
        assert set(rec["phase_seconds"]) == set(coevolve.phases_of_round(config, rec["round"]))
    # Round 1 lifted the takes with E and ran the hallucinator and the refinement.
    last = history[-1]
    assert np.isfinite(last["lift"]["ik_error_mm"])
    h = last["hallucinator"]
    assert h.get("bone_length_dev_max_m", 0.0) < 0.02
    if "skipped" not in h:
        assert h["g_total"] is not None and np.isfinite(h["g_total"])
    assert 0 <= last["refine"]["kept"] <= last["refine"]["sampled"]
    assert os.path.isdir(os.path.join(workdir, "checkpoints"))
    assert any(name.startswith("events") for name in os.listdir(os.path.join(workdir, "tensorboard")))
    # A finished workdir is not silently overwritten.
    with pytest.raises(FileExistsError, match="--resume"):
        coevolve.run(smoke_config(), workdir, progress=False)


def test_killed_run_resumes_to_the_same_metrics(full_run, tmp_path):
    _, history = full_run
    workdir = str(tmp_path)
    # Stop right after a phase's checkpoint (what a SIGKILL during the next phase leaves on disk) ...
    partial = coevolve.run(smoke_config(), workdir, progress=False, stop_after=(1, "hallucinate"))
    assert len(partial) == 1
    # ... and continue: the same final metrics as the uninterrupted run.
    resumed = coevolve.run(smoke_config(), workdir, resume=True, progress=False)
    assert not _differences(_comparable(resumed), _comparable(history))


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="estimator_batch"):
        coevolve.CoEvolution.create(smoke_config(num_devices=4, estimator_batch=18))
    c = smoke_config()
    c.data.heldout_clips = ("walk",)
    with pytest.raises(ValueError, match="both splits"):
        coevolve.CoEvolution.create(c)
    with pytest.raises(ValueError, match="num_rounds"):
        coevolve.CoEvolution.create(smoke_config(num_rounds=-1))
    with pytest.raises(ValueError, match="refine_keep"):
        coevolve.CoEvolution.create(smoke_config(refine_keep="all"))


def test_earlier_rounds_motion_is_replayed_but_never_the_cold_start():
    co = coevolve.CoEvolution.create(smoke_config(replay_rounds=2))
    n, block = len(co.takes), co.imitated_block
    state_buffer = coevolve._empty_buffer(3 * block, co.max_frames, co.fps)

    def motion(value, frames=20):
        return np.full((frames, 17, 3), value, np.float32)

    def blocks(buffer):
        """Per block: the value of each filled slot (None where empty)."""
        joints, lengths = np.asarray(buffer.joints), np.asarray(buffer.lengths)
        return [[float(joints[b * block + i, 0, 0, 0]) if lengths[b * block + i] else None for i in range(block)]
                for b in range(3)]

    buffer = co.new_round_motion(state_buffer, [motion(0.0)] * n, 0)
    for r in (1, 2, 3, 4):
        buffer = co.new_round_motion(buffer, [motion(float(r))] * n, r)
        buffer = coevolve._fill_buffer(buffer, [motion(r + 0.5, 30)], offset=n)   # the round's refined piece
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
    are too short to keep."""
    seq = np.arange(100, dtype=np.float32)[:, None, None] * np.ones((1, 17, 3), np.float32)
    flags = np.zeros(100, bool)
    flags[[10, 40]] = True
    clean = np.arange(30, dtype=np.float32)[:, None, None] * np.ones((1, 17, 3), np.float32)
    pieces = coevolve.cut_at_resets([seq, clean], [flags, np.zeros(30, bool)], shortest=27)
    assert [len(p) for p in pieces] == [60, 30, 30]          # longest first
    assert pieces[0][0, 0, 0] == 40 and pieces[0][-1, 0, 0] == 99
    assert {float(p[0, 0, 0]) for p in pieces[1:]} == {0.0, 10.0}
    for p in pieces:  # no jump inside a piece
        assert np.all(np.diff(p[:, 0, 0]) == 1)


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
    walk = load_clips(["walk"])["walk"]
    jitter = np.zeros_like(walk.joints)
    jitter[:, :, 1] = 0.05 * (-1.0) ** np.arange(walk.num_frames)[:, None]    # the whole body jumps +-5 cm
    noisy = walk.joints + jitter
    out = coevolve.smooth_motion(noisy, walk.fps, 0.1, 0.0)
    assert np.abs(out - walk.joints).mean() < 0.4 * np.abs(noisy - walk.joints).mean()
    # The pose relative to the root is untouched when only the root is smoothed, and 0 s changes nothing.
    np.testing.assert_allclose(out - out[:, :1], noisy - noisy[:, :1], atol=1e-6)
    np.testing.assert_allclose(coevolve.smooth_motion(noisy, walk.fps, 0.0, 0.0), noisy, atol=1e-6)
    with pytest.raises(ValueError, match="lift_root_smoothing_s"):
        coevolve.CoEvolution.create(smoke_config(lift_root_smoothing_s=-1.0))


def test_cli_runs_the_main_job(tmp_path, capsys):
    from ptjax import cli
    workdir = str(tmp_path / "run")
    rc = cli.main(["coevolve", "--config", CONFIG, "--workdir", workdir, "--quiet", "--config.num_rounds=0"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| round |" in out
    with open(os.path.join(workdir, "metrics.json")) as f:
        assert len(json.load(f)) == 1


def test_the_runs_estimator_lifts_and_scores(full_run, tmp_path, capsys):
    """After the main job, `ptjax lift` and `ptjax eval` take its workdir (the last round's estimator, or
    --round N), and `ptjax export-estimator` writes a stand-alone estimator workdir."""
    from ptjax import cli
    from ptjax import estimator
    workdir, history = full_run
    last = len(history) - 1
    state, _ = estimator.load(workdir)
    assert int(state.step) > 0
    pixels = 500 + 300 * load_clips(["walk"])["walk"].joints[:40, :, 1:]                 # any 2D will do
    np.savez(tmp_path / "k.npz", keypoints=pixels, image_size=[1000, 1000])
    out = tmp_path / "lifted.npz"
    assert cli.main(["lift", str(tmp_path / "k.npz"), "--format", "h36m", "--checkpoint", workdir,
                     "--out", str(out)]) == 0
    assert f"round {last} of the co-evolution run" in capsys.readouterr().out
    data = np.load(out)
    keypoints, lifted = data["keypoints2d"], data["joints3d"]
    np.testing.assert_allclose(lifted, estimator.predict(state, keypoints)["joints3d"], atol=1e-5)
    assert cli.main(["eval", "--dataset", "clips", "--checkpoint", workdir, "--round", "0"]) == 0
    text = capsys.readouterr().out
    assert "round 0 of the co-evolution run" in text and "P-MPJPE" in text
    assert cli.main(["export-estimator", workdir, str(tmp_path / "est")]) == 0
    exported, _ = estimator.load(str(tmp_path / "est"))
    np.testing.assert_allclose(estimator.predict(exported, keypoints)["joints3d"], lifted, atol=1e-5)
    # Errors name what is there.
    with pytest.raises(FileNotFoundError, match=r"rounds \[0, 1\], not round 7"):
        estimator.load(workdir, round_index=7)
    with pytest.raises(ValueError, match="co-evolution workdir"):
        estimator.load(str(tmp_path / "est"), round_index=0)
