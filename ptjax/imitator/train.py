"""Training the imitator standalone: references from motions, data-parallel PPO, logging, checkpoints, evaluation.

Pure functions over the data-parallel `PPOState` (leading device axis), whose `spec` holds the static parts (body,
environment, networks, optimiser): `make_spec`, `make_mesh`, `references`, `init`, `update`, `policy`, `evaluate`.
`train(config, workdir)` is what `ptjax imitate train` runs; the co-evolution uses the same functions with
references retargeted from the estimator's output.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from typing import Sequence

import jax
import ml_collections
import numpy as np

from ptjax import checkpoint, parallel, training
from ptjax.data import Motion, load_clips
from ptjax.imitator import humanoid as humanoid_lib
from ptjax.imitator import retarget
from ptjax.imitator.env import OBSERVATION_LAYOUT, ReferenceLibrary, TrackingEnv, check_observation_layout, make_library
from ptjax.imitator import ppo
from ptjax.imitator.rollout import RolloutResult, failsafe_rollout

logger = logging.getLogger(__name__)


def sim_config(config) -> humanoid_lib.SimConfig:
    s = config.sim
    return humanoid_lib.SimConfig(timestep=s.timestep, substeps=s.substeps, solver=s.solver,
                                  iterations=s.iterations, ls_iterations=s.ls_iterations,
                                  joint_limits=s.joint_limits)


def retarget_config(config) -> retarget.RetargetConfig:
    r = config.retarget
    return retarget.RetargetConfig(fps=config.fps, ground=r.ground, fix_handedness=r.fix_handedness,
                                   reset_bone_lengths=r.reset_bone_lengths,
                                   ik=retarget.IKConfig(jacobian=r.get("ik_jacobian", "autodiff")),
                                   prepare=r.get("prepare", "host"))


def build_humanoid(config, motions: Sequence[Motion] | None = None) -> humanoid_lib.Humanoid:
    sim = sim_config(config)
    if abs(sim.control_dt - 1.0 / config.fps) > 1e-6:
        raise ValueError(f"sim timestep x substeps = {sim.control_dt:.5f} s must equal 1 / fps = "
                         f"{1.0 / config.fps:.5f} s (the control step)")
    if config.body.shape == "default":
        shape = humanoid_lib.default_shape()
    elif config.body.shape == "motion":
        if not motions:
            raise ValueError("body.shape='motion' needs motions to measure")
        shape = humanoid_lib.shape_from_motion(np.concatenate([m.joints for m in motions]),
                                               total_mass=config.body.total_mass)
    else:
        raise ValueError(f"body.shape must be 'default' or 'motion', got {config.body.shape!r}")
    return humanoid_lib.build(shape, sim)


def make_spec(config, motions: Sequence[Motion] | None = None) -> ppo.PPOSpec:
    """The imitator's static parts for `config`: the body (measured from `motions` where `body.shape='motion'`),
    its tracking env (`spec.env`, the body as `spec.env.humanoid`), PPO's networks and optimiser."""
    body = build_humanoid(config, motions)
    return ppo.make_spec(TrackingEnv(body, config.env), config)


def make_mesh(config) -> jax.sharding.Mesh:
    """The device mesh of `config.num_devices` (0: every visible device); the humanoids split evenly over it."""
    n = config.num_devices or len(jax.devices())
    mesh = parallel.make_mesh(n)
    if config.num_envs % n:
        raise ValueError(f"num_envs ({config.num_envs}) must be divisible by the device count ({n})")
    return mesh


def references(spec: ppo.PPOSpec, motions: Sequence[Motion], mesh: jax.sharding.Mesh | None = None
               ) -> list[retarget.ReferenceMotion]:
    """`motions` retargeted to the body of `spec` (IK per frame, then velocities), as the config asks; with a
    `mesh`, the takes' IK is split over its devices (equal to one device's up to float rounding)."""
    return retarget.retarget_many(spec.env.humanoid, motions, retarget_config(spec.config), mesh)


def reference_library(spec: ppo.PPOSpec, joints: jax.Array, lengths, mesh: jax.sharding.Mesh | None = None,
                      names: Sequence[str] | None = None) -> tuple[ReferenceLibrary, jax.Array]:
    """Padded world joints (B, T, 17, 3) at the control rate, slot b holding a take of lengths[b] frames (0: empty)
    -> the library of their references on device and each take's mean IK error (m), with no per-take host loop
    (`retarget.retarget_padded`; as `make_library(references(...), num_takes=B)` up to float rounding)."""
    fields, errors = retarget.retarget_padded(spec.env.humanoid, joints, lengths, retarget_config(spec.config), mesh,
                                              names)
    return ReferenceLibrary(**fields), errors


