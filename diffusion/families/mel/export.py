"""A SavedModel of the mel-UNet pipeline: DDIM sampling and Griffin-Lim both in the graph.

Signatures:
  serving_default / generate(num_samples: int32, seed: int32)
      → {"images": uint8 [N, y_res, x_res·slices], "audio": float32 [N, x_res·slices·hop − 1]}
  denoise(x_t: float32 [N, y_res, W, 1], t: float32 [N]) → {"epsilon": [N, y_res, W, 1]}
The width (slices) and the scheduler are fixed at export: Griffin-Lim's loop needs a static
frame count. The noise is the Python sampler's (stateless, keyed by seed and step index), so
the images equal `diffusion.core.sampling.sample` + the family's uint8 mapping for the same seed.
Weights are plain tf.Variables driven by stateless_call (Keras 3 variables do not restore in
TF1-style loaders such as saved_model_cli), as diffusion/export.py does for DiffWave.
"""
from __future__ import annotations

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
        self.height, self.width = n.y_res, n.x_res * slices
        self.sample_rate = tf.Variable(family.params.data.sample_rate, trainable=False,
                                       name="sample_rate")    # saved: readable by servers

    def generate(self, num_samples, seed):
        tf.debugging.assert_greater_equal(num_samples, 1, message="num_samples must be >= 1")
        shape = tf.stack([num_samples, self.height, self.width, 1])
        static = [None, self.height, self.width, 1]
        x = graph_sample(self.family.denoiser(self.model, {}), self.scheduler, shape, seed,
                         static)
        pixels = tf.clip_by_value(tf.round((x[..., 0] + 1.0) * 127.5), 0.0, 255.0)
        audio = self.mel.pixels_to_audio(pixels, tf.constant(self.mel.n_iter),
                                          tf.constant(0, tf.int64))   # image_to_audio's seed 0
        return {"images": tf.cast(pixels, tf.uint8), "audio": audio}

    signatures_note = "signatures: serving_default, generate, denoise"

    def save(self, directory: str) -> None:
        export_mel(self, directory)

    def denoise(self, x_t, t):
        return {"epsilon": self.family.denoiser(self.model, {})(x_t, t)}


def export_mel(module: MelSamplerModule, directory: str) -> None:
    scalar = tf.TensorSpec([], tf.int32)
    generate = tf.function(lambda num_samples, seed: module.generate(num_samples, seed),
                           input_signature=[scalar, scalar])
    denoise = tf.function(lambda x_t, t: module.denoise(x_t, t),
                          input_signature=[tf.TensorSpec([None, module.height, None, 1]),
                                           tf.TensorSpec([None])])
    module.generate_fn, module.denoise_fn = generate, denoise
    tf.saved_model.save(module, directory, signatures={
        "serving_default": generate.get_concrete_function(),
        "generate": generate.get_concrete_function(),
        "denoise": denoise.get_concrete_function()})
