"""The co-evolution's settings (`default_config`, adapted by configs/demo.py, smoke.py, h36m.py), their check, and
which phases a round runs."""

from __future__ import annotations

import ml_collections

from ptjax.data import HELDOUT_CLIPS, TRAIN_CLIPS

PHASES = ("lift", "imitate", "rollout", "hallucinate", "refine", "estimate", "evaluate")
LEARNERS = ("imitator", "hallucinator", "estimator")


def default_config() -> ml_collections.ConfigDict:
    """The co-evolution settings; configs/demo.py, smoke.py and h36m.py adapt them."""
    from ptjax import estimator as est
    from ptjax.hallucinator.config import default_config as h_default
    from ptjax.imitator.config import default_config as i_default

    c = ml_collections.ConfigDict()
    c.seed = 0
    c.num_rounds = 2                 # rounds after the cold start (round 0)
    c.num_devices = 0                # 0 = every device of the job (all processes' devices)
    c.split_takes = False            # IK and fail-safe rollouts of the takes split over the devices (each take on
                                     # one): N devices, N x the throughput; equal to one device's up to float
                                     # rounding, not bit for bit, so the CPU demo's figures were measured without
    c.data = ml_collections.ConfigDict(dict(
        train_clips=tuple(TRAIN_CLIPS), heldout_clips=tuple(HELDOUT_CLIPS),
        num_cameras=2,               # fixed cameras per training clip: the 2D takes
        heldout_cameras=4,
        fps=30.0,                    # control rate of I, frame rate of every buffer
        max_frames=150,              # takes are cut to this many frames (one compiled shape)
        source="clips",              # "clips" (bundled) | "h36m" (a user's VideoPose3D npz files)
        h36m_dir="", keypoints="gt", h36m_train_subjects=("S1", "S5", "S6", "S7", "S8"),
        max_takes=0,                 # 0 = every take; N = the first N (either source)
        chunks_per_clip=0))          # "clips": 0 = a clip's first max_frames; N = N evenly spaced pieces of it
    c.cold_start = ml_collections.ConfigDict(dict(
        num_points=6, scale_start=2.0, scale_end=4.0, speed=(0.5, 1.3),
        bob_amplitude=(0.01, 0.03), bob_period=(25.0, 50.0), smoothing_s=0.3, max_turn_rate=2.0))
    c.lift_root_smoothing_s = 0.1    # Gaussian sigma (s) on the lifted root trajectory before IK (0 = off)
    c.lift_pose_smoothing_s = 0.0    # ... and on the joints relative to the root
    c.estimator = est.default_config()
    c.estimator.optim.num_epochs = 4       # E's updates per round: num_epochs x steps_per_epoch (`estimator_steps`)
    c.estimator.optim.steps_per_epoch = 500
    c.estimator.train.batch_size = 256     # E's batch (`estimator_batch`)
    c.replay_rounds = 1              # E also trains on the imitated motion (takes + refined pieces) of this many
                                     # earlier rounds; round 0's cold-start walks are never replayed (the original:
                                     # 0, only the current round's)
    c.estimator_from_scratch = True  # the original re-trains E from scratch every round; False: E starts from
                                     # the last round's networks with a fresh optimiser and schedule
    c.imitator = i_default()
    c.imitator.retarget.ground = "frame"   # lifted takes: every frame on the ground (the original's choice, §2.6)
    c.imitator.iterations = 40       # PPO updates per round after round 0 (`imitator_iterations`)
    c.imitator_iterations_round0 = 40
    c.imitator_from_scratch = False  # I keeps its policy across rounds (starts from the previous round's)
    c.imitator_reinit_after_cold_start = True  # ... except round 1's: the cold start's policy walks a rest pose
                                     # along paths, another task; from it, I tracked the lifted takes worse
    c.imitator.policy_init_scale = 0.01  # start from the plain PD tracker (docs/imitator.md)
    c.imitator.env.failsafe_pose = "reference"  # fail-safe resets restore the reference's state (docs/imitator.md)
    c.hallucinator = h_default()
    c.hallucinate_from = 1           # first round with H (the original: round 3)
    c.hallucinator.train.steps = 500       # H's updates per round (`hallucinator_steps`)
    c.hallucinator.train.batch_size = 32
    c.sample_on_device = False       # H's start windows and target pool from the imitated segments, its clean-up
                                     # and measures: on device, no per-sample loop (configs/gpu.py, h36m.py)
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
    share_seed_and_fps(c)
    c.lock()  # a misspelt key in a config file is an error, not a new field
    return c


