"""Accelerator sizes for the co-evolution on the bundled clips and the larger split: thousands of humanoids, E and H
batches of 1,024 and the paper's network sizes (reference/posetriplet.md), with a demo-like schedule per round.

    ptjax coevolve --config configs/gpu.py --workdir runs/gpu            # the larger split, 1 camera per clip
    python benchmarks/round.py --config configs/gpu.py --takes 600 --frames 1000

For Human3.6M itself use configs/h36m.py (the same sizes, the paper's schedule). These sizes are meant for one
accelerator or more; on a CPU a round takes hours.
"""

from ptjax.coevolve import default_config, share_seed_and_fps
from ptjax.data import LARGE_HELDOUT_CLIPS, LARGE_TRAIN_CLIPS
from ptjax.hallucinator import paper_config


def get_config(variant: str = ""):
    if variant:
        raise ValueError(f"configs/gpu.py has no variant {variant!r}")
    c = default_config()
    c.num_rounds = 3
    c.data.train_clips = tuple(LARGE_TRAIN_CLIPS)
    c.data.heldout_clips = tuple(LARGE_HELDOUT_CLIPS)
    c.data.num_cameras = 1
    c.data.max_frames = 300
    c.split_takes = True              # with several accelerators, each solves and rolls out its share of the takes

    i = c.imitator                    # 4096 humanoids, the paper's policy sizes
    i.retarget.ik_jacobian = "geometric"  # the takes' IK in closed form (faster than jacfwd: docs/architecture.md)
    i.retarget.prepare = "device"     # padded takes -> prepared, IK-fitted, the library: on device, no per-take loop
    c.sample_on_device = True         # H samples, cleans up and measures on device (docs/architecture.md)

    e = c.estimator                   # the paper's 1024-channel 27-frame estimator, batch 1024
    e.pairs.adversarial = True
    e.pairs.mirror = True
    e.optim.num_epochs = 20
    e.optim.steps_per_epoch = 250
    e.train.batch_size = 1024

    i.num_envs = 4096
    i.unroll_length = 32
    i.num_minibatches = 32
    i.num_epochs = 4
    c.imitator_iterations_round0 = 300
    i.iterations = 300

    c.hallucinator = paper_config()   # the paper's model; batch 1024 instead of its 128
    share_seed_and_fps(c, ["hallucinator"])  # the new hallucinator config follows seed and data.fps too
    c.hallucinator.model.disc_windows = "product"  # faster H steps in the scan on XLA:CPU (docs/architecture.md)
    c.hallucinate_from = 1
    c.hallucinator.train.steps = 2000
    c.hallucinator.train.batch_size = 1024
    c.refine_iterations = 20
    c.steps_per_call = 100
    return c
