"""The main job over several seeds: is the co-evolution's gain real, or one lucky run?

    python benchmarks/coevolve_seeds.py [--config configs/demo.py] [--seeds 0,1,2] [--workdir runs/seeds]
                                        [--upper-bound-mm 55.4] [--json benchmarks/results/coevolve_seeds_cpu.json]
                                        [--config.key=value ...]

Runs `ptjax coevolve` once per seed (`--config.seed=N`, workdir WORKDIR/seed_N; a seed whose metrics.json already
holds every round is read, not run again; an unfinished one is resumed), then prints one JSON object: per round the
mean, min and max over seeds of the held-out MPJPE and P-MPJPE, the imitator's success rate, MPJPE, fail-safe
resets and residual root force and torque; per seed, the share of the gap to the supervised upper bound
(`--upper-bound-mm`: held-out P-MPJPE of `ptjax estimator train --config configs/estimator_clips.py`) closed from
round 0 to the last round, and whether the last round is the best; wall seconds per seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from _common import device_info, emit

ROUND_FIELDS = {
    "heldout_mpjpe_mm": ("estimator", "mpjpe_mm"),
    "heldout_p_mpjpe_mm": ("estimator", "p_mpjpe_mm"),
    "heldout_detector_like_p_mpjpe_mm": ("estimator", "detector_like_p_mpjpe_mm"),
    "imitator_success_rate": ("imitator", "success_rate"),
    "imitator_mpjpe_mm": ("imitator", "mpjpe_mm"),
    "imitator_resets": ("imitator", "resets"),
    "imitator_residual_force_n": ("imitator", "residual_force_n"),
    "imitator_residual_torque_nm": ("imitator", "residual_torque_nm"),
}


def _finished(path: str, rounds: int) -> list | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        history = json.load(f)
    return history if len(history) >= rounds else None


def run_seed(config: str, seed: int, workdir: str, overrides: list[str], rounds: int) -> tuple[list, float]:
    metrics = os.path.join(workdir, "metrics.json")
    history = _finished(metrics, rounds)
    if history is not None:
        return history, float("nan")
    cmd = [sys.executable, "-m", "ptjax.cli", "coevolve", "--config", config, "--workdir", workdir,
           f"--config.seed={seed}", *overrides]
    if os.path.isdir(os.path.join(workdir, "checkpoints")):
        cmd.append("--resume")
    t0 = time.time()
    subprocess.run(cmd, check=True)
    history = _finished(metrics, rounds)
    if history is None:
        raise RuntimeError(f"seed {seed}: {metrics} does not hold {rounds} rounds after the run")
    return history, time.time() - t0


def _stats(values) -> dict:
    v = np.asarray(values, float)
    return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()), "values": v.tolist()}


def summarise(histories: dict[int, list], upper_bound: float) -> dict:
    rounds = min(len(h) for h in histories.values())
    per_round = []
    for r in range(rounds):
        row = {"round": r}
        for name, (group, key) in ROUND_FIELDS.items():
            vals = [h[r].get(group, {}).get(key) for h in histories.values()]
            if all(v is not None for v in vals):
                row[name] = _stats(vals)
        per_round.append(row)
    seeds = {}
    for seed, h in histories.items():
        p = [rec["estimator"]["p_mpjpe_mm"] for rec in h[:rounds]]
        seeds[seed] = {"p_mpjpe_mm": p, "gap_closed": (p[0] - p[-1]) / (p[0] - upper_bound),
                       "last_round_best": bool(p[-1] <= min(p)),
                       "round_seconds": [rec.get("round_seconds") for rec in h[:rounds]]}
    gaps = [s["gap_closed"] for s in seeds.values()]
    return {"rounds": per_round, "seeds": seeds, "gap_closed": _stats(gaps),
            "every_last_round_best": all(s["last_round_best"] for s in seeds.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/demo.py")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workdir", default="runs/seeds")
    parser.add_argument("--upper-bound-mm", type=float, default=55.4)
    parser.add_argument("--json", default=None)
    args, overrides = parser.parse_known_args()
    bad = [o for o in overrides if not o.startswith("--config.")]
    if bad:
        parser.error(f"unknown arguments {bad} (config overrides look like --config.key=value)")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from ptjax.config import get_config
    rounds = int(get_config(args.config).num_rounds) + 1
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    histories, seconds = {}, {}
    for seed in seeds:
        histories[seed], seconds[seed] = run_seed(args.config, seed, os.path.join(args.workdir, f"seed_{seed}"),
                                                  overrides, rounds)
    result = {"benchmark": "coevolve_seeds", **device_info(), "config": args.config, "overrides": overrides,
              "upper_bound_p_mpjpe_mm": args.upper_bound_mm, "wall_seconds_per_seed": seconds,
              **summarise(histories, args.upper_bound_mm)}
    emit(result, args.json)


if __name__ == "__main__":
    main()
