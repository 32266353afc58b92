"""Imitate a bundled mocap clip with PPO on parallel MJX humanoids, then roll the policy out with fail-safe resets.

    python examples/imitate_clip.py --clip walk --iterations 200 --out-dir runs/imitate_walk
    python examples/imitate_clip.py --smoke --out-dir imitate_smoke

The steps, in the Python API (what `ptjax imitate train` does with logging and checkpoints):
  1. `imitator.make_spec(config)` builds the humanoid for the H36M skeleton, the MJX tracking env and PPO's
     networks; `imitator.make_mesh(config)` the device mesh; `imitator.init(rng, spec, library, mesh)` the state;
  2. `imitator.references(spec, motions)` retargets the clip (IK) to the body; `make_library` stacks references on
     device;
  3. `imitator.update(state, library, mesh)` is one jitted PPO iteration (rollout, GAE, minibatch epochs),
     data-parallel over the local devices;
  4. `imitator.evaluate(state, library)` is the deterministic fail-safe rollout: simulated H36M joints per take;
  5. `ptjax.render.motion_video` renders the simulated body with MuJoCo (physics.gif).
"""

from __future__ import annotations

import argparse
import json
import os

import jax

from ptjax import parallel, render, viz
from ptjax.data import load_clips
from ptjax.imitator.config import default_config
from ptjax.imitator import train as imitator
from ptjax.imitator.env import make_library


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", default="walk")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--num-envs", type=int, default=128)
    p.add_argument("--out-dir", default="runs/imitate_example")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, three iterations (CI)")
    args = p.parse_args(argv)
    config = default_config()
    config.num_envs, config.num_devices = args.num_envs, 1
    if args.smoke:  # the test suite's imitator shapes: compiled code is shared through the compilation cache
        config.num_envs, config.unroll_length, config.num_minibatches, config.num_epochs = 16, 8, 4, 2
        config.policy_hidden = config.value_hidden = (64, 64)
        args.iterations = 3
    os.makedirs(args.out_dir, exist_ok=True)

    spec, mesh = imitator.make_spec(config), imitator.make_mesh(config)
    clip = load_clips([args.clip])[args.clip]
    library = make_library(imitator.references(spec, [clip]))
    state = imitator.init(jax.random.PRNGKey(0), spec, library, mesh)
    lib = parallel.replicate(library, mesh)
    curve = []
    for it in range(args.iterations):
        state, metrics = imitator.update(state, lib, mesh)
        curve.append({k: float(metrics[k]) for k in ("reward", "episode_length", "value_loss")})
        print(f"iteration {it + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in curve[-1].items()))
    result = imitator.evaluate(state, library)
    summary = result.summary([args.clip])
    print(f"fail-safe rollout: {summary['resets']} resets, MPJPE {summary['mpjpe_mm']:.1f} mm")
    with open(os.path.join(args.out_dir, "imitate.json"), "w") as f:
        json.dump({"curve": curve, "rollout": summary}, f, indent=2)
    n = int(result.lengths[0])
    viz.animate_panels({"reference": clip.resample(config.fps).joints[:n], "imitated": result.joints[0, :n]},
                       os.path.join(args.out_dir, "imitate.gif"), fps=config.fps, max_frames=30 if args.smoke else 150)
    # The simulated body itself, rendered by MuJoCo beside the reference pose (skipped without a GL backend).
    ok, reason = render.available()
    if ok:
        render.motion_video(spec.env.humanoid.model, result.qpos[0, :n], os.path.join(args.out_dir, "physics.gif"),
                            fps=config.fps, reference_qpos=library.qpos[0, :n], max_frames=30 if args.smoke else None)
    else:
        print(f"no MuJoCo render: {reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
