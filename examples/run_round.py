"""Run PoseTriplet's co-evolution loop from Python: the cold start and rounds of lift -> imitate -> hallucinate ->
estimate, then read the per-round metrics.

    python examples/run_round.py --config configs/demo.py --out-dir runs/demo_example
    python examples/run_round.py --smoke --out-dir round_smoke

The steps (what `ptjax coevolve` does): `coevolve.CoEvolution.create(config)` builds the static parts (body, env,
mesh, the 2D takes); `co.init(rng)` the one `CoEvolutionState`; `co.steps(state.replace(phase=...), n)` advances a
learner by n updates in one jitted, data-parallel call; `coevolve.run` strings the phases into rounds with
checkpoints at every boundary. Here the first part is shown step by step, then `run` does the rest.
"""

from __future__ import annotations

import argparse
import os

import jax

from ptjax import coevolve
from ptjax.config import get_config

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=os.path.join(HERE, "..", "configs", "demo.py"))
    p.add_argument("--out-dir", default="runs/round_example")
    p.add_argument("--smoke", action="store_true", help="configs/smoke.py, round 0 only (CI)")
    args = p.parse_args(argv)
    config = get_config(os.path.join(HERE, "..", "configs", "smoke.py") if args.smoke else args.config)
    if args.smoke:
        config.num_rounds = 0

    # One learner step by hand: the cold-start references, one PPO update of every humanoid.
    co = coevolve.CoEvolution.create(config)
    state = co.init(jax.random.PRNGKey(config.seed))
    state, metrics = co.step(state.replace(phase="imitator"))
    print(f"{co.num_devices} device(s), {config.imitator.num_envs} humanoids, {len(co.takes)} 2D takes; "
          f"first PPO update: reward {float(metrics['reward']):.3f}")

    # The whole loop, with checkpoints, metrics.json, TensorBoard and a GIF per round.
    history = coevolve.run(config, args.out_dir, progress=not args.smoke)
    print(coevolve.format_table(history))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
