"""Estimator configuration: the `ml_collections` ConfigDict users edit, and the frozen `Spec` jit sees.

`default_config()` is the paper's setting (reference §2.2-2.5): 27-frame receptive field (filter widths 3,3,3),
1024 channels, dropout 0.25, BN momentum 0.1, Adam lr 3e-4 (G_cam/D_cam 1e-4), batch 1024, 50 epochs,
lr * (1 - epoch / (epochs + 1)) per epoch, gradient-norm clipping 1, D_cam every 3rd step, LSGAN with a history
pool, real-2D scale augmentation U(0.5, 1.4), camera ranges of `world_to_camera_sktpos_v3`, focal 2.3.

`Spec` is the hashable, static part of the state: everything `update`/`predict` need besides arrays. It is built
from the config by `spec_from_config`, which also validates the config (ValueError naming the bad field).
"""

from __future__ import annotations

import dataclasses
import math

import ml_collections

from ptjax import camera


def _pairs_config() -> ml_collections.ConfigDict:
    """Pair making from world motion windows (pairs.py)."""
    p = ml_collections.ConfigDict()
    p.random_camera = True       # path (a): PoseTriplet's random virtual cameras
    p.adversarial = True         # path (b): G_cam / D_cam (needs real 2D windows in the batch)
    p.random_camera_fraction = 0.5  # share of each batch through random cameras when both paths are on
    p.yaw = True                 # random rotation about world Z
    p.mirror = False             # mirror half of the motion windows (left/right swapped)
    p.bone_scale = (0.9, 1.1)    # whole-body bone-length scale, uniform
    p.bone_jitter = 0.06         # per bone group (left/right shared) extra factor U(1 - j, 1 + j)
    p.center_jitter = 0.4        # metres: random xy offset of the recentred trajectory (set_center_v2)
    p.focal = camera.POSETRIPLET_FOCAL
    p.view_half = camera.VIRTUAL_FOV_HALF  # keep every joint within |u|, |v| <= this (pushes camera back)
    p.min_depth = 1.0            # metres: nearest allowed joint depth
    p.detector_noise_fraction = 0.0  # share of pairs whose 2D gets detector-like errors (ptjax.detector_noise)
    p.camera = ml_collections.ConfigDict()
    ranges = camera.CameraRanges()
    p.camera.x = tuple(ranges.x)
    p.camera.z = tuple(ranges.z)
    p.camera.euler_x_deg = tuple(ranges.euler_x_deg)
    p.camera.euler_y_deg = tuple(ranges.euler_y_deg)
    p.camera.euler_z_deg = tuple(ranges.euler_z_deg)
    return p


def default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    # PoseNet (VideoPose3D temporal lifter); TrajNet shares its filter widths.
    c.model = ml_collections.ConfigDict()
    c.model.filter_widths = (3, 3, 3)
    c.model.channels = 1024
    c.model.dropout = 0.25
    c.model.bn_momentum = 0.1          # PyTorch convention: weight of the new batch statistic
    c.model.traj_channels = 1024       # TrajNet width (the original uses the same backbone)
    c.model.compute_dtype = "float32"  # "bfloat16": PoseNet/TrajNet products in bf16, float32 accumulation

    c.loss = ml_collections.ConfigDict()
    c.loss.pose = "mse"                # "mse" (PoseTriplet) or "mpjpe" (VideoPose3D)
    c.loss.traj_weight = 1.0

    c.optim = ml_collections.ConfigDict()
    c.optim.lr = 3e-4
    c.optim.lr_gcam = 1e-4
    c.optim.lr_dcam = 1e-4
    c.optim.grad_clip = 1.0
    c.optim.num_epochs = 50
    c.optim.steps_per_epoch = 500      # an "epoch" here is a fixed number of steps (data is sampled, not iterated)
    c.optim.b1 = 0.9
    c.optim.b2 = 0.999

    c.pairs = _pairs_config()

    c.adversary = ml_collections.ConfigDict()
    c.adversary.noise_dim = 64
    c.adversary.hidden = 64
    c.adversary.cam_r_range = 0.5      # setting A of the script (B: 3.14)
    c.adversary.cam_t_range = 3.0      # setting A (B: 4.0)
    c.adversary.d_every = 3
    c.adversary.real_scale = (0.5, 1.4)
    c.adversary.pool_size = 512

    c.predict = ml_collections.ConfigDict()
    c.predict.flip = True              # flip test-time augmentation
    c.predict.chunk = 4096             # frames per compiled call for long sequences

    # Training driver (train.py / `ptjax estimator train`).
    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 1024
    c.train.steps_per_call = 10        # steps fused in one jitted lax.scan
    c.train.num_devices = 1            # devices the batch is split over (0: all); a multi-process job uses all
    c.train.log_every = 50
    c.train.eval_every = 5000
    c.train.checkpoint_every = 5000
    c.train.max_nonfinite_steps = 20   # skipped (non-finite) steps tolerated before the run fails
    c.train.gif = True                 # a held-out prediction GIF at the end

    c.data = ml_collections.ConfigDict()
    c.data.train_clips = ()            # empty: ptjax.data.TRAIN_CLIPS
    c.data.heldout_clips = ()          # empty: ptjax.data.HELDOUT_CLIPS
    c.data.fps = (30.0,)               # training clips are resampled to each of these rates (rate augmentation)
    c.data.num_cameras = 4             # fixed cameras per clip for the 2D takes (make_takes)
    c.data.real2d = False              # feed the training clips' 2D takes to D_cam as "real" 2D
    c.lock()  # a misspelt key in a config file is an error, not a new field
    return c


