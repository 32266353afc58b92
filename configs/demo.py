"""The main job on a 2-core CPU (about 15 minutes, one XLA device per core): round 0 and two co-evolution rounds on
the bundled clips.

    ptjax coevolve --config configs/demo.py --workdir runs/demo

The 15 training clips (ptjax.data.TRAIN_CLIPS) seen by 2 fixed cameras are the only input (30 2D takes, their 3D is
never used in a loss); the 5 held-out clips seen by 4 cameras are scored after every round. Sizes are cut down from
the paper's (configs/h36m.py) to fit the CPU: a 256-channel 27-frame estimator, 128 humanoids, a small hallucinator
from round 1 (the original starts it in round 3).
"""

from ptjax.coevolve import default_config
from ptjax.data import LARGE_HELDOUT_CLIPS, LARGE_TRAIN_CLIPS


def get_config(variant: str = ""):
    """`configs/demo.py` (the bundled clips) or `configs/demo.py:large`: the larger split (ptjax.data.LARGE_*), each
    new clip as 3 evenly spaced 5-second pieces and every training clip seen by one fixed camera (36 takes, about
    the demo's 30, so a round costs about the same), scored on the 7 held-out clips x 4 cameras."""
    if variant not in ("", "large"):
        raise ValueError(f"unknown demo variant {variant!r}: use '' or 'large'")
    c = default_config()
    c.num_rounds = 2
    c.data.num_cameras = 2
    c.data.max_frames = 150

    e = c.estimator  # as configs/estimator_clips.py, plus the adversarial camera fed with the takes' real 2D
    e.model.channels = 256
    e.model.traj_channels = 128
    e.model.dropout = 0.1
    e.loss.pose = "mpjpe"
    e.optim.lr = 1e-3
    e.pairs.mirror = True
    e.pairs.center_jitter = 1.0
    e.pairs.adversarial = True
    e.optim.num_epochs = 30           # 4,500 steps; why not fewer: README, "Results"
    e.optim.steps_per_epoch = 150
    e.train.batch_size = 256

    i = c.imitator
    i.num_envs = 128
    i.unroll_length = 16
    i.num_minibatches = 4
    i.num_epochs = 4
    c.imitator_iterations_round0 = 200
    i.iterations = 120

    h = c.hallucinator
    h.model.lstm_size = 256       # half the CPU default: H trains twice per demo
    h.sample.num_segments = 4     # 10 context + 4 x 30 frames = 130 frames, within max_frames
    h.train.steps = 200
    h.optim.decay_steps = 1000    # the cosine schedule of H's default 1,000 steps, cut at 200
    h.train.batch_size = 32
    h.model.disc_windows = "product"  # the discriminators' first layer as one product (docs/architecture.md)
    c.refine_iterations = 5
    c.steps_per_call = 50
    if variant == "large":
        c.data.train_clips = tuple(LARGE_TRAIN_CLIPS)
        c.data.heldout_clips = tuple(LARGE_HELDOUT_CLIPS)
        c.data.chunks_per_clip = 3
        c.data.num_cameras = 1
    return c
