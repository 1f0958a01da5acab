"""The DiffWave family: x is the waveform [N, T, 1]; unconditional, class- or mel-conditional."""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from data.features import log_mel, log_mel_to_mel
from diffusion.families.base import WaveformFamily
from diffusion.families.export import SamplerModule


@dataclasses.dataclass
class DiffWaveFamily(WaveformFamily):
    default_sampler = "fast"

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

    # --- PriorGrad (Lee et al. 2022): ε ~ N(0, Σ), Σ^½ from the conditioning mel ---------------
    def prior_std(self, cond):
        """Σ^½ [B, frames·hop, 1] of a priorgrad mel run (else None): per frame, the mel energy
        E = √Σ_k m_k² (m: the log-mel's linear magnitude, data/features.py's scaling inverted),
        σ = clip(E / prior_energy, prior_std_min, 1), held for the frame's hop samples."""
        n = self.params.network
        if n.prior != "priorgrad" or not cond or "mel" not in cond:
            return None
        magnitude = log_mel_to_mel(cond["mel"])
        energy = tf.sqrt(tf.reduce_sum(tf.square(magnitude), axis=-1))                # [B, F]
        std = tf.clip_by_value(energy / n.prior_energy, n.prior_std_min, 1.0)
        return tf.repeat(std, n.hop_length, axis=1)[..., None]

    def loss(self, objective, model, x0, cond, draws, seed):
        """The base loss; PriorGrad draws ε from N(0, Σ) and weights the error by Σ^−½."""
        std = self.prior_std(cond)
        if std is None:
            return super().loss(objective, model, x0, cond, draws, seed)
        denoise = self.denoiser(model, cond, training=True)
        return objective.loss(denoise, x0, draws["t"], draws["noise"] * std, std), {}

    def sample(self, model, scheduler, shape, cond=None, seed: int = 0, denoise=None,
               consistency=None, **options):
        """The base sampler (from the PriorGrad prior when the run has it); a mel run's samples
        are steered toward and refined on the conditioning log-mel by `consistency` (a
        Consistency; default: the run's params)."""
        from diffusion.core.consistency import Consistency, refine
        if consistency is None:
            consistency = Consistency.from_params(self.params.network)
        if options.get("prior_std") is None:
            options["prior_std"] = self.prior_std(cond)
        if not cond or "mel" not in cond or consistency.off:
            return super().sample(model, scheduler, shape, cond, seed, denoise, **options)
        if denoise is not None:
            denoise = self._guided(denoise, cond, consistency)
        x = self.sample_with(lambda c: self._guided(self.denoiser(model, c), c, consistency),
                             (id(model), consistency), scheduler, shape, cond, seed, denoise,
                             **options)
        target = tf.convert_to_tensor(cond["mel"], tf.float32)
        return refine(x, lambda x0: self._mel_distance(x0, target), consistency.refine_steps,
                      consistency.refine_rate)

    def _mel_distance(self, x0, target):
        """Mean |Δ log-mel| per example [B] (the vocoder report's log-mel L1)."""
        n = self.params.network
        mel = log_mel(x0[..., 0], self.params.data.sample_rate, n.hop_length, n.n_mels)
        return tf.reduce_mean(tf.abs(mel - target), axis=[1, 2])

    def _guided(self, denoise, cond, consistency):
        from diffusion.core.consistency import consistency_guided
        from diffusion.core.schedule import NoiseSchedule
        return consistency_guided(denoise, NoiseSchedule.from_params(self.params),
                                  lambda x0: self._mel_distance(x0, cond["mel"]),
                                  consistency.scale, consistency.steps)

    def sample_shape(self, num: int, seconds: float, cond=None):
        """[num, T, 1]; a vocoder's T is its mel frames × hop."""
        if cond and "mel" in cond:
            return [num, int(cond["mel"].shape[1]) * self.params.network.hop_length, 1]
        return super().sample_shape(num, seconds)

    def export_module(self, model, options):
        scheduler = self.export_scheduler(options)
        chunk = int(options.chunk_seconds * self.params.data.sample_rate)
        return (SamplerModule(self, model, scheduler, self.params, chunk),
                f"{options.sampler}, {scheduler.num_inference_steps} steps, "
                f"{self.conditioning} conditioning")
