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
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from typing import Any, Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from ptjax import checkpoint as ckpt_lib
from ptjax import parallel, training
from ptjax.data import HELDOUT_CLIPS, TRAIN_CLIPS, Motion, MotionBuffer, load_clips, sample_windows
from ptjax.data.takes import Take, chunk_motions, make_takes

PHASES = ("lift", "imitate", "rollout", "hallucinate", "refine", "estimate", "evaluate")
LEARNERS = ("imitator", "hallucinator", "estimator")
AXIS = parallel.AXIS


# --- configuration --------------------------------------------------------------------------------------------------

def default_config() -> ml_collections.ConfigDict:
    """The co-evolution settings; configs/demo.py, smoke.py and h36m.py adapt them."""
    from ptjax import estimator as est
    from ptjax.hallucinator.config import default_config as h_default
    from ptjax.imitator.config import default_config as i_default

    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_rounds = 2                 # rounds after the cold start (round 0)
    c.num_devices = 0                # 0 = every device of the job (all processes' devices)
    c.data = ml_collections.ConfigDict(dict(
        train_clips=tuple(TRAIN_CLIPS), heldout_clips=tuple(HELDOUT_CLIPS),
        num_cameras=2,               # fixed cameras per training clip: the 2D takes
        heldout_cameras=4,
        fps=30.0,                    # control rate of I, frame rate of every buffer
        max_frames=150,              # takes are cut to this many frames (one compiled shape)
        source="clips",              # "clips" (bundled) | "h36m" (a user's VideoPose3D npz files)
        h36m_dir="", keypoints="gt", h36m_train_subjects=("S1", "S5", "S6", "S7", "S8"),
        max_takes=0,                 # 0 = every take
        chunks_per_clip=0))          # "clips": 0 = a clip's first max_frames; N = N evenly spaced pieces of it
    c.cold_start = ml_collections.ConfigDict(dict(
        num_points=6, scale_start=2.0, scale_end=4.0, speed=(0.5, 1.3),
        bob_amplitude=(0.01, 0.03), bob_period=(25.0, 50.0), smoothing_s=0.3, max_turn_rate=2.0))
    c.lift_root_smoothing_s = 0.1    # Gaussian sigma (s) on the lifted root trajectory before IK (0 = off)
    c.lift_pose_smoothing_s = 0.0    # ... and on the joints relative to the root
    c.estimator = est.default_config()
    c.estimator_steps = 2000         # E updates per round
    c.estimator_batch = 256
    c.replay_rounds = 1              # E also trains on the imitated motion (takes + refined pieces) of this many
                                     # earlier rounds; round 0's cold-start walks are never replayed (the original:
                                     # 0, only the current round's)
    c.estimator_from_scratch = True  # the original re-trains E from scratch every round; False: E starts from
                                     # the last round's networks with a fresh optimiser and schedule
    c.imitator = i_default()
    c.imitator.retarget.ground = "frame"   # lifted takes: every frame on the ground (the original's choice, §2.6)
    c.imitator_iterations = 40       # PPO updates per round
    c.imitator_iterations_round0 = 40
    c.imitator_from_scratch = False  # I keeps its policy across rounds (starts from the previous round's)
    c.imitator_reinit_after_cold_start = True  # ... except round 1's: the cold start's policy walks a rest pose
                                     # along paths, another task; from it, I tracked the lifted takes worse
    c.imitator.policy_init_scale = 0.01  # start from the plain PD tracker (docs/imitator.md)
    c.imitator.env.failsafe_pose = "reference"  # fail-safe resets restore the reference's state (docs/imitator.md)
    c.hallucinator = h_default()
    c.hallucinate_from = 1           # first round with H (the original: round 3)
    c.hallucinator_steps = 500
    c.hallucinator_batch = 32
    c.num_hallucinated = 0           # 0 = as many as there are takes (I's library keeps one shape)
    c.refine_iterations = 5          # PPO updates on the hallucinated references before rolling them out
    c.refine_keep = "pieces"         # what of I's rollouts of the samples E trains on: "pieces" (every stretch
                                     # between fail-safe resets that holds one E window, longest first) or "takes"
                                     # (the original: whole samples imitated without a reset)
    c.steps_per_call = 25            # updates per host call (scanned inside the jitted step)
    c.log_every = 25
    c.gif = True
    c.gif_frames = 90
    c.max_to_keep = 3
    c.lock()  # a misspelt key in a config file is an error, not a new field
    return c


