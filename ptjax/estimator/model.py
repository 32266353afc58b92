"""PoseNet / TrajNet: VideoPose3D's temporal convolution lifter in Flax, one set of weights used two ways.

Architecture (Pavllo et al., CVPR 2019, as used by PoseTriplet, reference §2.2): an "expand" convolution of width
W0 over the flattened 2D joints, then for each further width Wi a residual block [conv width Wi -> BN -> ReLU ->
dropout -> 1x1 conv -> BN -> ReLU -> dropout] + skip, and a 1x1 "shrink" to J x 3 outputs. Convolutions have no
bias (BN follows), the shrink has one. Receptive field = prod(W).

* dilated form (`strided=False`): the block i convolution is dilated by W0...W(i-1); a (B, T, J, 2) input gives
  (B, T - rf + 1, J_out, 3): every output frame sees its centred window. Used for inference on whole sequences.
* strided form (`strided=True`): input windows of exactly rf frames, each convolution strided by its own width, so
  only the one centre output is computed ("TemporalModelOptimized1f"). Used for training.

Both forms read the same parameters; in eval mode (running BN statistics, no dropout) they agree to float
rounding. The strided convolutions are computed as a reshape and a matrix product (a width-W convolution with
stride W is exactly that), which is what XLA runs fastest on CPU.

Training speed (a 1,024-channel step on a 2-core CPU went from 1.27 to 0.75 s, `benchmarks/estimator.py`): each
BN -> ReLU -> dropout is one op with a hand-written gradient (`BatchNormReLUDropout`), dropout masks take 8 random
bits per element instead of 32, and the products' gradient forms the kernel gradient transposed (`dense_matmul`).
"""

from __future__ import annotations

import functools
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ptjax.parallel import pmean_tree

# PyTorch's default convolution initialisation (kaiming_uniform with a = sqrt(5)): U(+-1/sqrt(fan_in)).
_torch_like_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

_NO_BATCH = ((), ())


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _matmul_2d(x: jax.Array, w: jax.Array, dtype: str) -> jax.Array:
    return jax.lax.dot_general(x.astype(dtype), w.astype(dtype), (((1,), (0,)), _NO_BATCH),
                               preferred_element_type=jnp.float32)


def _matmul_2d_fwd(x, w, dtype):
    return _matmul_2d(x, w, dtype), (x, w)


def _matmul_2d_bwd(dtype, residuals, dy):
    x, w = residuals
    dy = dy.astype(dtype)
    dx = jax.lax.dot_general(dy, w.astype(dtype), (((1,), (1,)), _NO_BATCH), preferred_element_type=jnp.float32)
    # The kernel gradient is formed transposed, (C_out, C_in) = dy^T x: XLA's CPU dot reads a transposed left operand
    # in place, while autodiff's x^T dy made it copy dy (the batch-sized operand) into a transposed layout first --
    # about a fifth of the whole training step at 1024 channels.
    dw_t = jax.lax.dot_general(dy, x.astype(dtype), (((0,), (0,)), _NO_BATCH), preferred_element_type=jnp.float32)
    return dx.astype(x.dtype), dw_t.T.astype(w.dtype)


_matmul_2d.defvjp(_matmul_2d_fwd, _matmul_2d_bwd)


def dense_matmul(x: jax.Array, w: jax.Array, dtype) -> jax.Array:
    """x (..., C_in) @ w (C_in, C_out) computed in `dtype` with a float32 result (bfloat16 halves the matmul time on
    CPUs with AVX512-BF16 and on accelerators; the accumulation stays float32)."""
    y = _matmul_2d(x.reshape(-1, x.shape[-1]), w, str(jnp.dtype(dtype)))
    return y.reshape(*x.shape[:-1], w.shape[-1])


def shifted_columns(x: jax.Array, width: int, dilation: int = 1) -> jax.Array:
    """(..., T, C) -> (..., T - (width - 1) * dilation, width * C): frames t, t + d, ... side by side, so a valid
    width-`width` convolution dilated by `dilation` is one product with its kernel reshaped to (width * C, C_out)
    (several times faster than XLA:CPU's convolution op, and its gradient)."""
    t_out = x.shape[-2] - (width - 1) * dilation
    if t_out < 1:
        raise ValueError(f"a width-{width} convolution dilated by {dilation} needs more than "
                         f"{(width - 1) * dilation} frames, got {x.shape[-2]}")
    return jnp.concatenate([x[..., k * dilation:k * dilation + t_out, :] for k in range(width)], axis=-1)


