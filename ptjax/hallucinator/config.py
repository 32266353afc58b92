"""Configuration of the hallucinator: `default_config()` (small, trains on a CPU), `paper_config()` (the original
sizes, reference/posetriplet.md section 4) and `tiny_config()` (tests)."""

from __future__ import annotations

import ml_collections

from ptjax.data import HELDOUT_CLIPS, LARGE_HELDOUT_CLIPS, LARGE_TRAIN_CLIPS, TRAIN_CLIPS


def _model_config() -> ml_collections.ConfigDict:
    """The generator and its discriminators (the original's sizes in the comments)."""
    m = ml_collections.ConfigDict()
    m.encoder_hidden = 256     # original 512
    m.encoder_out = 128        # original 256 (also the z_tta and z_target size)
    m.lstm_size = 512          # original 1536
    m.decoder_hidden = (256, 128)  # original (512, 256)
    m.residual = "hermite"    # outputs add to an analytic in-between: "hermite" (cubic, leaves the context
                              # with its velocity) or "interpolation" (linear); or to the frame ("state", RMI)
    m.target_noise = 0.5       # z_target ~ N(0, 1) scaled by 0.5 * lambda(tta)
    m.noise_start = 5.0        # lambda = 0 below 5 frames to arrival, 1 from 30
    m.noise_end = 30.0
    m.disc_hidden = (256, 128)  # per-window MLP of the motion discriminators (original 512, 256)
    m.short_kernel = 3
    m.long_kernel = 10
    m.disc_windows = "conv"    # the discriminators' first layer: "conv" or "product" (the same weights as one
                               # product of stacked windows: faster in the co-evolution on XLA:CPU; see
                               # docs/architecture.md)
    return m


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.fps = 30.0                 # training / sampling frame rate (the original's 30 Hz)
    c.context = 10               # past frames given to the generator (RMI / LaFAN1 benchmark: 10)
    c.min_transition = 5         # transition lengths L sampled in [min, max] during training (RMI: 5..30)
    c.max_transition = 30

    c.model = _model_config()

    c.loss = ml_collections.ConfigDict()
    c.loss.position = 1.0       # L1 on canonical joint positions (m)
    c.loss.rotation = 1.0       # L1 on local rotation matrices
    c.loss.root = 0.5           # L1 on the root position (m)
    c.loss.contact = 0.1        # L1 on foot contacts
    c.loss.foot_slide = 0.1     # |foot velocity (m/s)| x predicted contact
    c.loss.adversarial = 0.01   # LSGAN generator term, per discriminator
    c.loss.residual = 0.0       # squared size of the decoder's correction of the analytic base

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 1e-3           # original 1e-4 (batch 128, 100 epochs on far more data)
    c.optim.d_lr = 1e-4         # original 1e-5
    c.optim.b1 = 0.5            # Adam betas of the original
    c.optim.b2 = 0.9
    c.optim.weight_decay = 1e-5
    c.optim.grad_clip = 0.5     # global-norm clip per module, as the original
    c.optim.warmup_steps = 100
    c.optim.final_lr_ratio = 0.05  # cosine decay to lr * ratio over train.steps ...
    c.optim.decay_steps = 0        # ... or over this many steps (0: train.steps), for runs cut short of a schedule

    c.data = ml_collections.ConfigDict()
    c.data.clips = tuple(TRAIN_CLIPS)   # clips used by `ptjax hallucinate train`
    c.data.heldout_clips = tuple(HELDOUT_CLIPS)  # in-betweening evaluation and novelty calibration
    c.data.mirror = True                # left/right mirror augmentation
    c.data.reverse = False              # half the windows played backwards in time (more kinds of transition)
    c.data.speed_range = (1.0, 1.0)     # each window played at a speed log-uniform in this range (1, 1: off)
    c.data.scale_range = (1.0, 1.0)     # each window's body and path scaled by a factor in this range (1, 1: off)
    c.data.take_weight_power = 1.0      # takes drawn in proportion to their length ** power (0: every take alike)
    c.data.drop_short = False           # clips too short for one window: error (False) or dropped (True)
    c.data.contact_speed = 0.3          # foot contact label: ankle slower than this (m/s) ...
    c.data.contact_height = 0.12        # ... and lower than this (m)

    c.train = ml_collections.ConfigDict()
    c.train.steps = 1000         # held-out in-betweening gets worse with more on the 15 clips (docs/hallucinator.md)
    c.train.batch_size = 64
    c.train.log_every = 50
    c.train.checkpoint_every = 500
    c.train.eval_gaps = (5, 15, 30)     # in-betweening evaluation (held-out clips) at the end
    c.train.eval_stride = 5

    c.sample = ml_collections.ConfigDict()
    c.sample.num_samples = 32
    c.sample.num_segments = 10          # 10 x 30 frames + 10 context = 310 frames (10.3 s at 30 fps)
    c.sample.segment_length = 30        # new frames per segment (the last one is the target's arrival)
    c.sample.root_range = 1.0           # target root = current root + U(-1, 1) m along each ground axis
    c.sample.yaw_range = 60.0           # target heading = current heading + U(-60, 60) degrees
    c.sample.noise = True               # target noise at test time too, as the original
    c.sample.clean_up = True            # ground each frame and lock planted feet (ptjax.hallucinator.cleanup)
    c.sample.lock_height = 0.1          # an ankle lower than this (m) plants (standing ankles are at ~0.06 m)
    c.sample.max_reach = 0.98           # ... and is released when the leg would stretch beyond this share of it
    c.sample.max_stride = 0.45          # ... or trail the hip by more than this (m) along the ground
    c.sample.blend_frames = 4           # frames a released foot takes to swing back to its generated path
    c.sample.swing_height = 0.1         # how high (m) it is lifted on the way

    c.measures = ml_collections.ConfigDict()
    c.measures.window = 30              # windows compared for diversity / novelty
    c.measures.stride = 10
    c.measures.max_windows = 4096       # on device (measures_on_device): windows drawn for diversity / novelty ...
    c.measures.max_reference_windows = 32768  # ... and reference windows for novelty (all when they fit)
    c.lock()  # a misspelt key in a config file is an error, not a new field
    return c


