"""`ptjax estimator train` end to end on a tiny config: outputs, evaluation, checkpoints, resume, pairs files."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from ptjax import cli
from ptjax import estimator as est
from ptjax.data import load_clips
from ptjax.data.takes import make_takes

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "estimator_clips.py")
TINY = ["--config.model.filter_widths=(3, 3)", "--config.model.channels=16", "--config.model.traj_channels=16",
        "--config.train.batch_size=16", "--config.optim.num_epochs=2", "--config.optim.steps_per_epoch=4",
        "--config.train.steps_per_call=4", "--config.train.log_every=4", "--config.train.eval_every=4",
        "--config.train.checkpoint_every=4", "--config.data.heldout_clips=('run', 'punch')",
        "--config.data.num_cameras=1", "--config.train.gif=False", "--config.predict.chunk=128"]


def _train(workdir, *extra):
    return cli.main(["estimator", "train", "--config", CONFIG, "--workdir", str(workdir), "--no-progress", *TINY,
                     *extra])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("estimator_run")
    assert _train(workdir) == 0
    return workdir


def test_cli_train_writes_metrics_checkpoints_and_tensorboard(run_dir):
    with open(run_dir / "metrics.json") as f:
        record = json.load(f)
    assert record["total_steps"] == 8 and record["skipped_steps"] == 0
    assert [e["step"] for e in record["eval"]] == [4, 8]
    final = record["final"]
    assert set(final["takes"]) == {"run/cam0", "punch/cam0"}
    for key in ("mpjpe", "p_mpjpe", "n_mpjpe", "pck", "auc"):
        assert np.isfinite(final["mean"][key])
    assert final["mean"]["p_mpjpe"] < final["mean"]["mpjpe"]
    assert [t["step"] for t in record["train"]] == [4, 8]
    assert any(name.startswith("events") for name in os.listdir(run_dir / "tensorboard"))
    # The checkpoint reproduces the reported evaluation.
    state, config = est.load(str(run_dir))
    assert int(state.step) == 8 and tuple(config.model.filter_widths) == (3, 3)
    takes = make_takes(load_clips(["run", "punch"]), num_cameras=1)
    again = est.evaluate(state, takes)
    assert again["mean"]["mpjpe"] == pytest.approx(final["mean"]["mpjpe"], abs=1e-3)


def test_cli_resume_after_kill_reaches_the_same_state(run_dir, tmp_path):
    workdir = tmp_path / "resumed"
    shutil.copytree(run_dir, workdir)
    # Simulate a kill between the step-4 and step-8 checkpoints.
    shutil.rmtree(workdir / "checkpoints" / "8")
    assert _train(workdir, "--resume") == 0
    a, _ = est.load(str(run_dir))
    b, _ = est.load(str(workdir))
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)
    with open(workdir / "metrics.json") as f:
        resumed = json.load(f)
    with open(run_dir / "metrics.json") as f:
        original = json.load(f)
    assert [e["step"] for e in resumed["eval"]] == [4, 8]
    assert resumed["final"]["mean"]["mpjpe"] == pytest.approx(original["final"]["mean"]["mpjpe"], rel=1e-4)


def test_cli_resume_refuses_a_different_model(run_dir, tmp_path, capsys):
    workdir = tmp_path / "other"
    shutil.copytree(run_dir, workdir)
    assert _train(workdir, "--resume", "--config.model.channels=8") == 2
    assert "differ" in capsys.readouterr().err


def test_cli_train_from_pairs_file(tmp_path):
    takes = make_takes(load_clips(["walk", "kick"]), num_cameras=2)
    n = min(len(t.keypoints2d) for t in takes)
    path = tmp_path / "pairs.npz"
    np.savez(path, keypoints2d=np.stack([t.keypoints2d[:n] for t in takes]),
             joints3d=np.stack([t.joints_cam[:n] for t in takes]))
    assert _train(tmp_path / "run", "--pairs", str(path)) == 0
    with open(tmp_path / "run" / "metrics.json") as f:
        record = json.load(f)
    assert record["pairs"] == str(path) and np.isfinite(record["final"]["mean"]["mpjpe"])

    bad = tmp_path / "bad.npz"
    np.savez(bad, keypoints2d=np.zeros((2, 10, 16, 2)), joints3d=np.ones((2, 10, 16, 3)))
    assert _train(tmp_path / "bad_run", "--pairs", str(bad)) == 2
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:100])
    assert _train(tmp_path / "bad_run2", "--pairs", str(truncated)) == 2


def test_cli_rejects_bad_config_values(tmp_path, capsys):
    assert _train(tmp_path / "x", "--config.model.dropout=1.5") == 2
    assert "dropout" in capsys.readouterr().err