def dropout_keep_mask(rng: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """Bernoulli(1 - rate) keep mask from 8-bit draws, four per 32-bit random word (16-bit, two per word, when rate
    is not a multiple of 1/256; the rate is then rounded to a multiple of 1/65536). Threefry costs per word, so this
    is 4x (2x) cheaper than `jax.random.bernoulli`'s word per element: at 1024 channels the masks took an eighth of
    the step."""
    bits_per_draw = 8 if float(rate * 256).is_integer() else 16
    per_word = 32 // bits_per_draw
    size = int(np.prod(shape))
    words = jax.random.bits(rng, (-(-size // per_word),), jnp.uint32)
    shifts = jnp.arange(per_word, dtype=jnp.uint32) * bits_per_draw
    draws = (words[:, None] >> shifts) & ((1 << bits_per_draw) - 1)
    return (draws.reshape(-1)[:size] >= round(rate * (1 << bits_per_draw))).reshape(shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _bn_relu_dropout(x, scale, bias, keep, rate: float, epsilon: float, axis_name):
    return _bn_relu_dropout_fwd(x, scale, bias, keep, rate, epsilon, axis_name)[0]


def _batch_moments(x, axis_name):
    if axis_name is None:  # two passes: no cancellation
        mean = jnp.mean(x, axis=0)
        return mean, jnp.mean(jnp.square(x - mean), axis=0)
    # over devices: E[x] and E[x^2] in one all-reduce (as flax.linen.BatchNorm), not two in sequence
    mean, mean_sq = jax.lax.pmean(jnp.stack([jnp.mean(x, axis=0), jnp.mean(jnp.square(x), axis=0)]), axis_name)
    return mean, jnp.maximum(mean_sq - jnp.square(mean), 0.0)


def _bn_relu_dropout_fwd(x, scale, bias, keep, rate, epsilon, axis_name):
    mean, var = _batch_moments(x, axis_name)
    inv_std = jax.lax.rsqrt(var + epsilon)
    pre = (x - mean) * (inv_std * scale) + bias
    active = pre > 0 if keep is None else keep & (pre > 0)
    y = jnp.where(active, pre * (1.0 / (1.0 - rate)), 0.0)
    return (y, (mean, var)), (x, mean, inv_std, scale, bias, keep)


def _bn_relu_dropout_bwd(rate, epsilon, axis_name, residuals, cotangents):
    x, mean, inv_std, scale, bias, keep = residuals
    dy = cotangents[0]  # the batch moments feed only the running averages (no gradient)
    x_hat = (x - mean) * inv_std
    pre = x_hat * scale + bias
    active = pre > 0 if keep is None else keep & (pre > 0)
    g = jnp.where(active, dy * (1.0 / (1.0 - rate)), 0.0)
    d_bias = jnp.sum(g, axis=0)
    d_scale = jnp.sum(g * x_hat, axis=0)
    # Statistics over the global batch: the means of g and g * x_hat are averaged over the devices, as autodiff
    # through pmean'd moments gives (pmap semantics: the gradient of the sum of the devices' losses).
    n = x.shape[0]
    mean_g, mean_g_xhat = pmean_tree(jnp.stack([d_bias, d_scale]) / n, axis_name)
    dx = (scale * inv_std) * (g - mean_g - x_hat * mean_g_xhat)
    return dx, d_scale, d_bias, None


_bn_relu_dropout.defvjp(_bn_relu_dropout_fwd, _bn_relu_dropout_bwd)


class BatchNormReLUDropout(nn.Module):
    """dropout(relu(batch_norm(x))) over the last axis, as one op with a hand-written gradient (one pass over x
    forward, two backward, and a compact dropout mask) instead of autodiff's many elementwise passes. Same variables
    as `nn.BatchNorm` (params scale/bias, batch_stats mean/var), so it reads checkpoints written with it.
    momentum: weight of the old running average (Flax convention)."""
    rate: float = 0.0
    momentum: float = 0.9
    epsilon: float = 1e-5
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        features = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (features,))
        bias = self.param("bias", nn.initializers.zeros, (features,))
        ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
        ra_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
        if not train:
            return nn.relu((x - ra_mean.value) * (jax.lax.rsqrt(ra_var.value + self.epsilon) * scale) + bias)
        flat = x.reshape(-1, features)
        keep = dropout_keep_mask(self.make_rng("dropout"), flat.shape, self.rate) if self.rate > 0 else None
        y, (mean, var) = _bn_relu_dropout(flat, scale, bias, keep, float(self.rate), float(self.epsilon),
                                          self.axis_name)
        if not self.is_initializing():
            m = self.momentum
            ra_mean.value = m * ra_mean.value + (1.0 - m) * mean
            ra_var.value = m * ra_var.value + (1.0 - m) * var
        return y.reshape(x.shape)


class TemporalConv(nn.Module):
    """A bias-free 1-D convolution over time with kernel (width, C_in, C_out), usable strided or dilated."""
    features: int
    width: int
    dtype: str = "float32"    # compute dtype of the products; the kernel is stored in float32

    @nn.compact
    def __call__(self, x: jax.Array, dilation: int = 1, strided: bool = False) -> jax.Array:
        """x: (B, T, C_in) -> (B, T', C_out); strided: T' = T / width, else T' = T - (width - 1) * dilation."""
        c_in = x.shape[-1]
        kernel = self.param("kernel", _torch_like_init, (self.width, c_in, self.features))
        if strided:
            b, t, _ = x.shape
            if t % self.width:
                raise ValueError(f"strided convolution of width {self.width} needs a multiple of it frames, got {t}")
            return dense_matmul(x.reshape(b, t // self.width, self.width * c_in),
                           kernel.reshape(self.width * c_in, self.features), self.dtype)
        if self.width == 1:
            return dense_matmul(x, kernel[0], self.dtype)
        # Columns in the layout of the strided form's reshape, so both forms read the kernel the same way.
        return dense_matmul(shifted_columns(x, self.width, dilation), kernel.reshape(self.width * c_in, self.features),
                       self.dtype)


class TemporalModel(nn.Module):
    """(B, T, J_in, 2) keypoints -> (B, T_out, J_out, 3).

    filter_widths: odd widths, e.g. (3, 3, 3) -> 27 frames, (3, 3, 3, 3, 3) -> 243.
    bn_momentum: PyTorch convention (0.1 = weight of the new batch statistic).
    bn_axis_name: mapped axis over which BN statistics are averaged (data parallel), or None.
    compute_dtype: "float32", or "bfloat16" for the convolutions' products (parameters, batch norm, residuals and
        outputs stay float32).
    """
    num_joints_out: int
    filter_widths: Sequence[int] = (3, 3, 3)
    channels: int = 1024
    dropout: float = 0.25
    bn_momentum: float = 0.1
    bn_axis_name: str | None = None
    compute_dtype: str = "float32"

    @property
    def receptive_field(self) -> int:
        return int(np.prod(self.filter_widths))

    def _bn_relu_dropout(self, name: str, x: jax.Array, train: bool) -> jax.Array:
        return BatchNormReLUDropout(rate=self.dropout, momentum=1.0 - self.bn_momentum, epsilon=1e-5,
                                    axis_name=self.bn_axis_name if train else None, name=name)(x, train)

    @nn.compact
    def __call__(self, keypoints: jax.Array, train: bool = False, strided: bool = False) -> jax.Array:
        b, t, j, d = keypoints.shape
        if strided and t != self.receptive_field:
            raise ValueError(f"the strided form takes windows of exactly {self.receptive_field} frames, got {t}")
        if t < self.receptive_field:
            raise ValueError(f"need at least {self.receptive_field} frames (pad the sequence), got {t}")
        x = keypoints.reshape(b, t, j * d)
        x = TemporalConv(self.channels, self.filter_widths[0], name="expand_conv",
                         dtype=self.compute_dtype)(x, 1, strided)
        x = self._bn_relu_dropout("expand_bn", x, train)
        dilation = self.filter_widths[0]
        for i, width in enumerate(self.filter_widths[1:]):
            if strided:
                res = x[:, width // 2::width]
            else:
                pad = (width - 1) * dilation // 2
                res = x[:, pad:x.shape[1] - pad]
            x = TemporalConv(self.channels, width, name=f"conv_{i}", dtype=self.compute_dtype)(x, dilation, strided)
            x = self._bn_relu_dropout(f"bn_{i}", x, train)
            x = TemporalConv(self.channels, 1, name=f"pointwise_{i}", dtype=self.compute_dtype)(x)
            x = res + self._bn_relu_dropout(f"pointwise_bn_{i}", x, train)
            dilation *= width
        x = nn.Dense(self.num_joints_out * 3, kernel_init=_torch_like_init, dtype=self.compute_dtype,
                     name="shrink")(x).astype(jnp.float32)
        return x.reshape(b, x.shape[1], self.num_joints_out, 3)


def pose_net(spec, axis_name: str | None = None) -> TemporalModel:
    """PoseNet of a `Spec`: 17 root-relative joints."""
    return TemporalModel(num_joints_out=17, filter_widths=spec.filter_widths, channels=spec.channels,
                         dropout=spec.dropout, bn_momentum=spec.bn_momentum, bn_axis_name=axis_name,
                         compute_dtype=spec.compute_dtype)


def traj_net(spec, axis_name: str | None = None) -> TemporalModel:
    """TrajNet of a `Spec`: the root position in the camera frame (one output joint)."""
    return TemporalModel(num_joints_out=1, filter_widths=spec.filter_widths, channels=spec.traj_channels,
                         dropout=spec.dropout, bn_momentum=spec.bn_momentum, bn_axis_name=axis_name,
                         compute_dtype=spec.compute_dtype)
