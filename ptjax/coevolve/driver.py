"""The round driver: a schedule of phases over one `CoEvolutionState`, with a checkpoint at every phase boundary,
metrics.json, TensorBoard and the round pictures."""

from __future__ import annotations

import logging
import os
import time

import jax
import jax.numpy as jnp
import ml_collections

from ptjax import checkpoint as ckpt_lib
from ptjax import training
from ptjax.coevolve.config import imitator_iterations, phases_of_round
from ptjax.coevolve.phases import CoEvolution
from ptjax.coevolve.report import format_round, log_round
from ptjax.coevolve.state import CoEvolutionState
from ptjax.imitator.env import OBSERVATION_LAYOUT, check_observation_layout

logger = logging.getLogger(__name__)


def run(config: ml_collections.ConfigDict, workdir: str, resume: bool = False, progress: bool = True,
        stop_after: tuple[int, str] | None = None) -> list[dict]:
    """Round 0 and `config.num_rounds` rounds (`ptjax.coevolve`'s docstring). Writes WORKDIR/metrics.json (one entry
    per round), WORKDIR/tensorboard, WORKDIR/round_N.gif, WORKDIR/checkpoints (every phase boundary). `stop_after`
    (round, phase) returns right after that phase's checkpoint, as a kill there would leave the workdir.

    In a multi-process job (`ptjax.distributed`) every process runs this with the same arguments and a shared
    WORKDIR; process 0 alone writes the files, every process joins the checkpoints."""
    main = training.is_main_process()
    progress = progress and main
    co = CoEvolution.create(config)
    os.makedirs(workdir, exist_ok=True)
    store = ckpt_lib.CheckpointStore(os.path.join(workdir, "checkpoints"), config.max_to_keep)  # open for the run
    try:
        meta, latest = open_run(store, workdir, co.num_devices, resume)
    except BaseException:
        store.close()
        raise
    state = co.init(jax.random.PRNGKey(int(config.seed)))
    if latest is not None:
        state, _ = store.restore(state, latest)
        state = co.place(state)
    elif resume and main:
        logger.info("coevolve: no checkpoint in %r; starting a new run", workdir)
    training.write_json(os.path.join(workdir, "config.json"), config.to_dict())

    writer = training.MetricWriter(workdir)

    def log(phase, metrics):
        step = meta["learner_steps"].get(phase, 0) + 1
        meta["learner_steps"][phase] = step
        for k, v in metrics.items():
            writer.scalar(f"{phase}/{k}", v, step)

    try:
        while meta["round"] <= config.num_rounds:
            r = meta["round"]
            names = phases_of_round(config, r)
            current = meta["current"]
            current.setdefault("round", r)
            current.setdefault("phase_seconds", {})
            for index in range(meta["next_phase"], len(names)):
                name = names[index]
                t0 = time.time()
                state = run_phase(co, state.replace(round=jnp.asarray(r, jnp.int32)), name, current, workdir, log,
                                  progress)
                current["phase_seconds"][name] = round(time.time() - t0, 2)
                state = co.place(state)
                if name == "evaluate":
                    current["round_seconds"] = round(sum(current["phase_seconds"].values()), 2)
                    meta["history"].append(current)
                    log_round(writer, current)
                    if progress:
                        logger.info(format_round(current))
                    meta["round"], meta["next_phase"], meta["current"] = r + 1, 0, {}
                else:
                    meta["next_phase"] = index + 1
                meta["checkpoint"] += 1
                store.save(meta["checkpoint"], state, metadata=meta)
                training.write_json(os.path.join(workdir, "metrics.json"), meta["history"])
                if stop_after is not None and tuple(stop_after) == (r, name):
                    return meta["history"]
    finally:
        writer.close()
        store.close()
    training.write_json(os.path.join(workdir, "metrics.json"), meta["history"])
    return meta["history"]


def open_run(store: ckpt_lib.CheckpointStore, workdir: str, num_devices: int, resume: bool
             ) -> tuple[dict, int | None]:
    """(the driver's bookkeeping, the checkpoint to restore or None): a new run's, or the last checkpoint's metadata
    when resuming. A workdir that holds checkpoints is only continued with `resume`, on as many devices."""
    meta = {"round": 0, "next_phase": 0, "checkpoint": 0, "history": [], "current": {}, "learner_steps": {},
            "num_devices": num_devices, "observation_layout": OBSERVATION_LAYOUT}
    latest = store.latest_step()
    if latest is None:
        return meta, None
    if not resume:
        raise FileExistsError(f"{workdir!r} already holds a run's checkpoints: pass --resume to continue it, "
                              "or choose a new workdir")
    meta = store.metadata(latest)
    if meta is None:
        raise FileNotFoundError(f"checkpoint {latest} in {store.directory!r} has no metadata")
    check_observation_layout(meta.get("observation_layout"), f"checkpoint {latest} of {store.directory!r}")
    written_on = meta.setdefault("num_devices", num_devices)  # older runs did not record it
    if written_on != num_devices:
        raise ValueError(f"{workdir!r} was checkpointed on {written_on} devices and this job has "
                         f"{num_devices}: I's state holds one row of humanoids per device, so resume with "
                         f"{written_on} devices in total, split over any number of processes (num_devices="
                         f"{written_on}, or PTJAX_CPU_DEVICES on CPU)")
    return meta, latest


def run_phase(co: CoEvolution, state: CoEvolutionState, name: str, current: dict, workdir: str, log,
              progress: bool) -> CoEvolutionState:
    """One phase of round `state.round`; its figures go into the round's record `current`."""
    config, r = co.config, int(state.round)
    main = training.is_main_process()
    if name == "lift":
        state, current["lift"] = co.lift(state)
    elif name == "imitate":
        fresh = config.imitator_from_scratch or (r == 1 and config.imitator_reinit_after_cold_start)
        if r > 0 and fresh:
            rng, k = jax.random.split(state.rng)
            state = co.place(state.replace(rng=rng, imitator=co.init_imitator(k, state.references)))
        state, last = co.learn(state, "imitator", imitator_iterations(config, r), log, progress)
        current["imitator_training"] = {k: last[k] for k in ("reward", "episode_length", "episode_return")
                                        if k in last}
    elif name == "rollout":
        result, summary = co.rollout(state, len(co.takes))
        if config.gif and main:
            physics = co.physics_picture(result, state.references, os.path.join(workdir, f"round_{r}_physics.gif"))
            if physics:
                current["physics_gif"] = os.path.basename(physics)
        rollouts, breaks = co.rollout_buffer(result, len(co.takes))
        state = state.replace(imitated=co.replicate(co.new_round_motion(state.imitated, rollouts, r)))
        state, segments = co.fill_segments(state, rollouts, breaks)
        current["imitator"] = {**summary, **segments}
    elif name == "hallucinate":
        state, current["hallucinator"] = co.hallucinate(state, log, progress)
    elif name == "refine":
        state, current["refine"] = co.refine(state, log, progress)
    elif name == "estimate":
        state, current["estimator_training"] = co.estimate(state, log, progress)
    elif name == "evaluate":
        current["estimator"] = co.evaluate(state)
        # Each round's estimator as a stand-alone estimator workdir (`ptjax lift/eval --checkpoint`).
        from ptjax.estimator import checkpoints as est_ckpt
        est_ckpt.save(est_ckpt.round_dir(workdir, r), state.estimator, config.estimator, step=r)
        if config.gif and main:
            current["gif"] = os.path.basename(co.picture(state, os.path.join(workdir, f"round_{r}.gif")))
    else:
        raise ValueError(f"unknown phase {name!r}")
    return state
