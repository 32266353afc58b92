"""Motion data: the `Motion` type, the bundled real mocap clips, and windowing utilities."""

from __future__ import annotations

import functools
import glob
import os

from ptjax.data.buffer import MotionBuffer, pack_motions, sample_windows
from ptjax.data.motion import Motion
from ptjax.data.windows import centered_windows, make_windows, pad_edges, window_starts

CLIPS_DIR = os.path.join(os.path.dirname(__file__), "clips")

# The fixed split of the bundled clips used by the estimator's supervised upper bound and by co-evolution (whose
# 2D takes come from the training split only; the held-out split is for evaluation). Each motion type is on both
# sides: walking and turning, jumps (jump vs backflip/spinkick), dance (dance_b vs dance_a), strikes (punch vs kick),
# and fast locomotion (run vs the walker clips).
HELDOUT_CLIPS: tuple[str, ...] = ("walker_turn_right1", "run", "jump", "dance_b", "punch")
TRAIN_CLIPS: tuple[str, ...] = (
    "walk", "walker_0walk_forward", "walker_turn_left0", "walker_turn_left1", "walker_turn_right0",
    "backflip", "spinkick", "kick", "dance_a", "cartwheel", "crawl", "getup_facedown", "getup_faceup", "roll", "spin",
)


def clip_files() -> dict[str, str]:
    """Clip name -> path of the bundled DeepMimic files ('walk', 'run', ..., 'walker_turn_left0', ...)."""
    paths = sorted(glob.glob(os.path.join(CLIPS_DIR, "humanoid3d_*.txt")) +
                   glob.glob(os.path.join(CLIPS_DIR, "walker_*.txt")))
    names = [os.path.splitext(os.path.basename(p))[0].removeprefix("humanoid3d_") for p in paths]
    return dict(zip(names, paths))


@functools.cache
def _load_all() -> tuple[tuple[str, Motion], ...]:
    from ptjax.data.deepmimic import load_motion_file
    return tuple((name, load_motion_file(path, name)) for name, path in clip_files().items())


def load_clips(names=None) -> dict[str, Motion]:
    """The 20 bundled real mocap clips (DeepMimic, from CMU/SFU mocap) as H36M-17 world joints, Z-up, metres."""
    clips = dict(_load_all())
    if names is None:
        return clips
    missing = [n for n in names if n not in clips]
    if missing:
        raise ValueError(f"unknown clip name(s) {missing}; bundled clips: {sorted(clips)}")
    return {n: clips[n] for n in names}


__all__ = ["Motion", "MotionBuffer", "pack_motions", "sample_windows", "TRAIN_CLIPS", "HELDOUT_CLIPS", "load_clips", "clip_files", "make_windows", "centered_windows", "pad_edges", "window_starts",
           "CLIPS_DIR"]
