"""The estimator: PoseTriplet's 2D->3D lifter (PoseNet), root trajectory net (TrajNet) and adversarial camera.

Public API (other components rely on these names):

* `default_config()` -> ml_collections.ConfigDict (the paper's setting; configs/estimator_*.py adapt it)
* `init(rng, config) -> EstimatorState`
* `update(state, batch, axis_name=None) -> (state, metrics)` — one jitted-friendly training step; batch is
  {"motion": (B, T, 17, 3) world windows[, "real2d": (B', T, 17, 2)]} or {"keypoints2d", "joints3d"} pairs
* `restart_optimizers(state) -> EstimatorState` — fresh Adam moments and schedule, same networks
* `predict(state, keypoints2d (T, 17, 2)) -> dict(pose, trajectory, joints3d)` (camera frame, metres)
* `evaluate(state, takes) -> dict` (MPJPE, P-MPJPE, N-MPJPE in mm, PCK, AUC per take and mean)
* `save(workdir, state, config, step)` / `load(checkpoint_dir, round_index=None) -> (state, config)` (an estimator
  workdir, or a co-evolution workdir: its last finished round's estimator); `resolve` says which it would use
* `camera_to_world(joints_cam (T, 17, 3)) -> (T, 17, 3)` world, Z-up (gravity/PCA prior)
* `sample_batch(rng, state, motions, batch_size, real2d=None)` — an `update` batch from a `MotionBuffer` of world
  motion (+ `pack_keypoints(takes' 2D)` for D_cam's real 2D), jittable
* `fit(config, workdir, resume=False, pairs_path=None)` — the `ptjax estimator train` driver (loop.train)
"""

from ptjax.estimator.checkpoints import load, resolve, save
from ptjax.estimator.config import Spec, default_config, spec_from_config
from ptjax.estimator.inference import evaluate, predict, predict_many, predict_padded, score_padded
from ptjax.estimator.loop import pack_keypoints, sample_batch
from ptjax.estimator.train import EstimatorState, init, restart_optimizers, update
from ptjax.estimator.world import camera_to_world, camera_to_world_padded


def fit(config, workdir: str, resume: bool = False, pairs_path: str | None = None, progress: bool = True) -> dict:
    """Train from config (the `ptjax estimator train` command); see `ptjax.estimator.loop.train`."""
    from ptjax.estimator import loop
    return loop.train(config, workdir, resume=resume, pairs_path=pairs_path, progress=progress)


__all__ = ["EstimatorState", "Spec", "default_config", "spec_from_config", "init", "update", "restart_optimizers",
           "predict", "predict_many", "predict_padded", "score_padded", "evaluate", "save", "load", "resolve",
           "camera_to_world", "camera_to_world_padded", "fit", "sample_batch", "pack_keypoints"]
