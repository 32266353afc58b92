"""`ptjax coevolve --config configs/demo.py --workdir DIR [--resume]`: the main job (see ptjax.coevolve)."""

from __future__ import annotations


def _run(args, overrides) -> int:
    from ptjax import coevolve
    from ptjax.config import get_config
    config = get_config(args.config, overrides)
    if "coevolve" in config:  # a config file may hold several sections
        config = config.coevolve
    history = coevolve.run(config, args.workdir, resume=args.resume, progress=not args.quiet)
    print(coevolve.format_table(history))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("coevolve", help="run PoseTriplet's co-evolution rounds (estimator, imitator, "
                                               "hallucinator)")
    p.add_argument("--config", required=True, help="config file, e.g. configs/demo.py (':variant' allowed)")
    p.add_argument("--workdir", required=True, help="output folder: metrics.json, checkpoints/, tensorboard/, GIFs")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --workdir")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)
