"""Humanoid physics throughput: MJX (`impl='jax'`) batched on the default device vs C MuJoCo, same model, same run.

    python benchmarks/physics.py [--batch 1,64,512] [--steps 200] [--json out.json]

* physics steps/s: `mjx.step` vmapped over a batch, `--steps` steps in one jitted scan, from the rest pose with the
  PD servos holding it, vs C `mj_step` on one thread (C at batch B costs B times one body: reported per thread).
* tracking env control steps/s: the imitator's `TrackingEnv.step` (3 physics substeps + observation, reward,
  termination, auto-reset) vmapped over the batch with zero actions on the walk reference, vs C MuJoCo doing the
  same control step's physics (3 `mj_step`s) on one thread. Goals (issues 4-5): >= 0.5x C single-thread on CPU,
  >= 1M steps/s on one GPU.
On CPU, each batch is timed on one XLA:CPU device and, when the machine has more cores, split over one device
per core (`jax_num_cpu_devices`, as the `ptjax` CLI does; `pmap` over the devices): a single XLA:CPU device runs
the batched physics on about one core, C on exactly one. Prints one JSON object (ratios are MJX / C
single-thread).
"""

from __future__ import annotations

import argparse
import functools
import json
import time

from ptjax.mjx_support import mjx  # noqa: F401  (before brax/mujoco users: silences MJX's import chatter)

import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from ptjax.cli import use_cpu_cores

use_cpu_cores()

from _common import device_info, emit
from ptjax.data import load_clips
from ptjax.imitator import env as env_lib
from ptjax.imitator import humanoid as humanoid_lib
from ptjax.imitator import retarget


def c_steps_per_second(model: mujoco.MjModel, qpos: np.ndarray, steps: int) -> float:
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    data.ctrl[:] = 0.0
    mujoco.mj_forward(model, data)
    t0 = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(model, data)
    return steps / (time.perf_counter() - t0)


def _split(tree, devices: int):
    """(B, ...) leaves -> (devices, B / devices, ...) host arrays for pmap to place."""
    return jax.tree_util.tree_map(
        lambda x: np.asarray(x).reshape((devices, x.shape[0] // devices) + x.shape[1:]), tree)


def mjx_steps_per_second(model: mujoco.MjModel, qpos: np.ndarray, batch: int, steps: int,
                         devices: int = 1) -> tuple[float, float]:
    mx = mjx.put_model(model, impl="jax")
    d = mujoco.MjData(model)
    d.qpos[:] = qpos
    mujoco.mj_forward(model, d)
    dx = mjx.put_data(model, d, impl="jax")
    batched = _split(jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (batch,) + x.shape), dx), devices)

    @functools.partial(jax.pmap, devices=jax.devices()[:devices])
    def run(data):
        return jax.lax.scan(lambda c, _: (jax.vmap(lambda x: mjx.step(mx, x))(c), None), data, None,
                            length=steps)[0]

    t0 = time.perf_counter()
    jax.block_until_ready(run(batched))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(run(batched))
    rate = batch * steps / (time.perf_counter() - t0)
    if not bool(jnp.all(jnp.isfinite(out.qpos))):
        raise FloatingPointError("MJX produced non-finite states")
    return rate, compile_s


def env_steps_per_second(env: env_lib.TrackingEnv, refs, batch: int, steps: int,
                         devices: int = 1) -> tuple[float, float]:
    keys = jax.random.split(jax.random.PRNGKey(0), batch)
    state = _split(jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(keys, refs), devices)
    zeros = jnp.zeros((batch // devices, env.action_size))

    @functools.partial(jax.pmap, devices=jax.devices()[:devices])
    def run(s):
        return jax.lax.scan(lambda c, _: (jax.vmap(env.step, in_axes=(0, 0, None))(c, zeros, refs), None), s,
                            None, length=steps)[0]

    t0 = time.perf_counter()
    jax.block_until_ready(run(state))
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(run(state))
    return batch * steps / (time.perf_counter() - t0), compile_s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", default="1,64,512")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--json")
    args = p.parse_args()
    body = humanoid_lib.build()
    qpos = body.rest_qpos()
    substeps = body.sim.substeps
    c_rate = c_steps_per_second(body.model, qpos, 3000)
    c_ctrl = c_rate / substeps
    env = env_lib.TrackingEnv(body, env_lib.default_config())
    refs = env_lib.make_library([retarget.retarget(body, load_clips(["walk"])["walk"])])
    result = {**device_info(), "mujoco": mujoco.__version__, "timestep": body.model.opt.timestep,
              "substeps": substeps,
              "c_physics_steps_per_s_single_thread": c_rate, "c_control_steps_per_s_single_thread": c_ctrl,
              "batches": []}
    device_counts = sorted({1, jax.device_count()})
    for b in [int(x) for x in args.batch.split(",")]:
        for n in device_counts:
            if b % n:
                continue
            phys, phys_compile = mjx_steps_per_second(body.model, qpos, b, args.steps, n)
            ctrl, ctrl_compile = env_steps_per_second(env, refs, b, max(args.steps // substeps, 1), n)
            row = {"batch": b, "devices": n, "mjx_physics_steps_per_s": phys, "physics_ratio_vs_c": phys / c_rate,
                   "env_control_steps_per_s": ctrl, "env_ratio_vs_c": ctrl / c_ctrl,
                   "compile_s": {"physics": round(phys_compile, 1), "env": round(ctrl_compile, 1)}}
            result["batches"].append(row)
            print(json.dumps(row), flush=True)
    emit(result, args.json)


if __name__ == "__main__":
    main()
