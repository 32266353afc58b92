"""The adversarial virtual camera (PoseAug-style, PoseTriplet's "gcam_v0" and "dcam_pa1"; reference §2.2-2.4).

G_cam looks at a root-centred 3D window and, with noise, proposes a camera: a rotation about the camera x axis
(tilt, |angle| <= cam_r_range) and a translation tx in +-t, ty in +-t/2, tz in [2, 2 + t] (t = cam_t_range).
D_cam sees the first and last frame of a 2D window and tells real 2D (unpaired keypoints of the takes) from the
projections of G_cam's cameras. LSGAN losses; D trains on a history pool of fakes (Shrivastava et al. 2017 /
CycleGAN's image pool) every `d_every` steps.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ptjax import geometry
from ptjax.estimator.model import shifted_columns


def _leaky(slope: float):
    return lambda x: nn.leaky_relu(x, slope)


class _DoubleLinear(nn.Module):
    """(Dense -> BN -> LeakyReLU) x 2, PoseAug's `DoubleLinear`. BN always uses batch statistics (G only trains)."""
    features: int
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x):
        for i in range(2):
            x = nn.Dense(self.features, name=f"dense_{i}")(x)
            x = nn.BatchNorm(use_running_average=False, momentum=0.9, axis_name=self.bn_axis_name,
                             name=f"bn_{i}")(x)
            x = nn.leaky_relu(x, 0.01)
        return x


class ValidConv1d(nn.Module):
    """`nn.Conv(features, (width,), padding="VALID")` over (B, T, C) with the same variables and initialisation,
    computed as one matrix product over `shifted_columns`: XLA:CPU's convolution (and its gradient) took over 80 % of
    an adversarial estimator step."""
    features: int
    width: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c_in = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.width, c_in, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return shifted_columns(x, self.width) @ kernel.reshape(self.width * c_in, self.features) + bias


class CameraGenerator(nn.Module):
    """G_cam: (B, T, J, 3) root-centred camera-axis window + noise -> (rotation (B, 3, 3), translation (B, 3)).

    noise_r, noise_t: (B, noise_dim) standard normal.
    """
    hidden: int = 64
    cam_r_range: float = 0.5
    cam_t_range: float = 3.0
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, pose3d: jax.Array, noise_r: jax.Array, noise_t: jax.Array):
        b, t, j, d = pose3d.shape
        x = pose3d.reshape(b, t, j * d)
        for i in range(2):  # Conv1dBlock(J*3 -> [64, 64]): valid width-3 conv, then 1x1, LeakyReLU 0.2 after each
            x = nn.leaky_relu(ValidConv1d(self.hidden, 3, name=f"conv_{i}")(x), 0.2)
            x = nn.leaky_relu(ValidConv1d(self.hidden, 1, name=f"pointwise_{i}")(x), 0.2)
        feature = jnp.mean(x, axis=1)
        width = feature.shape[-1] + noise_r.shape[-1]
        r = _DoubleLinear(width, self.bn_axis_name, name="rot_mlp")(jnp.concatenate([feature, noise_r], -1))
        r = jnp.tanh(nn.Dense(3, name="rot_out")(r)) * self.cam_r_range
        angle = r[:, 0]  # only the x-axis component of the axis-angle is kept (original's mask)
        tr = _DoubleLinear(width, self.bn_axis_name, name="trans_mlp")(jnp.concatenate([feature, noise_t], -1))
        tr = nn.Dense(3, name="trans_out")(tr)
        translation = jnp.stack([jnp.tanh(tr[:, 0]) * self.cam_t_range,
                                 jnp.tanh(tr[:, 1]) * self.cam_t_range * 0.5,
                                 jax.nn.sigmoid(tr[:, 2]) * self.cam_t_range + 2.0], -1)
        return geometry.axis_rotation(0, angle), translation


class CameraDiscriminator(nn.Module):
    """D_cam ("dcam_pa1"): (B, T, J, 2) 2D windows -> (B,) scores, from the first and last frame only."""
    hidden: int = 64

    @nn.compact
    def __call__(self, keypoints2d: jax.Array) -> jax.Array:
        x = keypoints2d[:, jnp.array([0, -1])].reshape(keypoints2d.shape[0], -1)
        for i in range(3):
            x = nn.leaky_relu(nn.Dense(self.hidden, name=f"dense_{i}")(x), 0.01)
        return nn.Dense(1, name="out")(x)[:, 0]


# --- losses ---------------------------------------------------------------------------------------------------------

def generator_loss(d_fake: jax.Array, d_real: jax.Array) -> jax.Array:
    """PoseTriplet's G loss: MSE between D's scores of fakes and of real 2D (d_fake (B,), d_real (B_real,)).

    Pairs are formed by cycling through the real batch when its size differs; D's real scores are constants here.
    """
    d_real = jax.lax.stop_gradient(d_real)
    paired = d_real[jnp.arange(d_fake.shape[0]) % d_real.shape[0]]
    return jnp.mean((d_fake - paired) ** 2)


def discriminator_loss(d_real: jax.Array, d_fake: jax.Array) -> jax.Array:
    """LSGAN: 0.5 * [mean (D(real) - 1)^2 + mean D(fake)^2]."""
    return 0.5 * (jnp.mean((d_real - 1.0) ** 2) + jnp.mean(d_fake ** 2))


def accuracy(d_real: jax.Array, d_fake: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Share of real scored > 0.5 and of fakes scored < 0.5 (monitoring only)."""
    return jnp.mean(d_real > 0.5), jnp.mean(d_fake < 0.5)


# --- history pool ---------------------------------------------------------------------------------------------------

def pool_query(rng: jax.Array, pool: jax.Array, filled: jax.Array, fakes: jax.Array):
    """Mix new fakes with older ones for the discriminator.

    pool: (P, ...) stored fakes; filled: () bool; fakes: (B, ...). Returns (fakes for D (B, ...), new pool,
    new filled). The first call stores the fakes (tiled to P) and returns them; later, each fake is swapped with
    probability 1/2 for a random stored one, which it replaces in the pool.
    """
    k_coin, k_idx = jax.random.split(rng)
    size, batch = pool.shape[0], fakes.shape[0]
    tiled = fakes[jnp.arange(size) % batch]
    idx = jax.random.randint(k_idx, (batch,), 0, size)
    swap = jax.random.bernoulli(k_coin, 0.5, (batch,)) & filled
    expand = lambda m: m.reshape((batch,) + (1,) * (fakes.ndim - 1))  # noqa: E731
    out = jnp.where(expand(swap), pool[idx], fakes)
    # Only swapped fakes enter the pool (others are sent out of bounds and dropped).
    updated = pool.at[jnp.where(swap, idx, size)].set(fakes, mode="drop")
    new_pool = jnp.where(filled, updated, tiled)
    return out, new_pool, jnp.ones_like(filled)
