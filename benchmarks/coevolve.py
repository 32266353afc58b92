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
import functools
import json
import time

import jax
import numpy as np

from _common import device_info, emit
from ptjax import coevolve
from ptjax.config import get_config
from ptjax.data import TRAIN_CLIPS, load_clips

LEARNERS = ("imitator", "estimator", "hallucinator")


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


def filled_state(config):
    """A placed co-evolution state whose imitated and segment buffers hold the bundled training clips."""
    co = coevolve.CoEvolution.create(config)
    state = co.init(jax.random.PRNGKey(0))
    clips = load_clips(TRAIN_CLIPS)
    imitated = coevolve.fill_buffer(state.imitated, [m.resample(co.fps).joints for m in list(clips.values())
                                                     [:state.imitated.num_takes]])
    state = co.place(state.replace(imitated=imitated, segments=coevolve.fill_buffer(
        state.segments, [m.resample(co.fps).joints for m in list(clips.values())[:state.segments.num_takes]])))
    return co, state


def bench_learners(co, state, calls: int, learners=LEARNERS) -> dict:
    config = co.config
    chunk = int(config.steps_per_call)
    out = {}
    for phase, n, per_step in (("imitator", 1, config.imitator.num_envs * config.imitator.unroll_length),
                               ("estimator", chunk, coevolve.estimator_batch(config)),
                               ("hallucinator", chunk, coevolve.hallucinator_batch(config))):
        if phase not in learners:
            continue
        s = state.replace(phase=phase)
        compile_s, call_s = _timed(lambda: co.steps(s, n)[1], calls)
        out[phase] = {"compile_and_first_call_s": round(compile_s, 2), "seconds_per_update": call_s / n,
                      "per_second": per_step * n / call_s,
                      "unit": "env steps/s (with learning)" if phase == "imitator" else "samples/s"}
    return out


def bench_standalone(co, state, calls: int, learners=LEARNERS) -> dict:
    """E and H as their own training loops step them (one device), on the co-evolution's learner states, buffers,
    batch sizes and steps per call."""
    from ptjax.estimator.loop import run_steps
    config = co.config
    chunk = int(config.steps_per_call)
    e_batch, h_batch = coevolve.estimator_batch(config), coevolve.hallucinator_batch(config)
    local = jax.device_put(state, jax.devices()[0])  # one device, no mesh: as `ptjax estimate/hallucinate train` run
    runs = {
        "estimator": (e_batch, lambda: run_steps(
            local.estimator, local.imitated, local.real2d if local.estimator.spec.adversarial else None, chunk,
            e_batch, False)[1]),
        "hallucinator": (h_batch, lambda: _hallucinator_steps(local.hallucinator, local.segments, chunk, h_batch)[1]),
    }
    out = {}
    for phase, (batch, fn) in runs.items():
        if phase not in learners:
            continue
        compile_s, call_s = _timed(fn, calls)
        out[phase] = {"compile_and_first_call_s": round(compile_s, 2), "seconds_per_update": call_s / chunk,
                      "per_second": batch * chunk / call_s, "unit": "samples/s"}
    return out


@functools.partial(jax.jit, static_argnames=("num_steps", "batch_size"))
def _hallucinator_steps(state, buffer, num_steps: int, batch_size: int):
    from ptjax.hallucinator import train_step
    return jax.lax.scan(lambda s, _: train_step(s, buffer, batch_size), state, None, length=num_steps)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/smoke.py")
    p.add_argument("--num-envs", default="16,64,256")
    p.add_argument("--devices", default="1")
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--learners", default=",".join(LEARNERS), help="which learners to time")
    p.add_argument("--standalone", action="store_true",
                   help="also time E and H as their own training loops run them, and the ratio")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--metrics", help="a run's metrics.json: add its wall time per phase and per round")
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args()
    learners = tuple(x for x in args.learners.split(",") if x)
    unknown = [x for x in learners if x not in LEARNERS]
    if unknown:
        p.error(f"unknown learner(s) {unknown}; choose from {list(LEARNERS)}")
    result = {**device_info(), "config": args.config, "overrides": args.set, "scaling": []}
    for devices in [int(d) for d in args.devices.split(",")]:
        for n in [int(x) for x in args.num_envs.split(",")]:
            config = get_config(args.config, [f"--config.{o}" for o in args.set])
            config.num_devices = devices
            config.imitator.num_envs = n
            co, state = filled_state(config)
            row = {"devices": devices, "num_envs": n, **bench_learners(co, state, args.calls, learners)}
            if args.standalone:
                row["standalone"] = bench_standalone(co, state, args.calls, learners)
                row["inside_over_standalone"] = {
                    k: round(row[k]["seconds_per_update"] / v["seconds_per_update"], 3)
                    for k, v in row["standalone"].items()}
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
