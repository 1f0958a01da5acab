"""The text-to-audio families (Moûsai) on the shared core, v-objective and the V sampler:

- `diffae`: the diffusion autoencoder trained on audio crops (x₀ = the waveform, conditioned
  on its own latent, encoded on the fly from the clean crop);
- `diffgen`: the latent generator (x₀ = the frozen DiffAE's latent of the crop, conditioned on
  the cached text-encoder states of its caption, with classifier-free guidance).

Same protocol as diffusion/families.py's DiffWaveFamily (build_model, split_batch,
model_inputs, denoiser, sample_shape, to_audio, from_audio, default_sampler), plus `objective`,
`training_draws` (the CFG mask) and `prepare_training` (the caption cache).
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from diffusion.core.guidance import draw_keep_mask, guided, repeat_to
from diffusion.core.sampling import sample
from diffusion.core.schedulers import VScheduler
from diffusion.families.base import Family, Request, WaveformFamily


class FamilyError(ValueError):
    """A run, data set or argument that the family cannot use (one line, names it)."""


@dataclasses.dataclass
class DiffAEFamily(WaveformFamily):
    objective = "v"
    default_sampler = "v"
    samplers = ("v",)
    conditioning = "audio"              # conditioned on its own latent: no free-running samples
    tensorboard_samples = False
    reconstructs = True                 # generate.py --from-audio: encode → decode

    def build_model(self):
        from network.autoencoder import DiffAE
        model = DiffAE.from_params(self.params, name="diffae")
        zeros = tf.zeros([1, model.length_multiple, 1])
        model({"audio": zeros, "step": tf.zeros([1]), "source": zeros})
        return model

    def split_batch(self, batch):
        audio = batch["audio"][..., :1]
        return audio, {"source": audio}

    def latent_condition(self, model, audio, num: int) -> dict:
        """Reconstruction: the latent of mono `audio` [T], for `num` decodings from noise."""
        return {"latent": tf.tile(model.encode(tf.constant(audio, tf.float32)[None]),
                                  [num, 1, 1])}

    def sample_shape(self, num: int, seconds: float, cond=None):
        if cond and "latent" in cond:
            return [num, int(cond["latent"].shape[1]) * self.params.network.latent_hop, 1]
        return super().sample_shape(num, seconds)

    def to_audio(self, x, request=None):
        """The padded waveform → the length asked for."""
        audio = np.asarray(x)[..., 0]
        if request is not None:
            audio = audio[:, :request.length(self.params.data.sample_rate)]
        return audio, None

    def decode(self, model, latent, steps: int = 50, length: int | None = None, seed: int = 0):
        """Latent [B, L, C] → audio [B, L·latent_hop] (cropped to `length`) by the V sampler."""
        return decode_latent(model, latent, steps, length, seed)

    def reconstruct(self, model, audio, steps: int = 50, seed: int = 0):
        """encode → decode, returning audio of the input's length [B, T]."""
        audio = tf.convert_to_tensor(audio, tf.float32)
        return self.decode(model, model.encode(audio), steps, int(audio.shape[1]), seed)


def decode_latent(ae, latent, steps: int = 50, length: int | None = None, seed: int = 0):
    """A DiffAE's latent [B, L, C] → audio [B, L·latent_hop] (cropped to `length`)."""
    latent = tf.convert_to_tensor(latent, tf.float32)
    shape = [int(latent.shape[0]), int(latent.shape[1]) * ae.latent_hop, 1]
    audio = sample(ae.latent_denoiser(latent), VScheduler(steps), shape, seed)
    return audio[:, :length, 0] if length is not None else audio[..., 0]


def check_autoencoder_run(run_dir: str):
    """The params of a DiffAE run directory, or a FamilyError saying why it is not one."""
    from params import Params, ParamsError
    if not run_dir:
        raise FamilyError("a diffgen run needs --autoencoder DIFFAE_RUN (a run trained with "
                          "--model diffae)")
    try:
        ae = Params.load(os.path.join(run_dir, "params.json"))
    except ParamsError as e:
        raise FamilyError(f"--autoencoder {run_dir}: {e}") from None
    if ae.model != "diffae":
        raise FamilyError(f"--autoencoder {run_dir}: a {ae.model} run, not a diffae run")
    return ae


