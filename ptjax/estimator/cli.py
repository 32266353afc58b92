"""`ptjax estimator train --config configs/estimator_clips.py --workdir DIR [--resume] [--pairs PAIRS.npz]` and
`ptjax export-estimator RUN OUT [--round N]` (a co-evolution run's estimator as a stand-alone estimator workdir)."""

from __future__ import annotations

from ptjax import distributed


def _train(args, overrides) -> int:
    from ptjax.config import get_config
    from ptjax.estimator import loop
    config = get_config(args.config, overrides)
    loop.train(config, args.workdir, resume=args.resume, pairs_path=args.pairs, progress=not args.no_progress)
    if distributed.is_main():
        print(f"wrote {args.workdir}/metrics.json and checkpoints in {args.workdir}/checkpoints")
    return 0


def _export(args, overrides) -> int:
    if overrides:
        raise ValueError(f"ptjax export-estimator takes no config overrides (got {overrides})")
    from ptjax import estimator
    _, used = estimator.resolve(args.run, args.round)
    state, config = estimator.load(args.run, round_index=args.round)
    estimator.save(args.out, state, config)
    print(f"wrote {used} to {args.out} (an estimator workdir: ptjax lift/eval --checkpoint {args.out})")
    return 0


def register(subparsers) -> None:
    export = subparsers.add_parser("export-estimator", help="write a co-evolution run's estimator as a stand-alone "
                                                            "estimator workdir")
    export.add_argument("run", help="co-evolution workdir (ptjax coevolve --workdir)")
    export.add_argument("out", help="output estimator workdir")
    export.add_argument("--round", type=int, help="the estimator of this round (default: the last finished)")
    export.set_defaults(func=_export)

    parser = subparsers.add_parser("estimator", help="train the 2D-to-3D pose estimator")
    sub = parser.add_subparsers(dest="estimator_command", metavar="ACTION", required=True)
    p = sub.add_parser("train", help="train PoseNet + TrajNet (+ camera adversary) and evaluate on held-out clips",
                       description="Supervised training from the bundled clips' training split through random "
                                   "(and adversarial) virtual cameras, or from a file of 2D-3D pairs; evaluation on "
                                   "the held-out clips seen by fixed cameras. Writes WORKDIR/metrics.json, "
                                   "WORKDIR/tensorboard (TensorBoard), WORKDIR/checkpoints (orbax).")
    p.add_argument("--config", required=True, help="config file, e.g. configs/estimator_clips.py")
    p.add_argument("--workdir", required=True, help="output directory")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in WORKDIR")
    p.add_argument("--pairs", help=".npz with keypoints2d (N, T, 17, 2) and joints3d (N, T, 17, 3, camera frame)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    distributed.add_arguments(p)
    p.set_defaults(func=_train)
