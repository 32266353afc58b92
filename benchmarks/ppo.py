"""PPO throughput with learning: our jitted `update` vs brax's `ppo.train` on the same tracking env, same run.

    python benchmarks/ppo.py [--num-envs 128] [--unroll 16] [--minibatches 4] [--epochs 4] [--updates 6]
                             [--json out.json]

Both sides train on the bundled walk clip with the same network sizes, num_envs, unroll length, minibatches and
epochs (brax: batch_size * num_minibatches = num_envs, one unroll per update, num_updates_per_batch = epochs).
Ours: env steps / s over `--updates` calls of `ptjax.imitator.train.update` after the first (compiling) one. brax:
its own `training/sps` of the last of two training epochs (the first one compiles), through `BraxTrackingEnv` (the same
MJX env under brax's episode and auto-reset wrappers). Prints one JSON object with both figures and the ratio
(goal >= 1.0 on CPU).
"""

from __future__ import annotations

import argparse
import functools
import json
import time

from ptjax.mjx_support import mjx  # noqa: F401  (first: silences MJX's import chatter)

import jax

from _common import device_info, emit
from ptjax import parallel
from ptjax.data import load_clips
from ptjax.imitator.config import default_config
from ptjax.imitator import train as imitator
from ptjax.imitator.env import BraxTrackingEnv, make_library


def ours(config, spec, refs, updates: int) -> dict:
    mesh = imitator.make_mesh(config)
    library = make_library(refs)
    state = imitator.init(jax.random.PRNGKey(0), spec, library, mesh)
    lib = parallel.replicate(library, mesh)
    t0 = time.perf_counter()
    state, m = imitator.update(state, lib, mesh)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(updates):
        state, m = imitator.update(state, lib, mesh)
    jax.block_until_ready(m)
    seconds = time.perf_counter() - t0
    steps = updates * config.num_envs * config.unroll_length
    return {"env_steps_per_s": steps / seconds, "compile_and_first_update_s": round(compile_s, 1),
            "final_reward": float(m["reward"])}


def brax_ppo(config, spec, refs, updates: int) -> dict:
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo_train

    env = BraxTrackingEnv(spec.env, make_library(refs))
    steps_per_update = config.num_envs * config.unroll_length
    sps = []
    network_factory = functools.partial(ppo_networks.make_ppo_networks,
                                        policy_hidden_layer_sizes=tuple(config.policy_hidden),
                                        value_hidden_layer_sizes=tuple(config.value_hidden))
    t0 = time.perf_counter()
    ppo_train.train(
        environment=env, num_timesteps=2 * updates * steps_per_update, num_evals=3, num_envs=config.num_envs,
        episode_length=int(spec.env.config.episode_length), unroll_length=config.unroll_length,
        batch_size=config.num_envs // config.num_minibatches, num_minibatches=config.num_minibatches,
        num_updates_per_batch=config.num_epochs, learning_rate=config.learning_rate,
        entropy_cost=config.entropy_cost, discounting=config.discounting, gae_lambda=config.gae_lambda,
        clipping_epsilon=config.clipping_epsilon, normalize_observations=True, num_eval_envs=config.num_envs,
        network_factory=network_factory, run_evals=True, seed=0,
        progress_fn=lambda step, metrics: sps.append(float(metrics.get("training/sps", 0.0))))
    return {"env_steps_per_s": sps[-1] if sps else float("nan"), "all_sps": sps,
            "wall_s_including_compile_and_evals": round(time.perf_counter() - t0, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-envs", type=int, default=128)
    p.add_argument("--unroll", type=int, default=16)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--updates", type=int, default=6)
    p.add_argument("--json")
    args = p.parse_args()
    config = default_config()
    config.num_envs, config.unroll_length = args.num_envs, args.unroll
    config.num_minibatches, config.num_epochs, config.num_devices = args.minibatches, args.epochs, 1
    spec = imitator.make_spec(config)
    refs = imitator.references(spec, list(load_clips(["walk"]).values()))
    result = {**device_info(), "num_envs": args.num_envs,
              "unroll_length": args.unroll, "num_minibatches": args.minibatches, "num_epochs": args.epochs}
    result["ptjax"] = ours(config, spec, refs, args.updates)
    print(json.dumps({"ptjax": result["ptjax"]}), flush=True)
    if not hasattr(jax, "device_put_replicated"):
        result["brax"] = {"error": f"skipped: brax 0.14.2's ppo.train calls jax.device_put_replicated, which jax "
                                   f"{jax.__version__} no longer has (removed in 0.10); run it with the lock's jax"}
        emit(result, args.json)
        return
    try:
        result["brax"] = brax_ppo(config, spec, refs, args.updates)
        result["ratio_ptjax_over_brax"] = result["ptjax"]["env_steps_per_s"] / result["brax"]["env_steps_per_s"]
    except Exception as e:  # report, do not hide, a brax failure
        result["brax"] = {"error": f"{type(e).__name__}: {e}"}
    emit(result, args.json)


if __name__ == "__main__":
    main()
