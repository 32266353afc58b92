"""PPO as small pure functions: `make_spec`, `init`, `act`, `rollout`, `compute_loss`, `update` -- one jitted
`update(state, refs)`; the static parts (`PPOSpec`) ride in the state, as the estimator's and hallucinator's do.

Built from brax.training pieces (policy/value networks and their action distribution, the running observation
normaliser, GAE) composed in the PureJaxRL style: the whole iteration -- `unroll_length` steps of every humanoid,
GAE, `num_epochs` passes over `num_minibatches` minibatches -- is one function under one `jax.jit`.

Data parallelism: `update(..., axis_name="data")` runs on per-device shards of the humanoids (see
`ptjax.parallel`); gradients, the observation statistics, the advantage normalisation and metrics are averaged with
`lax.pmean`. Randomness and the minibatch partition are defined per global environment index (minibatch m holds
the environments whose index is m modulo `num_minibatches`), so 1 device and N devices compute the same update up
to float summation order.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import optax
from brax.training.acme import running_statistics
from brax.training.agents.ppo import losses as brax_losses
from brax.training.agents.ppo import networks as ppo_networks
from flax import linen

from ptjax.imitator.env import ReferenceLibrary, TrackingEnv
from ptjax.parallel import pmean_tree


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_envs = 256                   # humanoids in parallel (all devices together)
    c.unroll_length = 16               # control steps per environment per update
    c.num_minibatches = 4
    c.num_epochs = 4
    c.learning_rate = 1e-4             # policy (PoseTriplet: 5e-5)
    c.value_learning_rate = 3e-4       # value (PoseTriplet: 3e-4)
    c.max_grad_norm = 1.0
    c.discounting = 0.95               # PoseTriplet: gamma 0.95, lambda 0.95
    c.gae_lambda = 0.95
    c.clipping_epsilon = 0.2
    c.entropy_cost = 0.0
    c.value_coefficient = 0.5
    c.reward_scaling = 1.0
    c.policy_hidden = (512, 256)
    c.value_hidden = (512, 256)
    c.activation = "relu"
    c.init_log_std = -1.6              # exp(-1.6) ~ 0.2 action noise at start (PoseTriplet fixed -2.3)
    c.policy_init_scale = 1.0          # scales the initial output layer of the policy mean: small values start
                                       # from the plain PD tracker (zero action); PoseTriplet: 0.1
    c.normalize_observations = True
    return c


@dataclasses.dataclass(frozen=True, eq=False)
class PPOSpec:
    """PPO's static parts: the environment, the config, brax's networks and their action distribution, the
    optimiser. Equal only to itself, so it can sit in a state's tree definition and key jit's cache."""
    env: TrackingEnv
    config: ml_collections.ConfigDict
    networks: ppo_networks.PPONetworks
    optimizer: optax.GradientTransformation

    @property
    def distribution(self):
        return self.networks.parametric_action_distribution


@flax.struct.dataclass
class PPOState:
    params: brax_losses.PPONetworkParams
    opt_state: optax.OptState
    normalizer: running_statistics.RunningStatisticsState
    env_state: object           # brax State batched over this device's environments
    rng: jax.Array              # raw PRNG key, identical on every device
    env_offset: jax.Array       # () int32: global index of this device's first environment
    env_steps: jax.Array        # () float32: environment steps taken so far (all devices)
    iteration: jax.Array        # () int32
    spec: PPOSpec = flax.struct.field(pytree_node=False)


def _validate(config, num_envs_local: int | None = None):
    if config.num_envs < 1 or config.unroll_length < 1 or config.num_epochs < 1:
        raise ValueError("num_envs, unroll_length and num_epochs must be >= 1")
    if config.num_envs % config.num_minibatches:
        raise ValueError(f"num_envs ({config.num_envs}) must be divisible by num_minibatches "
                         f"({config.num_minibatches})")
    if num_envs_local is not None and num_envs_local % config.num_minibatches:
        raise ValueError(f"environments per device ({num_envs_local}) must be divisible by num_minibatches "
                         f"({config.num_minibatches})")
    if not (config.learning_rate > 0 and config.value_learning_rate > 0):
        raise ValueError(f"learning rates must be positive, got {config.learning_rate}, {config.value_learning_rate}")
    if not 0 < config.discounting <= 1 or not 0 <= config.gae_lambda <= 1:
        raise ValueError("discounting must be in (0, 1] and gae_lambda in [0, 1]")


def make_spec(env: TrackingEnv, config: ml_collections.ConfigDict | None = None) -> PPOSpec:
    """brax's policy and value networks (a Gaussian policy with a learned log-std) and the optimiser (global-norm
    clipping, then Adam with separate policy and value rates) for `env` and a validated `config`."""
    c = config or default_config()
    _validate(c)
    preprocess = running_statistics.normalize if c.normalize_observations else (lambda x, y: x)
    networks = ppo_networks.make_ppo_networks(
        env.observation_size, env.action_size, preprocess_observations_fn=preprocess,
        policy_hidden_layer_sizes=tuple(c.policy_hidden), value_hidden_layer_sizes=tuple(c.value_hidden),
        activation=getattr(linen, c.activation), distribution_type="normal", noise_std_type="log",
        init_noise_std=float(jnp.exp(c.init_log_std)))
    optimizer = optax.chain(
        optax.clip_by_global_norm(c.max_grad_norm),
        optax.multi_transform({"policy": optax.adam(c.learning_rate), "value": optax.adam(c.value_learning_rate)},
                              lambda p: brax_losses.PPONetworkParams(policy="policy", value="value")))
    return PPOSpec(env=env, config=c, networks=networks, optimizer=optimizer)


# --- state ----------------------------------------------------------------------------------------------------------

def init(rng: jax.Array, spec: PPOSpec, refs: ReferenceLibrary, num_envs_local: int | None = None,
         env_offset: int = 0) -> PPOState:
    """Fresh networks, optimiser and normaliser, and `num_envs_local` environments (global indices from
    `env_offset`) reset on `refs`."""
    c = spec.config
    num_envs_local = num_envs_local or c.num_envs
    _validate(c, num_envs_local)
    k_policy, k_value, k_env, rng = jax.random.split(rng, 4)
    params = brax_losses.PPONetworkParams(policy=spec.networks.policy_network.init(k_policy),
                                           value=spec.networks.value_network.init(k_value))
    # Strong float32 leaves everywhere: `update` must return exactly the types it takes, or every call after the
    # first recompiles (brax initialises the log-std weakly typed and std_eps as a Python float).
    params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), params)
    params = params.replace(policy=scale_output_layer(params.policy, c.get("policy_init_scale", 1.0)))
    normalizer = running_statistics.init_state(jax.ShapeDtypeStruct((spec.env.observation_size,), jnp.float32))
    normalizer = normalizer.replace(std_eps=jnp.asarray(normalizer.std_eps, jnp.float32))
    env_state = jax.vmap(spec.env.reset, in_axes=(0, None))(_env_keys(k_env, env_offset, num_envs_local), refs)
    return PPOState(params=params, opt_state=spec.optimizer.init(params), normalizer=normalizer,
                    env_state=env_state, rng=rng, env_offset=jnp.asarray(env_offset, jnp.int32),
                    env_steps=jnp.zeros((), jnp.float32), iteration=jnp.zeros((), jnp.int32), spec=spec)


# --- acting ---------------------------------------------------------------------------------------------------------

def _env_keys(key, offset, count: int):
    """One key per local environment, from its global index (so 1 and N devices draw the same noise)."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(offset + jnp.arange(count))


