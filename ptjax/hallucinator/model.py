"""Flax modules of the hallucinator: the RMI generator (Harvey et al., SIGGRAPH 2020, "Robust Motion
In-betweening") as PoseTriplet's `code_rib` uses it, and its two LSGAN motion discriminators.

Generator step (one frame), all vectors per sample:
  state  s = [rot6d (102), root height (1), root velocity (3), contacts (2)]     -> state encoder
  offset o = [target root - root (3), target rot6d - rot6d (102)]                -> offset encoder
  target g = target rot6d (102)                                                 -> target encoder
Each encoder is a 2-layer MLP with PLU activations; the sinusoidal time-to-arrival embedding z_tta is added to all
three, and the target noise z_target * 0.5 * lambda(tta) (lambda = 0 below 5 frames to arrival, ramping to 1 at 30)
to the offset and target codes. The concatenated codes drive an LSTM whose output a decoder MLP turns into a
residual on the 6D rotations (re-orthonormalised), a residual on the root velocity (integrated into the root
position) and sigmoid foot contacts. The time loop is `nn.scan` over a cell; frames flagged as context are
teacher-forced (the cell reads the given frame instead of its own previous prediction).

Two deviations from the original, both configurable:
* the state also holds the root height (our canonical frame keeps heights absolute; it helps keep feet on the ground);
* the decoder's outputs are residuals on an analytic in-between of the last context frame and the target at the
  predicted frame's time, instead of on the current frame (`residual="state"`, RMI's choice), and the offset encoder
  also sees the offset to that analytic frame. This is the "delta-interpolator" idea of Oreshkin et al. (2023,
  "Motion In-betweening via Deep Delta-Interpolator"): with its last layer initialised to zero an untrained model
  already produces the analytic in-between, the network learns what it misses, and nothing drifts (the root height
  in particular) over long generation. Two analytic bases, root position and 6D rotations alike (rotations
  re-orthonormalised):
  - `residual="hermite"` (default): the cubic Hermite curve that leaves the last context frame with the context's
    last per-frame velocity and arrives along the chord (tangent = target - start). Unlike plain interpolation it
    continues the motion under way instead of turning at once toward the target (on the bundled held-out clips it
    alone cuts the in-betweening L2P of interpolation by 30 % at 5-frame gaps, 23 % at 15, 12 % at 30).
  - `residual="interpolation"`: linear (the delta-interpolator's base).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ptjax.hallucinator.features import flat_rot6d, unflat_rot6d

ROT6D = 17 * 6
STATE_DIM = ROT6D + 1 + 3 + 2


def plu(x: jax.Array, alpha: float = 0.1, c: float = 1.0) -> jax.Array:
    """Piecewise linear unit (Nicolae, 2018), RMI's activation: identity on [-c, c], slope alpha outside."""
    return jnp.maximum(alpha * (x + c) - c, jnp.minimum(alpha * (x - c) + c, x))


class MLP(nn.Module):
    features: Sequence[int]
    final_activation: bool = True
    final_init_scale: float = 1.0   # 0: the last layer starts at zero (its outputs are residuals)

    @nn.compact
    def __call__(self, x):
        for i, f in enumerate(self.features):
            last = i == len(self.features) - 1
            if last and self.final_init_scale == 0:
                init = nn.initializers.zeros
            elif last:
                init = nn.initializers.variance_scaling(self.final_init_scale, "fan_avg", "uniform")
            else:
                init = nn.initializers.lecun_normal()
            x = nn.Dense(f, kernel_init=init)(x)
            if not last or self.final_activation:
                x = plu(x)
        return x


def tta_embedding(tta: jax.Array, dim: int, basis: float = 10000.0) -> jax.Array:
    """Sinusoidal time-to-arrival embedding: (B,) frames -> (B, dim), as a transformer position code."""
    half = dim // 2
    freq = 1.0 / basis ** (2.0 * jnp.arange(half) / dim)
    angle = tta[..., None].astype(jnp.float32) * freq
    return jnp.stack([jnp.sin(angle), jnp.cos(angle)], axis=-1).reshape(tta.shape + (2 * half,))


def target_noise_scale(tta: jax.Array, start: float, end: float) -> jax.Array:
    """lambda(tta): 0 below `start` frames to arrival, linear to 1 at `end` (RMI's schedule with 5 and 30)."""
    return jnp.clip((tta - start) / (end - start), 0.0, 1.0)


