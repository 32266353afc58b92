"""The job layout of `ptjax.distributed` and the `ptjax launch` helper. The two-process co-evolution itself (same
metrics as one process, a killed process, resume in either layout) is tested in test_coevolve.py, beside the
one-process run it is compared with."""

import json
import math
import os
import shutil
import subprocess
import sys
import time

import jax
import pytest

from ptjax import coevolve, distributed, launch
from ptjax.config import get_config

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "smoke.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smoke_config(**overrides):
    c = get_config(CONFIG)
    for k, v in overrides.items():
        c[k] = v
    return c


def _comparable(history):
    """Round records without wall-clock fields and picture names (only process 0 draws), as JSON would hold them."""
    drop = ("phase_seconds", "round_seconds", "gif", "physics_gif")
    return json.loads(json.dumps([{k: v for k, v in rec.items() if k not in drop} for rec in history]))


def _differences(a, b, path="") -> list[str]:
    """Where two nested records differ beyond the 1-vs-4-device test's tolerance (rtol 2e-3, atol 2e-4)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{path}/{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)) or isinstance(b, float) and isinstance(a, int):
        if math.isnan(a) and math.isnan(b) or math.isclose(a, b, rel_tol=2e-3, abs_tol=2e-4):
            return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def test_layout_comes_from_arguments_then_environment():
    assert distributed.layout(environ={}) == distributed.Layout(None, 1, 0)
    env = {"JAX_COORDINATOR_ADDRESS": "node0:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
    assert distributed.layout(environ=env) == distributed.Layout("node0:1234", 4, 3)
    assert distributed.layout("host:99", 2, 0, environ=env) == distributed.Layout("host:99", 2, 0)
    assert not distributed.layout(environ={"JAX_NUM_PROCESSES": "1"}).distributed


@pytest.mark.parametrize("args, message", [
    (dict(num_processes=2, process_id=0), "coordinator"),
    (dict(coordinator="nohost", num_processes=2, process_id=0), "HOST:PORT"),
    (dict(coordinator="h:1", num_processes=2, process_id=2), r"\[0, 2\)"),
    (dict(coordinator="h:1", num_processes=0, process_id=0), ">= 1"),
])
def test_bad_layouts_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        distributed.layout(environ={}, **args)
    with pytest.raises(ValueError, match="integer"):
        distributed.layout(environ={"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "two"})


def test_launch_reports_a_failing_process():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    assert launch.launch(["data", "list"], 2, cpu_devices=1, env=env) == 0
    assert launch.launch(["coevolve", "--config", "no_such_config.py", "--workdir", "x"], 2, cpu_devices=1,
                         env=env) != 0