def deterministic_policy(spec: PPOSpec, params, normalizer):
    """obs (B, obs) -> the policy's mean actions (B, A): what evaluation rolls out."""
    return lambda obs: act(spec, params, normalizer, obs, deterministic=True)[0]


def act(spec: PPOSpec, params, normalizer, obs, keys=None, deterministic: bool = False):
    """obs (B, obs) -> actions (B, A) and the extras PPO needs (raw action, log prob, distribution)."""
    logits = spec.networks.policy_network.apply(normalizer, params.policy, obs)
    if deterministic:
        return spec.distribution.mode(logits), {}
    raw = jax.vmap(spec.distribution.sample_no_postprocessing)(logits, keys)
    log_prob = spec.distribution.log_prob(logits, raw)
    return spec.distribution.postprocess(raw), {"raw_action": raw, "log_prob": log_prob, "logits": logits}


def rollout(spec: PPOSpec, params, normalizer, env_state, key, refs, offset, length: int):
    """`length` steps of every local environment. Returns the final env state and [T, B] transitions."""
    step_env = jax.vmap(spec.env.step, in_axes=(0, 0, None))

    def one_step(carry, step_key):
        state = carry
        action, extras = act(spec, params, normalizer, state.obs, _env_keys(step_key, offset, state.reward.shape[0]))
        nxt = step_env(state, action, refs)
        transition = {
            "obs": state.obs, "next_obs": nxt.obs, "action": action, "reward": nxt.reward,
            "done": nxt.done, "truncation": nxt.info["truncation"], **extras,
            "done_return": nxt.info["done_return"], "done_length": nxt.info["done_length"],
            "nan_reset": nxt.info["nan_reset"], "fell": nxt.info["fell"],
            "joint_error": nxt.metrics["joint_error"],
        }
        return nxt, transition

    return jax.lax.scan(one_step, env_state, jax.random.split(key, length))


