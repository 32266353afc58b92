"""The paper's setting on a GPU with a user's Human3.6M files (VideoPose3D's npz layout, see docs/workflow.md).

    ptjax coevolve --config configs/h36m.py --workdir runs/h36m --config.data.h36m_dir=/path/to/h36m

2D of S1, S5, S6, S7, S8 (ground-truth 2D by default; `--config.data.keypoints=cpn_ft_h36m_dbb` for detections),
resampled to 30 fps and cut into 500-frame takes, is the only input; S9/S11 (protocol: every 2nd frame) are scored
after every round. Sizes follow reference/posetriplet.md: the 1024-channel 27-frame estimator (batch 1024, 45
epochs), 4096 humanoids, the hallucinator's paper sizes from round 3, several rounds.
"""

from ptjax.coevolve import default_config, share_seed_and_fps
from ptjax.hallucinator import paper_config


def get_config(variant: str = ""):
    c = default_config()
    c.num_rounds = 5
    c.data.source = "h36m"
    c.data.h36m_dir = ""
    c.data.keypoints = "gt"
    c.data.max_frames = 500
    c.estimator.pairs.adversarial = True
    c.estimator.optim.num_epochs = 45
    c.estimator.optim.steps_per_epoch = 500
    c.estimator.train.batch_size = 1024
    c.imitator.num_envs = 4096
    c.imitator.retarget.ik_jacobian = "geometric"  # the takes' IK in closed form (docs/architecture.md)
    c.imitator.retarget.prepare = "device"  # lift on device, E's prediction to I's library (docs/architecture.md)
    c.sample_on_device = True  # H samples, cleans up and measures on device (docs/architecture.md)
    c.imitator.unroll_length = 32
    c.imitator.num_minibatches = 32
    c.imitator.num_epochs = 4
    c.imitator_iterations_round0 = 900
    c.imitator.iterations = 3000
    c.hallucinator = paper_config()
    share_seed_and_fps(c, ["hallucinator"])  # the new hallucinator config follows seed and data.fps too
    c.hallucinator.model.disc_windows = "product"  # faster H steps in the scan on XLA:CPU (docs/architecture.md)
    c.hallucinate_from = 3
    c.hallucinator.train.steps = 20000    # the paper's constant learning rate: no schedule to cut
    c.hallucinator.train.batch_size = 64
    c.refine_iterations = 1200
    c.refine_keep = "takes"     # the original's choices; configs/demo.py keeps the reset-free pieces and replays
    c.replay_rounds = 0         # one round (README, "Results", gives the figures)
    c.steps_per_call = 100
    return c
