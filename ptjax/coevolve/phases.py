"""`CoEvolution`: the static parts of a co-evolution (configs, the body, the env, the mesh, the takes), the one
jitted data-parallel learner step built on them, and the round's phases (lift, rollout, hallucinate, refine,
estimate, evaluate) as functions `(state, ...) -> (state, info)`."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import PartitionSpec as P

from ptjax import parallel, training
from ptjax.coevolve.cold_start import cold_start_qpos, random_root_trajectories
from ptjax.coevolve.config import (LEARNERS, check_config, estimator_batch, estimator_steps, hallucinator_batch,
                                    hallucinator_steps)
from ptjax.coevolve.state import CoEvolutionState, empty_buffer, fill_buffer
from ptjax.data import (Motion, MotionBuffer, break_free_takes, gather_slots, reset_free_stretches, sample_windows,
                        write_slots)
from ptjax.data.takes import load_takes

AXIS = parallel.AXIS


@dataclasses.dataclass
class CoEvolution:
    """The static parts (configs, the body, the env, the mesh, the takes) and the jitted step built on them."""
    config: ml_collections.ConfigDict
    imitator: Any                  # ptjax.imitator.ppo.PPOSpec: the body, its env, PPO's networks and optimiser
    mesh: jax.sharding.Mesh
    takes: list
    heldout: list
    num_hallucinated: int
    _jitted: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def create(cls, config: ml_collections.ConfigDict) -> "CoEvolution":
        from ptjax.imitator import train as imitator_lib

        n = config.num_devices or len(jax.devices())
        if n > len(jax.devices()):
            raise ValueError(f"num_devices={n} but only {len(jax.devices())} devices are visible")
        check_config(config, n)
        i_config = ml_collections.ConfigDict(config.imitator.to_dict())
        i_config.num_devices = n
        imitator = imitator_lib.make_spec(i_config)
        mesh = imitator_lib.make_mesh(i_config)
        takes, heldout = load_takes(config)
        num_h = int(config.num_hallucinated or len(takes))
        if num_h > len(takes):
            raise ValueError(f"num_hallucinated ({num_h}) cannot exceed the number of takes ({len(takes)}): "
                             "I's reference library keeps one shape")
        return cls(config, imitator, mesh, takes, heldout, num_h)

    # -- shapes and shardings --
    @property
    def num_devices(self) -> int:
        return parallel.num_devices(self.mesh)

    @property
    def takes_mesh(self) -> jax.sharding.Mesh | None:
        """The mesh the takes' IK and rollouts are split over (config `split_takes`), else None (one device)."""
        return self.mesh if self.config.get("split_takes", False) else None  # older runs' configs lack it

    @property
    def max_frames(self) -> int:
        return int(self.config.data.max_frames)

    @property
    def fps(self) -> float:
        return float(self.config.data.fps)

    @property
    def imitated_block(self) -> int:
        """Slots of one round's motion in the `imitated` buffer: the takes, then the refined samples."""
        return len(self.takes) + self.num_hallucinated

    def place(self, state: CoEvolutionState) -> CoEvolutionState:
        """Put the stacked imitator state on its shards and everything else replicated over the mesh."""
        fields = ("estimator", "hallucinator", "references", "imitated", "segments", "generated", "real2d", "rng",
                  "round", "phase_step")
        # One batched transfer per sharding (leaf by leaf, the smoke state's ~500 leaves cost 0.1 s per call).
        imitator = parallel.shard_stacked(state.imitator, self.mesh)
        rest = parallel.replicate({f: getattr(state, f) for f in fields}, self.mesh)
        return state.replace(imitator=imitator, **rest)

    # -- init --
    # Jitted because, run op by op, Flax's initialisers cost 0.2 s (E) and 2 s (H) of host time every round; the
    # compiled ones give the same parameters bit for bit (checked on the smoke and demo configs, and by a test).
    @functools.cached_property
    def init_estimator(self):
        """rng -> a fresh `EstimatorState` of the config's estimator."""
        from ptjax import estimator as est
        return jax.jit(lambda rng: est.init(rng, self.config.estimator))

    @functools.cached_property
    def init_hallucinator(self):
        """rng -> a fresh `HallucinatorState` of the config's hallucinator."""
        from ptjax import hallucinator as H
        return jax.jit(lambda rng: H.init(rng, self.config.hallucinator))

    def init_imitator(self, rng: jax.Array, library) -> Any:
        """A fresh PPO state (stacked over the mesh) tracking `library`."""
        from ptjax.imitator import train as imitator_lib
        return imitator_lib.init(rng, self.imitator, library, self.mesh)

    def imitator_references(self, motions: Sequence[Motion]) -> list:
        """`motions` retargeted to I's body."""
        from ptjax.imitator import train as imitator_lib
        return imitator_lib.references(self.imitator, motions, self.takes_mesh)

    @property
    def retarget_on_device(self) -> bool:
        """`imitator.retarget.prepare="device"` (configs/gpu.py): padded takes -> library without host loops."""
        return self.config.imitator.retarget.get("prepare", "host") == "device"

    def padded_library(self, joints, lengths, names) -> tuple[Any, jax.Array]:
        """Padded world joints -> I's reference library (`imitator.train.reference_library`) and IK errors."""
        from ptjax.imitator import train as imitator_lib
        return imitator_lib.reference_library(self.imitator, joints, lengths, self.takes_mesh, names)

    def library(self, refs) -> Any:
        from ptjax.imitator.env import make_library
        return make_library(refs, max_frames=self.max_frames, num_takes=len(self.takes))

    def cold_start_library(self, seed: int):
        from ptjax.imitator import retarget
        rng = np.random.default_rng([seed, 0])
        trajs = random_root_trajectories(rng, len(self.takes), self.max_frames, self.fps, self.config.cold_start)
        rest = np.asarray(self.imitator.env.humanoid.rest_qpos())
        qpos = np.stack([cold_start_qpos(rest, t) for t in trajs])
        refs = retarget.references_from_qpos(self.imitator.env.humanoid, qpos, [len(q) for q in qpos], self.fps)
        return self.library(refs)

    def init(self, rng: jax.Array) -> CoEvolutionState:
        from ptjax.estimator import pack_keypoints
        k_e, k_i, k_h, k_state = jax.random.split(rng, 4)
        library = self.cold_start_library(int(self.config.seed))
        n_takes = len(self.takes)
        state = CoEvolutionState(
            estimator=self.init_estimator(k_e),
            imitator=self.init_imitator(k_i, library),
            hallucinator=self.init_hallucinator(k_h),
            references=library,
            imitated=empty_buffer(self.imitated_block * (1 + int(self.config.replay_rounds)), self.max_frames,
                                  self.fps),
            segments=empty_buffer(2 * n_takes, self.max_frames, self.fps),
            generated=empty_buffer(len(self.takes), self.max_frames, self.fps),
            real2d=pack_keypoints([t.keypoints2d for t in self.takes], self.fps),
            rng=k_state, round=jnp.zeros((), jnp.int32), phase_step=jnp.zeros((), jnp.int32), phase="imitator")
        return self.place(state)

    # -- the step --
    def _replicated_learner(self, update):
        return jax.shard_map(lambda s, b: update(s, b, axis_name=AXIS), mesh=self.mesh, in_specs=(P(), P(AXIS)),
                             out_specs=(P(), P()), check_vma=False)

    def estimator_batch(self, rng: jax.Array, spec, imitated: MotionBuffer, real2d: MotionBuffer) -> dict:
        """World windows of E's receptive field from the imitated motion (+ real 2D windows for D_cam)."""
        rf, b = spec.receptive_field, estimator_batch(self.config)
        k_motion, k_real = jax.random.split(rng)
        weights = (imitated.lengths > 0).astype(jnp.float32)
        batch = {"motion": sample_windows(k_motion, imitated, b, rf, take_weights=weights)}
        if spec.adversarial:
            n_adv = b - (int(round(b * spec.random_camera_fraction)) if spec.random_camera else 0)
            batch["real2d"] = sample_windows(k_real, real2d, n_adv, rf)
        return batch

    def _learner_step(self, phase: str, learner, rng: jax.Array, data: dict):
        """One update of `phase`'s learner state; `data` holds the buffers it reads (never written)."""
        from ptjax import estimator as est
        from ptjax import hallucinator as H
        rng, k_batch = jax.random.split(rng)
        if phase == "imitator":
            from ptjax.imitator import ppo
            new, metrics = parallel.per_device_update(ppo.update, self.mesh)(learner, data["references"])
            metrics = jax.tree_util.tree_map(lambda x: x[0], metrics)
        elif phase == "estimator":
            batch = self.estimator_batch(k_batch, learner.spec, data["imitated"], data["real2d"])
            new, metrics = self._replicated_learner(est.update)(learner, batch)
        elif phase == "hallucinator":
            batch = H.sample_batch(k_batch, data["segments"], hallucinator_batch(self.config), learner.config)
            new, metrics = self._replicated_learner(H.update)(learner, batch)
        else:
            raise ValueError(f"unknown phase {phase!r}; the learner phases are {LEARNERS}")
        return new, rng, metrics

    def step(self, state: CoEvolutionState) -> tuple[CoEvolutionState, dict]:
        """One update of the current phase's learner (jitted, sharded over the mesh axis `data`)."""
        state, metrics = self.steps(state, 1)
        return state, jax.tree_util.tree_map(lambda x: x[0], metrics)

    def steps(self, state: CoEvolutionState, num_steps: int) -> tuple[CoEvolutionState, dict]:
        """`num_steps` updates of the current phase's learner in one jitted scan; returns (state, metrics stacked
        over the steps). Only the learner, the key and the step count are carried through the scan; the buffers
        it reads are loop constants (carrying the whole state made every step copy it)."""
        phase = state.phase
        if phase not in LEARNERS:
            raise ValueError(f"unknown phase {phase!r}; the learner phases are {LEARNERS}")
        key = (phase, int(num_steps))
        if key not in self._jitted:
            def run(learner, rng, count, data):
                def body(carry, _):
                    learner, rng, count = carry
                    learner, rng, metrics = self._learner_step(phase, learner, rng, data)
                    return (learner, rng, count + 1), metrics
                return jax.lax.scan(body, (learner, rng, count), None, length=key[1])
            self._jitted[key] = jax.jit(run)
        state = self.place(state)  # inputs always carry the same shardings, so each phase compiles once
        data = {"imitator": {"references": state.references},
                "estimator": {"imitated": state.imitated, "real2d": state.real2d},
                "hallucinator": {"segments": state.segments}}[phase]
        (learner, rng, count), metrics = self._jitted[key](getattr(state, phase), state.rng, state.phase_step, data)
        return self.place(state.replace(**{phase: learner}, rng=rng, phase_step=count)), metrics

    # -- phases (host side) --
    def learn(self, state: CoEvolutionState, phase: str, num_steps: int, log=None, progress: bool = True
              ) -> tuple[CoEvolutionState, dict]:
        """Run `num_steps` updates of `phase`'s learner (rounded up to whole calls); returns the last call's mean
        metrics. `log(phase, metrics)` receives each call's mean metrics."""
        chunk = 1 if phase == "imitator" else int(self.config.steps_per_call)
        calls = -(-int(num_steps) // chunk)
        state = state.replace(phase=phase, phase_step=jnp.zeros((), jnp.int32))
        last = {}
        with training.progress_bar(total=calls * chunk, desc=f"round {int(state.round)} {phase}",
                                   disable=not progress, leave=False) as bar:
            for _ in range(calls):
                state, stacked = self.steps(state, chunk)
                last = {k: float(np.mean(np.asarray(v))) for k, v in stacked.items()}
                if log is not None:
                    log(phase, last)
                bar.update(chunk)
                bar.set_postfix({k: f"{last[k]:.3g}" for k in _headline(phase) if k in last})
        training.check_finite_tree(getattr(state, phase), f"{phase} state")
        return state, last

    def lift(self, state: CoEvolutionState) -> tuple[CoEvolutionState, dict]:
        """E lifts every 2D take; world frame by the gravity/PCA prior; IK to the body -> I's references."""
        if self.retarget_on_device:
            return self.lift_padded(state)
        from ptjax import estimator as est
        lifted = est.predict_many(state.estimator, [take.keypoints2d for take in self.takes])  # batched over takes
        lengths = np.array([len(out["joints3d"]) for out in lifted])
        camera = fill_buffer(empty_buffer(len(lifted), self.max_frames, self.fps), [o["joints3d"] for o in lifted])
        world = est.camera_to_world_padded(camera.joints, camera.lengths)
        world = np.asarray(smooth_motion(world, camera.lengths, self.fps, float(self.config.lift_root_smoothing_s),
                                         float(self.config.lift_pose_smoothing_s)))
        motions = [Motion(take.name, self.fps, world[i, :n]) for i, (take, n) in enumerate(zip(self.takes, lengths))]
        refs = self.imitator_references(motions)
        ik = float(np.mean([float(jnp.mean(r.ik_error)) for r in refs]))
        # Diagnostics only (the takes' 3D never enters a loss): how good E's lifts of the training takes are.
        train_eval = est.evaluate(state.estimator, self.takes)["mean"]
        info = {"ik_error_mm": ik * 1000, "train_takes_mpjpe_mm": train_eval["mpjpe"],
                "train_takes_p_mpjpe_mm": train_eval["p_mpjpe"]}
        return state.replace(references=self.library(refs)), info

    def lift_padded(self, state: CoEvolutionState) -> tuple[CoEvolutionState, dict]:
        """`lift` over the padded takes on the device (`imitator.retarget.prepare="device"`, configs/gpu.py): E's
        prediction from the state's 2D takes (`estimator.predict_padded`), the world frame, the smoothing, the IK and
        the library (`imitator.train.reference_library`), and the diagnostics, with no per-take loop; what reaches
        the host is per-take flags of refused input and the figures of `info`."""
        from ptjax import estimator as est
        lengths = np.array([len(take.keypoints2d) for take in self.takes])
        if lengths.max() > self.max_frames:
            raise ValueError(f"a take of {lengths.max()} frames does not fit max_frames={self.max_frames}")
        lifted = est.predict_padded(state.estimator, state.real2d.joints, state.real2d.lengths)
        # The takes' slots edge-padded to the run's frame count, as fill_buffer lays them out.
        slots = jnp.arange(len(self.takes))
        camera = gather_slots(lifted["joints3d"], slots, jnp.zeros_like(slots), state.real2d.lengths,
                              self.max_frames, self.fps).joints
        world = est.camera_to_world_padded(camera, state.real2d.lengths)
        world = smooth_motion(world, state.real2d.lengths, self.fps, float(self.config.lift_root_smoothing_s),
                              float(self.config.lift_pose_smoothing_s))
        library, errors = self.padded_library(world, lengths, [take.name for take in self.takes])
        # Diagnostics only (the takes' 3D never enters a loss): how good E's lifts of the training takes are.
        scores = est.score_padded(lifted["pose"], self.takes_camera_joints, state.real2d.lengths)
        info = {"ik_error_mm": float(jnp.mean(errors)) * 1000, "train_takes_mpjpe_mm": float(scores["mpjpe"]),
                "train_takes_p_mpjpe_mm": float(scores["p_mpjpe"])}
        return state.replace(references=library), info

    @functools.cached_property
    def takes_camera_joints(self) -> jax.Array:
        """The takes' camera-frame 3D (N, T, 17, 3), padded as `real2d` (for diagnostics only; placed once)."""
        from ptjax.estimator.loop import pack_sequences
        return pack_sequences([take.joints_cam for take in self.takes], self.fps).joints

    def rollout(self, state: CoEvolutionState, count: int) -> tuple[Any, dict]:
        """Fail-safe rollouts of every reference: (the whole `RolloutResult`, the summary of the first `count`)."""
        from ptjax.imitator import train as imitator_lib
        result = imitator_lib.evaluate(state.imitator, state.references, self.takes_mesh)
        summary = result.summary(count=count)
        summary.pop("takes")
        return result, summary

    def rollout_buffer(self, result, count: int) -> tuple[MotionBuffer, jax.Array]:
        """The first `count` rollouts of `result` as a buffer (the other slots empty) and their reset flags (N, T):
        the frames where a fail-safe reset teleported the body."""
        slots = jnp.arange(result.lengths.shape[0])
        lengths = jnp.where(slots < count, result.lengths, 0)
        buffer = gather_slots(result.joints, slots, jnp.zeros_like(slots), lengths, self.max_frames, self.fps)
        return buffer, result.reset_mask.astype(bool)

    def new_round_motion(self, previous: MotionBuffer, rollouts: MotionBuffer, round_index: int) -> MotionBuffer:
        """E's motion buffer for a round: this round's rollouts of the takes in the first block, the earlier rounds'
        blocks moved one block on (the oldest dropped); round 0's cold-start walks are never replayed."""
        block, n = self.imitated_block, len(self.takes)
        first = jax.tree_util.tree_map(lambda x: x[:n], rollouts)
        buffer = write_slots(empty_buffer(previous.num_takes, self.max_frames, self.fps), first, 0)
        if round_index < 2 or previous.num_takes == block:
            return buffer
        return write_slots(buffer, jax.tree_util.tree_map(lambda x: x[:-block], previous), block)

    def segment_motions(self, state: CoEvolutionState) -> list[Motion]:
        joints, lengths = np.asarray(state.segments.joints), np.asarray(state.segments.lengths)
        return [Motion(f"imitated_{i:04d}", self.fps, joints[i, :n]) for i, n in enumerate(lengths) if n > 0]

    def fill_segments(self, state: CoEvolutionState, rollouts: MotionBuffer, breaks: jax.Array
                      ) -> tuple[CoEvolutionState, dict]:
        """Cut the rollouts at their fail-safe resets (a reset teleports the body: no motion to learn from) and keep
        the longest pieces that hold at least one hallucinator training window."""
        from ptjax.hallucinator.train import min_frames
        capacity = state.segments.num_takes
        segments, count = reset_free_stretches(rollouts, breaks, min_frames(self.config.hallucinator), capacity)
        info = {"segments": min(int(count), capacity), "segment_frames": int(jnp.sum(segments.lengths))}
        return state.replace(segments=self.replicate(segments)), info

    def hallucinate(self, state: CoEvolutionState, log=None, progress: bool = True) -> tuple[CoEvolutionState, dict]:
        """H from scratch (as the original) on the imitated motion, then new samples into `generated`."""
        if int(np.sum(np.asarray(state.segments.lengths) > 0)) == 0:
            empty = empty_buffer(len(self.takes), self.max_frames, self.fps)
            return state.replace(generated=self.replicate(empty)), {
                "skipped": "no imitated segment without a fail-safe reset is long enough for a training window"}
        rng, k_init, k_sample = jax.random.split(state.rng, 3)
        state = state.replace(rng=rng, hallucinator=self.replicate(self.init_hallucinator(k_init)))
        state, last = self.learn(state, "hallucinator", hallucinator_steps(self.config), log, progress)
        if self.config.get("sample_on_device", False):
            generated, stats = self.sample_on_device(state, k_sample)
        else:
            generated, stats = self.sample_on_host(state, k_sample)
        keys = ("bone_length_dev_max_m", "skating_mps", "penetration_frames", "limit_any", "diversity_m",
                "reference_diversity_m", "nearest_reference_mean_m", "seconds_mean")
        info = {"g_total": last.get("g_total"), **{k: stats[k] for k in keys if k in stats}}
        return state.replace(generated=generated), info

    def sample_on_host(self, state: CoEvolutionState, rng: jax.Array) -> tuple[MotionBuffer, dict]:
        """H's samples from start windows drawn by a NumPy generator, cleaned up and measured on the host."""
        from ptjax import hallucinator as H
        hc = state.hallucinator.config
        train = self.segment_motions(state)
        np_rng = np.random.default_rng([int(self.config.seed), int(state.round), 1])
        start = H.start_windows_from(train, np_rng, self.num_hallucinated, hc.context)
        samples = H.sample(state.hallucinator, rng, start, target_pool=train)
        seqs = [m.joints[:self.max_frames] for m in samples]
        generated = fill_buffer(empty_buffer(len(self.takes), self.max_frames, self.fps), seqs)
        stats = H.measures([Motion(m.name, m.fps, s) for m, s in zip(samples, seqs)], hc.fps, reference=train,
                           window=hc.measures.window, stride=hc.measures.stride, skip=hc.context)
        return generated, stats

    def sample_on_device(self, state: CoEvolutionState, rng: jax.Array) -> tuple[MotionBuffer, dict]:
        """H's samples with start windows and targets drawn from the imitated segments on device, cleaned up and
        measured there (`measures_on_device`); only the summary's scalars reach the host."""
        from ptjax.hallucinator.measures import measures_on_device
        from ptjax.hallucinator.sample import sample_from_buffer
        hc = state.hallucinator.config
        k_sample, k_measure = jax.random.split(rng)
        samples = sample_from_buffer(state.hallucinator, k_sample, state.segments, self.num_hallucinated)
        samples = samples[:, :self.max_frames]
        # A checkpoint's config from before the caps existed leaves them at measures_on_device's defaults.
        caps = {k: int(hc.measures[k]) for k in ("max_windows", "max_reference_windows") if k in hc.measures}
        stats = measures_on_device(samples, state.segments, k_measure, float(hc.fps), window=int(hc.measures.window),
                                   stride=int(hc.measures.stride), skip=int(hc.context), **caps)
        stats = jax.device_get({**stats, "finite": jnp.all(jnp.isfinite(samples))})
        if not stats.pop("finite"):
            raise FloatingPointError("hallucinated motion contains non-finite values (diverged model?)")
        slots = jnp.arange(len(self.takes))
        count = jnp.where(slots < samples.shape[0], samples.shape[1], 0)
        generated = gather_slots(samples, jnp.minimum(slots, samples.shape[0] - 1), jnp.zeros_like(slots), count,
                                 self.max_frames, self.fps)
        return self.replicate(generated), {k: float(v) for k, v in stats.items()}

    def refine(self, state: CoEvolutionState, log=None, progress: bool = True) -> tuple[CoEvolutionState, dict]:
        """I imitates the hallucinated motion; what it imitates without a fail-safe reset joins E's training motion
        (config `refine_keep`: the reset-free pieces, or only whole samples without a reset as the original)."""
        lengths = np.asarray(state.generated.lengths)
        if not (lengths > 0).any():
            return state, {"kept": 0, "sampled": 0}
        takes_library = state.references
        names = [f"hallucinated_{i:04d}" for i in range(len(lengths))]
        if self.retarget_on_device:
            library, _ = self.padded_library(state.generated.joints, lengths, names)
        else:
            joints = np.asarray(state.generated.joints)
            library = self.library(self.imitator_references(
                [Motion(names[i], self.fps, joints[i, :n]) for i, n in enumerate(lengths) if n > 0]))
        sampled = int((lengths > 0).sum())
        state = state.replace(references=library)
        if self.config.refine_iterations:
            state, _ = self.learn(state, "imitator", int(self.config.refine_iterations), log, progress)
        result, summary = self.rollout(state, sampled)
        rollouts, breaks = self.rollout_buffer(result, sampled)
        n = len(self.takes)
        if self.config.refine_keep == "takes":
            kept, count = break_free_takes(rollouts, breaks, self.num_hallucinated)
            clean = count
        else:
            kept, count = reset_free_stretches(rollouts, breaks, int(state.estimator.spec.receptive_field),
                                               self.num_hallucinated)
            clean = break_free_takes(rollouts, breaks, 1)[1]
        # This round's refined slots only: the later blocks are replayed rounds.
        imitated = write_slots(state.imitated, kept, offset=n)
        info = {"kept": min(int(count), self.num_hallucinated), "kept_frames": int(jnp.sum(kept.lengths)),
                "sampled": sampled, "clean_samples": int(clean),
                **{f"imitator_{k}": v for k, v in summary.items()}}
        return state.replace(imitated=imitated, references=takes_library), info

    def estimate(self, state: CoEvolutionState, log=None, progress: bool = True) -> tuple[CoEvolutionState, dict]:
        from ptjax import estimator as est
        if self.config.estimator_from_scratch:
            rng, k_init = jax.random.split(state.rng)
            state = state.replace(rng=rng, estimator=self.replicate(self.init_estimator(k_init)))
        elif int(state.round) > 0:  # warm start: last round's networks, a fresh schedule
            state = state.replace(estimator=self.replicate(est.restart_optimizers(state.estimator)))
        state, last = self.learn(state, "estimator", estimator_steps(self.config), log, progress)
        return state, {k: last[k] for k in ("loss_pose", "loss_traj") if k in last}

    @functools.cached_property
    def detector_heldout(self) -> list:
        """The held-out takes with a fixed detector-like corruption of their 2D (gaps filled as lift fills them)."""
        from ptjax import detector_noise
        return detector_noise.detector_like_takes(self.heldout)

    def evaluate(self, state: CoEvolutionState) -> dict:
        """Held-out scores from the clean 2D and from a fixed detector-like corruption of it
        (`ptjax.detector_noise`: what lifting a real detector's keypoints would meet)."""
        from ptjax import estimator as est
        mean = est.evaluate(state.estimator, self.heldout)["mean"]
        detector = est.evaluate(state.estimator, self.detector_heldout)["mean"]
        return {"mpjpe_mm": mean["mpjpe"], "p_mpjpe_mm": mean["p_mpjpe"], "n_mpjpe_mm": mean["n_mpjpe"],
                "pck": mean["pck"], "auc": mean["auc"], "detector_like_mpjpe_mm": detector["mpjpe"],
                "detector_like_p_mpjpe_mm": detector["p_mpjpe"]}

    def replicate(self, tree):
        """`tree` replicated over the mesh (every device holds all of it)."""
        return parallel.replicate(tree, self.mesh)

    def picture(self, state: CoEvolutionState, path: str) -> str:
        """Take 0: its 2D input, E's lift (world frame), I's imitation and H's first sample, side by side."""
        from ptjax import estimator as est
        from ptjax import viz
        take = self.takes[0]
        lifted = est.camera_to_world(est.predict(state.estimator, take.keypoints2d)["joints3d"])
        panels = {"2D take": take.keypoints2d, "E: lifted": lifted}
        n = int(state.imitated.lengths[0])
        if n:
            panels["I: imitated"] = np.asarray(state.imitated.joints[0, :n])
        g = int(state.generated.lengths[0])
        if g:
            panels["H: hallucinated"] = np.asarray(state.generated.joints[0, :g])
        return viz.animate_panels(panels, path, fps=self.fps, max_frames=int(self.config.gif_frames))

    def physics_picture(self, result, references, path: str) -> str | None:
        """Take 0's reference (left) and I's fail-safe rollout of it (`result`, the rollout E trains on, right),
        rendered by MuJoCo; None (with a warning) where no GL backend is available: the round GIF's skeletons still
        show the motion."""
        from ptjax import render
        n = int(result.lengths[0])
        return render.motion_video(self.imitator.env.humanoid.model, np.asarray(result.qpos[0, :n]), path, fps=self.fps,
                                   reference_qpos=np.asarray(references.qpos[0, :n]),
                                   max_frames=int(self.config.gif_frames), fallback=lambda: None)


@functools.partial(jax.jit, static_argnames=("fps", "root_sigma_s", "pose_sigma_s"))
def smooth_motion(joints: jax.Array, lengths: jax.Array, fps: float, root_sigma_s: float, pose_sigma_s: float
                  ) -> jax.Array:
    """(N, T, 17, 3) world joints (the first lengths[i] frames valid) with the root (Hip) trajectory and the
    root-relative pose each low-passed by a Gaussian of the given sigma in seconds (0 = unchanged), the ends held
    (as scipy.ndimage's mode "nearest"). A lifted depth jitters from frame to frame; the body cannot follow a root
    that jumps back and forth, and every such frame risks a fail-safe reset."""
    root, rel = joints[:, :, :1], joints - joints[:, :, :1]
    return (_gaussian_filter(root, lengths, root_sigma_s * fps) + _gaussian_filter(rel, lengths, pose_sigma_s * fps))


def _gaussian_filter(x: jax.Array, lengths: jax.Array, sigma: float) -> jax.Array:
    """x (N, T, ...) filtered along T by a Gaussian of `sigma` frames truncated at 4 sigma (scipy's kernel), each
    sequence's valid frames edge-extended; one shifted gather per tap keeps memory at the input's size."""
    if sigma <= 0:
        return x
    radius = int(4.0 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = taps / taps.sum()
    t = jnp.arange(x.shape[1])[None, :]
    last = jnp.maximum(lengths[:, None] - 1, 0)
    rows = jnp.arange(x.shape[0])[:, None]
    out = jnp.zeros_like(x)
    for offset, weight in zip(range(-radius, radius + 1), taps):
        out = out + float(weight) * x[rows, jnp.clip(t + offset, 0, last)]
    return out


def _headline(phase: str) -> tuple[str, ...]:
    return {"imitator": ("reward", "episode_length"), "estimator": ("loss_pose",),
            "hallucinator": ("g_total",)}[phase]

