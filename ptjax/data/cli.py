"""`ptjax data list` and `ptjax data show CLIP --gif out.gif`."""

from __future__ import annotations

import json

import numpy as np


_BUNDLED_LICENCE = "zlib (pybullet; LICENSE-pybullet.txt), from CMU/SFU mocap"


def _rows() -> list[dict]:
    from ptjax.data import LARGE_HELDOUT_CLIPS, LARGE_TRAIN_CLIPS, HELDOUT_CLIPS, TRAIN_CLIPS, load_clips, sources
    rows = []
    clips = {**load_clips(), **sources.load_more_motion()}
    for name, m in clips.items():
        root = m.joints[:, 0]
        source = sources.SOURCES.get(name)
        split = ("train" if name in TRAIN_CLIPS else "held-out" if name in HELDOUT_CLIPS else
                 "large:train" if name in LARGE_TRAIN_CLIPS else "large:held-out" if name in LARGE_HELDOUT_CLIPS
                 else "-")
        rows.append({"name": name, "frames": m.num_frames, "fps": m.fps, "seconds": round(m.duration, 3),
                     "root_travel_m": round(float(np.linalg.norm(root[-1, :2] - root[0, :2])), 3), "split": split,
                     "source": source.package if source else "bundled DeepMimic clip (ptjax/data/clips)",
                     "licence": source.licence if source else _BUNDLED_LICENCE,
                     "attribution": source.attribution if source else "DeepMimic (Peng et al. 2018)"})
    return rows


def _list(args, overrides) -> int:
    rows = _rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'clip':20s} {'frames':>6s} {'fps':>5s} {'seconds':>8s} {'travel m':>9s} {'split':15s} licence")
    for r in rows:
        print(f"{r['name']:20s} {r['frames']:6d} {r['fps']:5.0f} {r['seconds']:8.2f} {r['root_travel_m']:9.2f} "
              f"{r['split']:15s} {r['licence']}")
    print(f"{len(rows)} clips, {sum(r['frames'] for r in rows)} frames (sources and attribution: --json; "
          "licence texts in ptjax/data/clips and ptjax/data/more_motion)")
    return 0


def _show(args, overrides) -> int:
    from ptjax import viz
    from ptjax.data import load_clips
    motion = load_clips([args.clip])[args.clip]
    print(f"{motion.name}: {motion.num_frames} frames at {motion.fps:g} fps ({motion.duration:.2f} s)")
    if args.gif:
        viz.animate_3d({motion.name: motion.joints}, args.gif, fps=motion.fps, max_frames=args.max_frames)
        print(f"wrote {args.gif}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="list and show the bundled mocap clips")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="list every clip (bundled and converted) with its split and licence")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_list)
    p = sub.add_parser("show", help="describe a clip and optionally animate it")
    p.add_argument("clip", help="clip name (see `ptjax data list`)")
    p.add_argument("--gif", help="write a 3D skeleton animation (.gif or .mp4)")
    p.add_argument("--max-frames", type=int, default=150, help="subsample longer clips to this many frames")
    p.set_defaults(func=_show)
