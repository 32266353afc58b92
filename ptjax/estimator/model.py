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
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# PyTorch's default convolution initialisation (kaiming_uniform with a = sqrt(5)): U(+-1/sqrt(fan_in)).
_torch_like_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _matmul(x: jax.Array, w: jax.Array, dtype) -> jax.Array:
    """x @ w computed in `dtype` with a float32 result (bfloat16 halves the matmul time on CPUs with AVX512-BF16
    and on accelerators; the accumulation stays float32)."""
    return jnp.matmul(x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)


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
            return _matmul(x.reshape(b, t // self.width, self.width * c_in),
                           kernel.reshape(self.width * c_in, self.features), self.dtype)
        if self.width == 1:
            return _matmul(x, kernel[0], self.dtype)
        return jax.lax.conv_general_dilated(x.astype(self.dtype), kernel.astype(self.dtype), window_strides=(1,),
                                            padding="VALID", rhs_dilation=(dilation,),
                                            dimension_numbers=("NWC", "WIO", "NWC"),
                                            preferred_element_type=jnp.float32)


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

    def _bn(self, name: str, x: jax.Array, train: bool) -> jax.Array:
        return nn.BatchNorm(use_running_average=not train, momentum=1.0 - self.bn_momentum, epsilon=1e-5,
                            axis_name=self.bn_axis_name if train else None, name=name)(x)

    @nn.compact
    def __call__(self, keypoints: jax.Array, train: bool = False, strided: bool = False) -> jax.Array:
        b, t, j, d = keypoints.shape
        if strided and t != self.receptive_field:
            raise ValueError(f"the strided form takes windows of exactly {self.receptive_field} frames, got {t}")
        if t < self.receptive_field:
            raise ValueError(f"need at least {self.receptive_field} frames (pad the sequence), got {t}")
        drop = nn.Dropout(self.dropout, deterministic=not train)
        x = keypoints.reshape(b, t, j * d)
        x = TemporalConv(self.channels, self.filter_widths[0], name="expand_conv",
                         dtype=self.compute_dtype)(x, 1, strided)
        x = drop(nn.relu(self._bn("expand_bn", x, train)))
        dilation = self.filter_widths[0]
        for i, width in enumerate(self.filter_widths[1:]):
            if strided:
                res = x[:, width // 2::width]
            else:
                pad = (width - 1) * dilation // 2
                res = x[:, pad:x.shape[1] - pad]
            x = TemporalConv(self.channels, width, name=f"conv_{i}", dtype=self.compute_dtype)(x, dilation, strided)
            x = drop(nn.relu(self._bn(f"bn_{i}", x, train)))
            x = TemporalConv(self.channels, 1, name=f"pointwise_{i}", dtype=self.compute_dtype)(x)
            x = res + drop(nn.relu(self._bn(f"pointwise_bn_{i}", x, train)))
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