def init(rng: jax.Array, spec: ppo.PPOSpec, library: ReferenceLibrary, mesh: jax.sharding.Mesh) -> ppo.PPOState:
    """A fresh PPO state stacked over the devices of `mesh`: row d holds the d-th slice of the humanoids."""
    local = spec.config.num_envs // parallel.num_devices(mesh)
    lib = parallel.replicate(library, mesh)
    return parallel.stack(lambda d, rng, lib: ppo.init(rng, spec, lib, local, d * local), mesh, rng, lib)


def update(state: ppo.PPOState, library: ReferenceLibrary, mesh: jax.sharding.Mesh
           ) -> tuple[ppo.PPOState, dict]:
    """One data-parallel PPO iteration over `mesh`: (stacked state, replicated library) -> (state, metrics)."""
    return _data_parallel_update(mesh)(state, library)


@functools.lru_cache(maxsize=None)
def _data_parallel_update(mesh: jax.sharding.Mesh):
    return parallel.data_parallel(ppo.update, mesh)


def policy(state: ppo.PPOState):
    """The deterministic policy of a stacked state: obs (B, obs) -> actions (B, A)."""
    return ppo.deterministic_policy(state.spec, parallel.unstack(state.params), parallel.unstack(state.normalizer))


def evaluate(state: ppo.PPOState, library: ReferenceLibrary, mesh: jax.sharding.Mesh | None = None
             ) -> RolloutResult:
    """The deterministic fail-safe rollout of every take of `library` with the policy of `state`; with a `mesh`,
    the takes are split over its devices (equal to one device's rollout up to float rounding)."""
    params, normalizer = parallel.unstack(state.params), parallel.unstack(state.normalizer)
    if mesh is not None and parallel.num_devices(mesh) == 1:
        mesh = None
    if mesh is not None:  # global arrays: a multi-process job's mesh spans devices this process cannot address
        library, params, normalizer = parallel.replicate((library, params, normalizer), mesh)
    return _failsafe_rollout(state.spec, mesh, library, params, normalizer)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _failsafe_rollout(spec: ppo.PPOSpec, mesh, library: ReferenceLibrary, params, normalizer) -> RolloutResult:
    def run(library, params, normalizer):
        return failsafe_rollout(spec.env, ppo.deterministic_policy(spec, params, normalizer), library)
    return run(library, params, normalizer) if mesh is None else parallel.split_over_devices(run, mesh)(
        library, params, normalizer)


def _scalars(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items()}


def _plot_history(history: list[dict], workdir: str) -> None:
    """Episode return and length over environment steps, as PNGs in WORKDIR."""
    from ptjax import viz
    steps = np.array([h["env_steps"] for h in history])
    for key, name, label in (("episode_return", "episode return", "mean episode return"),
                             ("episode_length", "episode length", "mean episode length (control steps)")):
        viz.plot_curves({name: (steps, np.array([h[key] for h in history]))}, os.path.join(workdir, f"{key}.png"),
                        xlabel="environment steps", ylabel=label, title="imitator training")


def _checkpoint_metadata(iteration: int, names: list[str]) -> dict:
    return {"iteration": iteration, "takes": names, "observation_layout": OBSERVATION_LAYOUT}


def _restore(store: checkpoint.CheckpointStore, template: ppo.PPOState) -> ppo.PPOState:
    """The latest checkpoint's state, refused if its policy was trained on another observation layout."""
    state, step = store.restore(template)
    check_observation_layout((store.metadata(step) or {}).get("observation_layout"),
                             f"checkpoint {step} of {store.directory!r}")
    return state


def _resume(store: checkpoint.CheckpointStore, template: ppo.PPOState, mesh, history_path: str
            ) -> tuple[ppo.PPOState, list[dict]]:
    """The latest checkpoint's state (sharded over `mesh`) and the training history logged so far."""
    state = _restore(store, template)
    history = []
    if os.path.exists(history_path):
        with open(history_path) as f:
            history = json.load(f)["train"]
    return parallel.shard_stacked(state, mesh), history


