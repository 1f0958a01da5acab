"""app.py through gradio_client on a loopback server: every family's tiny run and a SavedModel,
every control, every bad input (each a message in the page, the server still serving), the
path checks, progress and cancellation."""
import urllib.error
import urllib.request

import numpy as np
import pytest
import soundfile as sf
from conftest import CHORALES, DIGITS
from gradio_client import handle_file

DIGIT = sorted(DIGITS.glob("*.flac"))[0]
CHORALE = sorted(CHORALES.glob("*.flac"))[0]
FIELDS = ("key", "num", "seconds", "sampler", "steps", "eta", "seed", "label", "text",
          "guidance", "decode_steps", "source", "strength", "mask_start", "mask_end", "mel",
          "vocoder")
DEFAULTS = dict(num=1, seconds=0.25, sampler=None, steps=None, eta=0.0, seed=0, label=None,
                text=None, guidance=None, decode_steps=2, source=None, strength=0.5,
                mask_start=0.0, mask_end=0.0, mel=None, vocoder="")


@pytest.fixture(scope="module")
def client(app):
    return app.client()


def key(runs, name):
    return f"{runs}/{name}"


def generate(client, runs, name, **options):
    """(status, [wav paths]) of one /generate call."""
    values = {**DEFAULTS, "key": key(runs, name) if name else options.pop("key"), **options}
    for f in ("source", "mel"):
        if values[f] is not None:
            values[f] = handle_file(str(values[f]))
    out = client.predict(*[values[f] for f in FIELDS], api_name="/generate")
    return out[0], out[6] or [], out


def assert_made(status, wavs, count, seconds, rate):
    assert status.startswith("Made"), status
    assert len(wavs) == count
    for wav in wavs:
        audio, r = sf.read(wav)
        assert r == rate and np.isfinite(audio).all()
        assert abs(len(audio) / r - seconds) < 0.02, (len(audio) / r, seconds)
    return [sf.read(w)[0] for w in wavs]


def test_lists_runs_and_savedmodels_under_the_roots_only(client, runs):
    choices = [c[0] for c in client.predict(api_name="/rescan")[0]["choices"]]
    expected = ["digits", "digits-class", "vocoder", "mel", "mel-class", "ae", "gen",
                "exported/digits",
                "broken/empty", "broken/garbage"]
    assert sorted(choices) == sorted(key(runs, n) for n in expected)     # link-out is not there


@pytest.mark.parametrize("name,shown,hidden", [
    ("digits", {"source", "mask"}, {"label", "text", "mel", "vocoder"}),
    ("digits-class", {"label"}, {"text", "guidance", "mel", "vocoder"}),
    ("vocoder", {"mel"}, {"label", "text", "source", "seconds"}),
    ("mel", {"vocoder", "source", "mask"}, {"label", "text", "guidance", "mel"}),
    ("mel-class", {"label", "guidance", "vocoder"}, {"text", "mel", "decode_steps"}),
    ("ae", {"source"}, {"mask", "text", "label", "seconds"}),
    ("gen", {"text", "guidance"}, {"source", "label", "mel"}),
    ("exported/digits", {"seconds"}, {"sampler", "source", "label", "text"}),
])
def test_the_form_adapts_to_the_family(client, runs, name, shown, hidden):
    out = client.predict(key(runs, name), api_name="/form")
    slots = dict(zip(["seconds", "sampler", "steps", "eta", "label", "text", "guidance",
                      "decode_steps", "source", "strength", "mask", "mask_end", "mel",
                      "vocoder"], out[1:]))
    assert not out[0].startswith("**Error"), out[0]
    for name_ in shown:
        assert slots[name_]["visible"] is True, name_
    for name_ in hidden:
        assert slots[name_]["visible"] is False, name_