def large_config() -> ml_collections.ConfigDict:
    """The larger split (ptjax.data.LARGE_TRAIN_CLIPS, 8.8x the bundled frames; scored on LARGE_HELDOUT_CLIPS),
    trained 3x longer (the bundled clips' overfitting set the default's 1,000 steps), with half the LSTM and
    without the adversarial terms: on held-out kinds of motion both bring the learned correction from a tie with
    its analytic base at 15-frame gaps to ahead of it (seeds 0-2, docs/data.md)."""
    c = default_config()
    c.data.clips = tuple(LARGE_TRAIN_CLIPS)
    c.data.heldout_clips = tuple(LARGE_HELDOUT_CLIPS)
    c.model.lstm_size = 256
    c.loss.adversarial = 0.0
    c.train.steps = 3000
    c.train.checkpoint_every = 1000
    return c


def paper_config() -> ml_collections.ConfigDict:
    """The original's sizes and optimiser (PoseTriplet `train-base-helix_k.yaml`); meant for a GPU."""
    c = default_config()
    c.model.encoder_hidden, c.model.encoder_out = 512, 256
    c.model.lstm_size = 1536
    c.model.decoder_hidden = (512, 256)
    c.model.disc_hidden = (512, 256)
    c.model.residual = "state"
    c.optim.lr, c.optim.d_lr = 1e-4, 1e-5
    c.optim.warmup_steps = 0
    c.optim.final_lr_ratio = 1.0
    c.train.batch_size = 128
    c.train.steps = 40000
    return c


def tiny_config() -> ml_collections.ConfigDict:
    """Small shapes for tests: compiles and runs in seconds."""
    c = default_config()
    c.context = 3
    c.min_transition = 2
    c.max_transition = 6
    c.model.encoder_hidden, c.model.encoder_out = 32, 16
    c.model.lstm_size = 32
    c.model.decoder_hidden = (32,)
    c.model.disc_hidden = (16,)
    c.model.short_kernel = 2
    c.model.long_kernel = 4
    c.model.noise_start, c.model.noise_end = 1.0, 4.0
    c.optim.warmup_steps = 5
    c.data.clips = ("walk", "walker_turn_left0", "kick", "cartwheel")
    c.train.steps = 30
    c.train.batch_size = 8
    c.train.log_every = 10
    c.train.checkpoint_every = 15
    c.train.eval_gaps = (2, 4)
    c.train.eval_stride = 20
    c.sample.num_samples = 4
    c.sample.num_segments = 2
    c.sample.segment_length = 5
    c.measures.window = 6
    c.measures.stride = 6
    return c


