"""The bad-input matrix: every way a user can hand the project something wrong, in one table.

Each case runs a CLI (or the Python API) as a user would and checks: the exit code, a clear
one-line message (or a reported skip), no Python traceback, and that nothing the user had was
lost or overwritten (input files and existing runs are hashed before and after).
"""
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000


def tone(seconds=1.0, rate=RATE, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.stack([mono * (0.5 + 0.1 * c) for c in range(channels)], 1)


# --- data: (name, writer(dir), expected exit code, text expected in stdout+stderr) ------------
def _write(name, audio=None, rate=RATE, raw=None, **kw):
    def writer(d):
        if raw is not None:
            (d / name).write_bytes(raw)
        else:
            sf.write(d / name, audio, rate, **kw)
    return writer


def _truncated(d):
    sf.write(d / "full.flac", tone(), RATE)
    blob = (d / "full.flac").read_bytes()
    (d / "truncated.flac").write_bytes(blob[:len(blob) // 2])
    (d / "full.flac").unlink()


def _nan(d):
    audio = tone()
    audio[100] = np.nan
    sf.write(d / "nan.wav", audio, RATE, subtype="FLOAT")


def _zero_rate(d):
    sf.write(d / "zero_rate.wav", tone(), RATE)
    raw = bytearray((d / "zero_rate.wav").read_bytes())
    raw[24:28] = (0).to_bytes(4, "little")
    (d / "zero_rate.wav").write_bytes(bytes(raw))


def _patched(name, edit, **kw):
    """A tone written by soundfile, then `edit(bytearray)` applied to its bytes."""
    def writer(d):
        sf.write(d / name, tone(**{k: v for k, v in kw.items() if k == "channels"}), RATE,
                 **{k: v for k, v in kw.items() if k != "channels"})
        raw = bytearray((d / name).read_bytes())
        (d / name).write_bytes(bytes(edit(raw)))
    return writer


def _data_size(value):
    """Sets the data chunk's declared size (a streaming encoder's 0 / 0xFFFFFFFF, or more)."""
    def edit(raw):
        i = raw.find(b"data")
        raw[i + 4:i + 8] = struct.pack("<I", value)
        return raw
    return edit


def _cut(raw):                        # a recording that stopped mid-way: 5,318 of 16,000
    return raw[:raw.find(b"data") + 8 + 5318 * 2 + 1]


def _chunks_before_data(raw):         # bext (Broadcast WAV), LIST/INFO, JUNK and cue chunks
    extra = (b"bext" + struct.pack("<I", 602) + bytes(602) + b"LIST" + struct.pack("<I", 4) +
             b"INFO" + b"JUNK" + struct.pack("<I", 28) + bytes(28) + b"cue " +
             struct.pack("<I", 4) + bytes(4))
    i = raw.find(b"data")
    raw = raw[:i] + extra + raw[i:]
    raw[4:8] = struct.pack("<I", len(raw) - 8)
    return raw


def _bw64(raw):                       # BW64 (ITU-R BS.2088): RF64's layout under another id
    raw[:4] = b"BW64"
    return raw


def _channel_mask(raw):               # WAVE_FORMAT_EXTENSIBLE, 3 channels, mask 0x80000007
    i = raw.find(b"fmt ") + 8
    raw[i + 20:i + 24] = struct.pack("<I", 0x80000007)
    return raw


def _recordings(d):                   # what phones and browsers record (tests/data/formats)
    for name in ("tone.m4a", "tone.opus", "tone.webm"):
        shutil.copy(ROOT / "tests" / "data" / "formats" / name, d / name)


def _unreadable(d):
    sf.write(d / "locked.wav", tone(), RATE)
    os.chmod(d / "locked.wav", 0)


DATA_CASES = [
    ("corrupt", _write("corrupt.wav", raw=b"RIFF" + bytes(range(256)) * 3), 2,
     "skipped .*corrupt.wav: not a readable audio file"),
    ("truncated FLAC", _truncated, 0,
     r"warning .*truncated.flac: recovered 0\.\d\d s of 1\.00 s \(truncated\)"),
    ("empty file", _write("empty.wav", raw=b""), 2, "skipped .*empty.wav: empty file"),
    ("zero-length", _write("zero.wav", np.zeros((0, 1))), 2, "zero.wav: empty \\(0 samples\\)"),
    ("all-silent", _write("silent.wav", np.zeros((RATE, 1))), 2, "silent.wav: all-silent"),
    ("NaN sample", _nan, 2, "error: .*nan.wav: contains NaN or Inf samples"),
    ("8-bit", _write("u8.wav", tone(), subtype="PCM_U8"), 0, "data: 1 files"),
    ("24-bit", _write("s24.wav", tone(), subtype="PCM_24"), 0, "data: 1 files"),
    ("8 kHz", _write("low.wav", tone(rate=8000), rate=8000), 0, "data: 1 files"),
    ("96 kHz", _write("high.flac", tone(rate=96000), rate=96000), 0, "data: 1 files"),
    ("6 channels", _write("surround.wav", tone(channels=6)), 0, "data: 1 files"),
    ("not audio, audio name", _write("notes.mp3", raw=b"just some text\n" * 40), 2,
     "notes.mp3: not a readable audio file"),
    ("unreadable", _unreadable, 2, "locked.wav: permission denied"),
    ("no audio at all", _write("readme.txt", raw=b"nothing to hear"), 2, "no usable audio"),
    ("unknown format", _write("take.xyz", raw=b"\0" * 4000), 2,
     r"no usable audio; 1 files of unsupported type: .*take.xyz; accepted formats: .*\.wav"),
    ("phone/browser recordings (.m4a .opus .webm)", _recordings, 0, r"data: 3 files, 0\.9 s"),
    ("impossible header rate", _zero_rate, 2, "zero_rate.wav"),
    ("huge file, streamed", _write("long.flac", tone(seconds=150, rate=8000), rate=8000), 0,
     "3 clips"),
    # Real-world WAVs: what a damaged or streamed file holds is used, and the report says so.
    ("data size 0 (streamed)", _patched("s0.wav", _data_size(0)), 0,
     r"warning .*s0.wav: read 1\.00 s; its data-chunk size is 0 \(a streamed WAV\)"),
    ("data size 0xFFFFFFFF", _patched("sff.wav", _data_size(0xFFFFFFFF)), 0,
     r"warning .*sff.wav: read 1\.00 s; its data-chunk size is 0xFFFFFFFF"),
    ("data size past the end", _patched("big.wav", _data_size(10 ** 7)), 0,
     r"warning .*big.wav: recovered 1\.00 s of 312\.50 s \(truncated\)"),
    ("truncated WAV", _patched("cut.wav", _cut), 0,
     r"warning .*cut.wav: recovered 0\.33 s of 1\.00 s \(truncated\)"),
    ("RF64", _write("big.rf64.wav", tone(), format="RF64"), 0,
     r"warning .*big.rf64.wav: RF64 container, read by the project's WAV reader"),
    ("BW64", _patched("bw.wav", _bw64, format="RF64"), 0, r"warning .*bw.wav: BW64 container"),
    ("extensible, odd channel mask", _patched("mask.wav", _channel_mask, format="WAVEX",
                                              channels=3), 0, "data: 1 files"),
    ("bext/LIST/JUNK/cue chunks", _patched("bwf.wav", _chunks_before_data), 0,
     r"data: 1 files, 1\.0 s"),
    ("G.711 mu-law", _write("ulaw.wav", tone(), subtype="ULAW"), 0, "data: 1 files"),
    ("G.711 A-law", _write("alaw.wav", tone(), subtype="ALAW"), 0, "data: 1 files"),
    ("IMA ADPCM", _write("ima.wav", tone(), subtype="IMA_ADPCM"), 0, "data: 1 files"),
    ("GSM 6.10", _write("gsm.wav", tone(rate=8000), rate=8000, subtype="GSM610"), 0,
     "data: 1 files"),
    ("AIFF", _write("take.aiff", tone(), format="AIFF"), 0, "data: 1 files"),
    ("AIFC mu-law", _write("take.aifc", tone(), format="AIFF", subtype="ULAW"), 0,
     "data: 1 files"),
    ("64-bit float", _write("f64.wav", tone(), subtype="DOUBLE"), 0, "data: 1 files"),
]


def digest(path: Path) -> dict:
    """Content hashes of every file below `path` (what the user had)."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and os.access(p, os.R_OK)}


def cli(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def check_clean_failure(out, code, pattern):
    import re
    text = out.stdout + out.stderr
    assert out.returncode == code, text[-1500:]
    assert re.search(pattern, text), text[-1500:]
    assert "Traceback" not in out.stderr
    if code:
        assert out.stderr.startswith("error: ") or "\nerror: " in out.stderr
        assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("name,writer,code,pattern", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_data(tmp_path, name, writer, code, pattern):
    if name == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    data = tmp_path / "data"
    data.mkdir()
    writer(data)
    if code == 2 and "skipped" in pattern or name in ("zero-length", "all-silent",
                                                      "not audio, audio name", "unreadable"):
        sf.write(data / "good.wav", tone(), RATE)     # one usable file: the bad one is a skip
        code = 0
    before = digest(data)
    out = cli(ROOT / "train.py", "--data", data, "--run", tmp_path / "run", "--preset", "tiny",
              "--set", "segment_seconds=60", "--prepare-only")
    check_clean_failure(out, code, pattern)
    assert digest(data) == before


@pytest.mark.parametrize("policy,code,pattern", [
    ("skip", 0, r"skipped .*cut.wav: recovered 0\.33 s of 1\.00 s \(truncated\) "
                r"\(data.recover=skip\)"),
    ("error", 2, r"error: .*cut.wav: recovered 0\.33 s of 1\.00 s \(truncated\); set "
                 r"data.recover=warn")])
def test_data_recover_policy(tmp_path, policy, code, pattern):
    data = tmp_path / "data"
    data.mkdir()
    _patched("cut.wav", _cut)(data)
    sf.write(data / "good.wav", tone(), RATE)
    before = digest(data)
    out = cli(ROOT / "train.py", "--data", data, "--run", tmp_path / "run", "--preset", "tiny",
              "--set", f"recover={policy}", "--prepare-only")
    check_clean_failure(out, code, pattern)
    assert digest(data) == before


# --- params, runs, generation, export ------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("matrix")
    out = cli(ROOT / "train.py", "--data", ROOT / "dataset" / "digits", "--run", root / "run",
              "--preset", "tiny", "--steps", "2")
    assert out.returncode == 0, out.stderr
    return root


def _edit_params(run, **changes):
    params = json.loads((run / "params.json").read_text())
    for key, value in changes.items():
        section, name = key.split("__") if "__" in key else (None, key)
        (params[section] if section else params)[name] = value
    (run / "params.json").write_text(json.dumps(params))


def _copy_run(trained, tmp_path, **changes):
    run = tmp_path / "run"
    shutil.copytree(trained / "run", run)
    if changes:
        _edit_params(run, **changes)
    return run


def _as_mel_run(run):
    """The run's DiffWave checkpoint under a mel-unet params.json."""
    from configs import get_preset
    get_preset("tiny", "mel-unet").save(run / "params.json")
    return run


DIGITS = ROOT / "dataset" / "digits"
CLI_CASES = [
    # (name, argv builder(trained, tmp), expected code, message)
    ("unknown key", lambda r, t: ["train.py", "--data", DIGITS, "--run", t / "n",
                                  "--set", "colour=blue"], 2, "unknown key 'colour'"),
    ("wrong type", lambda r, t: ["train.py", "--data", DIGITS, "--run", t / "n",
                                 "--set", "batch_size=four"], 2, "data.batch_size: expected int"),
    ("negative steps", lambda r, t: ["train.py", "--data", DIGITS, "--run", t / "n",
                                     "--steps", "-5"], 2, "--steps must be >= 0"),
    ("layers 0", lambda r, t: ["train.py", "--data", DIGITS, "--run", t / "n",
                               "--set", "residual_layers=0"], 2,
     "network.residual_layers must be > 0"),
    ("unwritable run dir", lambda r, t: ["train.py", "--data", DIGITS, "--run",
                                         r / "run" / "params.json" / "sub"], 2,
     "cannot write the run directory"),
    ("missing run", lambda r, t: ["generate.py", "--run", t / "nowhere", "--out", t / "o"], 2,
     "no such run directory"),
    ("params/checkpoint mismatch",
     lambda r, t: ["generate.py", "--run", _copy_run(r, t, network__residual_channels=24),
                   "--out", t / "o"], 2, "cannot restore into a diffwave"),
    ("checkpoint of another family",
     lambda r, t: ["generate.py", "--run", _as_mel_run(_copy_run(r, t)), "--out", t / "o"], 2,
     "cannot restore into a mel-unet"),
    ("unknown family", lambda r, t: ["generate.py", "--run", _copy_run(r, t, model="wavenet"),
                                     "--out", t / "o"], 2, "model must be one of"),
    ("length 0", lambda r, t: ["generate.py", "--run", r / "run", "--seconds", "0", "--out",
                               t / "o"], 2, "--seconds: must be a number > 0"),
    ("negative length", lambda r, t: ["generate.py", "--run", r / "run", "--seconds", "-1",
                                      "--out", t / "o"], 2, "--seconds: must be a number > 0"),
    ("num 0", lambda r, t: ["generate.py", "--run", r / "run", "--num", "0", "--out", t / "o"],
     2, "--num: must be >= 1"),
    ("label on unconditional", lambda r, t: ["generate.py", "--run", r / "run", "--label", "3",
                                             "--out", t / "o"], 2, "not class-conditional"),
    ("unknown sampler", lambda r, t: ["generate.py", "--run", r / "run", "--sampler", "plms",
                                      "--out", t / "o"], 2,
     "takes fast | ddpm | ddim, got 'plms'"),
    ("steps > T", lambda r, t: ["generate.py", "--run", r / "run", "--sampler", "ddim",
                                "--steps", "500", "--out", t / "o"], 2, "--steps: must be in 1..50"),
    ("export over existing dir", lambda r, t: ["export.py", "--run", r / "run", "--out",
                                               r / "run"], 2, "exists and is not empty"),
]


@pytest.mark.parametrize("name,argv,code,message", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli(trained, tmp_path, name, argv, code, message):
    before = digest(trained)
    out = cli(*[ROOT / a if i == 0 else a for i, a in enumerate(argv(trained, tmp_path))])
    check_clean_failure(out, code, message)
    assert digest(trained) == before                     # the user's run is untouched


def test_serving_inputs_are_checked_in_the_graph(trained, tmp_path):
    out = cli(ROOT / "export.py", "--run", trained / "run", "--out", tmp_path / "m")
    assert out.returncode == 0, out.stderr
    import tensorflow as tf
    served = tf.saved_model.load(str(tmp_path / "m")).signatures["serving_default"]
    for num, length, message in ((1, 0, "length must be >= 1"), (0, 10, "num_samples must be"),
                                 (2, -4, "length must be >= 1")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            served(num_samples=tf.constant(num), length=tf.constant(length), seed=tf.constant(0))


def test_disk_full_keeps_the_previous_checkpoint(tmp_path):
    """A run directory on a 9 MB tmpfs: the first checkpoint (~6 MB) fits, the second does not."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=9M", "tmpfs", str(mount)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        out = cli(ROOT / "train.py", "--data", DIGITS, "--run", mount / "run", "--preset", "tiny",
                  "--steps", "20", "--set", "checkpoint_every=5", "--set", "keep_checkpoints=5")
        check_clean_failure(out, 2, "cannot write a checkpoint .* the previous checkpoint is "
                                    "intact")
        import tensorflow as tf
        latest = tf.train.latest_checkpoint(str(mount / "run" / "checkpoints"))
        assert latest and latest.endswith("ckpt-5")
        assert tf.train.load_checkpoint(latest).get_variable_to_shape_map()
    finally:
        subprocess.run(["umount", str(mount)])
