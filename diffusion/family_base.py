"""What every family shares (diffusion/families.py, diffusion/latent_families.py).

`Family.denoiser` binds a conditioning dict to the network's inputs; `WaveformFamily` is a
family whose x is the waveform itself, [N, T, 1] (DiffWave, and the DiffAE's decoder).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


class Family:
    def denoiser(self, model, cond, training=False):
        """denoise(x_t, t) → the network's prediction (ε̂ or v̂), with `cond` bound."""
        return lambda x_t, t: model(self.model_inputs(x_t, t, cond), training=training)


@dataclasses.dataclass
class WaveformFamily(Family):
    params: object

    time_axis = 1                       # x [N, T, 1]: in/out-painting masks run along T

    def model_inputs(self, x_t, t, cond):
        return {"audio": x_t, "step": tf.cast(t, tf.float32), **cond}

    def sample_shape(self, num: int, seconds: float):
        return [num, max(1, int(round(seconds * self.params.data.sample_rate))), 1]

    def frames_per_second(self) -> float:
        return float(self.params.data.sample_rate)

    def to_audio(self, x):
        """A sample [N, T, 1] → (audio [N, T] float32, images or None)."""
        return np.asarray(x)[..., 0], None

    def from_audio(self, audio, num: int):
        """Mono audio [T] at the run's rate → the x₀ of audio-to-audio, [num, T, 1]."""
        return np.tile(np.asarray(audio, np.float32)[None, :, None], [num, 1, 1])
