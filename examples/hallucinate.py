"""Train the in-betweening hallucinator on motion, then sample long new motion toward random keyframe targets.

    python examples/hallucinate.py --steps 3000 --out-dir runs/hallucinate_example
    python examples/hallucinate.py --smoke --out-dir hallucinate_smoke

The steps, in the Python API (what `ptjax hallucinate train|sample` does with logging and checkpoints):
  1. `H.make_training_windows(motions, config)` packs motion (in co-evolution: the imitator's output) on device;
  2. `H.train_step(state, buffer, batch_size)` = `H.sample_batch` + `H.update` (generator and both motion
     discriminators) in one jitted call;
  3. `H.sample(state, rng, start_windows, target_pool=motions)` chains segments toward random targets;
  4. `H.measures(samples, fps, reference=motions)` checks bone lengths, skating, novelty and diversity.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import numpy as np

from ptjax import hallucinator as H
from ptjax import viz
from ptjax.data import TRAIN_CLIPS, load_clips


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--out-dir", default="runs/hallucinate_example")
    p.add_argument("--smoke", action="store_true", help="tiny model, a few steps (CI)")
    args = p.parse_args(argv)
    config = H.tiny_config() if args.smoke else H.default_config()
    steps = 4 if args.smoke else args.steps
    motions = list(load_clips(config.data.clips if args.smoke else TRAIN_CLIPS).values())
    os.makedirs(args.out_dir, exist_ok=True)

    state = H.init(jax.random.PRNGKey(0), config)
    buffer = H.make_training_windows(motions, config)
    for step in range(steps):
        state, metrics = H.train_step(state, buffer, config.train.batch_size)
        if (step + 1) % max(steps // 10, 1) == 0:
            print(f"step {step + 1}: generator {float(metrics['g_total']):.4f}, "
                  f"discriminators {float(metrics['d_total']):.4f}")
    start = H.start_windows_from(motions, np.random.default_rng(0), 4, config.context)
    samples = H.sample(state, jax.random.PRNGKey(1), start, target_pool=motions)
    stats = H.measures(samples, config.fps, reference=motions, window=config.measures.window,
                       stride=config.measures.stride, skip=config.context)
    print(f"{len(samples)} samples of {samples[0].num_frames / config.fps:.1f} s: bone-length deviation "
          f"{stats['bone_length_dev_max_m'] * 100:.2f} cm, nearest training window "
          f"{stats.get('nearest_reference_median_m', float('nan')):.3f} m (median)")
    with open(os.path.join(args.out_dir, "measures.json"), "w") as f:
        json.dump(stats, f, indent=2)
    viz.animate_3d({"hallucinated": samples[0].joints}, os.path.join(args.out_dir, "sample.gif"), fps=config.fps,
                   max_frames=20 if args.smoke else 300)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
