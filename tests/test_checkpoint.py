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