@dataclasses.dataclass
class DiffGenFamily(Family):
    params: object

    objective = "v"
    default_sampler = "v"
    samplers = ("v",)
    conditioning = "text"
    tensorboard_samples = False

    def __post_init__(self):
        self._autoencoder, self._captions, self._encoder = None, None, None

    # --- the frozen parts ----------------------------------------------------------------
    @property
    def autoencoder(self):
        """The DiffAE (EMA weights) of network.autoencoder, loaded once and checked."""
        if self._autoencoder is None:
            from diffusion.training.checkpoints import RunError, load_weights
            n = self.params.network
            ae_params = check_autoencoder_run(n.autoencoder)
            if ae_params.network.latent_channels != n.latent_channels:
                raise FamilyError(f"--autoencoder {n.autoencoder}: latent has "
                                  f"{ae_params.network.latent_channels} channels, this run "
                                  f"network.latent_channels={n.latent_channels}")
            if ae_params.data.sample_rate != self.params.data.sample_rate:
                raise FamilyError(f"--autoencoder {n.autoencoder}: trained at "
                                  f"{ae_params.data.sample_rate} Hz, this run at "
                                  f"{self.params.data.sample_rate} Hz (data.sample_rate)")
            model = DiffAEFamily(ae_params).build_model()
            try:
                load_weights(model, n.autoencoder, ae_params.train.ema_decay, True,
                             error=RunError, what="cannot restore into a diffae with the run's "
                                                  "params")
            except RunError as e:
                raise FamilyError(f"--autoencoder: {e}") from None
            self._autoencoder = model
            self._autoencoder.trainable = False
        return self._autoencoder

    @property
    def latent_multiple(self) -> int:
        """Latent frames must divide by the generator's and the decoder's down-sampling."""
        ae = self.autoencoder
        return math.lcm(math.prod(self.params.network.factors),
                        ae.length_multiple // ae.latent_hop)

    def prepare_training(self, prepared) -> str:
        """Loads the autoencoder, checks the crop, encodes (or reuses) the captions' states."""
        from diffusion.families.text_to_audio.captions import CaptionStates
        multiple = self.latent_multiple * self.autoencoder.latent_hop
        if self.params.data.crop_samples % multiple:
            raise FamilyError(f"data.crop_samples must be a multiple of {multiple} (the "
                              f"autoencoder's latent hop × the generator's down-sampling); got "
                              f"{self.params.data.crop_samples}")
        captions = [s.caption for s in prepared.report.sources]
        if not any(captions):
            raise FamilyError(f"{prepared.report.origin}: no captions (a diffgen run trains on "
                              f"the 'caption' field of metadata.jsonl)")
        self._captions = CaptionStates.build(captions, self.params.network)
        return (f"text states: {len(self._captions.captions)} captions, "
                f"{'reused' if self._captions.from_cache else 'computed'}: "
                f"{self._captions.path}")

    @property
    def text_encoder(self):
        """The frozen text encoder of network.text_encoder (loaded once)."""
        from diffusion.families.text_to_audio.captions import encoder_dir
        from network.text_encoder import TextEncoder
        if self._encoder is None:
            n = self.params.network
            self._encoder = TextEncoder(encoder_dir(n.text_encoder), max_length=n.text_max_length)
        return self._encoder

    def text_condition(self, texts):
        """Sampling: the frozen text encoder's states of `texts` (loaded once)."""
        states, mask = self.text_encoder(list(texts))
        return {"text": states, "text_mask": mask}

    # --- the protocol ----------------------------------------------------------------------
    def build_model(self):
        from network.unet1d import UNet1D
        n = self.params.network
        model = UNet1D(n.latent_channels, n.channels, n.factors, n.items, n.attentions,
                       n.cross_attentions, n.heads, n.head_features, text_dim=n.text_dim,
                       text_length=n.text_max_length, name="diffgen")
        length = math.prod(n.factors)
        model({"x": tf.zeros([1, length, n.latent_channels]), "step": tf.zeros([1]),
               "text": tf.zeros([1, n.text_max_length, n.text_dim]),
               "text_mask": tf.ones([1, n.text_max_length], tf.bool)})
        return model

    def split_batch(self, batch):
        """Audio crops → x₀ = the frozen DiffAE latents; captions → cached text states."""
        latent = tf.stop_gradient(self.autoencoder.encode(batch["audio"][..., 0]))
        states, mask = self._captions.lookup(batch["caption"])
        return latent, {"text": states, "text_mask": mask}

    def training_draws(self, batch: int, seed):
        """The CFG mask for the global batch, keyed by the trainer's (step, seed)."""
        return {"text_keep": draw_keep_mask(batch, self.params.network.cfg_drop, seed)}

    def model_inputs(self, x_t, t, cond):
        return {"x": x_t, "step": t, **cond}

    def denoiser(self, model, cond, training=False):
        """v̂(x, σ | text); with cond["guidance"] = s: v̂_∅ + s·(v̂_c − v̂_∅) (s = 1: v̂_c)."""
        cond = dict(cond)
        scale = cond.pop("guidance", None)
        if scale is None or training:
            return lambda x_t, t: model(self.model_inputs(x_t, t, cond), training=training)

        def with_keep(x_t, t, keep):
            text = {k: repeat_to(v, tf.shape(x_t)[0]) for k, v in cond.items()}
            return model(self.model_inputs(x_t, t, {**text, "text_keep": keep}))
        return guided(with_keep, scale)

    def sample_shape(self, num: int, seconds: float, cond=None):
        """Latent frames for `seconds`, rounded up to what the networks can take."""
        samples = max(1, int(round(seconds * self.params.data.sample_rate)))
        frames = -(-samples // self.autoencoder.latent_hop)
        frames = -(-frames // self.latent_multiple) * self.latent_multiple
        return [num, frames, self.params.network.latent_channels]

    def to_audio(self, x, request: Request = Request()):
        """Latents → audio by the DiffAE decoder (request.decode_steps V steps, seeded by
        request.seed), cropped to request.seconds."""
        audio = decode_latent(self.autoencoder, x, request.decode_steps,
                              request.length(self.params.data.sample_rate), seed=request.seed)
        return audio.numpy(), None

    def from_audio(self, audio, num: int):
        """Audio → its DiffAE latent, the x₀ of latent audio-to-audio (the caller crops the
        decoded audio back to len(audio))."""
        audio = np.asarray(audio, np.float32)
        multiple = self.latent_multiple * self.autoencoder.latent_hop
        audio = np.pad(audio, [0, -len(audio) % multiple])
        return np.tile(self.autoencoder.encode(audio[None]).numpy(), [num, 1, 1])

    # --- export.py ---------------------------------------------------------------------------
    def load_frozen(self) -> None:
        self.autoencoder                        # loads and checks the DiffAE run now

    def export_module(self, model, options):
        """Text → audio: a string input, both V loops and the text encoder in the graph."""
        from diffusion.families.text_to_audio.export import TextToAudioModule
        steps = options.steps or 50
        if steps > 1000:
            raise ValueError(f"steps: must be in 1..1000, got {steps}")
        self.load_frozen()
        return (TextToAudioModule(self, model, steps, options.decode_steps),
                f"text → audio, {steps} + {options.decode_steps} V steps")
