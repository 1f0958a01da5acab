"""Moûsai's diffusion autoencoder (DiffAE, arXiv 2301.11757 §3.1): a magnitude-STFT conv encoder
with a tanh bottleneck, and a 1-D diffusion UNet over the waveform (network/unet1d.py) that
receives the latent at one depth, trained with the v-objective.

    ae = DiffAE.from_params(params)                  # params.network: DiffAEParams
    z = ae.encode(audio)                             # [B, T] or [B, T, 1] → [B, ⌈T/hop⌉, C] in (−1, 1)
    v = ae.latent_denoiser(z)                        # v̂(x, σ | z): the family's V sampler
                                                     # decodes (diffusion/families/text_to_audio)

Encoder: log(1 + |STFT|) (n_fft, hop; centred, so T/hop frames) → conv stem → per stage: ResNet blocks,
strided conv ↓factor → 1×1 conv to the latent channels → tanh. Latent hop = hop · Π factors.
Inputs are zero-padded to a multiple of `length_multiple` (the latent hop and the decoder's
down-sampling), and the family's `decode(…, length=T)` crops back, so encode→decode keeps the
length.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from network.tracking import track
from network.unet1d import ResnetBlock, UNet1D


class STFTEncoder(layers.Layer):
    def __init__(self, n_fft, hop, channels, multipliers, factors, blocks, latent_channels, **kw):
        super().__init__(**kw)
        self.n_fft, self.hop = n_fft, hop
        self.factors, self.blocks = tuple(factors), tuple(blocks)
        self.stem = layers.Conv1D(channels * multipliers[0], 3, padding="same")
        for k, f in enumerate(factors):
            track(self, {f"resnet_{k}_{b}": ResnetBlock(channels * multipliers[k])
                         for b in range(blocks[k])})       # network/tracking.py
            track(self, {f"down_{k}": layers.Conv1D(channels * multipliers[k + 1], 2 * f + 1,
                                                    strides=f, padding="same")})
        self.to_latent = layers.Conv1D(latent_channels, 1)

    def call(self, audio):
        """audio [B, T] (T a multiple of the latent hop) → latent [B, T/latent_hop, C]."""
        half = self.n_fft // 2
        audio = tf.cast(audio, tf.float32)                                # STFT in fp32 (bf16 runs)
        padded = tf.pad(audio, [[0, 0], [half, half]])                   # centred frames
        spec = tf.abs(tf.signal.stft(padded, self.n_fft, self.hop, fft_length=self.n_fft))
        # log(1 + |X|): our choice, so loud tonal bins (|X| ~ n_fft/4) do not saturate the tanh.
        h = self.stem(tf.math.log1p(spec[:, :tf.shape(audio)[1] // self.hop]))  # [B, T/hop, bins]
        for k in range(len(self.factors)):
            for b in range(self.blocks[k]):
                h = getattr(self, f"resnet_{k}_{b}")(h)
            h = getattr(self, f"down_{k}")(h)
        return tf.tanh(self.to_latent(h))                                 # the bottleneck


class DiffAE(keras.Model):
    """v̂(x_σ, σ; z): inputs {"audio": x_σ [B, T, 1], "step": σ [B]} and either "latent" z
    [B, T/latent_hop, C] or "source" (clean audio [B, T, 1], encoded on the fly: training)."""

    def __init__(self, encoder_args: dict, decoder_args: dict, **kw):
        super().__init__(**kw)
        self.encoder = STFTEncoder(**encoder_args, name="encoder")
        self.decoder = UNet1D(**decoder_args, name="decoder")
        self.latent_channels = encoder_args["latent_channels"]
        self.latent_hop = encoder_args["hop"] * math.prod(encoder_args["factors"])
        self.length_multiple = math.lcm(self.latent_hop, self.decoder.downsampling)

    @classmethod
    def from_params(cls, params, **kw):
        n = params.network
        enc = dict(n_fft=n.n_fft, hop=n.hop_length, channels=n.encoder_channels,
                   multipliers=n.encoder_multipliers, factors=n.encoder_factors,
                   blocks=n.encoder_blocks, latent_channels=n.latent_channels)
        dec = dict(in_channels=1, channels=n.channels, factors=n.factors, items=n.items,
                   attentions=n.attentions, heads=n.heads, head_features=n.head_features,
                   context_channels=n.latent_channels, context_depth=n.inject_depth,
                   patch=n.patch)
        return cls(enc, dec, **kw)

    def padded_length(self, length: int) -> int:
        return -(-int(length) // self.length_multiple) * self.length_multiple

    def encode(self, audio):
        audio = tf.convert_to_tensor(audio, tf.float32)
        if audio.shape.rank == 3:
            audio = audio[..., 0]
        length = tf.shape(audio)[1]
        pad = (-length) % self.length_multiple
        return self.encoder(tf.pad(audio, [[0, 0], [0, pad]]))

    def call(self, inputs, training=False):
        latent = inputs.get("latent")
        if latent is None:
            latent = self.encoder(inputs["source"][..., 0])
        return self.decoder({"x": inputs["audio"], "step": inputs["step"], "context": latent},
                            training=training)

    def latent_denoiser(self, latent):
        return lambda x, sigma: self({"audio": x, "step": sigma, "latent": latent})