def test_diffwave_every_sampler_seed_and_clip_count(client, runs):
    status, wavs, out = generate(client, runs, "digits", num=2, seconds=0.25, seed=1)
    first = assert_made(status, wavs, 2, 0.25, 16000)
    assert "fast" in status and len(out[5]) == 2                  # a spectrogram per clip
    assert out[5][0]["caption"].startswith("clip 1: 0.25 s at 16000 Hz")
    again = assert_made(*generate(client, runs, "digits", num=2, seconds=0.25, seed=1)[:2],
                        2, 0.25, 16000)
    assert np.array_equal(first[0], again[0])                      # same seed, same clip
    other = assert_made(*generate(client, runs, "digits", seconds=0.25, seed=2)[:2],
                        1, 0.25, 16000)
    assert not np.array_equal(first[0], other[0])
    status, wavs, _ = generate(client, runs, "digits", sampler="ddim", steps=3, eta=0.5)
    assert_made(status, wavs, 1, 0.25, 16000)
    assert "ddim, 3 steps" in status
    status, wavs, _ = generate(client, runs, "digits", sampler="ddpm")
    assert "ddpm, 50 steps" in status


def test_audio_to_audio_and_painting(client, runs):
    status, wavs, _ = generate(client, runs, "digits", source=DIGIT, strength=0.4)
    assert_made(status, wavs, 1, sf.info(str(DIGIT)).duration, 16000)
    status, wavs, _ = generate(client, runs, "digits", source=DIGIT, strength=1.0,
                               mask_start=0.2, mask_end=0.1)
    assert status.startswith("Made"), status
    status, _, _ = generate(client, runs, "digits", mask_start=0.2)
    assert "give from_audio" in status, status


def test_class_label(client, runs):
    status, wavs, _ = generate(client, runs, "digits-class", label=7)
    assert_made(status, wavs, 1, 0.25, 16000)


def test_class_label_with_classifier_free_guidance(client, runs):
    status, wavs, _ = generate(client, runs, "mel-class", label=3, guidance=2.0, steps=2,
                               seconds=0.5)
    assert status.startswith("Made") and "guidance 2" in status, status
    status, _, _ = generate(client, runs, "mel", guidance=2.0, steps=2, seconds=0.5)
    assert "not trained for classifier-free guidance" in status, status


def test_mel_unet_griffin_lim_variations_and_a_vocoder(client, runs):
    status, wavs, out = generate(client, runs, "mel", sampler="ddim", steps=2, seconds=0.4)
    assert status.startswith("Made") and "mel image" in out[5][0]["caption"], status
    status, wavs, _ = generate(client, runs, "mel", sampler="ddim", steps=2, source=CHORALE,
                               strength=0.5)
    assert status.startswith("Made"), status
    status, wavs, _ = generate(client, runs, "mel", sampler="ddim", steps=2,
                               vocoder=key(runs, "vocoder"))
    assert status.startswith("Made"), status
    assert sf.info(wavs[0]).samplerate == 22050


def test_mel_vocoder_run_takes_a_mel_input(client, runs):
    status, wavs, _ = generate(client, runs, "vocoder", mel=CHORALE)
    assert status.startswith("Made"), status


def test_text_to_audio_and_reconstruction(client, runs):
    status, wavs, _ = generate(client, runs, "gen", text="a string orchestra", guidance=2.0,
                               steps=2, decode_steps=2, seconds=0.3)
    assert_made(status, wavs, 1, 0.3, 16000)
    assert "guidance 2" in status
    status, wavs, _ = generate(client, runs, "ae", source=DIGIT, steps=2)
    assert status.startswith("Made"), status


def test_savedmodel(client, runs):
    status, wavs, _ = generate(client, runs, "exported/digits", seconds=0.3, num=2, seed=4)
    assert_made(status, wavs, 2, 0.3, 16000)
    assert "SavedModel" in status


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.wav").write_text("not audio at all\n" * 10)
    sf.write(d / "long.wav", np.zeros(61 * 8000, np.float32), 8000, subtype="PCM_U8")
    nan = np.zeros(8000, np.float32)
    nan[100] = np.nan
    sf.write(d / "nan.wav", nan, 16000, subtype="FLOAT")
    (d / "big.bin").write_bytes(b"\0" * (2 * 2 ** 20))
    return d


