"""`ptjax imitate train|eval`."""

from __future__ import annotations

import json
import os

import numpy as np

from ptjax import distributed


def _video(state, library, names, path):
    """Per take: the reference pose (left) and the simulated body (right) rendered by MuJoCo; skeleton drawings
    where no GL backend is available (ptjax.render)."""
    from ptjax import render, viz
    from ptjax.imitator import train as train_lib
    result = train_lib.evaluate(state, library)  # every process of a job (it reads the stacked state) ...
    if not distributed.is_main():               # ... process 0 draws
        return []
    joints, ref, lengths = np.asarray(result.joints), np.asarray(result.reference), np.asarray(result.lengths)
    qpos, ref_qpos = np.asarray(result.qpos), np.asarray(library.qpos)
    fps = state.spec.config.fps
    base, ext = os.path.splitext(path)
    outputs = []
    for i, name in enumerate(names):
        out = path if len(names) == 1 else f"{base}_{name}{ext}"
        n = int(lengths[i])

        def skeletons(i=i, n=n, out=out):
            return viz.animate_overlay({"reference": ref[i, :n], "simulation": joints[i, :n]}, out,
                                       fps=fps)

        render.motion_video(state.spec.env.humanoid.model, qpos[i, :n], out, fps=fps,
                            reference_qpos=ref_qpos[i, :n], fallback=skeletons)
        outputs.append(out)
    return outputs


def _train(args, overrides) -> int:
    from ptjax.config import get_config
    from ptjax.imitator import train as train_lib
    config = get_config(args.config, overrides)
    if "imitator" not in config:
        raise ValueError(f"{args.config} has no 'imitator' section")
    state, _ = train_lib.train(config.imitator, args.workdir, resume=args.resume)
    if args.video:
        names = list(config.imitator.clips)
        from ptjax.data import load_clips
        from ptjax.imitator.env import make_library
        library = make_library(train_lib.references(state.spec, list(load_clips(names).values())))
        for out in _video(state, library, names, args.video):
            print(f"wrote {out}")
    return 0


def _eval(args, overrides) -> int:
    from ptjax.imitator import train as train_lib
    if not os.path.isdir(os.path.join(args.workdir, "checkpoints")):
        raise ValueError(f"{args.workdir} holds no imitator checkpoints (run `ptjax imitate train` first)")
    state, library, names = train_lib.load(args.workdir)
    summary = train_lib.evaluate(state, library).summary(names)
    print(f"{'take':24s} {'frames':>6s} {'resets':>6s} {'G-MPJPE':>9s} {'MPJPE':>8s}")
    for name, t in summary["takes"].items():
        print(f"{name:24s} {t['frames']:6d} {t['resets']:6d} {t['g_mpjpe_mm']:8.1f}  {t['mpjpe_mm']:7.1f}")
    print(f"success rate {summary['success_rate']:.2f}, G-MPJPE {summary['g_mpjpe_mm']:.1f} mm, "
          f"MPJPE {summary['mpjpe_mm']:.1f} mm")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    if args.video:
        for out in _video(state, library, names, args.video):
            print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("imitate", help="train or evaluate the physics imitator (MJX + PPO)")
    sub = parser.add_subparsers(dest="imitate_command", metavar="ACTION", required=True)
    p = sub.add_parser("train", help="train a tracking policy on bundled clips")
    p.add_argument("--config", required=True, help="config file with an 'imitator' section")
    p.add_argument("--workdir", required=True)
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --workdir")
    p.add_argument("--video", help="after training, write reference vs simulation rendered by MuJoCo (.gif or .mp4)")
    distributed.add_arguments(p)
    p.set_defaults(func=_train)
    p = sub.add_parser("eval", help="fail-safe rollout of a trained policy over its takes")
    p.add_argument("--workdir", required=True)
    p.add_argument("--json", help="write the per-take results as JSON")
    p.add_argument("--video", help="write reference vs simulation rendered by MuJoCo (.gif or .mp4)")
    p.set_defaults(func=_eval)