def validate(c: ml_collections.ConfigDict) -> None:
    """ValueError naming the first bad value."""
    def need(ok: bool, message: str):
        if not ok:
            raise ValueError(f"hallucinator config: {message}")
    need(c.fps > 0, f"fps must be positive, got {c.fps}")
    need(c.context >= 2, f"context must be >= 2 frames (velocities), got {c.context}")
    need(1 <= c.min_transition <= c.max_transition,
         f"need 1 <= min_transition <= max_transition, got {c.min_transition}, {c.max_transition}")
    need(c.model.encoder_out % 2 == 0 and c.model.encoder_out > 0,
         f"model.encoder_out must be a positive even number, got {c.model.encoder_out}")
    for k in ("encoder_hidden", "lstm_size"):
        need(c.model[k] > 0, f"model.{k} must be positive, got {c.model[k]}")
    need(len(c.model.decoder_hidden) > 0 and all(h > 0 for h in c.model.decoder_hidden),
         f"model.decoder_hidden must be positive sizes, got {c.model.decoder_hidden}")
    need(len(c.model.disc_hidden) > 0 and all(h > 0 for h in c.model.disc_hidden),
         f"model.disc_hidden must be positive sizes, got {c.model.disc_hidden}")
    for k in ("short_kernel", "long_kernel"):
        need(1 <= c.model[k] <= c.context + c.min_transition + 1,
             f"model.{k} must be in [1, context + min_transition + 1 = {c.context + c.min_transition + 1}], "
             f"got {c.model[k]}")
    need(c.model.get("disc_windows", "conv") in ("conv", "product"),
         f"model.disc_windows must be 'conv' or 'product', got {c.model.get('disc_windows')!r}")
    need(c.model.residual in ("hermite", "interpolation", "state"),
         f"model.residual must be 'hermite', 'interpolation' or 'state', got {c.model.residual!r}")
    need(c.model.noise_end > c.model.noise_start, "model.noise_end must exceed model.noise_start")
    need(c.model.target_noise >= 0, f"model.target_noise must be >= 0, got {c.model.target_noise}")
    for k, v in c.loss.items():
        need(v >= 0, f"loss.{k} must be >= 0, got {v}")
    need(c.optim.lr > 0 and c.optim.d_lr > 0, "optim.lr and optim.d_lr must be positive")
    need(0 <= c.optim.b1 < 1 and 0 <= c.optim.b2 < 1, "optim.b1 and optim.b2 must be in [0, 1)")
    need(c.optim.grad_clip > 0, f"optim.grad_clip must be positive, got {c.optim.grad_clip}")
    need(0 < c.optim.final_lr_ratio <= 1, "optim.final_lr_ratio must be in (0, 1]")
    need(c.optim.warmup_steps >= 0, "optim.warmup_steps must be >= 0")
    need(isinstance(c.optim.get("decay_steps", 0), int) and c.optim.get("decay_steps", 0) >= 0,
         f"optim.decay_steps must be an integer >= 0, got {c.optim.get('decay_steps')!r}")
    for k in ("speed_range", "scale_range"):
        r = tuple(c.data.get(k, (1.0, 1.0)))
        need(len(r) == 2 and 0 < r[0] <= r[1], f"data.{k} must be (lo, hi) with 0 < lo <= hi, got {r}")
    need(c.data.get("take_weight_power", 1.0) >= 0,
         f"data.take_weight_power must be >= 0, got {c.data.get('take_weight_power')}")
    need(c.data.contact_speed > 0 and c.data.contact_height > 0, "data.contact_speed/height must be positive")
    need(c.train.steps >= 1 and c.train.batch_size >= 1, "train.steps and train.batch_size must be >= 1")
    need(all(1 <= g <= c.max_transition for g in c.train.eval_gaps),
         f"train.eval_gaps must lie in [1, max_transition={c.max_transition}], got {c.train.eval_gaps}")
    need(c.train.eval_stride >= 1, "train.eval_stride must be >= 1")
    need(c.sample.num_samples >= 1 and c.sample.num_segments >= 1, "sample.num_samples/num_segments must be >= 1")
    need(2 <= c.sample.segment_length <= c.max_transition + 1,
         f"sample.segment_length must be in [2, max_transition + 1 = {c.max_transition + 1}], "
         f"got {c.sample.segment_length}")
    need(c.sample.root_range >= 0 and c.sample.yaw_range >= 0, "sample.root_range/yaw_range must be >= 0")
    if c.sample.get("clean_up", False):
        need(c.sample.lock_height > 0, f"sample.lock_height must be positive, got {c.sample.lock_height}")
        need(0 < c.sample.max_reach <= 1, f"sample.max_reach must be in (0, 1], got {c.sample.max_reach}")
        need(c.sample.max_stride > 0, f"sample.max_stride must be positive, got {c.sample.max_stride}")
        need(isinstance(c.sample.blend_frames, int) and c.sample.blend_frames >= 1,
             f"sample.blend_frames must be a positive integer, got {c.sample.blend_frames!r}")
        need(c.sample.swing_height >= 0, f"sample.swing_height must be >= 0, got {c.sample.swing_height}")
    need(2 <= c.measures.window and c.measures.stride >= 1, "measures.window must be >= 2, stride >= 1")
    for k in ("max_windows", "max_reference_windows"):
        v = c.measures.get(k, 1)
        need(isinstance(v, int) and v >= 1, f"measures.{k} must be a positive integer, got {v!r}")
