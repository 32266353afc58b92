"""The hallucinate phase's sampling at growing sizes: on the host (as the CPU configs run it) and on device
(`sample_on_device`, as configs/gpu.py and configs/h36m.py run it).

    python benchmarks/sampling.py [--sizes 30,120] [--frames 300] [--config default] [--json out.json]

For each size N: N samples of the hallucinator config's length (default: 10 context + 10 x 30 frames), drawn from
an imitated-segments buffer of 2N slots of `--frames` frames (the co-evolution's capacity; the bundled clips
repeated, turned and moved), then cleaned up and measured as the co-evolution's hallucinate phase does:

* host: `start_windows_from` (NumPy generator), `sample` with its clean-up (a Python loop per frame and leg), and
  `measures` against the segments (all windows; the novelty search compares every sample window with every
  mirrored reference window at every frame);
* device: `sample_from_buffer` (windows and targets drawn with a JAX key from the padded buffer, clean-up as one
  scan) and `measures_on_device` (at most `measures.max_windows` / `max_reference_windows` windows).

The network is freshly initialised (timing does not depend on its weights). Each path runs once to compile, then
is timed; prints one JSON object {"sizes": [{"samples", "segments", "segment_frames", "host": {...},
"device": {...}}]} with seconds and the driver thread's CPU seconds per step.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from _common import device_info, emit
from ptjax import geometry
from ptjax import hallucinator as H
from ptjax.data import load_clips, pack_motions
from ptjax.data.motion import Motion
from ptjax.hallucinator.measures import measures_on_device
from ptjax.hallucinator.sample import sample_from_buffer


def segments_buffer(slots: int, frames: int, fps: float, seed: int = 0):
    """`slots` motions of `frames` frames: the bundled clips chained end to end, each copy turned and moved."""
    rng = np.random.default_rng(seed)
    clips = [m.resample(fps).joints for m in load_clips().values()]
    motions = []
    for i in range(slots):
        pieces, total = [], 0
        while total < frames:
            clip = clips[rng.integers(len(clips))]
            turn = np.asarray(geometry.yaw_matrix(np.float32(rng.uniform(-np.pi, np.pi))))
            moved = clip @ turn.T + np.array([*rng.uniform(-3, 3, 2), 0.0])
            pieces.append(moved.astype(np.float32))
            total += len(clip)
        motions.append(Motion(f"segment_{i:04d}", fps, np.concatenate(pieces)[:frames]))
    return pack_motions(motions, fps, frames), motions


def timed(fn):
    t0, c0 = time.perf_counter(), time.thread_time()
    fn()
    return {"seconds": round(time.perf_counter() - t0, 3), "host_cpu_seconds": round(time.thread_time() - c0, 3)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="30,120", help="comma-separated sample counts")
    p.add_argument("--frames", type=int, default=300, help="frames per imitated segment")
    p.add_argument("--config", default="default", choices=("default", "paper"))
    p.add_argument("--skip-host-above", type=int, default=10_000, help="time the host path up to this many samples")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    config = H.paper_config() if args.config == "paper" else H.default_config()
    state = H.init(jax.random.PRNGKey(0), config)
    m = config.measures
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        buffer, motions = segments_buffer(2 * n, args.frames, float(config.fps))

        def host():
            start = H.start_windows_from(motions, np.random.default_rng(0), n, config.context)
            samples = H.sample(state, jax.random.PRNGKey(1), start, target_pool=motions)
            H.measures(samples, config.fps, reference=motions, window=m.window, stride=m.stride, skip=config.context)

        def device():
            samples = sample_from_buffer(state, jax.random.PRNGKey(1), buffer, n)
            stats = measures_on_device(samples, buffer, jax.random.PRNGKey(2), float(config.fps), window=m.window,
                                       stride=m.stride, skip=config.context, max_windows=m.max_windows,
                                       max_reference_windows=m.max_reference_windows)
            jax.device_get({**stats, "finite": jnp.all(jnp.isfinite(samples))})

        row = {"samples": n, "segments": 2 * n, "segment_frames": args.frames,
               "sample_frames": config.context + config.sample.num_segments * config.sample.segment_length}
        for name, fn in (("device", device), ("host", host)):
            if name == "host" and n > args.skip_host_above:
                continue
            compile_run = timed(fn)
            row[name] = {**timed(fn), "first_call_seconds": compile_run["seconds"]}
        print(row, flush=True)
        rows.append(row)
    emit({**device_info(), "config": args.config, "sizes": rows}, args.json)


if __name__ == "__main__":
    main()
