"""The imitator on a co-evolution run's lifted takes: train one variant, score fail-safe rollouts as it learns.

    python benchmarks/imitator_lifted.py --checkpoint RUN/checkpoints --step N [--config configs/demo.py]
        [--iterations 240] [--eval-every 60] [--warm] [--zero-policy] [--config.imitator.KEY=VALUE ...]
        [--json out.json]

Restores co-evolution checkpoint N (one written after a round's lift phase: its references are the lifted takes),
builds the imitator of the (overridden) config, starts it afresh or, with `--warm`, from the checkpoint's policy,
runs PPO and rolls every take out deterministically with fail-safe resets every `--eval-every` iterations. With
`--zero-policy` only the PD servos on the reference act (no learning). Prints one JSON object: per evaluation the
success rate, resets (falls / drifts), MPJPE, G-MPJPE and mean residual root force and torque. docs/imitator.md
holds the table made with it.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import ml_collections

from _common import device_info, emit
from ptjax import checkpoint as ckpt_lib
from ptjax import coevolve, parallel
from ptjax.cli import use_cpu_cores
from ptjax.config import get_config, split_overrides
from ptjax.imitator.rollout import failsafe_rollout
from ptjax.imitator import train as imitator


def main() -> None:
    overrides, rest = split_overrides(__import__("sys").argv[1:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="a co-evolution run's checkpoints/ folder")
    p.add_argument("--step", type=int, required=True, help="a checkpoint written after a round's lift")
    p.add_argument("--config", default="configs/demo.py", help="the run's config file")
    p.add_argument("--iterations", type=int, default=240)
    p.add_argument("--eval-every", type=int, default=60)
    p.add_argument("--warm", action="store_true", help="start from the checkpoint's policy")
    p.add_argument("--zero-policy", action="store_true", help="score the PD servos alone (zero action)")
    p.add_argument("--json", default=None)
    args = p.parse_args(rest)
    use_cpu_cores()

    base = get_config(args.config)
    co = coevolve.CoEvolution.create(base)
    state, _ = ckpt_lib.restore(args.checkpoint, co.init(jax.random.PRNGKey(int(base.seed))), args.step)
    refs = state.references

    variant = get_config(args.config, overrides)
    config = ml_collections.ConfigDict(variant.imitator.to_dict())
    config.num_devices, config.fps = co.num_devices, float(variant.data.fps)
    spec, mesh = imitator.make_spec(config), imitator.make_mesh(config)
    library = parallel.replicate(refs, mesh)
    i_state = imitator.init(jax.random.PRNGKey(int(variant.seed) + 1), spec, refs, mesh)
    if args.warm:
        i_state = i_state.replace(params=state.imitator.params, normalizer=state.imitator.normalizer,
                                  opt_state=state.imitator.opt_state)
    evaluations, t0 = [], time.time()

    def evaluate(iteration: int) -> None:
        if args.zero_policy:
            env = spec.env
            result = jax.jit(lambda lib: failsafe_rollout(
                env, lambda obs: jnp.zeros(obs.shape[:-1] + (env.action_size,)), lib))(refs)
        else:
            result = imitator.evaluate(i_state, refs)
        summary = result.summary()
        summary.pop("takes")
        summary.update(iteration=iteration, seconds=round(time.time() - t0, 1))
        evaluations.append(summary)
        print(summary, flush=True)

    evaluate(0)
    for it in range(1, 0 if args.zero_policy else args.iterations + 1):
        i_state, _ = imitator.update(i_state, library, mesh)
        if it % args.eval_every == 0 or it == args.iterations:
            evaluate(it)
    emit({"benchmark": "imitator_lifted", **device_info(), "checkpoint": args.checkpoint, "step": args.step,
          "overrides": overrides, "warm": args.warm, "zero_policy": args.zero_policy, "evaluations": evaluations},
         args.json)


if __name__ == "__main__":
    main()
