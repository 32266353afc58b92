"""One co-evolution round's wall time, per phase, split into host time, device time and compilation.

    python benchmarks/round.py [--config configs/smoke.py] [--takes 30,120] [--frames 0] [--rounds 3]
                               [--json out.json] [--config.key=value ...]

For each `--takes N`: the config's training clips seen by as many fixed cameras as it takes to make N 2D takes
(`data.num_cameras` = ceil(N / clips), `data.max_takes` = N; `--frames F` > 0 sets `data.max_frames`), then rounds
0 .. `--rounds`-1 run phase by phase as `ptjax coevolve` runs them (`ptjax.coevolve.run_phase`; checkpoints and
pictures left out). Per phase and per round:

* `seconds`: wall time, the phase's results on the device included (`jax.block_until_ready`);
* `compile_seconds`: lowering and XLA compilation (`jax.monitoring`'s compile events);
* `host_seconds`: CPU time of the Python thread that drives the round (Python loops, numpy, dispatch, tracing,
  file writes), compilation taken out (approximately: XLA may compile in several threads). XLA runs its programs
  in its own threads, so the driver's thread spends no CPU time while it waits on them; numpy's own BLAS threads
  are not counted (the round's host code is element-wise);
* `device_seconds`: the rest, `seconds - host_seconds - compile_seconds`: waiting on XLA.

The first rounds compile; a later round at the same shapes shows the steady state. The summary compares the last
round of the largest and the smallest N (`growth` = its seconds, compilation excluded, per take, relative to the
smallest N's). Prints one JSON object {"rounds": [{"takes", "frames", "round", "seconds", "host_seconds",
"compile_seconds", "device_seconds", "host_share", "phases": {...}}], "summary": {...}}.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time

import jax
import jax.numpy as jnp

from _common import device_info, emit
from ptjax import coevolve
from ptjax.config import apply_overrides, get_config

# Lowering and XLA compilation; tracing is left out because nested jits report their traces inside their caller's
# (counting them would count the same seconds twice), so a first call's tracing shows up as host time.
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_to_mlir_module_duration", "/jax/core/compile/backend_compile_duration")


class PhaseClock:
    """Wall, driver-thread CPU and compilation seconds between `start` and `stop`."""

    def __init__(self):
        self._compile = 0.0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **_):
        if event in COMPILE_EVENTS:
            self._compile += duration

    def start(self) -> None:
        self._t0, self._cpu0, self._c0 = time.perf_counter(), time.thread_time(), self._compile

    def stop(self) -> dict:
        seconds = time.perf_counter() - self._t0
        compile_s = min(self._compile - self._c0, seconds)
        host = max(time.thread_time() - self._cpu0 - compile_s, 0.0)
        return {"seconds": round(seconds, 3), "host_seconds": round(host, 3), "compile_seconds": round(compile_s, 3),
                "device_seconds": round(max(seconds - host - compile_s, 0.0), 3)}


def sized_config(config, takes: int, frames: int):
    """`config` with exactly `takes` 2D takes: the training clips under ceil(takes / clips) fixed cameras."""
    overrides = [f"--config.data.num_cameras={math.ceil(takes / len(config.data.train_clips))}",
                 f"--config.data.max_takes={takes}", "--config.gif=False"]
    if frames:
        overrides.append(f"--config.data.max_frames={frames}")
    return apply_overrides(config, overrides)


def time_rounds(config, rounds: int, clock: PhaseClock, workdir: str) -> list[dict]:
    clock.start()
    co = coevolve.CoEvolution.create(config)
    state = co.init(jax.random.PRNGKey(int(config.seed)))
    jax.block_until_ready(state)
    setup = clock.stop()
    out = []
    for r in range(rounds):
        record, phases = {}, {}
        for name in coevolve.phases_of_round(config, r):
            clock.start()
            state = coevolve.run_phase(co, state.replace(round=jnp.asarray(r, jnp.int32)), name, record, workdir,
                                       log=None, progress=False)
            state = co.place(state)
            jax.block_until_ready(state)
            phases[name] = clock.stop()
        total = {k: round(sum(p[k] for p in phases.values()), 3) for k in next(iter(phases.values()))}
        warm = total["seconds"] - total["compile_seconds"]
        out.append({"takes": len(co.takes), "frames": co.max_frames,
                    "take_frames": int(sum(len(t.keypoints2d) for t in co.takes)), "round": r, **total,
                    "host_share": round(total["host_seconds"] / warm, 3) if warm > 0 else None,
                    "phases": phases, **({"setup": setup} if r == 0 else {})})
        print(f"takes {len(co.takes)} round {r}: {total['seconds']:.1f} s (host {total['host_seconds']:.1f}, "
              f"compile {total['compile_seconds']:.1f}, device {total['device_seconds']:.1f})", file=sys.stderr)
    return out


def summarize(rows: list[dict]) -> dict:
    last = max(r["round"] for r in rows)
    final = sorted((r for r in rows if r["round"] == last), key=lambda r: r["takes"])
    warm = [r["seconds"] - r["compile_seconds"] for r in final]
    out = {"round": last, "takes": [r["takes"] for r in final], "seconds_without_compile": [round(w, 2) for w in warm],
           "host_share": [r["host_share"] for r in final]}
    if len(final) > 1 and warm[0] > 0:
        out["growth"] = round((warm[-1] / final[-1]["takes"]) / (warm[0] / final[0]["takes"]), 3)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/smoke.py")
    p.add_argument("--takes", default="30,120", help="comma-separated take counts")
    p.add_argument("--frames", type=int, default=0, help="frames per take (0: the config's data.max_frames)")
    p.add_argument("--rounds", type=int, default=3, help="rounds 0 .. N-1 (round 0 is the cold start)")
    p.add_argument("--json", default=None)
    args, overrides = p.parse_known_args(argv)
    base = apply_overrides(get_config(args.config), overrides)
    clock = PhaseClock()
    rows = []
    for n in (int(x) for x in args.takes.split(",")):
        with tempfile.TemporaryDirectory() as workdir:
            rows += time_rounds(sized_config(base, n, args.frames), args.rounds, clock, workdir)
    emit({**device_info(), "config": args.config, "overrides": overrides, "rounds": rows,
          "summary": summarize(rows)}, args.json)


if __name__ == "__main__":
    main()
