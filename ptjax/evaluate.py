"""Benchmark evaluation: the paper-style tables on Human3.6M, MPI-INF-3DHP, 3DPW and the bundled held-out clips.

`score(predictions, sequences)` implements the protocols shared by PoseTriplet and VideoPose3D on
`ptjax.data.datasets.EvalSequence`s: joints are made root-relative (Hip), the scored joints are selected
(PoseTriplet's 16 by default: no Nose), and per frame
* P1 = MPJPE (mm), P2 = P-MPJPE (mm; similarity Procrustes per frame, `ptjax.metrics.p_mpjpe`),
* PCK = percentage of joints with error < 150 mm and AUC = mean PCK over 31 thresholds 0..150 mm (3DHP; no
  alignment), both in percent,
then averaged over the frames of each group (table row: action or subject), over groups ("mean": VideoPose3D's
action-wise average, the number papers quote for Human3.6M) and over all frames ("all": what PoseTriplet logs).

`ptjax eval --dataset h36m|3dhp|3dpw|clips --checkpoint DIR [--data-dir ...] [--json out.json]` runs an estimator
checkpoint over a benchmark and prints the table.
"""

from __future__ import annotations

import json
import os
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ptjax import metrics
from ptjax.data.datasets import ALL_JOINTS, SCORED_JOINTS, EvalSequence

DATASETS = ("h36m", "3dhp", "3dpw", "clips")
METRIC_UNITS = {"mpjpe": "mm", "p_mpjpe": "mm", "pck": "%", "auc": "%"}
_CHUNK = 2048  # frames per compiled metric call (one shape, one compilation)


@jax.jit
def _frame_metrics(pred: jax.Array, gt: jax.Array) -> dict[str, jax.Array]:
    """pred, gt: [N, J, 3] root-relative, metres -> per-frame metrics [N] (mm and percent)."""
    per_frame = lambda f: jax.vmap(f)(pred, gt)  # noqa: E731
    return {"mpjpe": per_frame(metrics.mpjpe) * 1000.0, "p_mpjpe": per_frame(metrics.p_mpjpe) * 1000.0,
            "pck": per_frame(metrics.pck) * 100.0, "auc": per_frame(metrics.auc) * 100.0}


