"""The training driver behind `ptjax estimator train`: data on device, fused jitted steps, logs, eval, checkpoints.

Data, all packed once into device arrays (`MotionBuffer`) and sampled inside jit:
* default: the bundled clips' training split (config `data.train_clips`, default `ptjax.data.TRAIN_CLIPS`), each
  resampled to every rate in `data.fps` (frame-rate augmentation); pairs are made by `update` through random (and
  adversarial) cameras. With `data.real2d`, the same clips seen by `data.num_cameras` fixed cameras
  (`ptjax.data.takes.make_takes`) are D_cam's unpaired "real" 2D.
* `pairs_path`: an .npz with `keypoints2d` (N, T, 17, 2) normalised screen and `joints3d` (N, T, 17, 3) camera frame,
  metres (optional `lengths` (N,) valid frames per sequence); windows of it train PoseNet/TrajNet directly.

Each host call runs `train.steps_per_call` steps in one `lax.scan`. Every `log_every` steps the mean metrics go to
TensorBoard (WORKDIR/tensorboard); every `eval_every` steps and at the end the held-out clips (`data.heldout_clips`,
default `ptjax.data.HELDOUT_CLIPS`) seen by fixed cameras are scored (`evaluate`), from their clean 2D and from a fixed
detector-like corruption of it (`ptjax.detector_noise`, row "detector_like"), and written to WORKDIR/metrics.json;
checkpoints every `checkpoint_every` steps and at the end. `resume=True` continues from the latest checkpoint with
the same PRNG stream, so an interrupted run ends where an uninterrupted one would.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ptjax import checkpoint as ckpt_lib
from ptjax import detector_noise, parallel, skeleton, training
from ptjax.data import HELDOUT_CLIPS, TRAIN_CLIPS, Motion, MotionBuffer, load_clips, pack_motions, sample_windows
from ptjax.data.takes import make_takes
from ptjax.estimator import checkpoints, inference as predict_lib
from ptjax.estimator.config import check_train_config, spec_from_config
from ptjax.estimator.train import EstimatorState, init, param_count, update

logger = logging.getLogger(__name__)


# --- data -----------------------------------------------------------------------------------------------------------

def clip_names(config, key: str, default) -> tuple[str, ...]:
    names = tuple(config.data[key]) or tuple(default)
    return names


def motion_buffer(config) -> MotionBuffer:
    """Training clips at every rate of `data.fps`, one buffer (rates are baked into the frames)."""
    clips = load_clips(clip_names(config, "train_clips", TRAIN_CLIPS))
    rates = [float(f) for f in config.data.fps]
    motions = [Motion(f"{name}@{rate:g}", rates[0], m.resample(rate).joints)
               for rate in rates for name, m in clips.items()]
    return pack_motions(motions, fps=rates[0])


def real2d_buffer(config) -> MotionBuffer:
    """The training clips' fixed-camera 2D takes packed like motion (last axis 2): D_cam's real 2D."""
    clips = load_clips(clip_names(config, "train_clips", TRAIN_CLIPS))
    takes = make_takes(clips, num_cameras=int(config.data.num_cameras), fps=float(config.data.fps[0]))
    return pack_keypoints([t.keypoints2d for t in takes], float(config.data.fps[0]))


def pack_keypoints(sequences, fps: float = 30.0) -> MotionBuffer:
    """2D sequences [(T_i, 17, 2)] (e.g. the takes' `keypoints2d`) -> a buffer for `sample_windows` / `sample_batch`
    (`joints` is then (N, T_max, 17, 2): `MotionBuffer`'s sampling only indexes, whatever the last axis holds)."""
    if not len(sequences):
        raise ValueError("pack_keypoints needs at least one sequence")
    return pack_sequences([predict_lib.check_keypoints2d(s) for s in sequences], fps)


def pack_sequences(sequences, fps: float) -> MotionBuffer:
    """Pad (T_i, 17, C) sequences by repeating their last frame into one (N, T_max, 17, C) buffer."""
    longest = max(len(s) for s in sequences)
    out = np.zeros((len(sequences), longest) + sequences[0].shape[1:], np.float32)
    for i, s in enumerate(sequences):
        out[i, :len(s)] = s
        out[i, len(s):] = s[-1]
    lengths = np.array([len(s) for s in sequences], np.int32)
    return MotionBuffer(joints=jnp.asarray(out), lengths=jnp.asarray(lengths), fps=fps)


def load_pairs(path: str) -> MotionBuffer:
    """An .npz of 2D-3D pairs -> a buffer whose last axis is (u, v, x, y, z)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pairs file {path!r} not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as e:  # zip/npy errors come in many types
        raise ValueError(f"cannot read pairs file {path!r}: {e}") from e
    missing = [k for k in ("keypoints2d", "joints3d") if k not in arrays]
    if missing:
        raise ValueError(f"pairs file {path!r} lacks {missing} (has {sorted(arrays)}); expected keypoints2d "
                         "(N, T, 17, 2) and joints3d (N, T, 17, 3)")
    kp = skeleton.check_joints(arrays["keypoints2d"], name=f"{path}: keypoints2d", dims=2)
    j3 = skeleton.check_joints(arrays["joints3d"], name=f"{path}: joints3d", dims=3)
    if kp.ndim == 3 and j3.ndim == 3:  # one sequence
        kp, j3 = kp[None], j3[None]
    if kp.ndim != 4 or j3.shape[:2] != kp.shape[:2]:
        raise ValueError(f"{path}: keypoints2d {kp.shape} and joints3d {j3.shape} must be (N, T, 17, 2) and "
                         "(N, T, 17, 3) with the same N and T")
    if kp.shape[0] < 1 or kp.shape[1] < 1:
        raise ValueError(f"{path}: no pairs (shape {kp.shape})")
    predict_lib.check_keypoints2d(kp.reshape(-1, 17, 2))
    if np.any(j3[..., 2] <= 0):
        raise ValueError(f"{path}: joints3d must be in the camera frame with every joint in front (z > 0)")
    lengths = np.asarray(arrays.get("lengths", np.full(kp.shape[0], kp.shape[1])), np.int64)
    if lengths.shape != (kp.shape[0],) or lengths.min() < 1 or lengths.max() > kp.shape[1]:
        raise ValueError(f"{path}: lengths must be (N,) in [1, T], got {lengths}")
    sequences = [np.concatenate([kp[i, :n], j3[i, :n]], -1) for i, n in enumerate(lengths)]
    return pack_sequences(sequences, 30.0)


def heldout_takes(config):
    return make_takes(load_clips(clip_names(config, "heldout_clips", HELDOUT_CLIPS)),
                      num_cameras=int(config.data.num_cameras))


# --- the fused steps ------------------------------------------------------------------------------------------------

def sample_batch(rng: jax.Array, state: EstimatorState, motions: MotionBuffer, batch_size: int,
                 real2d: MotionBuffer | None = None) -> dict:
    """An `update` batch (jittable): `batch_size` world windows of the receptive field's length from `motions`
    (`MotionBuffer` of world joints) and, with `real2d` (`pack_keypoints` of the 2D takes), as many real 2D windows
    as the adversarial share of the batch."""
    return make_batch(rng, state.spec, motions, real2d, batch_size, pairs_mode=False)


def make_batch(rng, spec, data: MotionBuffer, real: MotionBuffer | None, batch_size: int, pairs_mode: bool) -> dict:
    rf = spec.receptive_field
    k_data, k_real = jax.random.split(rng)
    windows = sample_windows(k_data, data, batch_size, rf)
    if pairs_mode:
        return {"keypoints2d": windows[..., :2], "joints3d": windows[..., 2:]}
    batch = {"motion": windows}
    if real is not None:
        n_adv = batch_size - (int(round(batch_size * spec.random_camera_fraction)) if spec.random_camera else 0)
        batch["real2d"] = sample_windows(k_real, real, max(n_adv, 1), rf)
    return batch


@functools.partial(jax.jit, static_argnames=("num_steps", "batch_size", "pairs_mode", "mesh"))
def run_steps(state: EstimatorState, data: MotionBuffer, real: MotionBuffer | None, num_steps: int,
              batch_size: int, pairs_mode: bool, mesh: jax.sharding.Mesh | None = None):
    """`num_steps` updates in one scan, batches sampled on device; returns (state, stacked metrics). With a `mesh`,
    each step is data-parallel over its axis `data` (the batch split over devices, gradients averaged)."""
    step = update
    if mesh is not None:
        from jax.sharding import PartitionSpec as P
        step = jax.shard_map(lambda s, b: update(s, b, axis_name=parallel.AXIS), mesh=mesh,
                             in_specs=(P(), P(parallel.AXIS)), out_specs=(P(), P()), check_vma=False)

    def body(state, _):
        rng, k_batch = jax.random.split(state.rng)
        batch = make_batch(k_batch, state.spec, data, real, batch_size, pairs_mode)
        return step(state.replace(rng=rng), batch)
    return jax.lax.scan(body, state, None, length=num_steps)


def training_mesh(config) -> jax.sharding.Mesh | None:
    """The devices E trains on: `train.num_devices` (default 1: one device, no mesh; 0: all), and always every device
    of a multi-process job (ptjax.distributed), whose processes would otherwise train the same copy side by side."""
    n = int(config.train.get("num_devices", 1))
    if jax.process_count() > 1:
        n = 0
    if n == 1:
        return None
    mesh = parallel.make_mesh(n or None)
    if int(config.train.batch_size) % parallel.num_devices(mesh):
        raise ValueError(f"train.batch_size ({config.train.batch_size}) must be divisible by the "
                         f"{parallel.num_devices(mesh)} devices it is split over")
    return mesh


# --- logging --------------------------------------------------------------------------------------------------------

def _summary_row(result: dict) -> dict:
    return {k: round(v, 4) for k, v in result["mean"].items()}


def _save_gif(state, takes, path: str) -> str | None:
    from ptjax import camera, viz
    take = takes[0]
    pred = predict_lib.predict(state, take.keypoints2d)["joints3d"]
    ext = camera.Extrinsics(rotation=jnp.asarray(take.rotation), position=jnp.asarray(take.position))
    to_world = lambda j: np.asarray(camera.camera_to_world(jnp.asarray(j), ext))  # noqa: E731
    # Show the estimate at the true root so the panels compare poses, not the trajectory error.
    pred_world = to_world(pred - pred[:, :1] + take.joints_cam[:, :1])
    return viz.animate_panels({f"{take.name} 2D input": take.keypoints2d, "estimate": pred_world,
                               "ground truth": to_world(take.joints_cam)}, path, fps=take.fps, max_frames=90)


# --- the driver -----------------------------------------------------------------------------------------------------

def _training_data(config, spec, pairs_path: str | None):
    """(training data: a pairs file's or the motion clips', real 2D for the adversary or None, held-out takes,
    the same takes under the fixed detector-like corruption)."""
    pairs_mode = pairs_path is not None
    data = load_pairs(pairs_path) if pairs_mode else motion_buffer(config)
    real = real2d_buffer(config) if (config.data.real2d and spec.adversarial and not pairs_mode) else None
    takes = heldout_takes(config)
    return data, real, takes, detector_noise.detector_like_takes(takes)


def _try_gif(state, takes, path: str) -> str | None:
    try:
        return os.path.basename(_save_gif(state, takes, path))
    except Exception as e:  # a picture must not sink a finished run
        logger.warning("could not write the GIF: %s", e)
        return None


def _restore(workdir: str, spec, mesh, record: dict, total_steps: int, main: bool) -> EstimatorState:
    """WORKDIR's latest checkpoint, with `record`'s history trimmed to its step (a run killed after a later
    metrics.json write resumes from the checkpoint, not from the log)."""
    state, _ = checkpoints.load(workdir, replicated_over=mesh)
    if state.spec != spec:
        raise ValueError("--resume: the checkpoint's model/optimiser settings differ from the config's; "
                         "use the same config (train.* and data.* may change)")
    metrics_path = os.path.join(workdir, "metrics.json")
    if os.path.exists(metrics_path):
        with open(metrics_path) as f:
            previous = json.load(f)
        step = int(state.step)
        record["eval"] = [e for e in previous.get("eval", []) if e["step"] <= step]
        record["train"] = [e for e in previous.get("train", []) if e["step"] <= step]
    if main:
        logger.info("resumed from step %d of %d", int(state.step), total_steps)
    return state


def _heldout_row(state: EstimatorState, takes, detector_takes, step: int) -> tuple[dict, dict, dict]:
    """(the metrics.json row of the held-out scores at `step`, clean means, detector-like means)."""
    result = predict_lib.evaluate(state, takes)
    detector = predict_lib.evaluate(state, detector_takes)
    row = {"step": step, "mean": _summary_row(result), "all": {k: round(v, 4) for k, v in result["all"].items()},
           "detector_like": _summary_row(detector),
           "takes": {name: {k: round(v, 4) for k, v in r.items()} for name, r in result["takes"].items()}}
    return row, result["mean"], detector["mean"]


def _evaluate_and_record(state, takes, detector_takes, step: int, writer, record: dict, metrics_path: str) -> dict:
    """Score the held-out takes at `step` into `record` (replacing a row of the same step), TensorBoard and
    metrics.json; returns the row."""
    row, clean, detector = _heldout_row(state, takes, detector_takes, step)
    record["eval"] = [e for e in record["eval"] if e["step"] != step] + [row]
    writer.scalars("heldout", clean, step)
    writer.scalars("heldout_detector_like", detector, step)
    training.write_json(metrics_path, record)
    return row


def _log_train_window(window: dict[str, list], step: int, writer, record: dict) -> dict[str, list]:
    """Means of the per-step training metrics since the last log into TensorBoard and `record`; an empty window."""
    means = {k: float(np.mean(v)) for k, v in window.items()}
    writer.scalars("train", means, step)
    record["train"].append({"step": step, **{k: round(v, 6) for k, v in means.items()}})
    return {}


def _check_skipped(skipped: int, limit: int) -> None:
    if skipped > limit:
        raise FloatingPointError(
            f"{skipped} training steps had non-finite losses or gradients (limit train.max_nonfinite_steps={limit}); "
            "parameters are unchanged by them. Lower optim.lr or check the input data.")


def _final_summary(row: dict, num_takes: int, wall: float) -> str:
    m, d = row["mean"], row["detector_like"]
    return (f"held-out ({num_takes} takes): MPJPE {m['mpjpe']:.1f} mm, P-MPJPE {m['p_mpjpe']:.1f} mm, "
            f"N-MPJPE {m['n_mpjpe']:.1f} mm, PCK {100 * m['pck']:.1f} %, AUC {100 * m['auc']:.1f} %  ({wall:.0f} s)\n"
            f"held-out, detector-like 2D: MPJPE {d['mpjpe']:.1f} mm, P-MPJPE {d['p_mpjpe']:.1f} mm")


def train(config: ml_collections.ConfigDict, workdir: str, resume: bool = False, pairs_path: str | None = None,
          progress: bool = True) -> dict:
    """Train an estimator (module docstring); returns the final metrics dict (also in WORKDIR/metrics.json)."""
    check_train_config(config)
    spec = spec_from_config(config)
    os.makedirs(workdir, exist_ok=True)
    t = config.train
    total_steps = spec.num_epochs * spec.steps_per_epoch
    pairs_mode = pairs_path is not None
    data, real, takes, detector_takes = _training_data(config, spec, pairs_path)
    mesh = training_mesh(config)
    main = training.is_main_process()  # in a multi-process job (ptjax.distributed) process 0 writes the files
    progress = progress and main

    metrics_path = os.path.join(workdir, "metrics.json")
    record = {"component": "estimator", "config": config.to_dict(), "pairs": pairs_path, "total_steps": total_steps,
              "eval": [], "train": []}
    if resume and ckpt_lib.latest_step(os.path.join(workdir, "checkpoints")) is not None:
        state = _restore(workdir, spec, mesh, record, total_steps, main)
    else:
        state = init(jax.random.PRNGKey(int(config.seed)), config)
    if mesh is not None:
        state, data, real = parallel.replicate((state, data, real), mesh)
    record["parameters"] = param_count(state)
    training.write_json(os.path.join(workdir, "config.json"), config.to_dict())

    writer = training.MetricWriter(workdir)
    store = ckpt_lib.CheckpointStore(os.path.join(workdir, "checkpoints"))  # open for the run
    step = int(state.step)
    skipped_at_start = int(state.skipped_steps)
    start_time, trained_steps = time.time(), 0
    window: dict[str, list] = {}

    bar = training.progress_bar(total=total_steps, initial=step, desc="estimator", unit="step", disable=not progress)
    try:
        while step < total_steps:
            n = min(int(t.steps_per_call), total_steps - step)
            state, stacked = run_steps(state, data, real, n, int(t.batch_size), pairs_mode, mesh)
            stacked = jax.device_get(stacked)
            _check_skipped(int(state.skipped_steps) - skipped_at_start, int(t.max_nonfinite_steps))
            previous, step = step, step + n
            trained_steps += n
            for k, v in stacked.items():
                window.setdefault(k, []).extend(np.asarray(v).tolist())
            bar.update(n)
            bar.set_postfix(loss=f"{np.mean(stacked['loss_pose']):.4f}", mpjpe=f"{np.mean(stacked['mpjpe']):.0f}mm")
            crossed = lambda every: step // every > previous // every or step == total_steps  # noqa: E731
            if crossed(int(t.log_every)):
                window = _log_train_window(window, step, writer, record)
            if crossed(int(t.eval_every)) and step < total_steps:
                row = _evaluate_and_record(state, takes, detector_takes, step, writer, record, metrics_path)
                if main:
                    bar.write(f"step {step}: held-out MPJPE {row['mean']['mpjpe']:.1f} mm, "
                              f"P-MPJPE {row['mean']['p_mpjpe']:.1f} mm")
            if crossed(int(t.checkpoint_every)) and step < total_steps:
                checkpoints.save(workdir, state, config, step, store=store)
        training.check_finite_tree(state, "estimator parameters")
        wall = time.time() - start_time
        checkpoints.save(workdir, state, config, step, store=store)
    finally:
        bar.close()
        store.close()
    row = _evaluate_and_record(state, takes, detector_takes, step, writer, record, metrics_path)
    record.update(final=row, wall_seconds_this_run=round(wall, 1),
                  samples_per_second=round(trained_steps * int(t.batch_size) / max(wall, 1e-9), 1),
                  skipped_steps=int(state.skipped_steps))
    if t.gif and not pairs_mode and main:
        record["gif"] = _try_gif(state, takes, os.path.join(workdir, "heldout.gif"))
    training.write_json(metrics_path, record)
    writer.close()
    if main:
        logger.info(_final_summary(row, len(takes), wall))
    return record
