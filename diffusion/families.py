"""What the shared trainer and samplers need to know about each model family.

A Family builds its network from params, turns a data batch into (x₀, conditioning), turns
(x_t, t, conditioning) into the network's inputs, says what shape a sample of some seconds has
and turns a sample back into audio. The DDPM maths stays in diffusion/.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from data.features import log_mel
from diffusion.family_base import Family, WaveformFamily


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


def mel_for(params):
    """The Mel of a mel-unet or mel-vae run (network.x_res … n_iter, data.sample_rate)."""
    from data.mel import Mel
    n = params.network
    return Mel(n.x_res, n.y_res, params.data.sample_rate, n.n_fft, n.hop_length, n.top_db,
               n.n_iter)


def mel_images(mel, batch):
    """Audio slices [B, x_res·hop − 1, 1] (or stored uint8 images [B, y_res, x_res] from
    `python -m data.mel_images`) → images [B, y_res, x_res, 1] in [−1, 1], in-graph."""
    pixels = batch["image"] if "image" in batch else mel._audio_to_pixels(batch["audio"][..., 0])
    return tf.cast(pixels, tf.float32)[..., None] / 127.5 - 1.0


@dataclasses.dataclass
class MelUNetFamily(Family):
    """teticio/audio-diffusion: diffusion over Mel spectrogram images in [−1, 1]."""
    params: object

    conditioning = "none"
    default_sampler = "ddim"

    @property
    def mel(self):
        return mel_for(self.params)

    # -- latent mode (network.vae_run): diffusion on VAE latents × latent_scale -------------
    @property
    def vae(self):
        """The KL autoencoder of network.vae_run (loaded once), or None in pixel space."""
        if not self.params.network.vae_run:
            return None
        if "_vae" not in self.__dict__:
            from diffusion.vae_training import load_vae
            self.__dict__["_vae"] = load_vae(self.params.network.vae_run, self.params)
        return self.__dict__["_vae"]

    def _x_shape(self):
        """(height, width, channels) of x: the image, or the latent in latent mode."""
        n, vae = self.params.network, self.vae
        if vae is None:
            return n.y_res, n.x_res, 1
        f = vae.downsampling
        return n.y_res // f, n.x_res // f, vae.latent_channels

    def build_model(self):
        from network.unet2d import UNet2D
        n = self.params.network
        h, w, c = self._x_shape()
        model = UNet2D(n.block_channels, [bool(a) for a in n.attention], n.layers_per_block,
                       n.norm_groups, in_channels=c, encoding_dim=n.encoding_dim, name="unet2d")
        model({"image": tf.zeros([1, h, w, c]), "step": tf.zeros([1])} |
              ({"encoding": tf.zeros([1, n.encoding_dim])} if n.encoding_dim else {}))
        return model

    def to_latent(self, images):
        """Images in [−1, 1] → x₀: unchanged, or the VAE posterior mean × latent_scale."""
        if self.vae is None:
            return images
        return self.vae.encode(images)[0] * self.params.network.latent_scale

    def from_latent(self, x):
        if self.vae is None:
            return x
        return self.vae.decode(tf.convert_to_tensor(x) / self.params.network.latent_scale)

    def split_batch(self, batch):
        """A batch of audio slices or stored images → x₀: images (or latents), no cond."""
        return self.to_latent(mel_images(self.mel, batch)), {}

    def model_inputs(self, x_t, t, cond):
        return {"image": x_t, "step": t, **cond}


    def sample_shape(self, num: int, seconds: float):
        """Wider noise gives longer clips: the width is x_res × k slices (≥ 1)."""
        n = self.params.network
        slices = max(1, int(round(seconds * self.params.data.sample_rate / n.slice_samples)))
        h, w, c = self._x_shape()
        return [num, h, w * slices, c]

    time_axis = 2                       # x [N, H, W, 1]: columns are time

    def frames_per_second(self) -> float:
        """Pixels per second = x_res·sr/(x_res·hop) = sr/hop (teticio's in/out-painting);
        latent columns: ÷ the VAE's downsampling."""
        f = self.vae.downsampling if self.vae is not None else 1
        return self.params.data.sample_rate / self.params.network.hop_length / f

    def from_audio(self, audio, num: int):
        """Mono audio [T] → its first slice's image in [−1, 1], [num, y_res, x_res, 1]
        (teticio's audio-to-audio variations start from it)."""
        import numpy as np
        mel = self.mel
        mel.load_audio(raw_audio=audio)
        image = mel.audio_slice_to_image(0).astype(np.float32) / 127.5 - 1.0
        x = np.asarray(self.to_latent(tf.constant(image[None, :, :, None])))
        return np.tile(x, [num, 1, 1, 1])

    def to_audio(self, x):
        """Images [N, H, W, 1] in [−1, 1] → (audio [N, W·hop − 1] by Griffin-Lim, uint8 images)."""
        import numpy as np
        x = np.asarray(self.from_latent(x))                 # latent mode: VAE decoder
        images = np.clip(np.round((x[..., 0] + 1.0) * 127.5), 0, 255).astype(np.uint8)
        mel = self.mel
        return np.stack([mel.image_to_audio(image) for image in images]), images


from diffusion.latent_families import DiffAEFamily, DiffGenFamily  # noqa: E402  (text-to-audio)

FAMILIES = {"diffwave": DiffWaveFamily, "mel-unet": MelUNetFamily, "diffae": DiffAEFamily,
            "diffgen": DiffGenFamily}


def family_for(params):
    if params.model not in FAMILIES:       # mel-vae: an autoencoder, not a diffusion model
        raise ValueError(f"{params.model} runs are not diffusion models (a mel-vae run serves "
                         f"a mel-unet run's network.vae_run)")
    return FAMILIES[params.model](params)