def train(config: ml_collections.ConfigDict, workdir: str, resume: bool = False,
          motions: Sequence[Motion] | None = None, progress: bool = True) -> tuple[ppo.PPOState, list]:
    """Standalone imitator training on `motions` (default: the config's bundled clips); returns the final stacked
    state (its `spec` holds the body and env) and the logged history."""
    if config.iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {config.iterations}")
    motions = list(motions) if motions is not None else list(load_clips(list(config.clips)).values())
    names = [m.name for m in motions]
    main = training.is_main_process()  # in a multi-process job (ptjax.distributed) process 0 writes the files
    progress = progress and main
    os.makedirs(workdir, exist_ok=True)
    training.write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json_best_effort()))
    spec = make_spec(config, motions)
    mesh = make_mesh(config)
    library = make_library(references(spec, motions))
    state = init(jax.random.PRNGKey(config.seed), spec, library, mesh)
    history: list[dict] = []
    history_path = os.path.join(workdir, "metrics.json")
    store = checkpoint.CheckpointStore(os.path.join(workdir, "checkpoints"))  # open for the run
    writer = training.MetricWriter(workdir)
    evaluations = []

    def log_eval(it):
        result = evaluate(state, library).summary(names)
        result["iteration"] = it
        evaluations.append(result)
        writer.scalars("eval", {k: result[k] for k in ("success_rate", "g_mpjpe_mm")}, it)
        return result

    try:
        if resume and store.latest_step() is not None:
            state, history = _resume(store, state, mesh, history_path)
        start = int(parallel.unstack(state.iteration))
        lib = parallel.replicate(library, mesh)
        t0 = time.time()
        bar = training.progress_bar(range(start, config.iterations), initial=start, total=config.iterations,
                                    desc="imitator PPO", disable=not progress)
        for it in bar:
            state, metrics = update(state, lib, mesh)
            it1 = it + 1
            if it1 % config.log_every == 0 or it1 == config.iterations:
                m = _scalars(metrics)
                m.update(iteration=it1, env_steps=float(parallel.unstack(state.env_steps)),
                         wall_seconds=time.time() - t0)
                if not np.isfinite(m["loss"]):
                    raise FloatingPointError(f"imitator loss became non-finite at iteration {it1}: {m}")
                history.append(m)
                writer.scalars("train", m, it1)
                bar.set_postfix(ret=f"{m['episode_return']:.2f}", len=f"{m['episode_length']:.1f}",
                                err=f"{m['joint_error'] * 1000:.0f}mm")
            if config.eval_every and it1 % config.eval_every == 0:
                log_eval(it1)
            if it1 % config.checkpoint_every == 0:
                store.save(it1, state, metadata=_checkpoint_metadata(it1, names))
            if config.max_minutes and parallel.agree(time.time() - t0 > 60 * config.max_minutes):
                bar.write(f"stopping after {time.time() - t0:.0f} s (max_minutes={config.max_minutes})")
                break
        final_it = int(parallel.unstack(state.iteration))
        store.save(final_it, state, metadata=_checkpoint_metadata(final_it, names))
        final = log_eval(final_it)
    finally:
        writer.close()
        store.close()
    training.write_json(history_path, {"train": history, "eval": evaluations}, indent=1)
    if history and main:
        _plot_history(history, workdir)
    if progress:
        logger.info(f"evaluation: success {final['success_rate']:.2f}, G-MPJPE {final['g_mpjpe_mm']:.1f} mm, "
                    f"MPJPE {final['mpjpe_mm']:.1f} mm, resets {final['resets']}")
    return state, history


def load(workdir: str, config: ml_collections.ConfigDict | None = None):
    """The latest state of a training workdir (sharded as its config asks), its reference library and take names."""
    if config is None:
        with open(os.path.join(workdir, "config.json")) as f:
            config = ml_collections.ConfigDict(json.load(f))
        config.clips = tuple(config.clips)
        config.policy_hidden, config.value_hidden = tuple(config.policy_hidden), tuple(config.value_hidden)
        config.lock()  # as every config file's
    motions = list(load_clips(list(config.clips)).values())
    spec = make_spec(config, motions)
    mesh = make_mesh(config)
    library = make_library(references(spec, motions))
    template = init(jax.random.PRNGKey(config.seed), spec, library, mesh)
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no checkpoint directory {directory!r}")
    with checkpoint.CheckpointStore(directory) as store:  # one store for the state and its metadata
        state = _restore(store, template)
    return parallel.shard_stacked(state, mesh), library, [m.name for m in motions]
