"""Motion data: the `Motion` type, the bundled real mocap clips, more converted real motion, and windowing."""

from __future__ import annotations

import functools
import glob
import os

from ptjax.data.buffer import (MotionBuffer, break_free_takes, gather_slots, pack_motions, reset_free_stretches,
                               sample_windows, write_slots)
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


# The larger split (`ptjax.data.sources`: 8.8x the bundled frames). Its held-out clips add other subjects doing other
# motions than any training take (CMU subject 1 on a playground, a boxer); its training clips add a 4- and a
# 2-minute captured take and five climbing sequences. As before, the co-evolution sees only the training clips' 2D.
MORE_TRAIN_CLIPS: tuple[str, ...] = ("capture_a", "capture_b", "climb_0", "climb_1", "climb_2", "climb_3", "climb_4")
MORE_HELDOUT_CLIPS: tuple[str, ...] = ("cmu_01_01", "boxing")
LARGE_TRAIN_CLIPS: tuple[str, ...] = TRAIN_CLIPS + MORE_TRAIN_CLIPS
LARGE_HELDOUT_CLIPS: tuple[str, ...] = HELDOUT_CLIPS + MORE_HELDOUT_CLIPS


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
    """Clips as H36M-17 world joints, Z-up, metres: by default the 20 bundled DeepMimic clips (from CMU/SFU mocap);
    named clips may also be converted ones (`ptjax.data.sources`, e.g. LARGE_TRAIN_CLIPS)."""
    clips = dict(_load_all())
    if names is None:
        return clips
    from ptjax.data import sources
    if any(n not in clips for n in names):
        more = {n for n in names if n in sources.SOURCES}
        if more:
            clips.update(sources.load_more_motion(sorted(more)))
    missing = [n for n in names if n not in clips]
    if missing:
        raise ValueError(f"unknown clip name(s) {missing}; bundled clips: {sorted(clips)}; converted clips: "
                         f"{sorted(sources.SOURCES)}")
    return {n: clips[n] for n in names}


__all__ = ["Motion", "MotionBuffer", "pack_motions", "sample_windows", "gather_slots", "reset_free_stretches",
           "break_free_takes", "write_slots", "TRAIN_CLIPS", "HELDOUT_CLIPS", "load_clips",
           "MORE_TRAIN_CLIPS", "MORE_HELDOUT_CLIPS", "LARGE_TRAIN_CLIPS", "LARGE_HELDOUT_CLIPS", "clip_files", "make_windows", "centered_windows", "pad_edges", "window_starts",
           "CLIPS_DIR"]