def check_config(c: ml_collections.ConfigDict, num_devices: int) -> None:
    """ValueError naming the first bad value."""
    def need(ok, msg):
        if not ok:
            raise ValueError(f"coevolve config: {msg}")
    need(isinstance(c.num_rounds, int) and c.num_rounds >= 0, f"num_rounds must be >= 0, got {c.num_rounds!r}")
    need(c.data.num_cameras >= 1 and c.data.heldout_cameras >= 1, "data.num_cameras/heldout_cameras must be >= 1")
    need(c.data.max_frames >= 30, f"data.max_frames must be >= 30, got {c.data.max_frames}")
    need(isinstance(c.data.get("chunks_per_clip", 0), int) and c.data.get("chunks_per_clip", 0) >= 0,
         f"data.chunks_per_clip must be an integer >= 0, got {c.data.get('chunks_per_clip')!r}")
    need(len(c.data.train_clips) >= 1 and len(c.data.heldout_clips) >= 1, "need training and held-out clips")
    need(c.data.source != "clips" or not set(c.data.train_clips) & set(c.data.heldout_clips),
         f"clips in both splits: {sorted(set(c.data.train_clips) & set(c.data.heldout_clips))}")
    for k in ("estimator_steps", "imitator_iterations", "imitator_iterations_round0", "hallucinator_steps",
              "steps_per_call", "log_every"):
        need(isinstance(c[k], int) and c[k] >= 1, f"{k} must be a positive integer, got {c[k]!r}")
    need(c.refine_iterations >= 0 and c.num_hallucinated >= 0, "refine_iterations/num_hallucinated must be >= 0")
    need(isinstance(c.replay_rounds, int) and c.replay_rounds >= 0,
         f"replay_rounds must be an integer >= 0, got {c.replay_rounds!r}")
    need(c.refine_keep in ("pieces", "takes"), f"refine_keep must be 'pieces' or 'takes', got {c.refine_keep!r}")
    for k in ("estimator_batch", "hallucinator_batch"):
        need(c[k] >= num_devices and c[k] % num_devices == 0,
             f"{k} ({c[k]}) must be a positive multiple of the device count ({num_devices})")
    spec_frac = c.estimator.pairs.random_camera_fraction
    if c.estimator.pairs.adversarial:
        n_adv = c.estimator_batch - (int(round(c.estimator_batch * spec_frac)) if c.estimator.pairs.random_camera
                                     else 0)
        need(n_adv % num_devices == 0 and n_adv > 0,
             f"the adversarial share of estimator_batch ({n_adv}) must be a positive multiple of the device count")
    need(c.cold_start.scale_end >= c.cold_start.scale_start > 0, "cold_start scales must be positive, increasing")
    for k in ("lift_root_smoothing_s", "lift_pose_smoothing_s"):
        need(c[k] >= 0, f"{k} must be >= 0 seconds, got {c[k]}")


# --- the state ------------------------------------------------------------------------------------------------------

@flax.struct.dataclass
class CoEvolutionState:
    estimator: Any                 # ptjax.estimator.EstimatorState (replicated)
    imitator: Any                  # ptjax.imitator.ppo.PPOState, stacked over devices (leading axis)
    hallucinator: Any              # ptjax.hallucinator.HallucinatorState (replicated)
    references: Any                # ptjax.imitator.env.ReferenceLibrary that I tracks now
    imitated: MotionBuffer         # E's training motion: blocks of (rollouts of the takes, refined samples), this
                                   # round's first, then those of `replay_rounds` earlier rounds (zero lengths)
    segments: MotionBuffer         # H's training motion: the rollouts cut at fail-safe resets (no teleports)
    generated: MotionBuffer        # H's latest samples (lengths 0 before the first)
    real2d: MotionBuffer           # the 2D takes, D_cam's unpaired real 2D
    rng: jax.Array
    round: jax.Array               # () int32
    phase_step: jax.Array          # () int32 updates of the current phase
    phase: str = flax.struct.field(pytree_node=False, default="imitator")  # the learner `step` advances


def empty_buffer(num: int, frames: int, fps: float) -> MotionBuffer:
    """An all-padding buffer of `num` slots of `frames` frames (lengths 0)."""
    return MotionBuffer(joints=jnp.zeros((num, frames, 17, 3), jnp.float32), lengths=jnp.zeros((num,), jnp.int32),
                        fps=fps)


def fill_buffer(buffer: MotionBuffer, motions: Sequence[np.ndarray], offset: int = 0) -> MotionBuffer:
    """Write (T_i, 17, 3) sequences into slots offset.. (cut to the buffer's length, padded with the last frame)."""
    joints, lengths = np.array(buffer.joints), np.array(buffer.lengths)
    t_max = joints.shape[1]
    for i, seq in enumerate(motions):
        seq = np.asarray(seq, np.float32)[:t_max]
        joints[offset + i, :len(seq)] = seq
        joints[offset + i, len(seq):] = seq[-1]
        lengths[offset + i] = len(seq)
    return buffer.replace(joints=jnp.asarray(joints), lengths=jnp.asarray(lengths))


