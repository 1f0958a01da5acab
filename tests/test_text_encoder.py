"""The frozen MiniLM text encoder against sentence-transformers reference embeddings."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from network.text_encoder import TextEncoder

REF = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())
SENTENCES, EXPECTED = REF["sentences"], np.asarray(REF["embeddings"], np.float32)


@pytest.fixture(scope="module")
def enc():
    return TextEncoder()


def _max_diff(emb):
    return float(np.abs(np.asarray(emb) - EXPECTED).max())


def test_embeddings_match_reference(enc):
    assert [layer.activation.__name__ for layer in enc.backbone.transformer_layers] == ["gelu_exact"] * 6
    diff = _max_diff(enc.embed(SENTENCES))
    print(f"max |embed - reference| = {diff:.2e}")
    assert diff < 1e-5


def test_approximate_gelu_misses_reference():
    approx = TextEncoder(exact_gelu=False)
    diff = _max_diff(approx.embed(SENTENCES))
    print(f"tanh GELU: max |embed - reference| = {diff:.2e}")
    assert diff > 1e-5


def test_tokenization_matches_hugging_face(enc):
    """Accents stripped, Unicode (not NFKC) lower case, Unicode whitespace, control characters."""
    tok = REF["tokenization"]
    ids, mask = enc.tokenize(tok["texts"])
    got = [row[m].tolist() for row, m in zip(ids.numpy(), mask.numpy())]
    bad = [t for t, a, b in zip(tok["texts"], got, tok["token_ids"]) if a != b]
    assert bad == []


def test_shapes_mask_and_inputs(enc):
    assert enc.dim == 384
    states, mask = enc(SENTENCES)
    assert states.shape == (4, 128, 384) and states.dtype == tf.float32
    assert mask.shape == (4, 128) and mask.dtype == tf.bool
    # [CLS] + word pieces + [SEP]; the mask is a prefix.
    assert mask.numpy().sum(1).tolist() == [11, 9, 13, 4]
    assert np.array_equal(mask.numpy(), np.cumprod(mask.numpy(), axis=1).astype(bool))
    np.testing.assert_allclose(enc(tf.constant(SENTENCES))[0], states, atol=1e-6)
    assert enc("Hello world")[0].shape == (1, 128, 384)
    assert enc([])[0].shape == (0, 128, 384) and enc([""])[1].numpy().sum() == 2   # [CLS] [SEP]


def test_padding_does_not_change_short_embedding(enc):
    short = TextEncoder(max_length=8)
    e8, e128 = short.embed(["Hello world"]), enc.embed(["Hello world"])
    assert float(np.abs(e8 - e128).max()) < 1e-6
    assert float(np.abs(e128 - EXPECTED[3]).max()) < 1e-5
    # Longer texts are truncated to max_length (…, [SEP]), all positions valid.
    states, mask = short([SENTENCES[2]])
    assert states.shape == (1, 8, 384) and bool(tf.reduce_all(mask))


def test_frozen(enc):
    assert not enc.trainable and not enc.backbone.trainable
    assert enc.trainable_weights == [] and len(enc.non_trainable_weights) > 0
    assert enc.backbone.count_params() > 22_000_000
    a, b = enc.embed(SENTENCES[:1]), enc.embed(SENTENCES[:1])   # no dropout
    np.testing.assert_array_equal(a, b)


def test_tf_function_and_tf_data(enc):
    embed = tf.function(enc.embed)
    assert _max_diff(embed(tf.constant(SENTENCES))) < 1e-5
    ds = tf.data.Dataset.from_tensor_slices(SENTENCES).batch(2).map(enc.embed)
    assert _max_diff(np.concatenate([x.numpy() for x in ds])) < 1e-5


def test_bad_preset_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found: .*missing"):
        TextEncoder(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=f"not a keras-hub preset.*{tmp_path}"):
        TextEncoder(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "no-such-model"}')
    with pytest.raises(ValueError, match=f"cannot load .* from {tmp_path}") as err:
        TextEncoder(str(tmp_path))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="max_length"):
        TextEncoder(max_length=1024)


@pytest.mark.filterwarnings("ignore:Layer '.*' \\(of type T5MultiHeadAttention\\)")
def test_other_preset_encoder_decoder(tmp_path):
    """Any keras-hub preset by path: a tiny random T5 (SentencePiece, no [CLS], ends with </s>)."""
    spm = pytest.importorskip("sentencepiece")
    import keras_hub
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["a dog is barking", "soft rain", "hello world"] * 10),
        model_writer=proto, vocab_size=11, model_type="word", pad_id=0, eos_id=1, unk_id=2,
        bos_id=-1, minloglevel=2)
    tokenizer = keras_hub.models.T5Tokenizer(proto=proto.getvalue())
    tokenizer.save_to_preset(str(tmp_path))
    keras_hub.models.T5Backbone(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1,
                                num_heads=2, hidden_dim=16, intermediate_dim=32
                                ).save_to_preset(str(tmp_path))
    t5 = TextEncoder(str(tmp_path), max_length=6)
    states, mask = t5(["hello world", "a dog is barking"])
    assert t5.dim == 16 and states.shape == (2, 6, 16)
    assert mask.numpy().sum(1).tolist() == [3, 5]   # words + </s>
    emb = t5.embed(["hello world"]).numpy()
    assert emb.shape == (1, 16) and abs(np.linalg.norm(emb) - 1) < 1e-5