# --- learning -------------------------------------------------------------------------------------------------------

def compute_loss(spec: PPOSpec, params, normalizer, data, axis_name: str | None = None):
    """PPO clipped-surrogate loss on [T, B] data (one minibatch of environments)."""
    c = spec.config
    value_apply = spec.networks.value_network.apply
    logits = spec.networks.policy_network.apply(normalizer, params.policy, data["obs"])
    values = value_apply(normalizer, params.value, data["obs"])
    bootstrap = value_apply(normalizer, params.value, data["next_obs"][-1])
    truncation = data["truncation"]
    termination = data["done"] * (1 - truncation)
    vs, advantages = brax_losses.compute_gae(
        truncation=truncation, termination=termination, rewards=data["reward"] * c.reward_scaling,
        values=values, bootstrap_value=bootstrap, lambda_=c.gae_lambda, discount=c.discounting)
    # Advantage normalisation over the global minibatch (all devices).
    mean = pmean_tree(jnp.mean(advantages), axis_name)
    var = pmean_tree(jnp.mean((advantages - mean) ** 2), axis_name)
    advantages = (advantages - mean) / (jnp.sqrt(var) + 1e-8)
    log_prob = spec.distribution.log_prob(logits, data["raw_action"])
    ratio = jnp.exp(log_prob - data["log_prob"])
    policy_loss = -jnp.mean(jnp.minimum(ratio * advantages,
                                        jnp.clip(ratio, 1 - c.clipping_epsilon, 1 + c.clipping_epsilon)
                                        * advantages))
    value_loss = 0.5 * c.value_coefficient * jnp.mean((vs - values) ** 2)
    entropy = jnp.mean(spec.distribution.entropy(logits, jax.random.PRNGKey(0)))
    loss = policy_loss + value_loss - c.entropy_cost * entropy
    approx_kl = jnp.mean(data["log_prob"] - log_prob)
    clip_fraction = jnp.mean((jnp.abs(ratio - 1) > c.clipping_epsilon).astype(jnp.float32))
    return loss, {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
                  "approx_kl": approx_kl, "clip_fraction": clip_fraction}