def cut_at_resets(seqs: Sequence[np.ndarray], reset_flags: Sequence[np.ndarray], shortest: int) -> list[np.ndarray]:
    """The stretches of fail-safe rollouts between resets (a reset teleports the body: no motion to learn from
    across it) that hold at least `shortest` frames, longest first."""
    pieces = []
    for seq, flags in zip(seqs, reset_flags):
        cuts = [0] + [int(t) for t in np.flatnonzero(flags)] + [len(seq)]
        pieces += [seq[a:b] for a, b in zip(cuts[:-1], cuts[1:]) if b - a >= shortest]
    return sorted(pieces, key=len, reverse=True)


# --- round 0: random smooth root trajectories -----------------------------------------------------------------------

def random_root_trajectories(rng: np.random.Generator, num: int, frames: int, fps: float, cfg) -> list[dict]:
    """PoseTriplet's cold start (`gen_random_traj.py`): a smooth 2D curve through random points in a square whose
    side grows linearly across takes, walked at a random speed, the hips bobbing with a random period, facing the
    direction of travel. Returns [{"xy" (T, 2), "bob" (T,) metres below the rest height, "yaw" (T,)}]."""
    from scipy.interpolate import CubicSpline
    from scipy.ndimage import gaussian_filter1d

    out = []
    scales = np.linspace(cfg.scale_start, cfg.scale_end, num)
    t = np.arange(frames) / fps
    for i in range(num):
        pts = rng.uniform(0, 1, (cfg.num_points, 2)) * scales[i]
        if rng.uniform() < 0.5:
            pts[:, 1] = -pts[:, 1]
        chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        spline = CubicSpline(chord, pts, bc_type="natural")
        dense_s = np.linspace(0, chord[-1], 2000)
        dense = spline(dense_s)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
        speed = rng.uniform(*cfg.speed)
        dist = np.minimum(speed * t, arc[-1])
        xy = np.stack([np.interp(dist, arc, dense[:, k]) for k in range(2)], -1)
        # Round the spline's sharp turns (the original's Bezier corners are rounded too), then face the direction
        # of travel, turning at most `max_turn_rate` rad/s (a walker does not spin on the spot).
        xy = gaussian_filter1d(xy - xy[0], sigma=cfg.smoothing_s * fps, axis=0, mode="nearest")
        tangent = np.gradient(xy, axis=0)
        moving = np.linalg.norm(tangent, axis=1) > 1e-6
        last = np.maximum.accumulate(np.where(moving, np.arange(frames), 0))  # stopped: keep the last heading
        wanted = np.unwrap(np.arctan2(tangent[last, 1], tangent[last, 0]))
        yaw = np.empty(frames)
        yaw[0] = wanted[0]
        step = cfg.max_turn_rate / fps
        for k in range(1, frames):
            yaw[k] = yaw[k - 1] + np.clip(wanted[k] - yaw[k - 1], -step, step)
        amp, period = rng.uniform(*cfg.bob_amplitude), rng.uniform(*cfg.bob_period)
        bob = amp * (1 - np.cos(2 * np.pi * np.arange(frames) / period))
        out.append({"xy": xy, "bob": bob, "yaw": yaw})
    return out


def cold_start_qpos(rest_qpos: np.ndarray, traj: dict) -> np.ndarray:
    """(T, nq) references: the rest pose carried along a root trajectory."""
    n = len(traj["xy"])
    q = np.repeat(np.asarray(rest_qpos, np.float64)[None], n, 0)
    q[:, 0:2] = traj["xy"]
    q[:, 2] = q[:, 2] - traj["bob"]
    half = traj["yaw"] / 2
    q[:, 3:7] = np.stack([np.cos(half), np.zeros(n), np.zeros(n), np.sin(half)], -1)
    return q


