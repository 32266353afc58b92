"""Co-evolution timings: the sharded step per learner and its scaling with the number of humanoids (and devices).

    python benchmarks/coevolve.py [--config configs/smoke.py] [--num-envs 16,64,256] [--devices 1]
                                  [--calls 3] [--metrics runs/demo/metrics.json] [--json out.json]

For each num_envs: one `CoEvolution.steps` call per learner is compiled, then `--calls` calls are timed; reported
are compile seconds, seconds per update and throughput (env steps/s for the imitator's PPO update including the
rollout, samples/s for the estimator and hallucinator). With `--metrics` (a run's metrics.json), the wall time per
phase and per round of that run is added. On a GPU, pass e.g. `--num-envs 1024,4096,16384`; with several devices,
`--devices 1,2,4` adds the data-parallel scaling. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from _common import device_info, emit
from ptjax import coevolve
from ptjax.config import get_config
from ptjax.data import TRAIN_CLIPS, load_clips


def _timed(fn, calls: int):
    t0 = time.perf_counter()
    out = fn()
    jax.block_until_ready(out)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(calls):
        out = fn()
        jax.block_until_ready(out)
    return first, (time.perf_counter() - t0) / calls


def bench_learners(config, calls: int) -> dict:
    co = coevolve.CoEvolution.create(config)
    state = co.init(jax.random.PRNGKey(0))
    clips = load_clips(TRAIN_CLIPS)
    imitated = coevolve.fill_buffer(state.imitated, [m.resample(co.fps).joints for m in list(clips.values())
                                                     [:state.imitated.num_takes]])
    state = co.place(state.replace(imitated=imitated, segments=coevolve.fill_buffer(
        state.segments, [m.resample(co.fps).joints for m in list(clips.values())[:state.segments.num_takes]])))
    chunk = int(config.steps_per_call)
    out = {}
    for phase, n, per_step in (("imitator", 1, config.imitator.num_envs * config.imitator.unroll_length),
                               ("estimator", chunk, coevolve.estimator_batch(config)),
                               ("hallucinator", chunk, coevolve.hallucinator_batch(config))):
        s = state.replace(phase=phase)
        compile_s, call_s = _timed(lambda: co.steps(s, n)[1], calls)
        out[phase] = {"compile_and_first_call_s": round(compile_s, 2), "seconds_per_update": call_s / n,
                      "per_second": per_step * n / call_s,
                      "unit": "env steps/s (with learning)" if phase == "imitator" else "samples/s"}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/smoke.py")
    p.add_argument("--num-envs", default="16,64,256")
    p.add_argument("--devices", default="1")
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--metrics", help="a run's metrics.json: add its wall time per phase and per round")
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args()
    result = {**device_info(), "config": args.config, "scaling": []}
    for devices in [int(d) for d in args.devices.split(",")]:
        for n in [int(x) for x in args.num_envs.split(",")]:
            config = get_config(args.config)
            config.num_devices = devices
            config.imitator.num_envs = n
            row = {"devices": devices, "num_envs": n, **bench_learners(config, args.calls)}
            result["scaling"].append(row)
            print(json.dumps(row), flush=True)
    if args.metrics:
        with open(args.metrics) as f:
            history = json.load(f)
        result["run"] = [{"round": r["round"], "phase_seconds": r["phase_seconds"],
                          "round_seconds": r.get("round_seconds")} for r in history]
        result["run_total_seconds"] = float(np.sum([r.get("round_seconds", 0) for r in history]))
    emit(result, args.json)


if __name__ == "__main__":
    main()