def frame_metrics(pred: np.ndarray, gt: np.ndarray, joints: Sequence[int] = SCORED_JOINTS) -> dict[str, np.ndarray]:
    """Per-frame P1, P2 (mm), PCK, AUC (%) of (T, 17, 3) camera-frame predictions against ground truth (metres)."""
    pred = np.asarray(pred, np.float32)
    gt = np.asarray(gt, np.float32)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} must both be (T, 17, 3)")
    if not np.isfinite(pred).all():
        raise ValueError("predictions contain NaN or inf")
    joints = list(joints)
    pred = (pred - pred[:, :1])[:, joints]
    gt = (gt - gt[:, :1])[:, joints]
    n = len(pred)
    padded = -(-n // _CHUNK) * _CHUNK
    pad = lambda x: np.concatenate([x, np.repeat(x[-1:], padded - n, 0)]) if padded > n else x  # noqa: E731
    pred, gt = pad(pred), pad(gt)
    out = {k: [] for k in METRIC_UNITS}
    for start in range(0, padded, _CHUNK):
        chunk = _frame_metrics(jnp.asarray(pred[start:start + _CHUNK]), jnp.asarray(gt[start:start + _CHUNK]))
        for k, v in chunk.items():
            out[k].append(np.asarray(v, np.float64))
    return {k: np.concatenate(v)[:n] for k, v in out.items()}


def score(predictions: Sequence[np.ndarray], sequences: Sequence[EvalSequence],
          joints: Sequence[int] = SCORED_JOINTS) -> dict:
    """Protocol scores of `predictions` ((T, 17, 3) camera frame, metres; one per sequence) per group and overall."""
    if len(predictions) != len(sequences):
        raise ValueError(f"{len(predictions)} predictions for {len(sequences)} sequences")
    if not sequences:
        raise ValueError("nothing to score: no sequences")
    sums: dict[str, dict[str, float]] = {}
    for pred, seq in zip(predictions, sequences):
        if np.shape(pred) != seq.joints3d.shape:
            raise ValueError(f"{seq.name}: prediction shape {np.shape(pred)} != ground truth {seq.joints3d.shape}")
        per_frame = frame_metrics(pred, seq.joints3d, joints)
        acc = sums.setdefault(seq.group, {k: 0.0 for k in METRIC_UNITS} | {"frames": 0, "sequences": 0})
        for k, v in per_frame.items():
            acc[k] += float(v.sum())
        acc["frames"] += seq.num_frames
        acc["sequences"] += 1
    groups = {g: {k: acc[k] / acc["frames"] for k in METRIC_UNITS} | {"frames": acc["frames"],
                                                                      "sequences": acc["sequences"]}
              for g, acc in sums.items()}
    total = sum(acc["frames"] for acc in sums.values())
    return {
        "groups": groups,
        "mean": {k: float(np.mean([g[k] for g in groups.values()])) for k in METRIC_UNITS},
        "all": {k: sum(acc[k] for acc in sums.values()) / total for k in METRIC_UNITS},
        "frames": total,
        "sequences": len(sequences),
        "joints": [int(j) for j in joints],
        "units": dict(METRIC_UNITS),
    }


def predict_all(sequences: Sequence[EvalSequence], predict_fn: Callable[[np.ndarray], np.ndarray]
                ) -> list[np.ndarray]:
    """Run `predict_fn((T, 17, 2)) -> (T, 17, 3)` over every sequence."""
    out = []
    for seq in sequences:
        pred = np.asarray(predict_fn(seq.keypoints2d), np.float32)
        if pred.shape != seq.joints3d.shape:
            raise ValueError(f"{seq.name}: predictor returned shape {pred.shape}, expected {seq.joints3d.shape}")
        out.append(pred)
    return out


def format_table(result: dict, title: str = "", group_label: str = "group", with_pck: bool = False) -> str:
    """The paper-style table: one row per group, then the mean over groups and over all frames."""
    keys = ["mpjpe", "p_mpjpe"] + (["pck", "auc"] if with_pck else [])
    heads = {"mpjpe": "MPJPE mm", "p_mpjpe": "P-MPJPE mm", "pck": "PCK150 %", "auc": "AUC %"}
    width = max([len(group_label), len(f"mean over {group_label}s"), 10] + [len(g) for g in result["groups"]])
    line = f"{group_label:<{width}s} {'frames':>8s} " + " ".join(f"{heads[k]:>11s}" for k in keys)
    rows = [title] if title else []
    rows += [line, "-" * len(line)]
    for g in sorted(result["groups"]):
        r = result["groups"][g]
        rows.append(f"{g:<{width}s} {r['frames']:8d} " + " ".join(f"{r[k]:11.1f}" for k in keys))
    rows.append("-" * len(line))
    rows.append(f"{'mean over ' + group_label + 's':<{width}s} {'':8s} "
                + " ".join(f"{result['mean'][k]:11.1f}" for k in keys))
    rows.append(f"{'all frames':<{width}s} {result['frames']:8d} " + " ".join(f"{result['all'][k]:11.1f}"
                                                                              for k in keys))
    return "\n".join(rows)


# --- benchmarks -----------------------------------------------------------------------------------------------------

def load_benchmark(dataset: str, data_dir: str | None, keypoints: str = "gt", unit: str = "auto"):
    """(sequences, title, group label, show PCK) of a benchmark's test set."""
    if dataset not in ("h36m", "3dhp", "3dpw"):
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    if not data_dir:
        raise ValueError(f"--data-dir is required for --dataset {dataset}")
    if dataset == "h36m":
        from ptjax.data import h36m
        return (h36m.eval_sequences(data_dir, keypoints),
                f"Human3.6M S9+S11, every 2nd frame, 2D: {keypoints}", "action", False)
    if dataset == "3dhp":
        from ptjax.data import mpi3dhp
        return mpi3dhp.eval_sequences(data_dir, unit), "MPI-INF-3DHP test set", "subject", True
    from ptjax.data import pw3d
    return pw3d.eval_sequences(data_dir, unit), "3DPW test set", "subject", False


def clip_sequences(num_cameras: int = 4) -> list[EvalSequence]:
    """The bundled held-out clips seen by fixed cameras (`ptjax.data.takes.make_takes`), grouped by clip."""
    from ptjax.data import HELDOUT_CLIPS, load_clips
    from ptjax.data.takes import make_takes
    takes = make_takes(load_clips(HELDOUT_CLIPS), num_cameras=num_cameras)
    return [EvalSequence(name=t.name, group=t.name.split("/")[0], keypoints2d=t.keypoints2d,
                         joints3d=t.joints_cam, fps=t.fps) for t in takes]


def evaluate_predictor(dataset: str, predict_fn: Callable[[np.ndarray], np.ndarray], data_dir: str | None = None,
                       keypoints: str = "gt", joints: str = "16", unit: str = "auto", benchmark=None
                       ) -> tuple[dict, str]:
    """Score `predict_fn` on a benchmark; returns (result dict, printable table).

    `benchmark`: the (sequences, title, group label, with PCK) of `load_benchmark`, when already loaded.
    """
    if joints not in ("16", "17"):
        raise ValueError(f"joints must be '16' (PoseTriplet, no Nose) or '17' (VideoPose3D), got {joints!r}")
    if joints == "17" and dataset in ("3dhp", "3dpw"):
        raise ValueError("3DHP and 3DPW files hold 16 joints (no Nose): score them with --joints 16")
    if benchmark is None:
        benchmark = ((clip_sequences(), "Bundled held-out clips, 4 fixed cameras", "clip", True)
                     if dataset == "clips" else load_benchmark(dataset, data_dir, keypoints, unit))
    sequences, title, label, with_pck = benchmark
    start = time.time()
    predictions = predict_all(sequences, predict_fn)
    result = score(predictions, sequences, SCORED_JOINTS if joints == "16" else ALL_JOINTS)
    result.update(dataset=dataset, title=title, group_label=label, seconds=round(time.time() - start, 2))
    return result, format_table(result, title, label, with_pck)


def estimator_predictor(state) -> Callable[[np.ndarray], np.ndarray]:
    """predict_fn of an estimator state: (T, 17, 2) normalised -> (T, 17, 3) root-relative camera frame."""
    from ptjax import estimator

    def predict(keypoints2d: np.ndarray) -> np.ndarray:
        return np.asarray(estimator.predict(state, keypoints2d)["pose"], np.float32)

    return predict


def evaluate_clips(state, num_cameras: int = 4) -> tuple[dict, str]:
    """The bundled held-out clips through the estimator's own `evaluate`, as a table grouped by clip."""
    from ptjax import estimator
    sequences = clip_sequences(num_cameras)
    start = time.time()
    raw = estimator.evaluate(state, sequences, joints=SCORED_JOINTS)
    percent = {"mpjpe": 1.0, "p_mpjpe": 1.0, "pck": 100.0, "auc": 100.0}  # evaluate gives PCK/AUC as fractions
    sums: dict[str, dict[str, float]] = {}
    for seq in sequences:
        row = raw["takes"][seq.name]
        acc = sums.setdefault(seq.group, {k: 0.0 for k in METRIC_UNITS} | {"frames": 0, "sequences": 0})
        for k in METRIC_UNITS:
            acc[k] += row[k] * percent[k] * row["frames"]
        acc["frames"] += row["frames"]
        acc["sequences"] += 1
    groups = {g: {k: acc[k] / acc["frames"] for k in METRIC_UNITS} | {"frames": acc["frames"],
                                                                      "sequences": acc["sequences"]}
              for g, acc in sums.items()}
    result = {
        "groups": groups,
        "mean": {k: float(np.mean([g[k] for g in groups.values()])) for k in METRIC_UNITS},
        "all": {k: raw["all"][k] * percent[k] for k in METRIC_UNITS},
        "frames": raw["frames"], "sequences": len(sequences), "joints": list(SCORED_JOINTS),
        "units": dict(METRIC_UNITS), "takes": raw["takes"], "dataset": "clips",
        "title": f"Bundled held-out clips, {num_cameras} fixed cameras", "group_label": "clip",
        "seconds": round(time.time() - start, 2),
    }
    return result, format_table(result, result["title"], "clip", with_pck=True)


def evaluate_checkpoint(dataset: str, checkpoint: str, data_dir: str | None = None, keypoints: str = "gt",
                        joints: str = "16", unit: str = "auto", round_index: int | None = None) -> tuple[dict, str]:
    """Load an estimator checkpoint (an estimator workdir, or a co-evolution workdir: its last finished round's
    estimator, or `round_index`'s) and score it on `dataset` (DATASETS)."""
    from ptjax import estimator
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
    if dataset == "clips":
        if joints != "16":
            raise ValueError("the clips benchmark scores PoseTriplet's 16 joints (the estimator's evaluate)")
        state, _ = estimator.load(checkpoint, round_index=round_index)
        result, table = evaluate_clips(state)
    else:
        benchmark = load_benchmark(dataset, data_dir, keypoints, unit)  # bad data fails before loading weights
        state, _ = estimator.load(checkpoint, round_index=round_index)
        result, table = evaluate_predictor(dataset, estimator_predictor(state), data_dir, keypoints, joints, unit,
                                           benchmark)
    result["checkpoint"] = checkpoint
    result["estimator"] = estimator.resolve(checkpoint, round_index)[1]
    return result, table


# --- CLI ------------------------------------------------------------------------------------------------------------

def _eval_command(args, overrides) -> int:
    if overrides:
        raise ValueError(f"ptjax eval takes no config overrides (got {overrides})")
    result, table = evaluate_checkpoint(args.dataset, args.checkpoint, args.data_dir, args.keypoints, args.joints,
                                        args.unit, round_index=args.round)
    print(f"scored {result['estimator']}")
    print(table)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate an estimator checkpoint on a benchmark (paper-style table)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=DATASETS,
                   help="h36m (S9/S11, every 2nd frame), 3dhp, 3dpw, or clips (bundled held-out clips)")
    p.add_argument("--checkpoint", required=True,
                   help="an estimator workdir, or a co-evolution workdir (its last finished round's estimator)")
    p.add_argument("--round", type=int, help="with a co-evolution workdir: the estimator of this round")
    p.add_argument("--data-dir", help="folder with the dataset files (see docs/workflow.md)")
    p.add_argument("--keypoints", default="gt", help="H36M 2D kind: data_2d_h36m_<KIND>.npz (default gt)")
    p.add_argument("--joints", default="16", choices=("16", "17"),
                   help="scored joints: 16 = PoseTriplet (no Nose, default), 17 = VideoPose3D")
    p.add_argument("--unit", default="auto", choices=("auto", "m", "mm"), help="3D unit of 3DHP/3DPW files")
    p.add_argument("--json", help="write the results as JSON here")
    p.set_defaults(func=_eval_command)