# --- the co-evolution -----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class CoEvolution:
    """The static parts (configs, the body, the env, the mesh, the takes) and the jitted step built on them."""
    config: ml_collections.ConfigDict
    imitator: Any
    mesh: jax.sharding.Mesh
    takes: list
    heldout: list
    num_hallucinated: int
    _jitted: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def create(cls, config: ml_collections.ConfigDict) -> "CoEvolution":
        from ptjax.imitator.train import Imitator

        n = config.num_devices or len(jax.devices())
        if n > len(jax.devices()):
            raise ValueError(f"num_devices={n} but only {len(jax.devices())} devices are visible")
        check_config(config, n)
        i_config = ml_collections.ConfigDict(config.imitator.to_dict())
        i_config.num_devices = n
        i_config.fps = float(config.data.fps)
        imitator = Imitator.create(i_config)
        takes, heldout = load_takes(config)
        num_h = int(config.num_hallucinated or len(takes))
        if num_h > len(takes):
            raise ValueError(f"num_hallucinated ({num_h}) cannot exceed the number of takes ({len(takes)}): "
                             "I's reference library keeps one shape")
        return cls(config, imitator, imitator.mesh, takes, heldout, num_h)

    # -- shapes and shardings --
    @property
    def num_devices(self) -> int:
        return parallel.num_devices(self.mesh)

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
        rep = NamedSharding(self.mesh, P())
        stacked = NamedSharding(self.mesh, P(AXIS))
        imitator = jax.tree_util.tree_map(lambda x: jax.device_put(x, stacked), state.imitator)
        rest = {f: jax.tree_util.tree_map(lambda x: jax.device_put(x, rep), getattr(state, f))
                for f in ("estimator", "hallucinator", "references", "imitated", "segments", "generated", "real2d",
                          "rng", "round", "phase_step")}
        return state.replace(imitator=imitator, **rest)

    # -- init --
    def init_estimator(self, rng: jax.Array):
        from ptjax import estimator as est
        return est.init(rng, self.config.estimator)

    def init_hallucinator(self, rng: jax.Array):
        from ptjax import hallucinator as H
        return H.init(rng, self.config.hallucinator)

    def library(self, refs) -> Any:
        return self.imitator.library(refs, max_frames=self.max_frames, num_takes=len(self.takes))

    def cold_start_library(self, seed: int):
        from ptjax.imitator import retarget
        rng = np.random.default_rng([seed, 0])
        trajs = random_root_trajectories(rng, len(self.takes), self.max_frames, self.fps, self.config.cold_start)
        rest = np.asarray(self.imitator.humanoid.rest_qpos())
        refs = [retarget.reference_from_qpos(self.imitator.humanoid, cold_start_qpos(rest, t), self.fps)
                for t in trajs]
        return self.library(refs)

    def init(self, rng: jax.Array) -> CoEvolutionState:
        from ptjax.estimator import pack_keypoints
        k_e, k_i, k_h, k_state = jax.random.split(rng, 4)
        library = self.cold_start_library(int(self.config.seed))
        n_takes = len(self.takes)
        state = CoEvolutionState(
            estimator=self.init_estimator(k_e),
            imitator=self.imitator.init(k_i, library),
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
    def _ppo_sharded(self):
        ppo = self.imitator.ppo

        def per_device(i_state, refs):
            i_state = jax.tree_util.tree_map(lambda x: x[0], i_state)
            new, metrics = ppo.update(i_state, refs, axis_name=AXIS)
            return (jax.tree_util.tree_map(lambda x: x[None], new),
                    jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], metrics))

        return jax.shard_map(per_device, mesh=self.mesh, in_specs=(P(AXIS), P()), out_specs=(P(AXIS), P(AXIS)),
                             check_vma=False)

    def _replicated_learner(self, update):
        return jax.shard_map(lambda s, b: update(s, b, axis_name=AXIS), mesh=self.mesh, in_specs=(P(), P(AXIS)),
                             out_specs=(P(), P()), check_vma=False)

    def estimator_batch(self, rng: jax.Array, spec, imitated: MotionBuffer, real2d: MotionBuffer) -> dict:
        """World windows of E's receptive field from the imitated motion (+ real 2D windows for D_cam)."""
        rf, b = spec.receptive_field, int(self.config.estimator_batch)
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
            new, metrics = self._ppo_sharded()(learner, data["references"])
            metrics = jax.tree_util.tree_map(lambda x: x[0], metrics)
        elif phase == "estimator":
            batch = self.estimator_batch(k_batch, learner.spec, data["imitated"], data["real2d"])
            new, metrics = self._replicated_learner(est.update)(learner, batch)
        elif phase == "hallucinator":
            batch = H.sample_batch(k_batch, data["segments"], int(self.config.hallucinator_batch), learner.config)
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
        from ptjax import estimator as est
        motions = []
        for take in self.takes:
            cam = est.predict(state.estimator, take.keypoints2d)["joints3d"]
            world = smooth_motion(est.camera_to_world(cam), take.fps, self.config.lift_root_smoothing_s,
                                  self.config.lift_pose_smoothing_s)
            motions.append(Motion(take.name, take.fps, world))
        refs = self.imitator.references(motions)
        ik = float(np.mean([float(jnp.mean(r.ik_error)) for r in refs]))
        # Diagnostics only (the takes' 3D never enters a loss): how good E's lifts of the training takes are.
        train_eval = est.evaluate(state.estimator, self.takes)["mean"]
        info = {"ik_error_mm": ik * 1000, "train_takes_mpjpe_mm": train_eval["mpjpe"],
                "train_takes_p_mpjpe_mm": train_eval["p_mpjpe"]}
        return state.replace(references=self.library(refs)), info

    def rollout(self, state: CoEvolutionState, count: int
                ) -> tuple[list[np.ndarray], dict, list[np.ndarray], Any]:
        """Fail-safe rollouts of the first `count` references: (simulated joints per take, summary, per-take
        reset flags per frame, the whole `RolloutResult`)."""
        result = self.imitator.evaluate(state.imitator, state.references)
        joints, lengths = np.asarray(result.joints), np.asarray(result.lengths)
        mask = np.asarray(result.reset_mask)
        summary = result.summary(count=count)
        summary.pop("takes")
        return ([joints[i, :lengths[i]] for i in range(count)], summary,
                [mask[i, :lengths[i]] for i in range(count)], result)

    def new_round_motion(self, previous: MotionBuffer, seqs: Sequence[np.ndarray], round_index: int
                         ) -> MotionBuffer:
        """E's motion buffer for a round: this round's rollouts of the takes in the first block, the earlier rounds'
        blocks moved one block on (the oldest dropped); round 0's cold-start walks are never replayed."""
        block = self.imitated_block
        buffer = fill_buffer(empty_buffer(previous.num_takes, self.max_frames, self.fps), seqs)
        if round_index < 2 or previous.num_takes == block:
            return buffer
        joints, lengths = np.array(buffer.joints), np.array(buffer.lengths)
        joints[block:] = np.asarray(previous.joints)[:-block]
        lengths[block:] = np.asarray(previous.lengths)[:-block]
        return buffer.replace(joints=jnp.asarray(joints), lengths=jnp.asarray(lengths))

    def segment_motions(self, state: CoEvolutionState) -> list[Motion]:
        joints, lengths = np.asarray(state.segments.joints), np.asarray(state.segments.lengths)
        return [Motion(f"imitated_{i:04d}", self.fps, joints[i, :n]) for i, n in enumerate(lengths) if n > 0]

    def fill_segments(self, state: CoEvolutionState, seqs, reset_flags) -> tuple[CoEvolutionState, dict]:
        """Cut the rollouts at their fail-safe resets (a reset teleports the body: no motion to learn from) and keep
        the longest pieces that hold at least one hallucinator training window."""
        from ptjax.hallucinator.train import min_frames
        pieces = cut_at_resets(seqs, reset_flags, min_frames(self.config.hallucinator))
        capacity = state.segments.num_takes
        buffer = fill_buffer(empty_buffer(capacity, self.max_frames, self.fps), pieces[:capacity])
        info = {"segments": min(len(pieces), capacity),
                "segment_frames": int(sum(len(p) for p in pieces[:capacity]))}
        return state.replace(segments=self._replicate(buffer)), info

    def hallucinate(self, state: CoEvolutionState, log=None, progress: bool = True) -> tuple[CoEvolutionState, dict]:
        """H from scratch (as the original) on the imitated motion, then new samples into `generated`."""
        from ptjax import hallucinator as H
        if int(np.sum(np.asarray(state.segments.lengths) > 0)) == 0:
            empty = empty_buffer(len(self.takes), self.max_frames, self.fps)
            return state.replace(generated=self._replicate(empty)), {
                "skipped": "no imitated segment without a fail-safe reset is long enough for a training window"}
        rng, k_init, k_sample = jax.random.split(state.rng, 3)
        state = state.replace(rng=rng, hallucinator=self._replicate(self.init_hallucinator(k_init)))
        state, last = self.learn(state, "hallucinator", int(self.config.hallucinator_steps), log, progress)
        hc = state.hallucinator.config
        train = self.segment_motions(state)
        np_rng = np.random.default_rng([int(self.config.seed), int(state.round), 1])
        start = H.start_windows_from(train, np_rng, self.num_hallucinated, hc.context)
        samples = H.sample(state.hallucinator, k_sample, start, target_pool=train)
        seqs = [m.joints[:self.max_frames] for m in samples]
        generated = fill_buffer(empty_buffer(len(self.takes), self.max_frames, self.fps), seqs)
        stats = H.measures([Motion(m.name, m.fps, s) for m, s in zip(samples, seqs)], hc.fps, reference=train,
                           window=hc.measures.window, stride=hc.measures.stride, skip=hc.context)
        keys = ("bone_length_dev_max_m", "skating_mps", "penetration_frames", "limit_any", "diversity_m",
                "reference_diversity_m", "nearest_reference_mean_m", "seconds_mean")
        info = {"g_total": last.get("g_total"), **{k: stats[k] for k in keys if k in stats}}
        return state.replace(generated=generated), info

    def refine(self, state: CoEvolutionState, log=None, progress: bool = True) -> tuple[CoEvolutionState, dict]:
        """I imitates the hallucinated motion; what it imitates without a fail-safe reset joins E's training motion
        (config `refine_keep`: the reset-free pieces, or only whole samples without a reset as the original)."""
        lengths = np.asarray(state.generated.lengths)
        joints = np.asarray(state.generated.joints)
        motions = [Motion(f"hallucinated_{i:04d}", self.fps, joints[i, :n]) for i, n in enumerate(lengths) if n > 0]
        if not motions:
            return state, {"kept": 0, "sampled": 0}
        takes_library = state.references
        state = state.replace(references=self.library(self.imitator.references(motions)))
        if self.config.refine_iterations:
            state, _ = self.learn(state, "imitator", int(self.config.refine_iterations), log, progress)
        seqs, summary, flags, _ = self.rollout(state, len(motions))
        if self.config.refine_keep == "takes":
            kept = [seq for seq, f in zip(seqs, flags) if not f.any()]
        else:
            kept = cut_at_resets(seqs, flags, int(state.estimator.spec.receptive_field))[:self.num_hallucinated]
        n = len(self.takes)
        imitated = np.asarray(state.imitated.lengths).copy()
        imitated[n:self.imitated_block] = 0  # this round's refined slots only: later blocks are replayed rounds
        imitated = fill_buffer(state.imitated.replace(lengths=jnp.asarray(imitated)), kept, offset=n)
        info = {"kept": len(kept), "kept_frames": int(sum(len(k) for k in kept)), "sampled": len(motions),
                "clean_samples": int(sum(not f.any() for f in flags)),
                **{f"imitator_{k}": v for k, v in summary.items()}}
        return state.replace(imitated=imitated, references=takes_library), info

    def estimate(self, state: CoEvolutionState, log=None, progress: bool = True) -> tuple[CoEvolutionState, dict]:
        from ptjax import estimator as est
        if self.config.estimator_from_scratch:
            rng, k_init = jax.random.split(state.rng)
            state = state.replace(rng=rng, estimator=self._replicate(self.init_estimator(k_init)))
        elif int(state.round) > 0:  # warm start: last round's networks, a fresh schedule
            state = state.replace(estimator=self._replicate(est.restart_optimizers(state.estimator)))
        state, last = self.learn(state, "estimator", int(self.config.estimator_steps), log, progress)
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

    def _replicate(self, tree):
        return jax.tree_util.tree_map(lambda x: jax.device_put(x, NamedSharding(self.mesh, P())), tree)

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
        return render.motion_video(self.imitator.humanoid.model, np.asarray(result.qpos[0, :n]), path, fps=self.fps,
                                   reference_qpos=np.asarray(references.qpos[0, :n]),
                                   max_frames=int(self.config.gif_frames), fallback=lambda: None)


