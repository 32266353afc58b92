"""benchmarks/round.py: the synthetic take sets it times and the summary it prints (the timed run itself is a
benchmark, not a test)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import round as round_bench  # noqa: E402
from ptjax.config import get_config  # noqa: E402
from ptjax.data.takes import load_takes  # noqa: E402

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "smoke.py")


@pytest.mark.parametrize("takes, frames", [(1, 0), (5, 30)])
def test_sized_config_makes_exactly_n_takes_of_the_clips_under_more_cameras(takes, frames):
    base = get_config(CONFIG)
    config = round_bench.sized_config(base, takes, frames)
    train, heldout = load_takes(config)
    assert len(train) == takes
    assert max(len(t.keypoints2d) for t in train) <= (frames or base.data.max_frames)
    assert {t.name.split("/")[0] for t in train} <= set(base.data.train_clips)
    assert len({t.name for t in train}) == takes          # every take is another clip or another camera
    assert not config.gif and len(heldout) == len(load_takes(base)[1])


def _row(takes, r, seconds, compile_s, host):
    return {"takes": takes, "round": r, "seconds": seconds, "compile_seconds": compile_s, "host_seconds": host,
            "host_share": host / (seconds - compile_s)}


def test_summary_compares_the_last_round_per_take():
    rows = [_row(30, 0, 100.0, 90.0, 1.0), _row(30, 1, 20.0, 0.0, 2.0),
            _row(120, 0, 200.0, 100.0, 3.0), _row(120, 1, 100.0, 10.0, 9.0)]
    out = round_bench.summarize(rows)
    assert out["round"] == 1 and out["takes"] == [30, 120]
    assert out["seconds_without_compile"] == [20.0, 90.0]
    assert out["growth"] == pytest.approx((90.0 / 120) / (20.0 / 30))   # < 1: grows less than linearly
    assert out["host_share"] == [0.1, 0.1]
