"""The digit head on Google's frozen speech embedding (evaluation/digits/head.py, issue #18):
the embedding's windows and centring, the committed head on the bundled digits, a save/load
round trip, the cross-validation CLI on a small corpus, the one-line errors, and the card."""
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAD = ROOT / "pretrained" / "digit-head"


@pytest.fixture(scope="module")
def embedding():
    from evaluation.speech_embedding import SpeechEmbedding, unavailable
    assert unavailable() is None                 # requirements-nodeps.txt installs it
    return SpeechEmbedding()


@pytest.fixture(scope="module")
def digits():
    from evaluation.digits.crossval import bundled
    return bundled()


def test_windows_are_finite_and_a_clip_is_centred_whatever_its_padding(embedding, digits):
    audio = digits[0][:4]
    windows = embedding(audio)
    assert windows.shape == (4, 16, 96) and np.isfinite(windows).all()
    # the same clip with 0.25 s of silence either side is the same centred 2 s input
    padded = np.pad(audio, [(0, 0), (4000, 4000)])
    np.testing.assert_allclose(embedding(padded), windows, atol=1e-5)
    # … but not the clip moved off centre, nor another clip
    moved = np.pad(audio, [(0, 0), (0, 8000)])
    assert np.abs(embedding(moved) - windows).max() > 0.1
    assert np.abs(windows[0] - windows[1]).max() > 0.1


def test_the_committed_head_recognises_the_bundled_digits_and_not_noise(digits):
    from evaluation.digits.head import ARCHITECTURE, DigitHead
    head = DigitHead.load(str(HEAD))
    config = json.loads((HEAD / "config.json").read_text())
    assert config["architecture"] == ARCHITECTURE
    assert sum(p.stat().st_size for p in HEAD.iterdir()) < 2 << 20      # our weights, small
    audio, labels, _ = digits
    result = head.accuracy_on_clips([(a, 16000) for a in audio], labels)
    assert result["count"] == len(labels) and result["overall"] >= 0.95   # 100 % here
    loeo = {k: v["corpus"]["all"]["accuracy"] for k, v in config["folds"].items()
            if k.startswith("loeo:")}
    assert {"loeo:espeak-ng", "loeo:flite", "loeo:festival"} <= set(loeo)
    noise = np.random.default_rng(0).standard_normal((30, 16000)).astype(np.float32) * 0.1
    assert head.accuracy(noise, np.arange(30) % 10)["overall"] <= 0.3


def test_a_trained_head_saves_and_loads_to_the_same_predictions(embedding, digits, tmp_path):
    from evaluation.digits.head import DigitHead, views
    audio, labels, _ = digits
    keep = np.arange(0, len(labels), 5)
    windows = embedding(audio[keep])
    head = DigitHead.fit(windows[:, None], labels[keep], epochs=80, seed=0, members=2)
    head.save(tmp_path / "head")
    loaded = DigitHead.load(str(tmp_path / "head"))
    assert len(loaded.members) == 2 and loaded.config["speeds"] == [0.9, 1.1]
    # float16 weights: the same digits, log-probabilities within float16 rounding
    np.testing.assert_allclose(loaded.logits_of(windows), head.logits_of(windows), atol=2e-2)
    assert (loaded.logits_of(windows).argmax(1) == head.logits_of(windows).argmax(1)).all()
    assert (loaded.logits_of(windows).argmax(1) == labels[keep]).mean() >= 0.9   # fits
    assert loaded.config["windows"] == 16 and loaded.config["renders"] == 1
    # the log of the mean softmax of both members over the three views, as predict scores
    sped = [embedding(v) for v in views(audio[keep])]
    mean = sum(np.exp(loaded.logits_of(v)) for v in sped) / 3
    np.testing.assert_allclose(np.exp(loaded.logits_of(*sped)), mean, atol=1e-5)
    np.testing.assert_array_equal(loaded.predict(audio[keep]), mean.argmax(1))
    # the two members differ (seeds 0 and 1) and each alone is a distribution
    one = [np.exp(DigitHead([m], loaded.config).logits_of(windows)) for m in loaded.members]
    assert np.abs(one[0] - one[1]).max() > 1e-3
    np.testing.assert_allclose(one[0].sum(1), 1.0, atol=1e-5)


