"""The digit classifier's augmentations do what they claim, the LOEO / LOVO splits leak
nothing, and the voice-corpus builder tags its clips (that one skips without the synths)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluation.digits import augment as aug
from evaluation.digits.crossval import ENGINES, LOVO_FOLDS, leave_out

ROOT = Path(__file__).resolve().parent.parent
SR = 16000


def band_energy_db(x, low, high):
    spec = np.abs(np.fft.rfft(x, axis=-1)) ** 2
    f = np.fft.rfftfreq(x.shape[-1], 1 / SR)
    return 10 * np.log10(spec[..., (f >= low) & (f < high)].sum() + 1e-30)


def tone(freq, seconds=1.0, amplitude=0.5):
    return (amplitude * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR))[None]


def test_telephone_band_removes_energy_outside_300_to_3400_hz():
    noise = np.random.default_rng(0).standard_normal([2, SR]).astype(np.float32)
    out = aug.telephone(noise)
    for low, high in ((0, 300), (3400, 8000)):
        assert band_energy_db(noise, low, high) - band_energy_db(out, low, high) > 30
    # inside the band (clear of the tapers) nothing changes
    assert abs(band_energy_db(noise, 400, 3300) - band_energy_db(out, 400, 3300)) < 0.1
    assert abs(band_energy_db(tone(1000), 900, 1100)
               - band_energy_db(aug.telephone(tone(1000)), 900, 1100)) < 0.1


def test_mu_law_round_trip_error_is_within_half_a_step():
    x = np.linspace(-1, 1, 20001, dtype=np.float32)[None]
    y = aug.mu_law(x)
    mu, levels = 255.0, 255
    # |dx/dy| = ln(1 + μ)/μ · (1 + μ|x|), largest at the louder end of the step; half a
    # quantiser step in y is 1/levels
    slope = np.log1p(mu) / mu * (1 + mu * np.maximum(np.abs(x), np.abs(y)))
    bound = slope / levels * 1.001 + 1e-7
    assert np.all(np.abs(y - x) <= bound)
    assert np.abs(y - x).max() > 0.005                         # it does quantise
    sine = tone(440, amplitude=0.5)
    error = aug.mu_law(sine) - sine
    assert 10 * np.log10(np.mean(sine ** 2) / np.mean(error ** 2)) > 30
    assert np.abs(aug.mu_law(np.array([[3.0, -3.0]]))).max() <= 1.0      # clipped first


def tail_db(x, start, stop):
    return 10 * np.log10(np.mean(x[:, start:stop] ** 2) + 1e-30)


def test_reverb_lengthens_the_decay_and_more_with_a_longer_rt60():
    burst = np.zeros([1, SR], np.float32)
    burst[0, 1600:2400] = np.random.default_rng(1).standard_normal(800)      # 50 ms at 0.1 s
    short = aug.reverb(burst, np.random.default_rng(2), rt60=(0.2, 0.2))
    long = aug.reverb(burst, np.random.default_rng(2), rt60=(0.8, 0.8))
    assert tail_db(burst, 4000, 8000) < -200                  # dry: silence after the burst
    assert tail_db(long, 4000, 8000) - tail_db(long, 1600, 2400) > -40   # wet: a tail
    assert tail_db(long, 4000, 8000) > tail_db(short, 4000, 8000) + 10
    assert abs(tail_db(short, 0, SR) - tail_db(burst, 0, SR)) < 0.01    # RMS kept


@pytest.mark.parametrize("snr", [0.0, 5.0, 10.0, 20.0])
def test_noise_is_added_at_the_requested_snr(snr):
    rng = np.random.default_rng(3)
    clean = aug.change_speed(tone(300), 1.0) * np.hanning(SR)
    clean = np.repeat(clean, 3, axis=0)
    noises = np.stack([rng.standard_normal(SR), aug.pink_noise(rng, [SR]),
                       aug.babble(np.repeat(tone(200), 6, 0) * rng.random([6, 1]), rng)[0]])
    noisy = aug.add_noise(clean, noises, snr)
    measured = 10 * np.log10(aug.power(clean) / aug.power(noisy - clean))
    assert np.all(np.abs(measured - snr) < 0.5)


def test_speed_change_moves_the_pitch_and_shift_moves_the_clip():
    x = aug.change_speed(tone(500), 1.1)
    spectrum = np.abs(np.fft.rfft(x[0, 4000:12000]))
    assert abs(np.fft.rfftfreq(8000, 1 / SR)[spectrum.argmax()] - 550) < 5
    ramp = np.arange(10, dtype=np.float32)[None] + 1
    assert aug.shift(ramp, 3)[0].tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert aug.shift(ramp, -3)[0].tolist() == [4, 5, 6, 7, 8, 9, 10, 0, 0, 0]


def test_codec_round_trips_keep_the_signal():
    x = tone(700)[0] * np.hanning(SR)
    for kind, (fmt, _, rate) in enumerate(aug.CODECS):
        y = aug.codec(x, kind)
        assert y.shape == x.shape, fmt
        spectrum = np.abs(np.fft.rfft(y))
        assert abs(np.fft.rfftfreq(SR, 1 / SR)[spectrum.argmax()] - 700) < 5, fmt


def test_augment_is_seeded_bounded_and_varied():
    rng = np.random.default_rng(4)
    audio = (rng.standard_normal([16, SR]) * np.hanning(SR) * 0.3).astype(np.float32)
    a = aug.augment(audio, np.random.default_rng(5))
    b = aug.augment(audio, np.random.default_rng(5))
    c = aug.augment(audio, np.random.default_rng(6))
    assert a.shape == audio.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.all(np.isfinite(a)) and np.abs(a).max() < 1.01
    with pytest.raises(ValueError, match=r"expected audio \[N, T\]"):
        aug.augment(audio[0], rng)


def vowel(f0, formants=(700, 1200, 2600), seconds=1.0):
    """A pulse train at f0 through three resonators: a synthetic /a/."""
    from scipy.signal import lfilter
    n = int(seconds * SR)
    x = np.zeros(n)
    x[::int(SR / f0)] = 1.0
    for f in formants:
        r, theta = np.exp(-np.pi * 80 / SR), 2 * np.pi * f / SR
        x = lfilter([1.0], [1, -2 * r * np.cos(theta), r * r], x)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)[None]


def envelope_db(x, smooth=400):
    spec = 10 * np.log10(np.abs(np.fft.rfft(x[0] * np.hanning(x.shape[1]))) ** 2 + 1e-12)
    return np.convolve(spec, np.ones(smooth) / smooth, "same")[: len(spec) // 2]


def f0_of(x):
    r = np.correlate(x[0, 2000:6000], x[0, 2000:6000], "full")[3999:]
    lag = 40 + int(np.argmax(r[40:400]))                      # 40–400 Hz
    return SR / lag


def test_revoice_keeps_the_envelope_and_level_and_replaces_the_source():
    x = vowel(100.0)
    y = aug.revoice(x, np.random.default_rng(1))
    again = aug.revoice(x, np.random.default_rng(1))
    np.testing.assert_array_equal(y, again)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_allclose(np.sqrt(np.mean(y ** 2)), np.sqrt(np.mean(x ** 2)), rtol=1e-3)
    assert abs(f0_of(y) - 100.0) > 10.0, f0_of(y)                 # a new pitch
    same = np.corrcoef(envelope_db(x), envelope_db(y))[0, 1]    # the same vowel, its formants
    other = vowel(100.0, formants=(300, 2300, 3000))            # moved ≤ 12 %; /i/ is far off
    assert same > 0.5 and same > np.corrcoef(envelope_db(other), envelope_db(y))[0, 1] + 0.3


def test_leave_out_holds_out_every_clip_of_the_group_and_nothing_else():
    engines = np.array(["espeak-ng", "flite", "festival", "kokoro"] * 7 + ["flite"])
    for engine in ENGINES:
        train, test = leave_out(engines, engine)
        assert set(engines[test]) == {engine} and engine not in set(engines[train])
        assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(engines)))
    speakers = np.array(["kal", "slt", "awb", "en-029", "kal", "ked"])
    train, test = leave_out(speakers, ("kal", "en-029"))
    assert test.tolist() == [0, 3, 4] and train.tolist() == [1, 2, 5]
    with pytest.raises(ValueError, match=r"no clips of \['nobody'\]"):
        leave_out(speakers, "nobody")


def builder():
    sys.path.insert(0, str(ROOT / "dataset"))
    import build_voices
    return build_voices


def test_lovo_folds_hold_out_a_speaker_in_every_engine_that_uses_their_voice():
    bv = builder()
    speaker_of = {f"flite:{k}": s for k, (s, _) in bv.FLITE_VOICES.items()}
    speaker_of |= {f"festival:{k}": s for k, (_, s, _) in bv.FESTIVAL_VOICES.items()}
    held = {s for fold in LOVO_FOLDS for s in fold}
    assert {speaker_of["flite:kal"], speaker_of["flite:kal16"], speaker_of["festival:kal"]} \
        == {"kal"}
    assert set(speaker_of.values()) <= held                   # every CMU speaker held out once
    assert sum(len(f) for f in LOVO_FOLDS) == len(held)       # and only once


@pytest.mark.skipif(not all(shutil.which(p) for p in ("espeak-ng", "flite", "festival")),
                    reason="needs espeak-ng, flite and festival (make digit-classifier installs "
                           "them)")
def test_voice_corpus_builder_tags_every_clip(tmp_path):
    bv = builder()
    kokoro = bv.available() is None       # the neural voices, when requirements-voices is in
    summary = bv.build(tmp_path, seed=0, per_voice=1, kokoro=kokoro)
    with np.load(tmp_path / "voices.npz") as data:
        audio, engine, voice, label = data["audio"], data["engine"], data["voice"], data["label"]
    assert audio.shape == (summary["clips"], 16000) and audio.dtype == np.int16
    assert set(engine) == set(ENGINES[:3 + kokoro])
    assert len(set(voice)) == 8 + 5 + 3 + 5 * kokoro
    assert all(v.startswith(e + ":") for e, v in zip(engine, voice))
    assert np.bincount(label, minlength=10).min() >= 14
    assert np.all(np.abs(audio).max(axis=1) > 0.2 * 32767)     # peak −12..−1 dBFS


def test_crossval_cli_refuses_a_missing_corpus_and_unknown_folds(tmp_path, capsys):
    from evaluation.digits.crossval import main
    assert main(["--corpus", str(tmp_path / "none"), "--work", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "none/voices.npz not found" in err
    with pytest.raises(SystemExit):
        main(["--only", "loeo:nobody"])
    assert "unknown parts ['loeo:nobody']" in capsys.readouterr().err


def test_crossval_scores_the_committed_classifier_on_an_engine_it_never_heard(tmp_path, capsys):
    """--only score:ENGINE: a per-voice table of OUT's classifier on that engine's clips (the
    bundled word clips stand in for the corpus here), or one line if there are none."""
    from evaluation.digits.crossval import bundled, main
    audio, labels, engine = bundled(["flite"])
    np.savez(tmp_path / "voices.npz", audio=np.round(audio * 32767).astype(np.int16),
             label=labels, engine=np.array(["kokoro"] * len(labels)),
             voice=np.array(["kokoro:a", "kokoro:b"] * (len(labels) // 2) + ["kokoro:a"]
                            * (len(labels) % 2)),
             speaker=engine, source=engine)
    out = ["--corpus", str(tmp_path), "--work", str(tmp_path / "w"), "--out",
           str(ROOT / "pretrained" / "digit-classifier")]
    assert main([*out, "--only", "score:kokoro"]) == 0
    printed = capsys.readouterr().out
    assert "| kokoro:a | " in printed and "| kokoro:b | " in printed
    row = next(line for line in printed.splitlines() if line.startswith("| all |"))
    count, accuracy = row.split("|")[2:4]
    assert int(count) == len(labels) and float(accuracy.strip(" %")) >= 95.0, row
    assert main([*out, "--only", "score:festival"]) == 2
    assert capsys.readouterr().err.strip() == "error: the corpus has no festival clips"
    # --scorer sphinx: the same table by PocketSphinx (flite: 94.8 % over the whole corpus)
    assert main([*out, "--only", "score:kokoro", "--scorer", "sphinx"]) == 0
    printed = capsys.readouterr().out
    assert "| PocketSphinx on kokoro voices |" in printed
    row = next(line for line in printed.splitlines() if line.startswith("| all |"))
    assert float(row.split("|")[3].strip(" %")) >= 80.0, row
