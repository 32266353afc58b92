"""`ptjax hallucinate train|sample|eval`.

    ptjax hallucinate train --config configs/hallucinator.py --workdir runs/hal [--resume] [--gif samples.gif]
    ptjax hallucinate sample --workdir runs/hal [--num 8] [--segments 10] [--out samples.npz] [--bvh-dir DIR]
                             [--gif samples.gif]
    ptjax hallucinate eval --workdir runs/hal
"""

from __future__ import annotations

import json
import os

import numpy as np

DEFAULT_CONFIG = os.path.join("configs", "hallucinator.py")


def _config(args, overrides):
    from ptjax.config import get_config
    return get_config(args.config, overrides)


def _gif(path: str, motions, fps: float, count: int = 4, max_frames: int = 150) -> None:
    from ptjax import viz
    viz.animate_3d({m.name: m.joints for m in motions[:count]}, path, fps=fps, max_frames=max_frames)
    print(f"wrote {path}")


def _report(state, workdir: str, train_motions, gif: str | None) -> dict:
    from ptjax.hallucinator.evaluate import format_table
    from ptjax.hallucinator.loop import format_measures, report
    results, samples = report(state, train_motions, seed=int(state.config.seed))
    print("\nIn-betweening on held-out clips (L2P: metres per frame; MPJPE: mm):")
    print(format_table(results["inbetweening"]))
    print("\nHallucinated samples vs data:")
    print(format_measures(results))
    if gif:
        _gif(gif, samples, state.config.fps)
    return results


def _train(args, overrides) -> int:
    from ptjax import training
    from ptjax.data import load_clips
    from ptjax.hallucinator.loop import train
    config = _config(args, overrides)
    train_motions = load_clips(config.data.clips)
    state, history = train(config, args.workdir, motions=train_motions, resume=args.resume)
    results = _report(state, args.workdir, train_motions, args.gif)
    metrics = {"steps": int(state.step), "train_seconds": history[-1]["seconds"] if history else None,
               "final_losses": history[-1] if history else None, **results}
    training.write_json(os.path.join(args.workdir, "metrics.json"), metrics)
    print(f"wrote {os.path.join(args.workdir, 'metrics.json')}")
    return 0


def _load(args, overrides):
    from ptjax.hallucinator.train import load
    ckpt_dir = os.path.join(args.workdir, "checkpoints")
    config = _config(args, overrides) if args.config else None
    return load(ckpt_dir, config)


def _sample(args, overrides) -> int:
    import jax
    from ptjax.data import load_clips
    from ptjax.hallucinator.measures import measures as compute_measures
    from ptjax.hallucinator.sample import sample, start_windows_from
    from ptjax.hallucinator.train import resample_rigid
    state = _load(args, overrides)
    config = state.config
    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    train_motions = [resample_rigid(m, config.fps) for m in load_clips(config.data.clips).values()]
    start = start_windows_from(train_motions, np.random.default_rng(args.seed), args.num, config.context)
    motions = sample(state, jax.random.PRNGKey(args.seed), start, num_segments=args.segments,
                     target_pool=train_motions)
    stats = compute_measures(motions, config.fps, reference=train_motions, window=config.measures.window,
                                  stride=config.measures.stride, skip=config.context)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in stats.items()}, indent=1))
    if args.out:
        np.savez(args.out, joints=np.stack([m.joints for m in motions]), fps=config.fps,
                 names=np.array([m.name for m in motions]))
        print(f"wrote {args.out}")
    if args.bvh_dir:
        from ptjax.bvh import write_bvh
        os.makedirs(args.bvh_dir, exist_ok=True)
        for m in motions:
            write_bvh(os.path.join(args.bvh_dir, f"{m.name}.bvh"), m.joints, m.fps)
        print(f"wrote {len(motions)} BVH files to {args.bvh_dir}")
    if args.gif:
        _gif(args.gif, motions, config.fps)
    return 0


def _eval(args, overrides) -> int:
    from ptjax import training  # imports JAX: not at CLI start-up
    from ptjax.data import load_clips
    state = _load(args, overrides)
    results = _report(state, args.workdir, load_clips(state.config.data.clips), args.gif)
    out = args.out or os.path.join(args.workdir, "eval.json")
    training.write_json(out, results)
    print(f"wrote {out}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("hallucinate", help="train and sample the motion hallucinator")
    sub = parser.add_subparsers(dest="hallucinate_command", metavar="ACTION", required=True)

    p = sub.add_parser("train", help="train on the bundled clips, then evaluate and sample")
    p.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: %(default)s)")
    p.add_argument("--workdir", required=True, help="output folder: checkpoints, metrics.json, TensorBoard")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --workdir")
    p.add_argument("--gif", help="write an animation of hallucinated samples (.gif or .mp4)")
    p.set_defaults(func=_train)

    p = sub.add_parser("sample", help="hallucinate long sequences from a trained checkpoint")
    p.add_argument("--workdir", required=True, help="folder of a trained hallucinator")
    p.add_argument("--config", default=None, help="config file (default: the one saved with the checkpoint)")
    p.add_argument("--num", type=int, default=8, help="number of sequences (default: %(default)s)")
    p.add_argument("--segments", type=int, default=None, help="segments per sequence (default: config)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the samples to an .npz (joints (N, T, 17, 3), fps, names)")
    p.add_argument("--bvh-dir", help="write one BVH file per sample into this folder")
    p.add_argument("--gif", help="write an animation of the first samples")
    p.set_defaults(func=_sample)

    p = sub.add_parser("eval", help="in-betweening accuracy and sample measures of a checkpoint")
    p.add_argument("--workdir", required=True, help="folder of a trained hallucinator")
    p.add_argument("--config", default=None, help="config file (default: the one saved with the checkpoint)")
    p.add_argument("--out", help="JSON output (default: WORKDIR/eval.json)")
    p.add_argument("--gif", help="write an animation of hallucinated samples")
    p.set_defaults(func=_eval)