def smooth_motion(joints: np.ndarray, fps: float, root_sigma_s: float, pose_sigma_s: float) -> np.ndarray:
    """(T, 17, 3) world joints with the root (Hip) trajectory and the root-relative pose each low-passed by a
    Gaussian of the given sigma in seconds (0 = unchanged). A lifted depth jitters from frame to frame; the body
    cannot follow a root that jumps back and forth, and every such frame risks a fail-safe reset."""
    from scipy.ndimage import gaussian_filter1d
    joints = np.asarray(joints, np.float64)
    root, rel = joints[:, :1], joints - joints[:, :1]
    if root_sigma_s > 0:
        root = gaussian_filter1d(root, root_sigma_s * fps, axis=0, mode="nearest")
    if pose_sigma_s > 0:
        rel = gaussian_filter1d(rel, pose_sigma_s * fps, axis=0, mode="nearest")
    return (root + rel).astype(np.float32)


def _cut_take(take: Take, max_frames: int) -> Take:
    if len(take.keypoints2d) <= max_frames:
        return take
    return dataclasses.replace(take, keypoints2d=take.keypoints2d[:max_frames], joints_cam=take.joints_cam[:max_frames])


def _resample(x: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear resampling of (T, ...) along time."""
    if abs(fps_in - fps_out) < 1e-9 or len(x) < 2:
        return np.asarray(x, np.float32)
    t_out = np.arange(0.0, (len(x) - 1) / fps_in + 1e-9, 1.0 / fps_out) * fps_in
    i0 = np.minimum(np.floor(t_out).astype(int), len(x) - 2)
    w = (t_out - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return ((1 - w) * x[i0] + w * x[i0 + 1]).astype(np.float32)


def load_takes(config) -> tuple[list[Take], list]:
    """(training 2D takes, held-out evaluation takes) of `config.data.source`.

    "clips": the training clips seen by `num_cameras` fixed cameras (cut to max_frames, or with `chunks_per_clip` N
    cut into N evenly spaced pieces of max_frames) and the held-out clips by `heldout_cameras`. "h36m": a user's Human3.6M files in VideoPose3D's npz layout (`h36m_dir`, `keypoints`
    "gt" or a detector's name): the 2D of the training subjects, every camera, resampled to data.fps and cut into
    takes of max_frames (PoseTriplet's setting; their 3D is only used for diagnostics), and the S9/S11 protocol
    sequences for evaluation."""
    d = config.data
    fps = float(d.fps)
    source = d.get("source", "clips")
    if source == "clips":
        clips = load_clips(d.train_clips)
        if int(d.get("chunks_per_clip", 0)):
            clips = chunk_motions(clips, int(d.max_frames), int(d.chunks_per_clip), fps)
        takes = [_cut_take(t, d.max_frames) for t in
                 make_takes(clips, num_cameras=int(d.num_cameras), fps=fps)]
        heldout = make_takes(load_clips(d.heldout_clips), num_cameras=int(d.heldout_cameras))
        return takes, heldout
    if source != "h36m":
        raise ValueError(f"data.source must be 'clips' or 'h36m', got {source!r}")
    from ptjax.data import h36m
    if not d.get("h36m_dir"):
        raise ValueError("data.source='h36m' needs data.h36m_dir (the folder with data_3d_h36m.npz and "
                         "data_2d_h36m_<keypoints>.npz)")
    train = h36m.sequences(d.h36m_dir, d.keypoints, subjects=tuple(d.h36m_train_subjects), downsample=1)
    takes = []
    for seq in train:
        kp = _resample(np.asarray(seq.keypoints2d), seq.fps, fps)
        cam = _resample(np.asarray(seq.joints3d), seq.fps, fps)
        for k, start in enumerate(range(0, max(len(kp) - 30, 0) + 1, int(d.max_frames))):
            end = start + int(d.max_frames)
            takes.append(Take(name=f"{seq.name}/{k}", fps=fps, keypoints2d=kp[start:end], joints_cam=cam[start:end],
                              rotation=np.eye(3, dtype=np.float32), position=np.zeros(3, np.float32)))
    if d.get("max_takes"):
        takes = takes[:int(d.max_takes)]
    return takes, h36m.eval_sequences(d.h36m_dir, d.keypoints)


def _headline(phase: str) -> tuple[str, ...]:
    return {"imitator": ("reward", "episode_length"), "estimator": ("loss_pose",),
            "hallucinator": ("g_total",)}[phase]


def phases_of_round(config, round_index: int) -> list[str]:
    out = []
    for name in PHASES:
        if name == "lift" and round_index == 0:
            continue
        if name in ("hallucinate", "refine") and (round_index == 0 or round_index < config.hallucinate_from):
            continue
        if name == "refine" and config.refine_iterations < 0:
            continue
        out.append(name)
    return out


# --- the driver -----------------------------------------------------------------------------------------------------

def run(config: ml_collections.ConfigDict, workdir: str, resume: bool = False, progress: bool = True,
        stop_after: tuple[int, str] | None = None) -> list[dict]:
    """Round 0 and `config.num_rounds` rounds (module docstring). Writes WORKDIR/metrics.json (one entry per
    round), WORKDIR/tensorboard, WORKDIR/round_N.gif, WORKDIR/checkpoints (every phase boundary). `stop_after`
    (round, phase) returns right after that phase's checkpoint, as a kill there would leave the workdir.

    In a multi-process job (`ptjax.distributed`) every process runs this with the same arguments and a shared
    WORKDIR; process 0 alone writes the files, every process joins the checkpoints."""

    main = training.is_main_process()
    progress = progress and main

    co = CoEvolution.create(config)
    os.makedirs(workdir, exist_ok=True)
    ckdir = os.path.abspath(os.path.join(workdir, "checkpoints"))
    meta = {"round": 0, "next_phase": 0, "checkpoint": 0, "history": [], "current": {}, "learner_steps": {},
            "num_devices": co.num_devices}
    latest = ckpt_lib.latest_step(ckdir) if os.path.isdir(ckdir) else None
    if latest is not None:
        if not resume:
            raise FileExistsError(f"{workdir!r} already holds a run's checkpoints: pass --resume to continue it, "
                                  "or choose a new workdir")
        meta = ckpt_lib.load_metadata(ckdir, latest)
        if meta is None:
            raise FileNotFoundError(f"checkpoint {latest} in {ckdir!r} has no metadata sidecar")
        written_on = meta.setdefault("num_devices", co.num_devices)  # older runs did not record it
        if written_on != co.num_devices:
            raise ValueError(f"{workdir!r} was checkpointed on {written_on} devices and this job has "
                             f"{co.num_devices}: I's state holds one row of humanoids per device, so resume with "
                             f"{written_on} devices in total, split over any number of processes (num_devices="
                             f"{written_on}, or PTJAX_CPU_DEVICES on CPU)")
    state = co.init(jax.random.PRNGKey(int(config.seed)))
    if latest is not None:
        state, _ = ckpt_lib.restore(ckdir, state, latest)
        state = co.place(state)
    elif resume and main:
        print(f"coevolve: no checkpoint in {workdir!r}; starting a new run")
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
                state = state.replace(round=jnp.asarray(r, jnp.int32))
                if name == "lift":
                    state, current["lift"] = co.lift(state)
                elif name == "imitate":
                    fresh = config.imitator_from_scratch or (r == 1 and config.imitator_reinit_after_cold_start)
                    if r > 0 and fresh:
                        rng, k = jax.random.split(state.rng)
                        state = co.place(state.replace(rng=rng, imitator=co.imitator.init(k, state.references)))
                    n = config.imitator_iterations_round0 if r == 0 else config.imitator_iterations
                    state, last = co.learn(state, "imitator", int(n), log, progress)
                    current["imitator_training"] = {k: last[k] for k in ("reward", "episode_length",
                                                                           "episode_return") if k in last}
                elif name == "rollout":
                    seqs, summary, flags, result = co.rollout(state, len(co.takes))
                    if config.gif and main:
                        physics = co.physics_picture(result, state.references,
                                                     os.path.join(workdir, f"round_{r}_physics.gif"))
                        if physics:
                            current["physics_gif"] = os.path.basename(physics)
                    state = state.replace(imitated=co._replicate(co.new_round_motion(state.imitated, seqs, r)))
                    state, segments = co.fill_segments(state, seqs, flags)
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
                current["phase_seconds"][name] = round(time.time() - t0, 2)
                state = co.place(state)
                if name == "evaluate":
                    current["round_seconds"] = round(sum(current["phase_seconds"].values()), 2)
                    meta["history"].append(current)
                    _log_round(writer, current)
                    if progress:
                        print(format_round(current), flush=True)
                    meta["round"], meta["next_phase"], meta["current"] = r + 1, 0, {}
                else:
                    meta["next_phase"] = index + 1
                meta["checkpoint"] += 1
                ckpt_lib.save(ckdir, meta["checkpoint"], state, metadata=meta, max_to_keep=config.max_to_keep)
                training.write_json(os.path.join(workdir, "metrics.json"), meta["history"])
                if stop_after is not None and tuple(stop_after) == (r, name):
                    return meta["history"]
    finally:
        writer.close()
    training.write_json(os.path.join(workdir, "metrics.json"), meta["history"])
    return meta["history"]


def _log_round(writer, record: dict) -> None:
    r = record["round"]
    for group in ("estimator", "imitator", "hallucinator", "refine", "lift"):
        for k, v in (record.get(group) or {}).items():
            if isinstance(v, (int, float)) and v is not None:
                writer.scalar(f"round/{group}/{k}", v, r)
    for k, v in record["phase_seconds"].items():
        writer.scalar(f"round/seconds/{k}", v, r)


def _kept(refine: dict) -> str:
    """'kept/sampled', with the kept frames where the pieces of the rollouts are kept."""
    text = f"{refine.get('kept', 0)}/{refine.get('sampled', 0)}"
    return text + (f" ({refine['kept_frames']} fr)" if "kept_frames" in refine else "")


def format_round(record: dict) -> str:
    e, i = record.get("estimator", {}), record.get("imitator", {})
    h = record.get("hallucinator")
    parts = [f"round {record['round']}: held-out MPJPE {e.get('mpjpe_mm', float('nan')):.1f} mm, "
             f"P-MPJPE {e.get('p_mpjpe_mm', float('nan')):.1f} mm",
             f"imitator success {i.get('success_rate', float('nan')):.2f}, "
             f"MPJPE {i.get('mpjpe_mm', float('nan')):.1f} mm, "
             f"{i.get('resets', 0)} resets, residual force {i.get('residual_force_n', float('nan')):.0f} N"]
    if h and "skipped" in h:
        parts.append(f"hallucinator skipped ({h['skipped']})")
    elif h:
        parts.append(f"hallucinated bone dev {h.get('bone_length_dev_max_m', float('nan')) * 100:.2f} cm, "
                     f"kept {_kept(record.get('refine') or {})}")
    parts.append(f"{record.get('round_seconds', 0):.0f} s")
    return "; ".join(parts)


def format_table(history: Sequence[dict]) -> str:
    """The README's per-round table (markdown)."""
    rows = ["| round | held-out MPJPE (mm) | held-out P-MPJPE (mm) | detector-like 2D P-MPJPE (mm) | I success | I MPJPE (mm) | I resets | "
            "I residual force (N / N m) | H bone dev (cm) | H skating (m/s) | H kept | E / I / H seconds | "
            "round seconds |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for rec in history:
        e, i, h, s = rec.get("estimator", {}), rec.get("imitator", {}), rec.get("hallucinator"), rec["phase_seconds"]
        ref = rec.get("refine") or {}
        hb = f"{h['bone_length_dev_max_m'] * 100:.2f}" if h and "bone_length_dev_max_m" in h else "-"
        skate = f"{h['skating_mps']:.2f}" if h and "skating_mps" in h else "-"
        kept = _kept(ref) if ref else "-"
        times = (f"{s.get('estimate', 0):.0f} / {s.get('imitate', 0) + s.get('rollout', 0):.0f} / "
                 f"{s.get('hallucinate', 0) + s.get('refine', 0):.0f}")
        rows.append(f"| {rec['round']} | {e.get('mpjpe_mm', float('nan')):.1f} | {e.get('p_mpjpe_mm', float('nan')):.1f} "
                    f"| {e.get('detector_like_p_mpjpe_mm', float('nan')):.1f} | {i.get('success_rate', float('nan')):.2f} | {i.get('mpjpe_mm', float('nan')):.1f} "
                    f"| {i.get('resets', '-')} | {i.get('residual_force_n', float('nan')):.0f} / "
                    f"{i.get('residual_torque_nm', float('nan')):.0f} | {hb} | {skate} | {kept} "
                    f"| {times} | {rec.get('round_seconds', 0):.0f} |")
    return "\n".join(rows)
