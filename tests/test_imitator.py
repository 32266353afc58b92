import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import small_imitator_config
from ptjax import parallel, skeleton
from ptjax.imitator import env as env_lib
from ptjax.imitator import train as imitator
from ptjax.imitator.env import make_library


@pytest.fixture(scope="module")
def setup(walk_reference):
    config = small_imitator_config()
    return imitator.make_spec(config), imitator.make_mesh(config), make_library([walk_reference])


@pytest.fixture(scope="module")
def trained(setup):
    """Ten updates from a fixed seed, with their metrics."""
    spec, mesh, library = setup
    state = imitator.init(jax.random.PRNGKey(0), spec, library, mesh)
    lib = parallel.replicate(library, mesh)
    history = []
    for _ in range(10):
        state, metrics = imitator.update(state, lib, mesh)
        history.append({k: float(v) for k, v in metrics.items()})
    return state, history


def test_env_reset_and_step_are_consistent(setup):
    spec, _, library = setup
    env = spec.env
    state = jax.jit(env.reset)(jax.random.PRNGKey(1), library)
    assert state.obs.shape == (env.observation_size,) and np.all(np.isfinite(state.obs))
    step = jax.jit(env.step)
    # Zero actions = PD servos on the reference: the body follows the clip for a while with a high reward.
    rewards = []
    for _ in range(5):
        state = step(state, jnp.zeros(env.action_size), library)
        rewards.append(float(state.reward))
    assert np.all(np.array(rewards) > 0.4) and np.all(np.array(rewards) <= 1.0)
    assert float(state.metrics["joint_error"]) < 0.15
    # A NaN action blows the physics up: the guard ends the episode, counts it, and the env stays finite.
    # Same dtype as the zero action (not weakly typed), so the compiled step is reused.
    bad = step(state, jnp.full(env.action_size, jnp.nan, jnp.float32), library)
    assert float(bad.info["nan_reset"]) == 1.0 and float(bad.done) == 1.0
    assert np.all(np.isfinite(np.asarray(bad.pipeline_state.qpos))) and np.all(np.isfinite(bad.obs))
    assert int(bad.info["steps"]) == 0  # a fresh episode began


def test_env_config_validation(setup):
    spec, _, _ = setup
    config = env_lib.default_config()
    config.init = "sitting"
    with pytest.raises(ValueError, match="init"):
        env_lib.TrackingEnv(spec.env.humanoid, config)
    config = env_lib.default_config()
    config.reward_preset = "best"
    with pytest.raises(ValueError, match="reward_preset"):
        env_lib.TrackingEnv(spec.env.humanoid, config)
    with pytest.raises(ValueError, match="divisible"):
        bad = small_imitator_config()
        bad.num_envs = 10
        imitator.make_spec(bad)


def test_ppo_update_runs_finite_and_learns(trained):
    state, history = trained
    for m in history:
        assert all(np.isfinite(v) for v in m.values()), m
        assert m["nonfinite_update"] == 0.0 and m["nan_resets"] == 0.0
    leaves = jax.tree_util.tree_leaves(state.params)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in leaves)
    # The critic fits the returns (the loss improves), and the tracking reward does not collapse while it does
    # (ten updates of 128 steps are too few for the policy's reward to rise reliably; the learning run shows that).
    assert np.mean([h["value_loss"] for h in history[-3:]]) < 0.5 * history[0]["value_loss"]
    assert np.mean([h["reward"] for h in history[-3:]]) > 0.7 * np.mean([h["reward"] for h in history[:3]])
    assert float(parallel.unstack(state.env_steps)) == 10 * 16 * 8


def test_same_seed_same_metrics(setup, trained):
    spec, mesh, library = setup
    _, history = trained
    state = imitator.init(jax.random.PRNGKey(0), spec, library, mesh)
    lib = parallel.replicate(library, mesh)
    for expected in history[:2]:
        state, metrics = imitator.update(state, lib, mesh)
        for k, v in expected.items():
            assert float(metrics[k]) == v, k


def test_one_device_and_four_devices_agree(setup, trained, walk_reference):
    assert len(jax.devices()) >= 4
    _, history = trained
    config = small_imitator_config()
    config.num_devices = 4
    spec, mesh4 = imitator.make_spec(config), imitator.make_mesh(config)
    library = make_library([walk_reference])
    state = imitator.init(jax.random.PRNGKey(0), spec, library, mesh4)
    lib = parallel.replicate(library, mesh4)
    # The first update is the same computation split four ways: equal to float rounding.
    state, metrics = imitator.update(state, lib, mesh4)
    for k in ("reward", "joint_error", "value_loss", "policy_loss", "episode_return", "approx_kl", "entropy"):
        np.testing.assert_allclose(float(metrics[k]), history[0][k], rtol=1e-4, atol=1e-5, err_msg=k)
    # Afterwards rounding differences grow through large policy steps (approx KL ~0.6 at this tiny batch): the
    # rollout statistics stay close; the surrogate loss, a small difference of large terms, only roughly.
    state, metrics = imitator.update(state, lib, mesh4)
    for k in ("reward", "joint_error", "value_loss"):
        np.testing.assert_allclose(float(metrics[k]), history[1][k], rtol=5e-3, err_msg=k)
    np.testing.assert_allclose(float(metrics["policy_loss"]), history[1]["policy_loss"], atol=1e-2)


