"""A SavedModel of the mel-UNet pipeline: DDIM sampling, the VAE decoder (latent runs) and
Griffin-Lim, all in the graph.

Signatures (label and guidance only where the run has them):
  serving_default(num_samples: int32, seed: int32[, label: int32 [N]])
      → {"images": uint8 [N, y_res, x_res·slices], "audio": float32 [N, x_res·slices·hop − 1]}
      a classifier-free-guided run samples at its default scale, the saved `guidance` variable
  generate(num_samples, seed[, label][, guidance: float32 scalar > 0]) → the same
  denoise(x_t: float32 [N, h, W, c], t: float32 [N][, label][, guidance]) → {"epsilon": ...}
label needs num_samples entries in 0..num_classes − 1. Guidance is the family's own
(MelUNetFamily.denoiser → diffusion/core/guidance.py: ε̂_∅ + s·(ε̂_c − ε̂_∅), both in one batch).
x is the image, or the latent (h = y_res/f, c = latent channels) that the VAE decoder maps to
it. The width (slices) and the scheduler are fixed at export: Griffin-Lim's loop needs a
static frame count. The noise is the Python sampler's (stateless, keyed by seed and step
index), so the images equal `diffusion.core.sampling.sample` + the family's to_images for the
same seed. Weights are plain tf.Variables driven by stateless_call (Keras 3 variables do not
restore in TF1-style loaders such as saved_model_cli), as diffusion/families/export.py does.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from diffusion.core.sampling import graph_sample
from diffusion.families.export import plain_model


class MelSamplerModule(tf.Module):
    def __init__(self, family, model, scheduler, slices: int = 1):
        super().__init__(name="mel_sampler")
        object.__setattr__(self, "model", plain_model(self, model))
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "scheduler", scheduler)
        object.__setattr__(self, "mel", family.mel)
        n = family.params.network
        h, w, c = family._x_shape()
        self.x_spec = [None, h, w * slices, c]
        self.height, self.width = n.y_res, n.x_res * slices
        self.num_classes = n.num_classes if family.conditioning == "class" else 0
        self.guided = bool(self.num_classes and n.cfg_drop)     # trained with the null label
        self.sample_rate = tf.Variable(family.params.data.sample_rate, trainable=False,
                                       name="sample_rate")    # saved: readable by servers
        if self.num_classes:                                  # the run's default scale s
            self.guidance = tf.Variable(n.guidance, trainable=False, dtype=tf.float32,
                                        name="guidance")
        if family.vae is not None:                            # latent mode: the decoder
            object.__setattr__(self, "vae", plain_model(self, family.vae, prefix="vae"))

    def _condition(self, num_samples, label, guidance):
        """(checks, cond): the family's class conditioning, guidance a scalar tensor."""
        if label is None:
            return [], {}
        checks = [tf.debugging.assert_equal(tf.shape(label)[0], num_samples,
                                            message="label needs num_samples entries"),
                  tf.debugging.assert_greater_equal(label, 0, message="label must be >= 0"),
                  tf.debugging.assert_less(label, self.num_classes,
                                           message=f"label must be < {self.num_classes}")]
        if guidance is None:                    # a run without CFG: its (unit) scale
            return checks, self.family.class_condition(label)
        guidance = tf.convert_to_tensor(guidance, tf.float32)     # also the saved variable
        checks.append(tf.debugging.assert_greater(guidance, 0.0,
                                                  message="guidance must be > 0"))
        return checks, self.family.class_condition(label, guidance)

    def _to_pixels(self, x):
        """x₀ → pixels 0…255 (float): the family's from_latent with the VAE on the plain
        variables (StatelessScope, as stateless_call does), then to_images' mapping."""
        if "vae" in self.__dict__:
            vae = self.family.vae
            mapping = list(zip(vae.trainable_variables, self.vae.trainable)) + \
                list(zip(vae.non_trainable_variables, self.vae.non_trainable))
            with keras.StatelessScope(state_mapping=mapping):
                x = self.family.from_latent(x)
        return tf.clip_by_value(tf.round((x[..., 0] + 1.0) * 127.5), 0.0, 255.0)

    def generate(self, num_samples, seed, label=None, guidance=None):
        checks, cond = self._condition(num_samples, label, guidance)
        checks.append(tf.debugging.assert_greater_equal(num_samples, 1,
                                                        message="num_samples must be >= 1"))
        with tf.control_dependencies(checks):
            shape = tf.stack([num_samples, *self.x_spec[1:]])
        x = graph_sample(self.family.denoiser(self.model, cond), self.scheduler, shape, seed,
                         self.x_spec)
        pixels = self._to_pixels(x)
        audio = self.mel.pixels_to_audio(pixels, tf.constant(self.mel.n_iter),
                                         tf.constant(0, tf.int64))   # image_to_audio's seed 0
        return {"images": tf.cast(pixels, tf.uint8), "audio": audio}

    @property
    def signatures_note(self) -> str:
        if self.guided:
            return (f"signatures: serving_default (num_samples, seed, label; guidance "
                    f"{float(self.guidance.numpy()):g}), generate (… and guidance), denoise")
        return "signatures: serving_default, generate, denoise"

    def save(self, directory: str) -> None:
        export_mel(self, directory)

    def denoise(self, x_t, t, label=None, guidance=None):
        _, cond = self._condition(tf.shape(x_t)[0], label, guidance)
        return {"epsilon": self.family.denoiser(self.model, cond)(x_t, t)}


def export_mel(module: MelSamplerModule, directory: str) -> None:
    scalar = tf.TensorSpec([], tf.int32)
    x_spec, t_spec = tf.TensorSpec([None, module.x_spec[1], None, module.x_spec[3]]), \
        tf.TensorSpec([None])
    label, scale = tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.float32)
    if module.guided:
        generate = tf.function(lambda num_samples, seed, label, guidance:
                               module.generate(num_samples, seed, label, guidance),
                               input_signature=[scalar, scalar, label, scale])
        default = tf.function(lambda num_samples, seed, label:     # s = the saved variable;
                              generate(num_samples, seed, label,      # calls generate's graph
                                       module.guidance.read_value()),  # (traced once)
                              input_signature=[scalar, scalar, label])
        denoise = tf.function(lambda x_t, t, label, guidance:
                              module.denoise(x_t, t, label, guidance),
                              input_signature=[x_spec, t_spec, label, scale])
    elif module.num_classes:
        generate = default = tf.function(lambda num_samples, seed, label:
                                         module.generate(num_samples, seed, label),
                                         input_signature=[scalar, scalar, label])
        denoise = tf.function(lambda x_t, t, label: module.denoise(x_t, t, label),
                              input_signature=[x_spec, t_spec, label])
    else:
        generate = default = tf.function(lambda num_samples, seed:
                                         module.generate(num_samples, seed),
                                         input_signature=[scalar, scalar])
        denoise = tf.function(lambda x_t, t: module.denoise(x_t, t),
                              input_signature=[x_spec, t_spec])
    module.generate_fn, module.default_fn, module.denoise_fn = generate, default, denoise
    tf.saved_model.save(module, directory, signatures={
        "serving_default": default.get_concrete_function(),
        "generate": generate.get_concrete_function(),
        "denoise": denoise.get_concrete_function()})
