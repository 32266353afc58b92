"""Host-side driver: train on motions with progress, metrics and checkpoints; report in-betweening accuracy and the
quality of long hallucinated samples against the training data."""

from __future__ import annotations

import json
import os
import time

import jax
import ml_collections
import numpy as np

from ptjax import checkpoint as ckpt
from ptjax import training
from ptjax.data import HELDOUT_CLIPS, Motion, load_clips
from ptjax.hallucinator import config as config_lib
from ptjax.hallucinator.measures import measures as compute_measures
from ptjax.hallucinator.measures import nearest_distance, window_descriptors
from ptjax.hallucinator.evaluate import evaluate_inbetweening
from ptjax.hallucinator.sample import sample, start_windows_from
from ptjax.hallucinator.train import (HallucinatorState, init, latest_checkpoint_step, load,
                                      make_training_windows, resample_rigid, save, train_step)


def train(config: ml_collections.ConfigDict, workdir: str, motions=None, resume: bool = False,
          progress: bool = True) -> tuple[HallucinatorState, list[dict]]:
    """Train for config.train.steps on `motions` (default: the bundled clips config.data.clips).

    Writes `workdir/checkpoints` (every train.checkpoint_every steps and at the end), TensorBoard events in
    `workdir/tensorboard` and the loss history in `workdir/train_history.json`. With `resume`, continues from the
    latest checkpoint. Raises FloatingPointError rather than finishing with non-finite parameters.
    """
    config_lib.validate(config)
    os.makedirs(workdir, exist_ok=True)
    motions = load_clips(config.data.clips) if motions is None else motions
    buffer = make_training_windows(motions, config)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    history_path = os.path.join(workdir, "train_history.json")
    state, history = None, []
    if resume and latest_checkpoint_step(ckpt_dir) is not None:
        state = load(ckpt_dir, config)
        if os.path.exists(history_path):
            with open(history_path) as f:
                history = [h for h in json.load(f) if h["step"] <= int(state.step)]
    if state is None:
        state = init(jax.random.PRNGKey(config.seed), config)
    writer = training.MetricWriter(workdir)
    store = ckpt.CheckpointStore(ckpt_dir)  # open for the run
    start, steps, t0 = int(state.step), int(config.train.steps), time.time()
    bar = training.progress_bar(range(start, steps), desc="hallucinator", disable=not progress, initial=start,
                                total=steps)
    finite = lambda metrics, step: training.finite_scalars(  # noqa: E731
        metrics, "hallucinator training", step, hint="lower optim.lr or raise optim.grad_clip strictness")
    try:
        for step in bar:
            state, metrics = train_step(state, buffer, int(config.train.batch_size))
            done = step + 1
            if done % config.train.log_every == 0 or done == steps:
                m = finite(metrics, done)
                m["step"], m["seconds"] = done, round(time.time() - t0, 2)
                history.append(m)
                writer.scalars("hallucinator", m, done, skip=("step", "seconds"))
                bar.set_postfix(pos=f"{m['position']:.4f}", rot=f"{m['rotation']:.4f}", d=f"{m['d_total']:.3f}")
            if done % config.train.checkpoint_every == 0 or done == steps:
                finite(metrics, done)
                save(ckpt_dir, state, {"seconds": time.time() - t0}, store=store)
                training.write_json(history_path, history, indent=1)
    finally:
        writer.close()
        store.close()
    return state, history


def _resampled(motions, fps: float) -> list[Motion]:
    motions = list(motions.values()) if isinstance(motions, dict) else list(motions)
    return [resample_rigid(m, fps) for m in motions]


