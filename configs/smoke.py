"""The smallest co-evolution that exercises every phase (tests and quick checks; about a minute once compiled).

    ptjax coevolve --config configs/smoke.py --workdir runs/smoke
"""

from ptjax.coevolve import default_config, share_seed_and_fps


def get_config(variant: str = ""):
    c = default_config()
    c.num_rounds = 1
    c.data.train_clips = ("walk", "kick")
    c.data.heldout_clips = ("walker_turn_right1",)
    c.data.num_cameras = 1
    c.data.heldout_cameras = 1
    c.data.max_frames = 40

    e = c.estimator
    e.model.filter_widths = (3, 3)
    e.model.channels = 32
    e.model.traj_channels = 16
    e.model.dropout = 0.0
    e.adversary.pool_size = 8
    e.adversary.hidden = 16
    e.adversary.noise_dim = 8
    e.optim.num_epochs = 2
    e.optim.steps_per_epoch = 2
    e.predict.chunk = 64
    e.train.batch_size = 16

    i = c.imitator
    i.num_envs = 16
    i.unroll_length = 8
    i.num_minibatches = 4
    i.num_epochs = 2
    i.policy_hidden = (64, 64)
    i.value_hidden = (64, 64)
    i.iterations = 2
    c.imitator_iterations_round0 = 2

    from ptjax.hallucinator import tiny_config
    c.hallucinator = tiny_config()
    share_seed_and_fps(c, ["hallucinator"])  # the new hallucinator config follows seed and data.fps too
    c.hallucinator.train.steps = 4
    c.hallucinator.optim.decay_steps = 30   # tiny_config's schedule, cut at 4 steps
    c.hallucinator.train.batch_size = 8
    c.refine_iterations = 1
    c.steps_per_call = 2
    c.gif_frames = 10
    return c
