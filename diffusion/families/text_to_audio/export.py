"""A text → audio SavedModel: tokenizer, frozen text encoder, DiffGen with classifier-free
guidance and the DiffAE decoder, both V-sampling loops in the graph (tf.while_loop).

Signature serving_default / generate(text: string [N], seconds: float32, seed: int32,
guidance: float32) → {"audio": [N, round(seconds · sample_rate)]}.

The tokenizer is keras-hub's WordPiece, i.e. TensorFlow Text ops: a server must
`import tensorflow_text` before tf.saved_model.load (it registers the ops; the Python wheel is
in requirements.txt). Weights are plain tf.Variables run through stateless_call (Keras 3
variables do not restore in TF1-style loaders). The noise is the Python sampler's for the same
seed (DiffGen keyed by `seed`, the decoder by `seed` too), so generate.py gives the same audio.
"""
from __future__ import annotations

import tensorflow as tf

from diffusion.core.sampling import graph_sample
from diffusion.core.schedulers import VScheduler
from diffusion.families.export import plain_model

MAX_SECONDS = 600.0


class TextToAudioModule(tf.Module):
    def __init__(self, family, generator, steps: int, decode_steps: int):
        super().__init__(name="text_to_audio")
        encoder, autoencoder = family.text_encoder, family.autoencoder
        n, rate = family.params.network, family.params.data.sample_rate
        text_model = plain_model(self, encoder.model, "text")
        gen_model = plain_model(self, generator, "diffgen")
        ae_model = plain_model(self, autoencoder, "diffae")
        # Untracked (object.__setattr__): only the plain variables above are saved.
        for name, value in (("family", family), ("encoder", encoder), ("text_model", text_model),
                            ("gen_model", gen_model), ("ae_model", ae_model),
                            ("gen_sched", VScheduler(steps)),
                            ("dec_sched", VScheduler(decode_steps))):
            object.__setattr__(self, name, value)
        self.latent_hop, self.multiple = autoencoder.latent_hop, family.latent_multiple
        self.latent_channels = n.latent_channels
        self.sample_rate = tf.Variable(rate, trainable=False, name="sample_rate")  # for servers
        self.rate = rate

    def _text(self, text):
        ids, mask = self.encoder.tokenize(text)
        states = self.text_model(self.encoder.backbone_inputs(ids, mask))
        return {"text": tf.cast(states, tf.float32), "text_mask": mask}

    signatures_note = ("signature serving_default(text, seconds, seed, guidance); servers must "
                       "`import tensorflow_text` first")

    def save(self, directory: str) -> None:
        export_text_to_audio(self, directory)

    def generate(self, text, seconds, seed, guidance):
        checks = [tf.debugging.assert_greater(tf.size(text), 0, message="text is empty"),
                  tf.debugging.assert_greater(seconds, 0.0, message="seconds must be > 0"),
                  tf.debugging.assert_less_equal(seconds, MAX_SECONDS,
                                                 message=f"seconds must be <= {MAX_SECONDS}"),
                  tf.debugging.assert_greater(guidance, 0.0, message="guidance must be > 0")]
        with tf.control_dependencies(checks):
            samples = tf.maximum(1, tf.cast(tf.round(seconds * self.rate), tf.int32))
        frames = -(-samples // self.latent_hop)
        frames = -(-frames // self.multiple) * self.multiple
        num = tf.size(text)
        cond = {**self._text(tf.reshape(text, [-1])), "guidance": guidance}
        denoise = self.family.denoiser(self.gen_model, cond)
        shape = tf.stack([num, frames, self.latent_channels])
        latent = graph_sample(denoise, self.gen_sched, shape, seed,
                              [None, None, self.latent_channels])
        decode = lambda x, t: self.ae_model({"audio": x, "step": t, "latent": latent})  # noqa
        audio = graph_sample(decode, self.dec_sched, tf.stack([num, frames * self.latent_hop, 1]),
                             seed, [None, None, 1])
        return {"audio": audio[:, :samples, 0]}


def export_text_to_audio(module: TextToAudioModule, directory: str) -> None:
    generate = tf.function(
        lambda text, seconds, seed, guidance: module.generate(text, seconds, seed, guidance),
        input_signature=[tf.TensorSpec([None], tf.string, name="text"),
                         tf.TensorSpec([], tf.float32, name="seconds"),
                         tf.TensorSpec([], tf.int32, name="seed"),
                         tf.TensorSpec([], tf.float32, name="guidance")])
    module.generate_fn = generate
    concrete = generate.get_concrete_function()
    tf.saved_model.save(module, directory, signatures={"serving_default": concrete,
                                                       "generate": concrete})