def interpolation_weight(tta: jax.Array, transition: jax.Array) -> jax.Array:
    """Fraction of the way from the last context frame to the target of the frame predicted at a step whose current
    frame is `tta` frames before the target, in a transition of `transition` frames: (L + 2 - tta) / (L + 1)."""
    return jnp.clip((transition + 2.0 - tta) / (transition + 1.0), 0.0, 1.0)


BASES = ("hermite", "interpolation")


def analytic_inbetween(kind: str, alpha: jax.Array, start: jax.Array, target: jax.Array, start_step: jax.Array,
                       transition: jax.Array) -> jax.Array:
    """The base the decoder's residuals add to, at fraction `alpha` (B, 1) of the way from `start` to `target`
    (B, D). "interpolation": linear. "hermite": cubic Hermite leaving `start` with velocity `start_step` (B, D) per
    frame -- the context's last frame-to-frame change -- and arriving along the chord; the transition of
    `transition` (B, 1) frames spans transition + 1 frame steps."""
    chord = target - start
    if kind == "interpolation":
        return start + alpha * chord
    s = alpha
    h10 = s * (1.0 - s) ** 2              # weight of the start tangent
    h_chord = s * s * (2.0 - s)           # h01 + h11 with the end tangent equal to the chord
    return start + h_chord * chord + h10 * start_step * (transition + 1.0)


class GeneratorCell(nn.Module):
    """One autoregressive step. carry = (lstm carry, frame); xs = (given frame, is_context (), tta (B,));
    consts = {target_rot6d (B, 102), target_root (B, 3), start_rot6d (B, 102), start_root (B, 3) -- the last
    context frame --, start_step_rot6d (B, 102), start_step_root (B, 3) -- its change from the frame before --,
    transition (B,) frames, noise (B, encoder_out)}. Frames are dicts {rot6d (B, 102),
    root (B, 3), vel (B, 3) m/s, contact (B, 2)}; returns the next frame."""
    encoder_hidden: int
    encoder_out: int
    lstm_size: int
    decoder_hidden: Sequence[int]
    fps: float
    noise_level: float
    noise_start: float
    noise_end: float
    tta_max: float
    residual: str

    @nn.compact
    def __call__(self, carry, xs, consts):
        lstm_carry, current = carry
        given, is_context, tta = xs
        state = jax.tree_util.tree_map(lambda g, c: jnp.where(is_context, g, c), given, current)
        s_in = jnp.concatenate([state["rot6d"], state["root"][:, 2:], state["vel"], state["contact"]], -1)
        offsets = [consts["target_root"] - state["root"], consts["target_rot6d"] - state["rot6d"]]
        if self.residual in BASES:
            transition = consts["transition"].astype(tta.dtype)[:, None]
            alpha = interpolation_weight(tta, transition[:, 0])[:, None]
            ref_root = analytic_inbetween(self.residual, alpha, consts["start_root"], consts["target_root"],
                                          consts["start_step_root"], transition)
            ref_rot6d = flat_rot6d(unflat_rot6d(analytic_inbetween(
                self.residual, alpha, consts["start_rot6d"], consts["target_rot6d"], consts["start_step_rot6d"],
                transition)))
            offsets += [ref_root - state["root"], ref_rot6d - state["rot6d"]]
        o_in = jnp.concatenate(offsets, -1)
        z_tta = tta_embedding(jnp.clip(tta, 0.0, self.tta_max), self.encoder_out)
        z_target = (self.noise_level * target_noise_scale(tta, self.noise_start, self.noise_end)[:, None]
                    * consts["noise"])
        enc = (self.encoder_hidden, self.encoder_out)
        h_s = MLP(enc, name="state_encoder")(s_in) + z_tta
        h_o = MLP(enc, name="offset_encoder")(o_in) + z_tta + z_target
        h_t = MLP(enc, name="target_encoder")(consts["target_rot6d"]) + z_tta + z_target
        lstm_carry, h = nn.OptimizedLSTMCell(self.lstm_size, name="lstm")(
            lstm_carry, jnp.concatenate([h_s, h_o, h_t], -1))
        out = MLP(tuple(self.decoder_hidden) + (ROT6D + 3 + 2,), final_activation=False,
                  final_init_scale=0.0 if self.residual in BASES else 0.01,
                  name="decoder")(h)
        d_rot, d_root, contact_logit = out[:, :ROT6D], out[:, ROT6D:ROT6D + 3], out[:, ROT6D + 3:]
        if self.residual in BASES:
            rot6d = ref_rot6d + d_rot
            root = ref_root + d_root
            vel = (root - state["root"]) * self.fps
        else:  # RMI: residual on the current frame; the root velocity is the residual quantity
            rot6d = state["rot6d"] + d_rot
            vel = state["vel"] + d_root
            root = state["root"] + vel / self.fps
        nxt = {"rot6d": flat_rot6d(unflat_rot6d(rot6d)), "root": root, "vel": vel,
               "contact": jax.nn.sigmoid(contact_logit)}
        # The decoder's correction of the base travels with the outputs (its size is penalised in training).
        residual = jnp.concatenate([d_rot, d_root], -1)
        return (lstm_carry, nxt), {**nxt, "residual": residual}


