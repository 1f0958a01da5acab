"""Calling an exported SavedModel (export.py's signatures); diffusion/pipeline.py's Pipeline
wraps it, so a SavedModel takes the same typed requests as a run directory.

    served = load_saved_model("exported/digits")      # ValueError (one line) if it is not one
    audio, images = served.run(make_request(served.accepts(), num=2, label=3))

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

from diffusion.requests import Accepts, check_mel

KINDS = {frozenset({"num_samples", "length", "seed"}): "waveform",
         frozenset({"num_samples", "length", "seed", "label"}): "class",
         frozenset({"mel", "seed"}): "vocoder",
         frozenset({"num_samples", "seed"}): "mel-unet",
         frozenset({"num_samples", "seed", "label"}): "mel-unet",
         frozenset({"text", "seconds", "seed", "guidance"}): "text"}


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

    @property
    def takes_label(self) -> bool:
        return "label" in self.function.structured_input_signature[1]

    def accepts(self) -> Accepts:
        """What this SavedModel takes (class counts are not saved: labels checked in-graph)."""
        what = {"waveform": "an exported unconditional diffwave model", "class": "an exported "
                "class-conditional diffwave model", "vocoder": "an exported mel vocoder",
                "mel-unet": "an exported mel-unet model", "text": "an exported text-to-audio "
                "model"}[self.kind]
        return Accepts(self.directory, what, self.kind,
                       num_classes=None if self.takes_label else 0,
                       guided=self.kind == "text", n_mels=self.n_mels or 0,
                       seconds=None if self.kind == "mel-unet" else 1.0, reads_audio=False)

    def run(self, r) -> tuple:
        """(audio [N, T] float32, uint8 images [N, H, W] or None) for a checked request `r`
        (diffusion/requests.py, made against self.accepts()): one graph call."""
        rate, seed, num = self.sample_rate, tf.constant(r.seed, tf.int32), tf.constant(r.num)
        length = None if getattr(r, "seconds", None) is None else max(1, round(r.seconds * rate))
        if self.kind in ("waveform", "class"):
            inputs = {"num_samples": num, "length": tf.constant(length, tf.int32), "seed": seed}
            if self.kind == "class":
                inputs["label"] = tf.constant(r.label, tf.int32)
        elif self.kind == "vocoder":
            mel = r.mel
            if isinstance(mel, str):        # a .npy (requests.py refuses audio files here)
                from data.features import read_log_mel
                try:
                    mel = check_mel(read_log_mel(mel, rate, 0, self.n_mels), self.accepts())
                except (ValueError, OSError) as e:
                    raise ValueError(f"mel: {e}") from None
            inputs = {"mel": tf.tile(tf.constant(mel)[None], [r.num, 1, 1]), "seed": seed}
        elif self.kind == "mel-unet":
            inputs = {"num_samples": num, "seed": seed}
            if r.label is not None:         # a class-conditional export
                inputs["label"] = tf.constant(r.label, tf.int32)
        else:
            inputs = {"text": tf.constant(list(r.text)), "seconds": tf.constant(r.seconds),
                      "seed": seed, "guidance": tf.constant(r.guidance, tf.float32)}
        try:
            out = self.function(**inputs)
        except tf.errors.InvalidArgumentError as e:   # an in-graph check: its message
            raise ValueError(graph_check_message(e.message or str(e), self.directory)) from None
        audio = out["audio"].numpy().astype(np.float32)
        if self.kind == "mel-unet" and length is not None:
            if length > audio.shape[1]:
                raise ValueError(f"seconds: {self.directory} makes {audio.shape[1] / rate:.2f} "
                                 f"s clips (fixed at export); ask for at most that")
            audio = audio[:, :length]
        return audio, out["images"].numpy() if "images" in out else None


def graph_check_message(message: str, path: str) -> str:
    """An in-graph check's "label must be < 10" → "label: must be < 10 (PATH's check)", its
    first word the input's name (num_samples is num, length is seconds)."""
    found = re.search(r"assertion failed: \[([^\]]+)\]", message)
    if found is None:
        return f"{path}: {message.strip().splitlines()[-1]}"
    name, _, rest = found.group(1).partition(" ")
    name = {"num_samples": "num", "length": "seconds"}.get(name, name)
    return f"{name}: {rest} ({path}'s check)"


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
