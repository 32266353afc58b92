"""Supervised upper bound of the estimator on the bundled clips, sized for a 2-core CPU (<= 20 minutes).

    ptjax estimator train --config configs/estimator_clips.py --workdir runs/estimator_clips
    ptjax estimator train --config configs/estimator_clips.py:large --workdir runs/estimator_large
    ptjax estimator train --config configs/estimator_clips.py:large_detector --workdir runs/estimator_large_det

Trains PoseNet + TrajNet on the 15 training clips (ptjax.data.TRAIN_CLIPS) through PoseTriplet's random virtual
cameras (no adversarial camera: there is no unpaired 2D in this setting) and evaluates on the 5 held-out clips
(ptjax.data.HELDOUT_CLIPS) seen by 4 fixed cameras (ptjax.data.takes.make_takes). Differences from the paper's
setting (`configs/estimator_clips.py:paper`, ptjax.estimator.default_config()): 256/128 channels, batch 256,
7500 steps, lr 1e-3, dropout 0.1, MPJPE loss, mirrored motion, frame-rate augmentation.

Variants: `large` trains on the larger split (ptjax.data.LARGE_TRAIN_CLIPS: 8.8x the bundled frames) and scores
ptjax.data.LARGE_HELDOUT_CLIPS; `detector` and `large_detector` add detector-like 2D errors to half of the training
pairs (pairs.detector_noise_fraction, ptjax.detector_noise). Every run scores clean and detector-like held-out 2D.
"""

from ptjax.data import LARGE_HELDOUT_CLIPS, LARGE_TRAIN_CLIPS
from ptjax.estimator import default_config

VARIANTS = ("cpu", "paper", "large", "detector", "large_detector")


def get_config(variant: str = "cpu"):
    config = default_config()
    if variant == "paper":  # the paper's 27-frame, 1024-channel model and schedule (GPU)
        config.pairs.adversarial = False
        return config
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: use one of {VARIANTS} (default 'cpu')")
    if variant.startswith("large"):
        config.data.train_clips = tuple(LARGE_TRAIN_CLIPS)
        config.data.heldout_clips = tuple(LARGE_HELDOUT_CLIPS)
    if variant.endswith("detector"):
        config.pairs.detector_noise_fraction = 0.5
    config.model.channels = 256
    config.model.traj_channels = 128
    config.model.dropout = 0.1         # a narrow network needs less of it
    config.loss.pose = "mpjpe"         # VideoPose3D's loss: better MPJPE than PoseTriplet's MSE here
    config.optim.lr = 1e-3
    config.pairs.adversarial = False
    config.pairs.mirror = True         # doubles 15 clips' worth of motion (a kick with either leg)
    config.pairs.center_jitter = 1.0   # the held-out takes' fixed cameras see subjects up to ~1.4 m off-centre
    config.data.fps = (24.0, 30.0, 45.0, 60.0)  # held-out takes run at 30 and 60 fps
    config.train.batch_size = 256
    config.optim.num_epochs = 50
    config.optim.steps_per_epoch = 150
    config.train.steps_per_call = 25
    config.train.log_every = 50
    config.train.eval_every = 1000
    config.train.checkpoint_every = 1000
    return config
