"""teticio's Mel (audiodiffusion 1.5.7, librosa) against data/mel.py: audio_slice_to_image equal
up to ±1 grey level on ≤ 0.1 % of pixels; image_to_audio (Griffin-Lim, both random-phase) by
spectral convergence in the mel domain (what the image fixes) and against each one's own
magnitude target, at the same iteration count.
"""
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile
from audiodiffusion.mel import Mel as TheirMel

from data.mel import Mel

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {"teticio 256": dict(x_res=256, y_res=256, sample_rate=22050, n_fft=2048,
                               hop_length=512, top_db=80, n_iter=32),
           "64 × 64, n_fft 1024, hop 256": dict(x_res=64, y_res=64, sample_rate=22050,
                                                n_fft=1024, hop_length=256, top_db=80,
                                                n_iter=32)}


def music(seconds=12.0, sr=22050):
    """Two chorales back to back (16 kHz files taken as raw samples; only the signal matters)."""
    files = sorted((ROOT / "dataset" / "chorales").glob("*.flac"))[:2]
    audio = np.concatenate([soundfile.read(f, dtype="float32")[0] for f in files])
    return audio[:int(seconds * sr)]


def spectral_convergence(audio, target, n_fft, hop):
    """‖|STFT(y)| − X‖_F / ‖X‖_F against a linear magnitude X [bins, frames]."""
    ours = np.abs(librosa.stft(audio, n_fft=n_fft, hop_length=hop))[:, :target.shape[1]]
    return float(np.linalg.norm(ours - target[:, :ours.shape[1]]) / np.linalg.norm(target))


def mel_convergence(audio, power, config):
    """The same in the mel domain, the only thing the image fixes: ‖√(M|STFT(y)|²) − √S‖/‖√S‖."""
    fb = librosa.filters.mel(sr=config["sample_rate"], n_fft=config["n_fft"],
                             n_mels=config["y_res"])
    spec = np.abs(librosa.stft(audio, n_fft=config["n_fft"], hop_length=config["hop_length"]))
    mel = np.sqrt(fb @ spec[:, :power.shape[1]] ** 2)
    target = np.sqrt(power[:, :mel.shape[1]])
    return float(np.linalg.norm(mel - target) / np.linalg.norm(target))


@pytest.mark.parametrize("name", list(CONFIGS))
def test_audio_slice_to_image(name):
    config = CONFIGS[name]
    theirs, ours = TheirMel(**config), Mel(**config)
    audio = music()
    theirs.load_audio(raw_audio=audio)
    ours.load_audio(raw_audio=audio)
    assert theirs.get_number_of_slices() == ours.get_number_of_slices() >= 1
    worst_fraction, worst_level = 0.0, 0
    for k in range(theirs.get_number_of_slices()):
        want = np.array(theirs.audio_slice_to_image(k)).astype(int)
        got = np.asarray(ours.audio_slice_to_image(k)).astype(int)
        assert got.shape == want.shape == (config["y_res"], config["x_res"])
        diff = np.abs(got - want)
        worst_level = max(worst_level, int(diff.max()))
        worst_fraction = max(worst_fraction, float(np.mean(diff > 0)))
    print(f"\nPARITY teticio Mel.audio_slice_to_image ({name}): max grey-level difference "
          f"{worst_level}, pixels that differ {100 * worst_fraction:.4f} % (bound ±1 on 0.1 %)")
    assert worst_level <= 1 and worst_fraction <= 1e-3


def test_image_to_audio_spectral_convergence():
    config = CONFIGS["teticio 256"]
    theirs, ours = TheirMel(**config), Mel(**config)
    audio = music()
    theirs.load_audio(raw_audio=audio)
    image = theirs.audio_slice_to_image(0)
    pixels = np.array(image)
    power = librosa.db_to_power(pixels.astype(np.float64) * config["top_db"] / 255
                                - config["top_db"])
    np.random.seed(0)                               # librosa.griffinlim's random phase
    their_audio = theirs.image_to_audio(image)
    our_audio = ours.image_to_audio(np.array(image))
    # Deliberate: ours returns one whole slice, x_res·hop − 1 samples (an image ↔ a slice);
    # librosa's inverse without a length gives (x_res − 1)·hop. Compared on the common part.
    assert len(our_audio) == config["x_res"] * config["hop_length"] - 1
    assert len(their_audio) == (config["x_res"] - 1) * config["hop_length"]
    mel_theirs, mel_ours = (mel_convergence(y, power, config) for y in (their_audio, our_audio))
    # Griffin-Lim's own consistency: each against the magnitude its mel inversion produced
    # (librosa: NNLS by L-BFGS; ours: 50 projected FISTA steps; the two differ by ~18 %).
    own_theirs = spectral_convergence(their_audio, librosa.feature.inverse.mel_to_stft(
        power, sr=config["sample_rate"], n_fft=config["n_fft"], power=2.0),
        config["n_fft"], config["hop_length"])
    own_ours = spectral_convergence(our_audio, np.asarray(ours.mel_to_magnitude(
        power.astype(np.float32))).T, config["n_fft"], config["hop_length"])
    print(f"\nPARITY teticio Mel.image_to_audio, Griffin-Lim {config['n_iter']} iterations: "
          f"mel-domain spectral convergence ours {mel_ours:.4f}, theirs {mel_theirs:.4f} "
          f"(bound ours ≤ 1.1 × theirs); against each one's own magnitude ours {own_ours:.4f}, "
          f"theirs {own_theirs:.4f}")
    assert mel_ours <= 1.1 * mel_theirs and own_ours <= 1.1 * own_theirs