class Generator(nn.Module):
    """Runs the cell over time. first (frame dict, (B, ...)), xs time-major ((T, B, ...) frames, (T,), (T, B)),
    consts as in `GeneratorCell`. Returns the T predicted next frames, time-major, each with the decoder's
    "residual" (T, B, 105) on the base."""
    encoder_hidden: int
    encoder_out: int
    lstm_size: int
    decoder_hidden: Sequence[int]
    fps: float
    noise_level: float = 0.5
    noise_start: float = 5.0
    noise_end: float = 30.0
    tta_max: float = 40.0
    residual: str = "hermite"

    @nn.compact
    def __call__(self, first, xs, consts):
        batch = first["root"].shape[0]
        zeros = jnp.zeros((batch, self.lstm_size), first["root"].dtype)
        scan = nn.scan(GeneratorCell, variable_broadcast="params", split_rngs={"params": False},
                       in_axes=(0, nn.broadcast), out_axes=0)
        cell = scan(self.encoder_hidden, self.encoder_out, self.lstm_size, tuple(self.decoder_hidden), self.fps,
                    self.noise_level, self.noise_start, self.noise_end, self.tta_max, self.residual, name="cell")
        _, frames = cell(((zeros, zeros), first), xs, consts)
        return frames


class WindowDense(nn.Module):
    """A 'VALID' 1-D convolution written as one product of the stacked windows: (B, W, F) -> (B, W - kernel + 1,
    features), with nn.Conv's parameters (kernel (kernel, F, features), bias) and initialisers, so either form loads
    the other's weights. Equal to the convolution up to float rounding. Why: on XLA:CPU the convolution's kernel
    gradient inside a loop body (the co-evolution scans its updates) is laid out for a slow path, about 40x the time
    of the same gradient outside a loop; a product's gradient is a product wherever it runs."""
    features: int
    kernel: int

    @nn.compact
    def __call__(self, x):
        f = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.kernel, f, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        out = x.shape[-2] - self.kernel + 1
        windows = jnp.concatenate([x[..., i:i + out, :] for i in range(self.kernel)], axis=-1)  # (B, W', k F)
        return windows @ kernel.reshape(self.kernel * f, self.features) + bias


class MotionDiscriminator(nn.Module):
    """Sliding-window motion critic: (B, W, F) positions + velocities -> (B, W - kernel + 1) scores.

    A fully connected net applied to every window of `kernel` frames (a 1-D convolution then 1x1 layers), as RMI's
    short (kernel 2-3) and long (kernel 10) discriminators. `windows` chooses how the first layer runs: "conv"
    (nn.Conv) or "product" (WindowDense: the same parameters, much faster to train inside a scan on a CPU)."""
    kernel: int
    hidden: Sequence[int]
    windows: str = "conv"

    @nn.compact
    def __call__(self, x):
        if self.windows == "product":
            x = WindowDense(self.hidden[0], self.kernel, name="Conv_0")(x)
        else:
            x = nn.Conv(self.hidden[0], (self.kernel,), padding="VALID")(x)
        x = nn.leaky_relu(x, 0.2)
        for h in self.hidden[1:]:
            x = nn.leaky_relu(nn.Dense(h)(x), 0.2)
        return nn.Dense(1)(x)[..., 0]
