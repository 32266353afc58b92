import json
import os

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ptjax import checkpoint


@flax.struct.dataclass
class _State:
    params: dict
    opt_state: optax.OptState
    rng: jax.Array
    step: jax.Array


def _state(seed):
    params = {"w": jax.random.normal(jax.random.PRNGKey(seed), (3, 2)), "b": jnp.zeros(2)}
    return _State(params, optax.adam(1e-3).init(params), jax.random.PRNGKey(seed), jnp.int32(seed))


def test_save_restore_round_trip(tmp_path):
    s = _state(7)
    checkpoint.save(str(tmp_path), 3, s, metadata={"round": 1})
    checkpoint.save(str(tmp_path), 5, _state(9))
    assert checkpoint.latest_step(str(tmp_path)) == 5 and checkpoint.all_steps(str(tmp_path)) == [3, 5]
    restored, step = checkpoint.restore(str(tmp_path), _state(0), step=3)
    assert step == 3
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, b), restored, s)
    assert checkpoint.load_metadata(str(tmp_path), 3) == {"round": 1}


def test_refuses_nan_state_and_missing_dir(tmp_path):
    bad = _state(1).replace(params={"w": jnp.full((3, 2), jnp.nan), "b": jnp.zeros(2)})
    with pytest.raises(FloatingPointError, match="non-finite.*w"):
        checkpoint.save(str(tmp_path), 1, bad)
    with pytest.raises(FileNotFoundError):
        checkpoint.restore(str(tmp_path / "nope"), _state(0))


def test_zero_size_leaves_round_trip(tmp_path):
    state = {"a": jnp.arange(3.0), "empty": jnp.zeros((0,), jnp.float32), "nested": {"e2": jnp.zeros((2, 0))}}
    checkpoint.save(str(tmp_path), 1, state)
    restored, _ = checkpoint.restore(str(tmp_path), jax.tree_util.tree_map(jnp.zeros_like, state))
    assert restored["empty"].shape == (0,) and restored["nested"]["e2"].shape == (2, 0)
    np.testing.assert_array_equal(restored["a"], state["a"])


def test_one_store_serves_a_run_and_keeps_state_and_metadata_together(tmp_path):
    with checkpoint.CheckpointStore(str(tmp_path), max_to_keep=2) as store:
        for step in (1, 2, 3):
            store.save(step, _state(step), metadata={"step": step, "losses": np.float32(0.5)})
        assert store.all_steps() == [2, 3] and store.latest_step() == 3       # max_to_keep
        store.save(3, _state(30), metadata={"step": 30})                      # the same step again replaces it
        restored, step = store.restore(_state(0))
        assert step == 3 and int(restored.step) == 30 and store.metadata(3) == {"step": 30}
        store.save(4, _state(4))
        assert store.metadata(4) is None
    assert checkpoint.load_metadata(str(tmp_path), 3) == {"step": 30}
    assert not any(name.startswith("metadata_") for name in os.listdir(tmp_path))   # no sidecar files


def test_reads_checkpoints_of_the_earlier_layout(tmp_path):
    """Runs saved before the metadata moved into the store: one `default` item, metadata_<step>.json beside it."""
    import orbax.checkpoint as ocp
    s = _state(5)
    options = ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=False)
    with ocp.CheckpointManager(str(tmp_path), options=options) as manager:
        manager.save(7, args=ocp.args.StandardSave(s))
    with open(tmp_path / "metadata_7.json", "w") as f:
        json.dump({"round": 2}, f)
    restored, step = checkpoint.restore(str(tmp_path), _state(0))
    assert step == 7
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, b), restored, s)
    assert checkpoint.load_metadata(str(tmp_path), 7) == {"round": 2}
    checkpoint.save(str(tmp_path), 8, _state(8), metadata={"round": 3})      # a resumed old run goes on
    assert checkpoint.all_steps(str(tmp_path)) == [7, 8] and checkpoint.load_metadata(str(tmp_path), 8) == {"round": 3}