@dataclasses.dataclass(frozen=True)
class Spec:
    """Static hyper-parameters of an estimator state (hashable: a jit cache key)."""
    filter_widths: tuple[int, ...]
    channels: int
    traj_channels: int
    dropout: float
    bn_momentum: float
    pose_loss: str
    traj_weight: float
    lr: float
    lr_gcam: float
    lr_dcam: float
    grad_clip: float
    num_epochs: int
    steps_per_epoch: int
    b1: float
    b2: float
    random_camera: bool
    adversarial: bool
    random_camera_fraction: float
    yaw: bool
    mirror: bool
    bone_scale: tuple[float, float]
    bone_jitter: float
    center_jitter: float
    focal: float
    view_half: float
    min_depth: float
    camera_ranges: tuple[tuple[float, float], ...]  # x, z, euler_x_deg, euler_y_deg, euler_z_deg
    noise_dim: int
    hidden: int
    cam_r_range: float
    cam_t_range: float
    d_every: int
    real_scale: tuple[float, float]
    pool_size: int
    flip: bool
    chunk: int
    compute_dtype: str = "float32"
    detector_noise_fraction: float = 0.0

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.filter_widths)

    @property
    def pad(self) -> int:
        return self.receptive_field // 2

    def ranges(self) -> camera.CameraRanges:
        x, z, ex, ey, ez = self.camera_ranges
        return camera.CameraRanges(x=x, z=z, euler_x_deg=ex, euler_y_deg=ey, euler_z_deg=ez)


def receptive_field(filter_widths) -> int:
    return int(math.prod(filter_widths))


def _pair(value, name: str, positive: bool = False) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config {name} must be a (low, high) pair of numbers, got {value!r}") from e
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi or (positive and lo <= 0):
        raise ValueError(f"config {name} must be finite with low <= high{' and low > 0' if positive else ''}, "
                         f"got {value!r}")
    return lo, hi


