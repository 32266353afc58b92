"""`ptjax coevolve --config configs/demo.py --workdir DIR [--resume]`: the main job (see ptjax.coevolve)."""

from __future__ import annotations

from ptjax import distributed


def _run(args, overrides) -> int:
    from ptjax import coevolve
    from ptjax.config import get_config
    config = get_config(args.config, overrides)
    if "coevolve" in config:  # a config file may hold several sections
        config = config.coevolve
    history = coevolve.run(config, args.workdir, resume=args.resume, progress=not args.quiet)
    if distributed.is_main():
        print(coevolve.format_table(history))
        print(where_the_results_are(args.workdir, history))
    return 0


def where_the_results_are(workdir: str, history: list) -> str:
    """What a user reads after the run: the files, and the estimator to lift with."""
    import os
    from ptjax.estimator import checkpoints as est_ckpt
    lines = [f"results in {workdir}: metrics.json (one entry per round), tensorboard/, checkpoints/"]
    rounds = est_ckpt.coevolution_rounds(workdir)
    if rounds:
        lines.append(f"estimator of the last round: {est_ckpt.round_dir(workdir, rounds[-1])} -- lift with "
                     f"`ptjax lift KEYPOINTS --format openpose --checkpoint {workdir} --out lifted.npz` "
                     f"(--round N for another round), score with `ptjax eval --dataset clips --checkpoint {workdir}`")
    gifs = [rec[k] for rec in history for k in ("gif", "physics_gif") if rec.get(k)]
    if gifs:
        lines.append("pictures: " + ", ".join(os.path.join(workdir, g) for g in gifs))
    return "\n".join(lines)


def register(subparsers) -> None:
    p = subparsers.add_parser("coevolve", help="run PoseTriplet's co-evolution rounds (estimator, imitator, "
                                               "hallucinator)")
    p.add_argument("--config", required=True, help="config file, e.g. configs/demo.py (':variant' allowed)")
    p.add_argument("--workdir", required=True, help="output folder: metrics.json, checkpoints/, tensorboard/, GIFs")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --workdir")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    distributed.add_arguments(p)
    p.set_defaults(func=_run)
