"""A SavedModel whose whole sampling loop runs in the graph (tf.while_loop).

Signatures (the conditioning input only where the run has it):
  serving_default / generate(num_samples: int32, length: int32, seed: int32[, label: int32 [N]])
      → {"audio": [num_samples, length]}
  generate (mel vocoder)(mel: float32 [N, frames, n_mels], seed: int32) → {"audio": [N, frames·hop]}
  denoise(x_t: float32 [N, T, 1], t: float32 [N][, label | mel]) → {"epsilon": [N, T, 1]}
The noise is the Python sampler's (stateless, keyed by the seed and the step index), so the
SavedModel reproduces `diffusion.core.sampling.sample` for the same seed. Bad sizes fail inside the
graph with an InvalidArgumentError whose message says which input is wrong.
"""
from __future__ import annotations

import inspect

import tensorflow as tf

from diffusion.core.sampling import chunked, graph_sample


class _StatelessModel:
    """Calls a Keras model on plain tf.Variables (model.stateless_call). Keras 3 variables do
    not restore in TF1-style loaders such as `saved_model_cli run`; plain ones do."""

    def __init__(self, model, trainable, non_trainable):
        self.model, self.trainable, self.non_trainable = model, trainable, non_trainable
        # stateless_call hands kwargs to call(): `training` only where call() takes it
        # (DiffWave's sampling path skips the backward-pass bookkeeping with training=False).
        self.takes_training = "training" in inspect.signature(model.call).parameters

    def __call__(self, inputs, training=False):
        kwargs = {"training": training} if self.takes_training else {}
        return self.model.stateless_call(self.trainable, self.non_trainable, inputs, **kwargs)[0]


def plain_model(module, model, prefix="model"):
    """Plain variable copies of a Keras model's weights, tracked by `module` as
    `{prefix}_weights` / `{prefix}_state`, and a stateless caller over them."""
    weights = [tf.Variable(v.value, name=f"{prefix}_w{i}")
               for i, v in enumerate(model.trainable_variables)]
    state = [tf.Variable(v.value, name=f"{prefix}_s{i}")
             for i, v in enumerate(model.non_trainable_variables)]
    setattr(module, f"{prefix}_weights", weights)
    setattr(module, f"{prefix}_state", state)
    return _StatelessModel(model, weights, state)


class SamplerModule(tf.Module):
    def __init__(self, family, model, scheduler, params, chunk: int):
        super().__init__(name="diffusion_sampler")
        # Not tracked (object.__setattr__): only the plain variables are saved.
        object.__setattr__(self, "model", plain_model(self, model))
        object.__setattr__(self, "family", family)
        object.__setattr__(self, "scheduler", scheduler)
        self.conditioning = params.network.conditioning
        self.num_classes = params.network.num_classes
        self.hop = params.network.hop_length
        self.n_mels = params.network.n_mels
        self.chunk, self.halo = chunk, (model.receptive_field - 1) // 2
        self.sample_rate = tf.Variable(params.data.sample_rate, trainable=False,
                                       name="sample_rate")    # saved: readable by servers

    def _run(self, shape, seed, cond):
        denoise = self.family.denoiser(self.model, cond)
        if self.chunk and "mel" not in cond:
            denoise = chunked(denoise, self.chunk, self.halo)
        std = self.family.prior_std(cond)                  # PriorGrad runs: Σ^½ from the mel
        x = graph_sample(denoise, self.scheduler, shape, seed, [None, None, 1],
                         1.0 if std is None else std)
        return {"audio": x[..., 0]}

    def generate(self, num_samples, length, seed, label=None):
        checks = [tf.debugging.assert_greater_equal(num_samples, 1,
                                                    message="num_samples must be >= 1"),
                  tf.debugging.assert_greater_equal(length, 1, message="length must be >= 1")]
        cond = {}
        if label is not None:
            checks += [tf.debugging.assert_equal(tf.shape(label)[0], num_samples,
                                                 message="label needs num_samples entries"),
                       tf.debugging.assert_greater_equal(label, 0, message="label must be >= 0"),
                       tf.debugging.assert_less(label, self.num_classes,
                                                message=f"label must be < {self.num_classes}")]
            cond["label"] = label
        with tf.control_dependencies(checks):
            shape = tf.stack([num_samples, length, 1])
        return self._run(shape, seed, cond)

    def vocode(self, mel, seed):
        checks = [tf.debugging.assert_greater_equal(tf.shape(mel)[1], 1,
                                                    message="mel needs >= 1 frame")]
        with tf.control_dependencies(checks):
            shape = tf.stack([tf.shape(mel)[0], tf.shape(mel)[1] * self.hop, 1])
        return self._run(shape, seed, {"mel": mel})

    signatures_note = "signatures: serving_default, generate, denoise"

    def save(self, directory: str) -> None:
        export(self, directory)

    def denoise(self, x_t, t, **cond):
        return {"epsilon": self.family.denoiser(self.model, cond)(x_t, t)}


def export(module, directory: str) -> None:
    scalar = tf.TensorSpec([], tf.int32)
    x_spec, t_spec = tf.TensorSpec([None, None, 1], tf.float32), tf.TensorSpec([None], tf.float32)
    if module.conditioning == "mel":
        mel = tf.TensorSpec([None, None, module.n_mels], tf.float32, name="mel")
        generate = tf.function(lambda mel, seed: module.vocode(mel, seed),
                               input_signature=[mel, tf.TensorSpec([], tf.int32, name="seed")])
        denoise = tf.function(lambda x_t, t, mel: module.denoise(x_t, t, mel=mel),
                              input_signature=[x_spec, t_spec, mel])
    elif module.conditioning == "class":
        label = tf.TensorSpec([None], tf.int32)
        generate = tf.function(lambda num_samples, length, seed, label:
                               module.generate(num_samples, length, seed, label),
                               input_signature=[scalar, scalar, scalar, label])
        denoise = tf.function(lambda x_t, t, label: module.denoise(x_t, t, label=label),
                              input_signature=[x_spec, t_spec, label])
    else:
        generate = tf.function(lambda num_samples, length, seed:
                               module.generate(num_samples, length, seed),
                               input_signature=[scalar, scalar, scalar])
        denoise = tf.function(lambda x_t, t: module.denoise(x_t, t),
                              input_signature=[x_spec, t_spec])
    module.generate_fn, module.denoise_fn = generate, denoise
    tf.saved_model.save(module, directory, signatures={
        "serving_default": generate.get_concrete_function(),
        "generate": generate.get_concrete_function(),
        "denoise": denoise.get_concrete_function()})