def _minibatches(data: dict, env_offset, num_minibatches: int) -> dict:
    """[T, B] learning data -> [M, T, B/M]: minibatch m = the environments whose global index is m (mod M)."""
    num_envs_local = data["reward"].shape[1]
    m = num_minibatches
    global_index = env_offset + jnp.arange(num_envs_local)
    order = jnp.argsort(global_index % m, stable=True)
    learn = {k: v for k, v in data.items() if k in ("obs", "next_obs", "reward", "done", "truncation",
                                                  "raw_action", "log_prob")}
    return jax.tree_util.tree_map(
        lambda x: jnp.swapaxes(x[:, order].reshape((x.shape[0], m, num_envs_local // m) + x.shape[2:]), 0, 1),
        learn)


def _learn(spec: PPOSpec, state: PPOState, normalizer, grouped: dict, key, axis_name):
    """`num_epochs` passes over the minibatches (their order shuffled per epoch with a key shared by all devices);
    returns (params, opt_state, loss metrics [epochs, M])."""
    c = spec.config
    grad_fn = jax.value_and_grad(functools.partial(compute_loss, spec), has_aux=True)

    def minibatch_step(carry, index):
        params, opt_state = carry
        batch = jax.tree_util.tree_map(lambda x: x[index], grouped)
        (_, metrics), grads = grad_fn(params, normalizer, batch, axis_name)
        grads = pmean_tree(grads, axis_name)
        updates, opt_state = spec.optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    def epoch(carry, epoch_key):
        return jax.lax.scan(minibatch_step, carry, jax.random.permutation(epoch_key, c.num_minibatches))

    (params, opt_state), loss_metrics = jax.lax.scan(epoch, (state.params, state.opt_state),
                                                     jax.random.split(key, c.num_epochs))
    return params, opt_state, loss_metrics


def _metrics(data: dict, loss_metrics: dict, params, finite, axis_name) -> dict:
    """Means over devices of the losses, reward, joint error and action noise; episode statistics summed over
    devices and divided by the episodes that ended."""
    episodes = _psum(jnp.sum(data["done"]), axis_name)
    means = {k: jnp.mean(v) for k, v in loss_metrics.items()}
    means.update(reward=jnp.mean(data["reward"]), joint_error=jnp.mean(data["joint_error"]),
                 action_std=jnp.mean(jnp.exp(params.policy["params"]["std_logparam"]["log_value"])))
    metrics = pmean_tree(means, axis_name)  # one all-reduce for every averaged metric
    metrics.update(
        episodes=episodes,
        episode_return=_psum(jnp.sum(data["done_return"]), axis_name) / jnp.maximum(episodes, 1.0),
        episode_length=_psum(jnp.sum(data["done_length"]), axis_name) / jnp.maximum(episodes, 1.0),
        fall_rate=_psum(jnp.sum(data["fell"]), axis_name) / jnp.maximum(episodes, 1.0),
        nan_resets=_psum(jnp.sum(data["nan_reset"]), axis_name),
        nonfinite_update=1.0 - finite.astype(jnp.float32),
    )
    return metrics


def update(state: PPOState, refs: ReferenceLibrary, axis_name: str | None = None) -> tuple[PPOState, dict]:
    """One PPO iteration: rollout -> epochs of minibatch gradient steps -> normaliser update."""
    spec, c = state.spec, state.spec.config
    rng, k_roll, k_epochs = jax.random.split(state.rng, 3)
    env_state, data = rollout(spec, state.params, state.normalizer, state.env_state, k_roll, refs,
                              state.env_offset, c.unroll_length)
    # The loss uses the normaliser the rollout acted with, so the probability ratios compare like with like;
    # the statistics are updated after the epochs, for the next rollout.
    normalizer = state.normalizer
    grouped = _minibatches(data, state.env_offset, c.num_minibatches)
    params, opt_state, loss_metrics = _learn(spec, state, normalizer, grouped, k_epochs, axis_name)
    # A non-finite update is dropped (the run keeps its last good parameters) and counted.
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(params)]))
    finite = _pmin(finite, axis_name)
    params = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), params, state.params)
    opt_state = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), opt_state, state.opt_state)
    if c.normalize_observations:
        normalizer = running_statistics.update(normalizer, data["obs"], pmap_axis_name=axis_name)
    metrics = _metrics(data, loss_metrics, params, finite, axis_name)
    env_steps = state.env_steps + _psum(jnp.asarray(data["reward"].size, jnp.float32), axis_name)
    new_state = state.replace(params=params, opt_state=opt_state, normalizer=normalizer, env_state=env_state,
                              rng=rng, env_steps=env_steps, iteration=state.iteration + 1)
    return new_state, metrics


def scale_output_layer(policy_params, scale: float):
    """Policy parameters with the mean's output layer (brax's `Dense_0` with a separate log-std) scaled."""
    if scale == 1.0:
        return policy_params
    inner = dict(policy_params["params"])
    inner["Dense_0"] = jax.tree_util.tree_map(lambda x: x * scale, inner["Dense_0"])
    return {**policy_params, "params": inner}


def _psum(x, axis_name):
    return x if axis_name is None else jax.lax.psum(x, axis_name)


def _pmin(x, axis_name):
    return x if axis_name is None else jax.lax.pmin(x, axis_name)