def test_bad_head_directories_and_a_missing_embedding_are_one_line_errors(tmp_path,
                                                                           monkeypatch):
    from evaluation import speech_embedding
    from evaluation.digits.head import DigitHead
    with pytest.raises(ValueError, match="not a digit head") as e:
        DigitHead.load(str(tmp_path))
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "logmel-cnn-v2"}))
    with pytest.raises(ValueError, match="architecture"):
        DigitHead.load(str(tmp_path))
    monkeypatch.setattr(speech_embedding.importlib.util, "find_spec", lambda name: None)
    why = speech_embedding.unavailable()
    assert "make venv" in why and "openwakeword==0.5.1" in why and "\n" not in why
    with pytest.raises(speech_embedding.SpeechEmbeddingError):
        speech_embedding.SpeechEmbedding()


def test_crossval_cli_on_a_small_corpus(tmp_path, digits, capsys):
    """The bundled digits as a 3-engine corpus: LOEO folds, the final head, its card, then
    score:ENGINE with it; the embeddings are cached for a second run."""
    from evaluation.digits import head_crossval as cv
    audio, labels, engine = digits
    keep = np.concatenate([np.flatnonzero((engine == e) & (labels == d))[:3]      # 90 clips
                           for e in np.unique(engine) for d in range(10)])
    audio, labels, engine = audio[keep], labels[keep], engine[keep]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    np.savez(corpus / "voices.npz", audio=(audio * 32767).astype(np.int16), label=labels,
             engine=engine, voice=np.char.add(engine, ":v"), speaker=engine, source=engine)
    args = ["--corpus", str(corpus), "--out", str(tmp_path / "head"), "--work",
            str(tmp_path / "work"), "--renders", "1", "--warps", "1", "--members", "2",
            "--epochs", "3", "--only", "loeo,final"]
    assert cv.main(args) == 0
    out = capsys.readouterr().out
    assert "loeo:espeak-ng" in out and "| held-out engine |" in out
    config = json.loads((tmp_path / "head" / "config.json").read_text())
    assert set(config["folds"]) == {"loeo:espeak-ng", "loeo:flite", "loeo:festival"}
    assert "leave-one-engine-out" in (tmp_path / "head" / "README.md").read_text().lower()
    assert config["members"] == 2 and config["warps"] == 1 and config["renders"] == 3
    assert "frequency-warped" in (tmp_path / "head" / "README.md").read_text()
    cached = list((tmp_path / "work").glob("embeddings-*.npz"))
    assert len(cached) == 1
    with np.load(cached[0]) as c:      # clean; an audio and a warped render; two speeds
        assert c["augmented"].shape == (len(labels), 2, 16, 96)
        assert c["views"].shape == (len(labels), 2, 16, 96)
        assert np.abs(c["augmented"][:, 1] - c["clean"]).mean() > 0.01   # the warp moved it
    assert cv.main([*args[:6], "--only", "score:flite"]) == 0
    assert "on flite voices" in capsys.readouterr().out
    assert cv.main(["--corpus", str(tmp_path / "none")]) == 2
    assert "voices.npz not found" in capsys.readouterr().err


def test_the_committed_card_says_what_was_chosen_on_which_data(tmp_path, capsys):
    """--only card writes the committed card again from its config.json (no training): the
    same text as committed, every figure with its Wilson interval, each labelled by its use."""
    from evaluation.digits import head_crossval as cv
    (tmp_path / "config.json").write_text((HEAD / "config.json").read_text())
    assert cv.main(["--out", str(tmp_path), "--only", "card"]) == 0
    card = (tmp_path / "README.md").read_text()
    assert card == (HEAD / "README.md").read_text()       # the committed card is the writer's
    table = capsys.readouterr().out
    assert table in card and "| engine espeak-ng | 1914 | 90.4 % (89.0–91.6 %) | **used" in card
    assert "| **kokoro, all 5 voices** (never heard) | 1182 | 89.8 % (88.0–91.4 %)" in table
    assert "selection-free estimate is kokoro's" in card and "not established" in card
    assert "met for every engine" not in card             # the fold verdict of the old card
    assert cv.main(["--out", str(tmp_path / "none"), "--only", "card"]) == 2
    assert "config.json not found" in capsys.readouterr().err