def test_failsafe_rollout_covers_every_frame(setup, trained):
    _, _, library = setup
    state, _ = trained
    result = imitator.evaluate(state, library)
    n = int(library.lengths[0])
    assert result.joints.shape == (1, library.max_frames, 17, 3)
    joints = np.asarray(result.joints[0, :n])
    assert np.all(np.isfinite(joints))
    summary = result.summary(["walk"])
    take = summary["takes"]["walk"]
    assert take["frames"] == n and take["resets"] == int(np.asarray(result.reset_mask).sum())
    # A reset stands the body at the reference's root xy (no cascade of resets in place once it has drifted);
    # between resets the body moves continuously.
    resets = np.flatnonzero(np.asarray(result.reset_mask[0, :n]))
    reference = np.asarray(result.reference[0, :n])
    np.testing.assert_allclose(joints[resets, 0, :2], reference[resets, 0, :2], atol=0.05)
    steps = np.linalg.norm(np.diff(joints[:, 0], axis=0), axis=-1)
    steps[resets - 1] = 0.0
    assert np.max(steps) < 0.3
    motions = result.to_motions(["walk"], fps=30.0)
    assert motions[0].num_frames == n and motions[0].fps == 30.0
    # Split over two devices (one take and a padding row): the same rollout up to float rounding (the split
    # program is compiled apart, so not always bit for bit), with the same resets.
    split = imitator.evaluate(state, library, parallel.make_mesh(2))
    np.testing.assert_array_equal(np.asarray(split.reset_mask), np.asarray(result.reset_mask))
    np.testing.assert_allclose(np.asarray(split.joints), np.asarray(result.joints), atol=1e-3)
    assert split.joints.shape == result.joints.shape and split.lengths.shape == (1,)


def test_failure_test_ignores_a_floating_reference_but_not_a_fall():
    from ptjax.data import load_clips
    from ptjax.imitator.env import default_config, failure
    config = default_config()
    pose = jnp.asarray(load_clips(["walk"])["walk"].joints[0])       # feet on the floor
    lifted = pose.at[:, 2].add(0.4)                                  # the same pose 0.4 m above the floor
    failed, error = failure(pose, lifted, config)
    assert not bool(failed) and abs(float(error) - 0.4) < 1e-5
    head = skeleton.JOINT_INDEX["Head"]
    slumped = pose.at[head, 2].add(-0.35)                            # head 0.35 m lower than the reference's
    assert bool(failure(slumped, lifted, config)[0])
    drifted = pose.at[:, 0].add(0.6)                                 # upright but 0.6 m off: PHC's test
    assert bool(failure(drifted, pose, config)[0])


def test_failsafe_resets_restore_the_reference_and_the_residual_wrench_is_recorded(setup):
    """With failsafe_pose='reference' a reset puts the body in the reference's own state at that frame (where
    training episodes start); the rollout records the residual root force it applied and why it reset."""
    from ptjax.imitator.rollout import failsafe_rollout
    _, _, library = setup
    config = small_imitator_config()
    config.env.failsafe_pose = "reference"
    env = imitator.make_spec(config).env
    push = jnp.zeros(env.action_size).at[env.nu + 1].set(3.0)  # a constant 300 N sideways: the body is knocked off
    result = jax.jit(lambda lib: failsafe_rollout(env, lambda obs: jnp.broadcast_to(push, (obs.shape[0],
                                                                                           env.action_size)), lib))(
        library)
    n = int(library.lengths[0])
    resets = np.flatnonzero(np.asarray(result.reset_mask[0, :n]))
    assert len(resets) > 0
    joints, reference = np.asarray(result.joints[0]), np.asarray(result.reference[0])
    np.testing.assert_allclose(joints[resets], reference[resets], atol=2e-3)
    force = np.asarray(result.residual_force[0, :n])
    np.testing.assert_allclose(force[1:], 300.0, rtol=1e-4)
    assert force[0] == 0.0 and float(np.abs(np.asarray(result.residual_torque)).max()) < 1e-3
    summary = result.summary(["walk"])
    assert summary["resets_fell"] + summary["resets_drift"] == summary["resets"] == len(resets)
    assert summary["residual_force_n"] == pytest.approx(300.0 * (n - 1) / n, rel=1e-3)
    with pytest.raises(ValueError, match="failsafe_pose"):
        config.env.failsafe_pose = "standing"
        imitator.make_spec(config)


def test_small_output_layer_starts_from_the_pd_tracker(setup):
    """policy_init_scale shrinks the policy mean's initial output layer: the untrained policy's actions are near
    zero (the PD servos on the reference), not random offsets of about one unit."""
    from ptjax.imitator.ppo import scale_output_layer
    spec, _, _ = setup
    networks, env = spec.networks, spec.env
    params = networks.policy_network.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, env.observation_size))
    from brax.training.acme import running_statistics
    norm = running_statistics.init_state(jax.ShapeDtypeStruct((env.observation_size,), jnp.float32))

    def mean_action(p):
        out = np.asarray(networks.policy_network.apply(norm, p, obs))
        return out[0] if out.ndim == 3 else out[:, :env.action_size]  # (mean, std) with a log-std

    big, small = mean_action(params), mean_action(scale_output_layer(params, 0.01))
    assert np.abs(big).mean() > 0.1
    np.testing.assert_allclose(small, 0.01 * big, rtol=1e-4, atol=1e-6)