def report(state: HallucinatorState, train_motions, heldout_motions=None, seed: int = 0,
           num_samples: int | None = None, novelty_threshold: float | None = None) -> tuple[dict, list[Motion]]:
    """In-betweening on held-out motions (vs interpolation), and measures of long samples vs the training data.

    The novelty threshold defaults to the median distance from a held-out real window to its nearest training
    window: a sample window above it is as far from the training data as unseen real motion is.
    Returns (results dict, the sampled Motions).
    """
    config = state.config
    heldout = (load_clips(tuple(config.data.get("heldout_clips", HELDOUT_CLIPS))) if heldout_motions is None
               else heldout_motions)
    train = _resampled(train_motions, config.fps)
    held = _resampled(heldout, config.fps)
    window, stride = config.measures.window, config.measures.stride
    results = {"inbetweening": evaluate_inbetweening(state, held)}

    # Novelty calibration: how far real, unseen motion is from the training windows.
    held_desc, _ = window_descriptors(held, window, stride)
    train_mirrored, _ = window_descriptors(train, window, 1, mirror=True)
    held_near = nearest_distance(held_desc, train_mirrored) if len(held_desc) else np.zeros(0)
    threshold = novelty_threshold
    if threshold is None:
        threshold = float(np.median(held_near)) if len(held_near) else 0.1
    results["heldout_vs_train"] = {"windows": int(len(held_near)),
                                   "nearest_train_mean_m": float(held_near.mean()) if len(held_near) else None,
                                   "nearest_train_median_m": float(np.median(held_near)) if len(held_near) else None}

    n = config.sample.num_samples if num_samples is None else num_samples
    rng = np.random.default_rng(seed)
    start = start_windows_from(train, rng, n, config.context)
    samples = sample(state, jax.random.PRNGKey(seed), start, target_pool=train)
    results["samples"] = compute_measures(samples, config.fps, reference=train, window=window, stride=stride,
                                               skip=config.context, novelty_threshold=threshold)
    results["training_data"] = compute_measures(train, config.fps, window=window, stride=stride)
    results["heldout_data"] = compute_measures(held, config.fps, window=window, stride=stride)
    return results, samples


def format_measures(results: dict) -> str:
    """Markdown table: sample measures next to the training and held-out data's own."""
    keys = [("bone_length_dev_max_m", "bone length deviation, max (m)", "{:.2e}"),
            ("skating_mps", "foot skating (m/s in contact)", "{:.3f}"),
            ("contact_fraction", "foot contact fraction", "{:.2f}"),
            ("penetration_m", "ground penetration, mean (m)", "{:.4f}"),
            ("penetration_frames", "frames > 1 cm below ground", "{:.3f}"),
            ("limit_any", "frames violating a joint limit", "{:.3f}"),
            ("joint_speed_mps", "mean joint speed (m/s)", "{:.2f}"),
            ("joint_accel_mps2", "mean joint acceleration (m/s^2)", "{:.1f}"),
            ("diversity_m", "diversity: mean distance between sequences (m RMS)", "{:.3f}"),
            ("nearest_reference_median_m", "nearest training window, median (m RMS)", "{:.3f}"),
            ("nearest_reference_min_m", "nearest training window, min (m RMS)", "{:.3f}"),
            ("novel_fraction", "windows farther than the threshold", "{:.2f}")]
    s, t, h = results["samples"], results["training_data"], results["heldout_data"]
    cal = results.get("heldout_vs_train", {})
    rows = ["| measure | samples | training data | held-out data |", "|---|---|---|---|"]
    for key, label, fmt in keys:
        def cell(d, k=key):
            v = d.get(k)
            return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else fmt.format(v)
        held_cell = cell(h)
        if key == "nearest_reference_median_m" and cal.get("nearest_train_median_m") is not None:
            held_cell = fmt.format(cal["nearest_train_median_m"])
        rows.append(f"| {label} | {cell(s)} | {cell(t)} | {held_cell} |")
    rows.append(f"\nSamples: {s['sequences']} sequences of {s['seconds_mean']:.1f} s; novelty threshold "
                f"{s.get('novelty_threshold_m', float('nan')):.3f} m RMS (median nearest-training distance of "
                "held-out real windows).")
    return "\n".join(rows)