@pytest.mark.parametrize("name,options,message", [
    ("digits", {"source": "notes.wav"}, "not a readable audio file"),
    ("digits", {"source": "long.wav"}, "61.0 s long; at most 60 s"),
    ("digits", {"source": "nan.wav"}, "NaN or infinite samples"),
    ("digits", {"seconds": 0}, "seconds must be in (0, 30]"),
    ("digits", {"seconds": 100}, "seconds must be in (0, 30]"),
    ("digits", {"num": 9}, "clips must be in 1..4"),
    ("digits", {"seed": -1}, "seed must be in"),
    ("digits", {"sampler": "ddim", "steps": 999}, "steps: must be in 1..50"),
    ("digits", {"eta": -1.0}, "eta: must be a number >= 0"),
    ("digits", {"sampler": "v"}, "sampler: "),
    ("digits", {"source": DIGIT, "strength": 2.0}, "strength: must be in (0, 1]"),
    ("digits-class", {"label": 10}, "label: 10 is out of range 0..9"),
    ("digits-class", {}, "give a label 0..9"),
    ("gen", {}, "give a prompt"),
    ("broken/empty", {}, "no checkpoint yet"),
    ("broken/garbage", {}, "params.json"),
    (None, {"key": "/etc"}, "not a run or SavedModel under the configured directories"),
    (None, {"key": "{runs}/../outside"}, "not a run or SavedModel"),
    (None, {"key": "{runs}/link-out"}, "not a run or SavedModel"),
    ("mel", {"vocoder": "/etc"}, "not a run or SavedModel"),
    ("exported/digits", {"seconds": 100}, "seconds must be in"),
])
def test_bad_input_is_a_message_and_the_server_keeps_serving(client, runs, bad_files, name,
                                                              options, message):
    options = {k: (bad_files / v if isinstance(v, str) and v.endswith(".wav") else
                   v.format(runs=runs) if isinstance(v, str) else v)
               for k, v in options.items()}
    status, wavs, _ = generate(client, runs, name, **options)
    assert status.startswith("**Error:**") and message in status, status
    assert wavs == []
    assert generate(client, runs, "digits")[0].startswith("Made")


def test_a_run_that_fails_to_load_shows_in_the_form(client, runs):
    assert "params.json" in client.predict(key(runs, "broken/garbage"), api_name="/form")[0]
    assert client.predict("/etc", api_name="/form")[0].startswith("**Error:**")


def test_uploads_are_size_limited(client, runs, bad_files):
    with pytest.raises(Exception, match="(?i)size|large|413"):
        generate(client, runs, "digits", source=bad_files / "big.bin")
    assert generate(client, runs, "digits")[0].startswith("Made")


@pytest.mark.parametrize("path", ["/etc/passwd", "{runs}/digits/params.json",
                                  "{root}/README.md"])
def test_no_file_outside_is_served(app, runs, path):
    from conftest import ROOT
    url = app.url + "gradio_api/file=" + path.format(runs=runs, root=ROOT)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=10)
    assert e.value.code in (403, 404)


def test_progress_and_cancel(app, runs):
    client = app.client()
    job = client.submit(key(runs, "digits"), 1, 30.0, "ddpm", None, 0.0, 0, None, None, None,
                        2, None, 0.5, 0.0, 0.0, None, "", api_name="/generate")
    import time
    seen, deadline = None, time.time() + 120
    while time.time() < deadline:
        status = job.status()
        if status.progress_data:
            seen = status.progress_data[0]
            if seen.index and seen.index >= 1:
                break
        time.sleep(0.2)
    assert seen is not None and seen.length == 50 and seen.unit == "steps", seen
    client.predict(api_name="/cancel")
    out = job.result(timeout=120)
    assert out[0].startswith("**Cancelled** (cancelled after step"), out[0]
    assert generate(client, runs, "digits")[0].startswith("Made")
