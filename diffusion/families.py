"""What the shared trainer and samplers need to know about each model family.

A Family builds its network from params, turns a data batch into (x₀, conditioning), and turns
(x_t, t, conditioning) into the network's inputs. The DDPM maths stays in diffusion/.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from data.features import log_mel


@dataclasses.dataclass
class DiffWaveFamily:
    params: object

    def build_model(self):
        from network.diffwave import DiffWave
        model = DiffWave.from_params(self.params, name="diffwave")
        model.build()
        return model

    @property
    def conditioning(self) -> str:
        return self.params.network.conditioning

    def split_batch(self, batch):
        """batch {"audio": [B, T, 1], "label": [B], …} → (x₀ [B, T, 1], conditioning dict)."""
        audio = batch["audio"][..., :1]
        if self.conditioning == "class":
            return audio, {"label": batch["label"]}
        if self.conditioning == "mel":
            n = self.params.network
            hop = n.hop_length
            audio = audio[:, :tf.shape(audio)[1] // hop * hop]             # whole mel frames
            mel = log_mel(audio[..., 0], self.params.data.sample_rate, hop, n.n_mels)
            return audio, {"mel": mel}
        return audio, {}

    def model_inputs(self, x_t, t, cond):
        return {"audio": x_t, "step": tf.cast(t, tf.float32), **cond}

    def denoiser(self, model, cond, training=False):
        """denoise(x_t, t) → ε̂, with the conditioning bound."""
        return lambda x_t, t: model(self.model_inputs(x_t, t, cond), training=training)


FAMILIES = {"diffwave": DiffWaveFamily}


def family_for(params):
    return FAMILIES[params.model](params)