def share_seed_and_fps(c: ml_collections.ConfigDict, components=("estimator", "imitator", "hallucinator")
                       ) -> ml_collections.ConfigDict:
    """One seed and one frame rate: the components' own `seed` (and the imitator's and hallucinator's `fps`) become
    references to the co-evolution's `seed` and `data.fps` (an override of either reaches them; setting one of
    theirs sets the shared value). A config file that replaces a component (`c.hallucinator = paper_config()`)
    calls this for that component; `check_config` refuses a disagreement."""
    for name in components:
        c[name].seed = c.get_ref("seed")
        if name != "estimator":  # E's data.fps is its rate augmentation, not the co-evolution's frame rate
            c[name].fps = c.data.get_ref("fps")
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
    copies = [(f"{n}.seed", c[n].seed, c.seed) for n in ("estimator", "imitator", "hallucinator")]
    copies += [(f"{n}.fps", c[n].fps, c.data.fps) for n in ("imitator", "hallucinator")]
    for key, value, shared in copies:
        need(value == shared, f"{key} ({value}) differs from the co-evolution's ({shared}): a config file that "
                              "replaces a component calls coevolve.share_seed_and_fps(config) after it")
    need(c.data.source != "clips" or not set(c.data.train_clips) & set(c.data.heldout_clips),
         f"clips in both splits: {sorted(set(c.data.train_clips) & set(c.data.heldout_clips))}")
    counts = {"estimator.optim.num_epochs": c.estimator.optim.num_epochs,
              "estimator.optim.steps_per_epoch": c.estimator.optim.steps_per_epoch,
              "imitator.iterations": c.imitator.iterations, "imitator_iterations_round0": c.imitator_iterations_round0,
              "hallucinator.train.steps": c.hallucinator.train.steps, "steps_per_call": c.steps_per_call,
              "log_every": c.log_every}
    for k, v in counts.items():
        need(isinstance(v, int) and v >= 1, f"{k} must be a positive integer, got {v!r}")
    need(isinstance(c.get("split_takes", False), bool),
         f"split_takes must be True or False, got {c.get('split_takes')!r}")
    need(c.imitator.retarget.get("ik_jacobian", "autodiff") in ("autodiff", "geometric"),
         f"imitator.retarget.ik_jacobian must be 'autodiff' or 'geometric', got "
         f"{c.imitator.retarget.get('ik_jacobian')!r}")
    need(c.imitator.retarget.get("prepare", "host") in ("host", "device"),
         f"imitator.retarget.prepare must be 'host' or 'device', got {c.imitator.retarget.get('prepare')!r}")
    need(isinstance(c.get("sample_on_device", False), bool),
         f"sample_on_device must be True or False, got {c.get('sample_on_device')!r}")
    need(c.refine_iterations >= 0 and c.num_hallucinated >= 0, "refine_iterations/num_hallucinated must be >= 0")
    need(isinstance(c.replay_rounds, int) and c.replay_rounds >= 0,
         f"replay_rounds must be an integer >= 0, got {c.replay_rounds!r}")
    need(c.refine_keep in ("pieces", "takes"), f"refine_keep must be 'pieces' or 'takes', got {c.refine_keep!r}")
    for k, b in (("estimator.train.batch_size", estimator_batch(c)), ("hallucinator.train.batch_size",
                                                                        hallucinator_batch(c))):
        need(b >= num_devices and b % num_devices == 0,
             f"{k} ({b}) must be a positive multiple of the device count ({num_devices})")
    spec_frac = c.estimator.pairs.random_camera_fraction
    if c.estimator.pairs.adversarial:
        b = estimator_batch(c)
        n_adv = b - (int(round(b * spec_frac)) if c.estimator.pairs.random_camera else 0)
        need(n_adv % num_devices == 0 and n_adv > 0,
             f"the adversarial share of estimator.train.batch_size ({n_adv}) must be a positive multiple of the "
             "device count")
    need(c.cold_start.scale_end >= c.cold_start.scale_start > 0, "cold_start scales must be positive, increasing")
    for k in ("lift_root_smoothing_s", "lift_pose_smoothing_s"):
        need(c[k] >= 0, f"{k} must be >= 0 seconds, got {c[k]}")



# The counts a round runs are read from the component configs (one place each, so they cannot disagree): E's
# learning-rate schedule spans optim.num_epochs x steps_per_epoch, H's decays over train.steps (or optim.decay_steps).

def estimator_steps(c: ml_collections.ConfigDict) -> int:
    """E's updates per round: estimator.optim.num_epochs x estimator.optim.steps_per_epoch."""
    return int(c.estimator.optim.num_epochs) * int(c.estimator.optim.steps_per_epoch)


def estimator_batch(c: ml_collections.ConfigDict) -> int:
    return int(c.estimator.train.batch_size)


def hallucinator_steps(c: ml_collections.ConfigDict) -> int:
    return int(c.hallucinator.train.steps)


def hallucinator_batch(c: ml_collections.ConfigDict) -> int:
    return int(c.hallucinator.train.batch_size)


def imitator_iterations(c: ml_collections.ConfigDict, round_index: int) -> int:
    """PPO updates in round `round_index`: imitator_iterations_round0 in the cold start, imitator.iterations after."""
    return int(c.imitator_iterations_round0 if round_index == 0 else c.imitator.iterations)


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

