"""PoseTriplet's co-evolution: one state pytree, one data-parallel step, and the round driver.

`CoEvolutionState` holds the estimator (E), the imitator's PPO state (I: policy, value, optimiser, normaliser and
the env states of every parallel humanoid), the hallucinator (H), the references I tracks, the motion buffers
(imitated takes + refined hallucinations, the generated motion, the 2D takes) and the PRNG key. `CoEvolution.step`
advances the learner of the state's current phase ("imitator" | "hallucinator" | "estimator") by one update, in one
jitted function sharded over the 1-D mesh axis `data` with pmap semantics (`jax.shard_map`): I's humanoids are split
over devices (its state is stacked per device), E's and H's batches are split and their gradients `lax.pmean`-ed.
Nothing leaves the device but the metrics. `CoEvolution.steps(state, n)` is the same step scanned n times.

A round (Python, outside jit; `run`) follows the original (reference/posetriplet.md §1, §3.8):

* round 0, cold start: random smooth root trajectories with the body at its rest pose are I's references; I learns
  to follow them, its fail-safe rollouts are E's first training motion;
* later rounds: **lift** -- E lifts every 2D take (the training clips seen by fixed cameras; their 3D is never used
  in a loss) to the camera frame, the gravity/PCA prior turns it into world motion, IK retargets it to the body;
* **imitate** -- PPO on those references; **rollout** -- deterministic fail-safe rollouts over every take give
  physically plausible motion;
* from round `hallucinate_from` on: **hallucinate** -- H is trained on the imitated motion and samples new long
  sequences toward random targets; **refine** -- I (optionally after a few more PPO updates on them) imitates the
  samples; what it imitates without a fail-safe reset joins E's training motion (`refine_keep`: the stretches
  between resets, or, as the original, only whole samples without one);
* **estimate** -- E (re)trains on 2D-3D pairs made on device from that motion, and from the previous
  `replay_rounds` rounds' (never round 0's walks), through random and adversarial cameras (D_cam sees the takes'
  real 2D); **evaluate** -- held-out clips (never used in training) are scored.

A checkpoint (orbax, the whole state, plus a JSON sidecar with the round history) is written at every phase
boundary; `run(..., resume=True)` continues from the last one and, because every random draw comes from the state's
keys or from (seed, round), ends with the same metrics as an uninterrupted run.

The package by concern: `config` (settings, their check, a round's phases), `state` (the pytree and its buffers),
`cold_start` (round 0's references), `phases` (`CoEvolution`: the jitted step and the phases), `driver` (`run`),
`report` (TensorBoard, the round line, the README's table). The takes come from `ptjax.data.takes.load_takes`.
"""

from ptjax.coevolve.cold_start import cold_start_qpos, random_root_trajectories
from ptjax.coevolve.config import (LEARNERS, PHASES, check_config, default_config, estimator_batch, estimator_steps,
                                    hallucinator_batch, hallucinator_steps, imitator_iterations, phases_of_round,
                                    share_seed_and_fps)
from ptjax.coevolve.driver import open_run, run, run_phase
from ptjax.coevolve.phases import AXIS, CoEvolution, smooth_motion
from ptjax.coevolve.report import format_round, format_table, log_round
from ptjax.coevolve.state import CoEvolutionState, empty_buffer, fill_buffer
from ptjax.data.takes import load_takes

__all__ = ["AXIS", "LEARNERS", "PHASES", "CoEvolution", "CoEvolutionState", "check_config", "cold_start_qpos",
           "default_config", "empty_buffer", "estimator_batch", "estimator_steps", "fill_buffer",
           "format_round", "format_table", "hallucinator_batch", "hallucinator_steps", "imitator_iterations",
           "load_takes", "log_round", "open_run", "phases_of_round", "random_root_trajectories", "run", "run_phase",
           "share_seed_and_fps", "smooth_motion"]
