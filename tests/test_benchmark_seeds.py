"""The seed summary of benchmarks/coevolve_seeds.py: mean and range per round, the gap closed per seed."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
import coevolve_seeds  # noqa: E402


def _round(r, p_mpjpe, success, resets, force):
    return {"round": r, "round_seconds": 100.0,
            "estimator": {"mpjpe_mm": p_mpjpe + 20.0, "p_mpjpe_mm": p_mpjpe},
            "imitator": {"success_rate": success, "mpjpe_mm": 90.0, "resets": resets, "residual_force_n": force,
                         "residual_torque_nm": 10.0}}


def test_summary_over_seeds():
    histories = {0: [_round(0, 100.0, 0.1, 50, 20.0), _round(1, 80.0, 0.5, 20, 30.0), _round(2, 70.0, 0.9, 5, 40.0)],
                 1: [_round(0, 110.0, 0.0, 70, 10.0), _round(1, 90.0, 0.3, 30, 20.0), _round(2, 95.0, 0.6, 9, 30.0)]}
    out = coevolve_seeds.summarise(histories, upper_bound=50.0)
    last = out["rounds"][2]
    assert last["heldout_p_mpjpe_mm"] == {"mean": 82.5, "min": 70.0, "max": 95.0, "values": [70.0, 95.0]}
    assert last["imitator_resets"]["mean"] == 7.0 and last["imitator_residual_force_n"]["max"] == 40.0
    assert out["seeds"][0]["gap_closed"] == pytest.approx(30.0 / 50.0)
    assert out["seeds"][1]["gap_closed"] == pytest.approx(15.0 / 60.0)
    assert out["seeds"][0]["last_round_best"] and not out["seeds"][1]["last_round_best"]
    assert not out["every_last_round_best"]
    assert out["gap_closed"]["min"] == pytest.approx(0.25)
