"""Default configuration of the imitator (environment, PPO, simulation, retargeting, run schedule)."""

from __future__ import annotations

import ml_collections

from ptjax.imitator import env as env_lib
from ptjax.imitator import ppo as ppo_lib


def default_config() -> ml_collections.ConfigDict:
    c = ppo_lib.default_config()  # PPO fields live at the top: imitator.num_envs, imitator.learning_rate, ...
    c.clips = ("walk",)                # bundled clips to imitate (standalone training)
    c.fps = 30.0                       # control rate; references are resampled to it
    c.seed = 0
    c.num_devices = 0                  # 0 = every device of the job (all processes' devices)
    c.iterations = 300
    c.max_minutes = 0.0                # stop early after this much wall time (0 = no limit)
    c.log_every = 5
    c.checkpoint_every = 50
    c.eval_every = 0                   # fail-safe evaluation every N iterations (0 = only at the end)
    c.env = env_lib.default_config()
    c.sim = ml_collections.ConfigDict(dict(timestep=1.0 / 90.0, substeps=3, solver="newton", iterations=3,
                                           ls_iterations=5, joint_limits="hinge1"))
    # ik_jacobian: "autodiff" (jax.jacfwd, the measured figures') or "geometric" (closed form, faster, equal up to
    # float rounding: docs/architecture.md; configs/gpu.py); prepare: "host" (numpy, take by take, the measured
    # figures') or "device" (jitted programs over the padded takes, equal up to float rounding; the co-evolution's
    # lift then runs on device from E's prediction to I's library, and refine builds its library there too)
    c.retarget = ml_collections.ConfigDict(dict(ground="clip", fix_handedness=False, reset_bone_lengths=True,
                                                ik_jacobian="autodiff", prepare="host"))
    c.body = ml_collections.ConfigDict(dict(shape="default", total_mass=70.0))  # "default" | "motion"
    c.lock()  # a misspelt key in a config file is an error, not a new field
    return c
