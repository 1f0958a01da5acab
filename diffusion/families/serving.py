"""Serving an exported SavedModel (export.py's signatures) from a process such as app.py.

    served = load_saved_model("exported/digits")      # ValueError (one line) if it is not one
    audio, images = served.generate(num=2, seconds=1.0, seed=0, label=3)

The kind comes from serving_default's input names (diffusion/families/export.py,
mel/export.py, text_to_audio/export.py):
  waveform   generate(num_samples, length, seed)            DiffWave, unconditional
  class      generate(num_samples, length, seed, label)     DiffWave, class-conditional
  vocoder    generate(mel, seed)                            DiffWave, mel-conditioned
  mel-unet   generate(num_samples, seed[, label]) → audio, images    length fixed at export;
             a class-conditional one samples at its saved default guidance (the `guidance`
             variable; signatures["generate"] takes another)
  text       generate(text, seconds, seed, guidance)        diffgen (text → audio)
The sampler and its steps are fixed at export; the loop runs inside one graph call (no
per-step progress). In-graph checks fail with InvalidArgumentError: that becomes a ValueError
carrying the check's message.
"""
from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import tensorflow as tf

KINDS = {frozenset({"num_samples", "length", "seed"}): "waveform",
         frozenset({"num_samples", "length", "seed", "label"}): "class",
         frozenset({"mel", "seed"}): "vocoder",
         frozenset({"num_samples", "seed"}): "mel-unet",
         frozenset({"num_samples", "seed", "label"}): "mel-unet",
         frozenset({"text", "seconds", "seed", "guidance"}): "text"}


def check_message(message: str) -> str:
    """The failed in-graph check's own words ("label must be < 10"), not TF's "Graph execution
    error:" header."""
    found = re.search(r"assertion failed: \[([^\]]+)\]", message)
    return found.group(1) if found else message.strip().splitlines()[-1]


def is_saved_model(directory) -> bool:
    return os.path.isfile(os.path.join(str(directory), "saved_model.pb"))


@dataclasses.dataclass
class Served:
    directory: str
    kind: str
    sample_rate: int
    n_mels: int | None
    function: object
    module: object

    def generate(self, num: int = 1, seconds: float = 1.0, seed: int = 0, label=None,
                 mel=None, text=None, guidance: float = 1.0):
        """(audio [N, T] float32, uint8 images [N, H, W] or None)."""
        seed = tf.constant(int(seed), tf.int32)
        if self.kind in ("waveform", "class"):
            inputs = {"num_samples": tf.constant(int(num)), "seed": seed,
                      "length": tf.constant(max(1, int(round(seconds * self.sample_rate))))}
            if self.kind == "class":
                if label is None:
                    raise ValueError(f"{self.directory} is class-conditional: give a label")
                inputs["label"] = tf.fill([int(num)], int(label))
        elif self.kind == "vocoder":
            if mel is None:
                raise ValueError(f"{self.directory} is a mel vocoder: give a log-mel .npy")
            inputs = {"mel": tf.tile(tf.constant(mel, tf.float32)[None], [int(num), 1, 1]),
                      "seed": seed}
        elif self.kind == "mel-unet":
            inputs = {"num_samples": tf.constant(int(num)), "seed": seed}
            if "label" in self.function.structured_input_signature[1]:
                if label is None:
                    raise ValueError(f"{self.directory} is class-conditional: give a label")
                inputs["label"] = tf.fill([int(num)], int(label))
        else:
            if not text:
                raise ValueError(f"{self.directory} is text-to-audio: give a text prompt")
            inputs = {"text": tf.constant([text] * int(num)), "seed": seed,
                      "seconds": tf.constant(float(seconds)),
                      "guidance": tf.constant(float(guidance))}
        try:
            out = self.function(**inputs)
        except tf.errors.InvalidArgumentError as e:
            raise ValueError(f"{self.directory}: {check_message(e.message or str(e))}") \
                from None
        images = out["images"].numpy() if "images" in out else None
        return out["audio"].numpy(), images


def load_saved_model(directory) -> Served:
    """The SavedModel in `directory` and its kind; ValueError with one line otherwise."""
    directory = str(directory)
    if not is_saved_model(directory):
        raise ValueError(f"{directory}: not a SavedModel (no saved_model.pb)")
    import tensorflow_text  # noqa: F401  (registers the tokenizer's ops of text models)
    try:
        module = tf.saved_model.load(directory)
        function = module.signatures["serving_default"]
    except (OSError, ValueError, KeyError, tf.errors.OpError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{directory}: cannot load the SavedModel ({first})") from None
    names = frozenset(function.structured_input_signature[1])
    if names not in KINDS:
        raise ValueError(f"{directory}: a SavedModel with inputs {sorted(names)}, not one "
                         f"export.py writes")
    kind = KINDS[names]
    rate = getattr(module, "sample_rate", None)
    if rate is None:
        raise ValueError(f"{directory}: the SavedModel does not say its sample rate (exported "
                         f"before it was saved: export the run again)")
    n_mels = None
    if kind == "vocoder":
        n_mels = int(function.structured_input_signature[1]["mel"].shape[-1])
    return Served(directory, kind, int(np.asarray(rate)), n_mels, function, module)