def _positive(value, name: str, integer: bool = False, allow_zero: bool = False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "integer" if integer else "number"
        raise ValueError(f"config {name} must be a {'non-negative' if allow_zero else 'positive'} {kind}, "
                         f"got {value!r}")
    return int(value) if integer else float(value)


def _fraction(value, name: str) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    if not ok:
        raise ValueError(f"config {name} must be a number in [0, 1], got {value!r}")
    return float(value)


def spec_from_config(config: ml_collections.ConfigDict) -> Spec:
    """Validate `config` and extract the static `Spec`."""
    m, p, a, o = config.model, config.pairs, config.adversary, config.optim
    widths = tuple(m.filter_widths)
    if not widths or any((not isinstance(w, int)) or w < 1 or w % 2 == 0 for w in widths):
        raise ValueError(f"config model.filter_widths must be odd positive integers, got {m.filter_widths!r}")
    if not 0.0 <= float(m.dropout) < 1.0:
        raise ValueError(f"config model.dropout must be in [0, 1), got {m.dropout!r}")
    if not 0.0 < float(m.bn_momentum) <= 1.0:
        raise ValueError(f"config model.bn_momentum must be in (0, 1], got {m.bn_momentum!r}")
    compute_dtype = m.get("compute_dtype", "float32")
    if compute_dtype not in ("float32", "bfloat16"):
        raise ValueError(f"config model.compute_dtype must be 'float32' or 'bfloat16', got {compute_dtype!r}")
    if config.loss.pose not in ("mse", "mpjpe"):
        raise ValueError(f"config loss.pose must be 'mse' or 'mpjpe', got {config.loss.pose!r}")
    if not (p.random_camera or p.adversarial):
        raise ValueError("config pairs: enable at least one of random_camera and adversarial")
    if not 0.0 <= float(p.random_camera_fraction) <= 1.0:
        raise ValueError(f"config pairs.random_camera_fraction must be in [0, 1], got {p.random_camera_fraction!r}")
    jitter = float(p.bone_jitter)
    if not 0.0 <= jitter < 0.5:
        raise ValueError(f"config pairs.bone_jitter must be in [0, 0.5), got {p.bone_jitter!r}")
    cams = tuple(_pair(p.camera[k], f"pairs.camera.{k}")
                 for k in ("x", "z", "euler_x_deg", "euler_y_deg", "euler_z_deg"))
    if cams[0][0] <= 0:
        raise ValueError(f"config pairs.camera.x must be positive distances, got {p.camera.x!r}")
    return Spec(
        filter_widths=widths,
        channels=_positive(m.channels, "model.channels", integer=True),
        traj_channels=_positive(m.traj_channels, "model.traj_channels", integer=True),
        dropout=float(m.dropout), bn_momentum=float(m.bn_momentum),
        pose_loss=str(config.loss.pose),
        traj_weight=_positive(config.loss.traj_weight, "loss.traj_weight", allow_zero=True),
        lr=_positive(o.lr, "optim.lr"), lr_gcam=_positive(o.lr_gcam, "optim.lr_gcam"),
        lr_dcam=_positive(o.lr_dcam, "optim.lr_dcam"), grad_clip=_positive(o.grad_clip, "optim.grad_clip"),
        num_epochs=_positive(o.num_epochs, "optim.num_epochs", integer=True),
        steps_per_epoch=_positive(o.steps_per_epoch, "optim.steps_per_epoch", integer=True),
        b1=float(o.b1), b2=float(o.b2),
        random_camera=bool(p.random_camera), adversarial=bool(p.adversarial),
        random_camera_fraction=float(p.random_camera_fraction), yaw=bool(p.yaw), mirror=bool(p.mirror),
        bone_scale=_pair(p.bone_scale, "pairs.bone_scale", positive=True), bone_jitter=jitter,
        center_jitter=_positive(p.center_jitter, "pairs.center_jitter", allow_zero=True),
        focal=_positive(p.focal, "pairs.focal"), view_half=_positive(p.view_half, "pairs.view_half"),
        min_depth=_positive(p.min_depth, "pairs.min_depth"),
        camera_ranges=cams,
        noise_dim=_positive(a.noise_dim, "adversary.noise_dim", integer=True),
        hidden=_positive(a.hidden, "adversary.hidden", integer=True),
        cam_r_range=_positive(a.cam_r_range, "adversary.cam_r_range"),
        cam_t_range=_positive(a.cam_t_range, "adversary.cam_t_range"),
        d_every=_positive(a.d_every, "adversary.d_every", integer=True),
        real_scale=_pair(a.real_scale, "adversary.real_scale", positive=True),
        pool_size=_positive(a.pool_size, "adversary.pool_size", integer=True),
        flip=bool(config.predict.flip),
        chunk=_positive(config.predict.chunk, "predict.chunk", integer=True),
        compute_dtype=compute_dtype,
        detector_noise_fraction=_fraction(p.get("detector_noise_fraction", 0.0), "pairs.detector_noise_fraction"),
    )


def check_train_config(config: ml_collections.ConfigDict) -> None:
    """Validate the training-driver fields (the model/optimiser fields are checked by `spec_from_config`)."""
    spec_from_config(config)
    t = config.train
    _positive(t.batch_size, "train.batch_size", integer=True)
    for key in ("steps_per_call", "log_every", "eval_every", "checkpoint_every"):
        _positive(t[key], f"train.{key}", integer=True)
    _positive(t.max_nonfinite_steps, "train.max_nonfinite_steps", integer=True, allow_zero=True)
    _positive(t.get("num_devices", 1), "train.num_devices", integer=True, allow_zero=True)
    fps = tuple(config.data.fps)
    if not fps or any(not (isinstance(f, (int, float)) and f > 0) for f in fps):
        raise ValueError(f"config data.fps must be a non-empty tuple of positive frame rates, got {config.data.fps!r}")
    _positive(config.data.num_cameras, "data.num_cameras", integer=True)


def config_from_dict(values: dict) -> ml_collections.ConfigDict:
    """Rebuild a config saved as JSON (lists back to tuples where the default has a tuple)."""
    config = default_config()

    def merge(node: ml_collections.ConfigDict, data: dict):
        for key, value in data.items():
            if key in node and isinstance(node[key], ml_collections.ConfigDict) and isinstance(value, dict):
                merge(node[key], value)
            elif isinstance(value, dict):
                node[key] = ml_collections.ConfigDict(value)
            else:
                if isinstance(value, list):
                    value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
                if key in node and node[key] is not None and value is not None:
                    node[key] = type(node[key])(value) if isinstance(node[key], (tuple, float)) else value
                else:
                    with node.unlocked():
                        node[key] = value
    merge(config, values)
    return config
