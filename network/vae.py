"""A small KL autoencoder (the AutoencoderKL kind of latent diffusion, Rombach et al. 2022) for
mel-spectrogram images, channels-last Keras 3.

    vae = KLAutoencoder(channels=(32, 64, 64), latent_channels=4)
    mean, logvar = vae.encode(images [B, H, W, 1] in [−1, 1])   # [B, H/4, W/4, 4] each
    z = mean + exp(logvar/2)·ε ;  images ≈ vae.decode(z)
    recon, mean, logvar = vae(images)

Encoder: conv_in 3×3 → per level a residual block (GroupNorm, SiLU, 3×3 conv, twice) and a
stride-2 3×3 conv except at the last level → GroupNorm, SiLU, conv to 2·latent_channels
(mean, log-variance). Decoder mirrors it with nearest ×2 + 3×3 conv. Downsampling 2^(levels−1).
Loss (`vae_loss`): mean |x − x̂| + kl_weight · KL(q(z|x) ‖ N(0, I)) per latent element.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from network.tracking import track


class VAEResBlock(layers.Layer):
    def __init__(self, channels, groups, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.norm1 = layers.GroupNormalization(groups, epsilon=1e-6)
        self.conv1 = layers.Conv2D(channels, 3, padding="same")
        self.norm2 = layers.GroupNormalization(groups, epsilon=1e-6)
        self.conv2 = layers.Conv2D(channels, 3, padding="same")
        self.shortcut = None

    def build(self, input_shape):
        if input_shape[-1] != self.channels:
            self.shortcut = layers.Conv2D(self.channels, 1)

    def call(self, x):
        h = self.conv1(ops.silu(self.norm1(x)))
        h = self.conv2(ops.silu(self.norm2(h)))
        return (self.shortcut(x) if self.shortcut is not None else x) + h


class KLAutoencoder(keras.Model):
    def __init__(self, channels=(32, 64, 64), latent_channels=4, norm_groups=8, in_channels=1,
                 **kwargs):
        super().__init__(**kwargs)
        self.channels, self.latent_channels = tuple(channels), latent_channels
        self.norm_groups, self.in_channels = norm_groups, in_channels
        last = len(channels) - 1
        self.enc_in = layers.Conv2D(channels[0], 3, padding="same")
        for i, c in enumerate(channels):            # attributes, so checkpoints see them
            track(self, {f"enc_block_{i}": VAEResBlock(c, norm_groups)})   # network/tracking.py
            if i < last:
                track(self, {f"enc_down_{i}": layers.Conv2D(c, 3, strides=2, padding="same")})
        self.enc_norm = layers.GroupNormalization(norm_groups, epsilon=1e-6)
        self.enc_out = layers.Conv2D(2 * latent_channels, 3, padding="same")
        self.dec_in = layers.Conv2D(channels[-1], 3, padding="same")
        for i, c in enumerate(reversed(channels)):
            track(self, {f"dec_block_{i}": VAEResBlock(c, norm_groups)})
            if i < last:
                track(self, {f"dec_up_{i}": layers.Conv2D(c, 3, padding="same")})
        self.dec_norm = layers.GroupNormalization(norm_groups, epsilon=1e-6)
        self.dec_out = layers.Conv2D(in_channels, 3, padding="same")

    @property
    def downsampling(self) -> int:
        return 2 ** (len(self.channels) - 1)

    def encode(self, x):
        """→ (mean, logvar) of q(z|x), each [B, H/f, W/f, latent_channels]."""
        h = self.enc_in(ops.cast(x, self.compute_dtype))
        for i in range(len(self.channels)):
            h = getattr(self, f"enc_block_{i}")(h)
            if i < len(self.channels) - 1:
                h = getattr(self, f"enc_down_{i}")(h)
        h = ops.cast(self.enc_out(ops.silu(self.enc_norm(h))), "float32")
        mean, logvar = ops.split(h, 2, axis=-1)
        return mean, ops.clip(logvar, -30.0, 20.0)

    def decode(self, z):
        h = self.dec_in(ops.cast(z, self.compute_dtype))
        for i in range(len(self.channels)):
            h = getattr(self, f"dec_block_{i}")(h)
            if i < len(self.channels) - 1:
                h = ops.repeat(ops.repeat(h, 2, axis=1), 2, axis=2)          # nearest ×2
                h = getattr(self, f"dec_up_{i}")(h)
        return ops.cast(self.dec_out(ops.silu(self.dec_norm(h))), "float32")

    def call(self, x, noise=None):
        mean, logvar = self.encode(x)
        z = mean if noise is None else mean + ops.exp(0.5 * logvar) * noise
        return self.decode(z), mean, logvar

    def get_config(self):
        return {**super().get_config(), "channels": self.channels,
                "latent_channels": self.latent_channels, "norm_groups": self.norm_groups,
                "in_channels": self.in_channels}


def vae_loss(x, recon, mean, logvar, kl_weight: float = 1e-6):
    """Mean L1 reconstruction + kl_weight · mean KL(N(μ, σ²) ‖ N(0, 1)) =
    ½(μ² + σ² − 1 − log σ²) per latent element."""
    rec = ops.mean(ops.abs(x - recon))
    kl = ops.mean(0.5 * (ops.square(mean) + ops.exp(logvar) - 1.0 - logvar))
    return rec + kl_weight * kl, rec, kl
