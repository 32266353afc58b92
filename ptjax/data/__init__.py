"""Motion data: the `Motion` type, the bundled real mocap clips, and windowing utilities."""

from __future__ import annotations

import functools
import glob
import os

from ptjax.data.motion import Motion
from ptjax.data.windows import centered_windows, make_windows, pad_edges, window_starts

CLIPS_DIR = os.path.join(os.path.dirname(__file__), "clips")


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


__all__ = ["Motion", "load_clips", "clip_files", "make_windows", "centered_windows", "pad_edges", "window_starts",
           "CLIPS_DIR"]
