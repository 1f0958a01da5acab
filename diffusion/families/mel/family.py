"""The mel-UNet family (teticio/audio-diffusion): diffusion over Mel spectrogram images in
[−1, 1], or over the latents of a KL autoencoder (network.vae_run, diffusion/families/mel/vae.py).
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from diffusion.core.guidance import draw_keep_mask, guided, repeat_to
from diffusion.families.base import Family


@dataclasses.dataclass
class MelUNetFamily(Family):
    """teticio/audio-diffusion: diffusion over Mel spectrogram images in [−1, 1]."""
    params: object

    ddpm_clip = "x0"                    # diffusers' DDPMScheduler (clip_sample): x̂₀, never x
    makes_images = True
    default_sampler = "ddim"

    @property
    def conditioning(self) -> str:
        """"class" with network.num_classes > 0: the label reaches the UNet as a one-hot
        encoding (its encoding input, teticio's conditional UNet), else "none"."""
        return "class" if self.params.network.num_classes else "none"

    @property
    def encoding_dim(self) -> int:
        n = self.params.network
        return n.num_classes or n.encoding_dim

    def class_condition(self, labels, guidance=None) -> dict:
        """One-hot encodings; with classifier-free guidance (a run trained with cfg_drop > 0)
        also the scale, `guidance` or network.guidance (1: the conditional pass alone; a
        scalar tensor, as in the SavedModel's graph, is kept: both passes, mixed in-graph)."""
        cond = {"encoding": tf.one_hot(labels, self.params.network.num_classes)}
        scale = self.params.network.guidance if guidance is None else guidance
        if tf.is_tensor(scale):
            return {**cond, "guidance": scale}
        return cond if scale == 1.0 else {**cond, "guidance": float(scale)}

    # -- classifier-free guidance (diffusion/core/guidance.py); the null label is the
    #    all-zero one-hot, so the UNet's encoding projection contributes only its bias ---------
    def training_draws(self, batch: int, seed):
        drop = self.params.network.cfg_drop if self.conditioning == "class" else 0.0
        return {"class_keep": draw_keep_mask(batch, drop, seed)} if drop else {}

    def denoiser(self, model, cond, training=False):
        """ε̂(x, t | label); cond["class_keep"] (training) zeroes dropped labels; with
        cond["guidance"] = s: ε̂_∅ + s·(ε̂_c − ε̂_∅)."""
        cond = dict(cond)
        scale, keep = cond.pop("guidance", None), cond.pop("class_keep", None)
        if keep is not None:
            cond["encoding"] = _null_where_dropped(cond["encoding"], keep)
        if scale is None:
            return super().denoiser(model, cond, training)

        def with_keep(x_t, t, keep):
            encoding = repeat_to(cond["encoding"], tf.shape(x_t)[0])
            return model(self.model_inputs(x_t, t, {"encoding": _null_where_dropped(encoding,
                                                                                     keep)}))
        return guided(with_keep, scale)

    @property
    def mel(self):
        from data.mel import Mel
        return Mel.from_params(self.params)

    # -- latent mode (network.vae_run): diffusion on VAE latents × latent_scale -------------
    @property
    def vae(self):
        """The KL autoencoder of network.vae_run (loaded once), or None in pixel space."""
        if not self.params.network.vae_run:
            return None
        if "_vae" not in self.__dict__:
            from diffusion.families.mel.vae import load_vae
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
                       n.norm_groups, in_channels=c, encoding_dim=self.encoding_dim,
                       name="unet2d")
        model({"image": tf.zeros([1, h, w, c]), "step": tf.zeros([1])} |
              ({"encoding": tf.zeros([1, self.encoding_dim])} if self.encoding_dim else {}))
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
        """A batch of audio slices or stored images → x₀: images (or latents), and the labels'
        one-hot encodings for a class-conditional run."""
        x0 = self.to_latent(self.mel.batch_images(batch))
        return x0, (self.class_condition(batch["label"]) if self.conditioning == "class" else {})

    def model_inputs(self, x_t, t, cond):
        return {"image": x_t, "step": t, **cond}


    def sample_shape(self, num: int, seconds: float, cond=None):
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

    def to_images(self, x):
        """Samples [N, H, W, 1] in [−1, 1] (or latents) → uint8 mel images [N, H, W]."""
        import numpy as np
        x = np.asarray(self.from_latent(x))                 # latent mode: VAE decoder
        return np.clip(np.round((x[..., 0] + 1.0) * 127.5), 0, 255).astype(np.uint8)

    def to_audio(self, x, request=None):
        """Images [N, H, W, 1] in [−1, 1] → (audio [N, W·hop − 1] by Griffin-Lim, uint8 images)."""
        import numpy as np
        images = self.to_images(x)
        mel = self.mel
        return np.stack([mel.image_to_audio(image) for image in images]), images

    # --- export.py ---------------------------------------------------------------------------
    def export_module(self, model, options):
        from diffusion.families.mel.export import MelSamplerModule
        if self.encoding_dim and self.conditioning != "class":     # teticio's encodings
            raise ValueError("SavedModel export of encoding-conditioned "
                             "(network.encoding_dim) runs is not in this version")
        sampler = "ddim" if options.sampler == "fast" else options.sampler  # fast: DiffWave's
        scheduler = self.export_scheduler(options, sampler)
        module = MelSamplerModule(self, model, scheduler)
        n = self.params.network
        what = ("no conditioning" if not module.num_classes else
                f"labels 0..{n.num_classes - 1}" +
                (f", guidance {n.guidance:g} by default" if module.guided else ""))
        latent = f", latent (VAE {n.vae_run})" if n.vae_run else ""
        return module, f"{sampler}, {scheduler.num_inference_steps} steps, {what}{latent}"


def _null_where_dropped(encoding, keep):
    """The one-hot rows where keep [B] is False become the null label (all zeros)."""
    return encoding * tf.cast(keep, encoding.dtype)[:, None]
