"""ptjax.training: the metric writer, JSON files and non-finite guards every driver uses."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from ptjax import training


def test_write_json_takes_numpy_and_jax_values_and_leaves_no_partial_file(tmp_path):
    path = str(tmp_path / "metrics.json")
    training.write_json(path, {"loss": np.float32(0.5), "step": np.int64(3), "curve": np.arange(3),
                               "mpjpe": jnp.float32(41.0)})
    assert json.load(open(path)) == {"loss": 0.5, "step": 3, "curve": [0, 1, 2], "mpjpe": 41.0}
    with pytest.raises(TypeError, match="cannot serialise object"):
        training.write_json(path, {"bad": object()})
    assert json.load(open(path))["step"] == 3          # the earlier file survives a failed write
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_non_finite_metrics_and_parameters_are_named():
    assert training.finite_scalars({"a": jnp.float32(1.0)}, "estimator", 5) == {"a": 1.0}
    with pytest.raises(FloatingPointError, match=r"hallucinator diverged at step 7: non-finite \['d_total'\]; lower"):
        training.finite_scalars({"g": 1.0, "d_total": jnp.float32(np.nan)}, "hallucinator", 7, hint="lower lr")
    training.check_finite_tree({"w": jnp.ones(3), "count": jnp.int32(2)}, "estimator parameters")
    with pytest.raises(FloatingPointError, match=r"non-finite estimator parameters at \['dense'\]\['b'\]"):
        training.check_finite_tree({"dense": {"w": jnp.ones(2), "b": jnp.array([0.0, np.inf])}},
                                   "estimator parameters")


def test_metric_writer_writes_tensorboard_events_under_one_folder_name(tmp_path):
    writer = training.MetricWriter(str(tmp_path))
    writer.scalars("train", {"loss": np.float32(0.25), "step": 1}, 1, skip=("step",))
    writer.close()
    folder = tmp_path / training.TENSORBOARD_DIR
    events = [f for f in os.listdir(folder) if f.startswith("events")]
    assert events and os.path.getsize(folder / events[0]) > 0
