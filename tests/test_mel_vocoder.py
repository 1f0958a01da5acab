"""Neural vocoder for mel-UNet images: the image → DiffWave log-mel conversion reproduces the
features of the audio, and generate.py --vocoder runs end to end (tiny, untrained nets)."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from data.features import log_mel
from data.mel import Mel
from data.mel_convert import check_compatible, image_to_log_mel, peak_mel_power_db
from tests.test_mel_generation import make_untrained_run

ROOT = Path(__file__).resolve().parent.parent
CHORALE = sorted((ROOT / "dataset" / "chorales").glob("*.flac"))[0]


def test_image_to_log_mel_matches_the_audio_features():
    mel = Mel(32, 128, 22050, 1024, 256)
    mel.load_audio(str(CHORALE))
    audio = mel.get_audio_slice(3)
    audio = 0.89 * audio / np.abs(audio).max()                  # peak-normalised, −1 dBFS
    converted = image_to_log_mel(mel.audio_to_images(audio), mel, 80,
                                 peak_mel_power_db(mel, audio))
    reference = log_mel(np.pad(audio, (0, 1))[None], 22050, 256, 80).numpy()[0]
    assert converted.shape == reference.shape == (32, 80)
    error = np.abs(converted - reference)
    loud = reference > 0.4                                      # above the image's top_db floor
    assert np.median(error[loud]) < 0.01 and np.percentile(error[loud], 90) < 0.05, \
        (np.median(error[loud]), np.percentile(error[loud], 90))
    wrong_level = image_to_log_mel(mel.audio_to_images(audio), mel, 80, 0.0)
    assert np.median(np.abs(wrong_level - reference)[loud]) > 0.1     # the gain matters
    with pytest.raises(ValueError, match="hop_length: the mel images use 256, the vocoder 128"):
        check_compatible(mel, 22050, 128)
    with pytest.raises(ValueError, match="sample_rate"):
        check_compatible(mel, 16000, 256)


def untrained_diffwave(run, overrides):
    from configs import get_preset
    from diffusion.families.registry import family_for
    from diffusion.training.ema import EMA
    from params import apply_overrides
    params = apply_overrides(get_preset("tiny", "diffwave"), overrides)
    params.save(str(run / "params.json"))
    model = family_for(params).build_model()
    tf.train.Checkpoint(model=model, ema=EMA(model, 0.9)).save(str(run / "checkpoints" / "ckpt"))


def test_generate_with_a_diffwave_vocoder(tmp_path, capsys):
    from generate import main
    make_untrained_run(tmp_path / "mel")
    common = ["conditioning=mel", "sample_rate=22050", "crop_samples=4096", "n_mels=40"]
    untrained_diffwave(tmp_path / "voc", common + ["hop_length=256"])
    untrained_diffwave(tmp_path / "bad", common + ["hop_length=128"])
    args = ["--run", str(tmp_path / "mel"), "--steps", "2", "--seconds", "0.3", "--num", "2"]
    assert main([*args, "--out", str(tmp_path / "o"), "--vocoder", str(tmp_path / "voc")]) == 0
    wavs = sorted((tmp_path / "o").glob("*.wav"))
    audio, rate = sf.read(wavs[0])
    assert len(wavs) == 2 and rate == 22050 and audio.shape == (round(0.3 * 22050),)  # cropped
    assert np.abs(audio).max() > 0
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "x"), "--vocoder", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --vocoder") and "Mel parameters differ: hop_length" in err, err
    assert main([*args, "--out", str(tmp_path / "x"), "--vocoder", str(tmp_path / "mel")]) == 2
    assert "not a mel-conditioned DiffWave run" in capsys.readouterr().err


def test_evaluate_decodes_a_class_conditional_mel_unet_with_the_vocoder(tmp_path, capsys):
    """evaluate.py --run MEL --vocoder VOC: the sampled images reach the classifier through the
    vocoder (its rate, its length), with per-class digit accuracy; a non-vocoder is refused."""
    import json

    from evaluate import main
    make_untrained_run(tmp_path / "mel", overrides=["network.num_classes=10",
                                                    "data.sample_rate=16000"])
    untrained_diffwave(tmp_path / "voc", ["conditioning=mel", "sample_rate=16000",
                                          "crop_samples=4096", "n_mels=40", "hop_length=256"])
    reference = str(ROOT / "dataset/splits/heldout-digits.jsonl")
    args = ["--run", str(tmp_path / "mel"), "--reference", reference, "--num", "10",
            "--seconds", "0.5", "--cache", str(tmp_path / "cache")]
    assert main([*args, "--vocoder", str(tmp_path / "voc"), "--out", str(tmp_path / "e")]) == 0
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["vocoder"] == str(tmp_path / "voc") and report["num"] == 10
    accuracy = report["sets"]["generated"]["digit_accuracy"]
    assert accuracy["count"] == 10 and sorted(accuracy["per_class"]) == [str(d) for d in range(10)]
    clips = sorted((tmp_path / "e" / "samples").glob("*.wav"))
    audio, rate = sf.read(clips[0])
    assert len(clips) == 10 and rate == 16000 and len(audio) == 8000      # cropped to 0.5 s
    capsys.readouterr()
    assert main([*args, "--vocoder", str(tmp_path / "mel"), "--out", str(tmp_path / "x")]) == 2
    assert "--vocoder" in capsys.readouterr().err
    assert main(["--generated", str(tmp_path / "e" / "samples"), "--reference", reference,
                 "--vocoder", str(tmp_path / "voc")]) == 2
    assert "--vocoder goes with --run" in capsys.readouterr().err
    # make demo: a class-conditional mel-UNet under pretrained/digits is played through the
    # vocoder beside it.
    import shutil

    from demo import main as demo
    shutil.copytree(tmp_path / "mel", tmp_path / "pretrained" / "digits")
    shutil.copytree(tmp_path / "voc", tmp_path / "pretrained" / "vocoder")
    (tmp_path / "pretrained" / "chorales").mkdir()
    make_untrained_run(tmp_path / "pretrained" / "chorales", overrides=["data.sample_rate=16000"])
    assert demo(["--pretrained", str(tmp_path / "pretrained"), "--out", str(tmp_path / "d")]) == 0
    printed = capsys.readouterr().out
    assert "digits: 20 clips" in printed and "chorales: 6 clips" in printed   # GL + vocoder
    page = (tmp_path / "d" / "index.html").read_text()
    assert "generated: &#x27;three&#x27; → vocoder" in page and "→ Griffin-Lim" in page
    assert "strength 0.5 → vocoder" in page
    assert (tmp_path / "d" / "chorales" / "chorale_1_vocoder.png").is_file()
    audio, rate = sf.read(tmp_path / "d" / "digits" / "digit_3_three_vocoder.wav")
    assert rate == 16000 and len(audio) == 16000        # 1 s of the 64-frame image


def test_a_packaged_mel_unet_loads_again_in_the_same_process(tmp_path):
    """Keras numbers the layers of the second UNet built in a process (dense → dense_25): the
    packaged weights still load, and the same weights come back."""
    from diffusion.families.registry import load_run
    from export import main as export
    make_untrained_run(tmp_path / "mel")
    assert export(["--run", str(tmp_path / "mel"), "--out", str(tmp_path / "p"), "--format",
                   "pretrained", "--weights-dtype", "float32"]) == 0
    first, second = load_run(tmp_path / "p")[2], load_run(tmp_path / "p")[2]
    assert any(a.path != b.path for a, b in zip(first.weights, second.weights))
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_model_only_tf_checkpoint_still_loads(tmp_path):
    """Runs packaged before the .npz format hold a TF checkpoint of the model alone: they load
    as they are (no EMA shadows to copy over them)."""
    from diffusion.families.registry import load_run
    params, family, model = make_untrained_run(tmp_path / "full")
    (tmp_path / "old").mkdir()
    params.save(str(tmp_path / "old" / "params.json"))
    tf.train.Checkpoint(model=model).save(str(tmp_path / "old" / "checkpoints" / "ckpt"))
    loaded = load_run(tmp_path / "old")[2]
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_decoder_ceiling_writes_half_b_through_the_mel_and_griffin_lim(tmp_path, capsys):
    """evaluation.decoder_ceiling: the reference's odd clips (evaluate.py's real half B), each
    whole through the run's 8-bit mel image and back; a DiffWave run gets a one-line error."""
    from evaluation.decoder_ceiling import main
    make_untrained_run(tmp_path / "mel", overrides=["data.sample_rate=16000"])
    reference = ROOT / "dataset" / "splits" / "heldout-chorales.jsonl"
    assert main(["--run", str(tmp_path / "mel"), "--reference", str(reference), "--out",
                 str(tmp_path / "gl")]) == 0
    wavs = sorted((tmp_path / "gl").glob("*.wav"))
    assert [w.stem for w in wavs] == ["chorale_039_bwv375", "chorale_041_bwv322"]
    audio, rate = sf.read(wavs[0])
    assert rate == 16000 and abs(len(audio) - 6 * 16000) <= 2 * 256 and audio.std() > 1e-3
    untrained_diffwave(tmp_path / "voc", ["conditioning=mel", "sample_rate=16000"])
    assert main(["--run", str(tmp_path / "voc"), "--reference", str(reference), "--out",
                 str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip().endswith("a diffwave run; the ceiling is for "
                                                     "mel-unet runs")
