"""The text-to-audio family end to end, as a user runs it: tiny DiffAE then DiffGen trained by
train.py on the bundled captioned chorales (the loss falls), the captions' text states cached,
text → audio with guidance on and off, the string-input SavedModel in a fresh process, and
one-line errors for misuse."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import generate
import train

ROOT = Path(__file__).resolve().parent.parent
CHORALES = str(ROOT / "dataset" / "chorales")
PROMPT = "a brass quartet playing a four-part Bach chorale"


def run_py(script, *args, env=None):
    return subprocess.run([sys.executable, str(ROOT / script), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
                               "PYTHONPATH": str(ROOT), **(env or {})})


def losses(stdout):
    return [float(x) for x in re.findall(r"loss ([0-9.]+)", stdout)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """30 steps of each tiny model through the real train.py (own data/text cache)."""
    root = tmp_path_factory.mktemp("t2a")
    env = {"AUDIO_DIFFUSION_CACHE": str(root / "cache")}
    common = ["--data", CHORALES, "--preset", "tiny", "--steps", 30, "--set", "log_every=2"]
    ae = run_py("train.py", "--model", "diffae", "--run", root / "ae", *common, env=env)
    assert ae.returncode == 0, ae.stderr[-2000:]
    gen = run_py("train.py", "--model", "diffgen", "--autoencoder", root / "ae",
                 "--run", root / "gen", *common, "--set", "checkpoint_every=10", env=env)
    assert gen.returncode == 0, gen.stderr[-2000:]
    return root, ae.stdout, gen.stdout


def _assert_falls(stdout):
    curve = losses(stdout)
    assert len(curve) == 15
    first, last = np.mean(curve[:4]), np.mean(curve[-4:])
    assert last < 0.8 * first, (first, last, curve)


def test_diffae_trains_and_its_loss_falls(runs):
    root, ae_out, _ = runs
    assert "model: diffae" in ae_out
    _assert_falls(ae_out)
    assert (root / "ae" / "checkpoints" / "ckpt-30.index").exists()


def test_diffgen_trains_on_cached_caption_states(runs):
    root, _, gen_out = runs
    assert "model: diffgen" in gen_out
    _assert_falls(gen_out)
    match = re.search(r"text states: 42 captions, computed: (\S+)", gen_out)
    assert match and Path(match.group(1)).is_file()
    assert Path(match.group(1)).parent == root / "cache" / "text"
    # Built once: the same captions and encoder reuse the file (no encoder is loaded).
    from data.sources import find_sources
    from diffusion.families.text_to_audio.captions import CaptionStates
    from params import Params
    params = Params.load(root / "gen" / "params.json")
    assert params.network.autoencoder == str(root / "ae")
    captions = [s.caption for s in find_sources(CHORALES, "auto").sources]
    again = CaptionStates.build(captions, params.network, cache_root=root / "cache")
    assert again.from_cache and again.path == match.group(1)
    assert again.states.shape == (42, 48, 384)


@pytest.fixture(scope="module")
def generated(runs, tmp_path_factory):
    """generate.py (in this process) with guidance 5 and 1: two clips each, seed 3."""
    root, out = runs[0], tmp_path_factory.mktemp("generated")
    logs = {}
    for scale in (5, 1):
        logs[scale] = generate.main([
            "--run", str(root / "gen"), "--text", PROMPT, "--seconds", "0.6", "--guidance",
            str(scale), "--steps", "4", "--decode-steps", "4", "--num", "2", "--seed", "3",
            "--out", str(out / f"g{scale}")])
    return out, logs


def test_text_to_audio_with_and_without_guidance(generated):
    out, codes = generated
    assert codes == {5: 0, 1: 0}
    clips = {}
    for scale in (5, 1):
        wavs = sorted((out / f"g{scale}").glob("*.wav"))
        assert len(wavs) == 2 and len(list((out / f"g{scale}").glob("*.png"))) == 2
        audio = [sf.read(w)[0] for w in wavs]
        assert all(a.shape == (9600,) and np.isfinite(a).all() and a.std() > 0 for a in audio)
        clips[scale] = audio[0]
    assert np.abs(clips[5] - clips[1]).max() > 1e-3            # guidance changes the result


LOAD = """
import sys, numpy as np, tensorflow as tf
import tensorflow_text  # registers the tokenizer's ops
m = tf.saved_model.load(sys.argv[1])
f = m.signatures["serving_default"]
audio = f(text=tf.constant([sys.argv[2]] * 2), seconds=tf.constant(0.6), seed=tf.constant(3),
          guidance=tf.constant(5.0))["audio"].numpy()
np.save(sys.argv[3], audio)
try:
    f(text=tf.constant(["x"]), seconds=tf.constant(-1.0), seed=tf.constant(0),
      guidance=tf.constant(1.0))
    print("no error")
except tf.errors.InvalidArgumentError as e:
    print("seconds must be > 0" in str(e))
print(int(m.sample_rate.numpy()))
"""


def test_export_takes_a_string_and_matches_generate(runs, generated, tmp_path, capsys):
    root = runs[0]
    code = train_free_export(root, tmp_path / "model")
    assert code == 0, capsys.readouterr().err
    out = run_py("export.py", "--help")
    assert out.returncode == 0 and "--decode-steps" in out.stdout
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    loaded = subprocess.run([sys.executable, str(script), str(tmp_path / "model"), PROMPT,
                             str(tmp_path / "a.npy")], capture_output=True, text=True,
                            timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == ["True", "16000"]
    served = np.load(tmp_path / "a.npy")
    assert served.shape == (2, 9600) and np.isfinite(served).all()
    # generate.py with the same seed, steps and guidance wrote the same clips (16-bit WAV).
    wavs = [sf.read(w)[0] for w in sorted((generated[0] / "g5").glob("*.wav"))]
    np.testing.assert_allclose(served, np.stack(wavs), atol=5e-3)


def train_free_export(root, out):
    import export
    return export.main(["--run", str(root / "gen"), "--out", str(out), "--steps", "4",
                        "--decode-steps", "4"])


def test_misuse_is_a_one_line_error(runs, tmp_path, capsys):
    root = runs[0]
    dw = tmp_path / "dw"
    assert train.main(["--data", str(ROOT / "dataset" / "digits"), "--run", str(dw),
                       "--preset", "tiny", "--steps", "0"]) == 0
    capsys.readouterr()
    gen, ae = str(root / "gen"), str(root / "ae")
    base = ["--data", CHORALES, "--preset", "tiny", "--prepare-only"]
    cases = [
        (train.main, ["--model", "diffgen", "--autoencoder", gen, "--run", str(tmp_path / "a"),
                      *base], "a diffgen run, not a diffae run"),
        (train.main, ["--model", "diffgen", "--autoencoder", str(dw), "--run",
                      str(tmp_path / "b"), *base], "a diffwave run, not a diffae run"),
        (train.main, ["--model", "diffgen", "--run", str(tmp_path / "c"), *base],
         "needs --autoencoder"),
        (train.main, ["--model", "diffae", "--autoencoder", ae, "--run", str(tmp_path / "d"),
                      *base], "--autoencoder applies to --model diffgen"),
        (generate.main, ["--run", str(dw), "--text", PROMPT, "--out", str(tmp_path / "o")],
         "diffwave run: drop it (it is for text models)"),
        (generate.main, ["--run", ae, "--text", PROMPT, "--out", str(tmp_path / "o")],
         ": drop it (it is for text models)"),
        (generate.main, ["--run", ae, "--out", str(tmp_path / "o")], "--from-audio: " + ae + " is a diffusion autoencoder (diffae run): give the audio"),
        (generate.main, ["--run", gen, "--out", str(tmp_path / "o")], "--text: " + gen + " is a text-to-audio (diffgen) run: give a prompt"),
        (generate.main, ["--run", gen, "--text", PROMPT, "--guidance", "0", "--out",
                         str(tmp_path / "o")], "--guidance: must be a number > 0 (1 = no guidance), got 0.0"),
        (generate.main, ["--run", gen, "--text", PROMPT, "--sampler", "ddim", "--out",
                         str(tmp_path / "o")], "--sampler: " + gen + " takes v, got 'ddim'"),
        (generate.main, ["--run", gen, "--text", PROMPT, "--decode-steps", "0", "--out",
                         str(tmp_path / "o")], "--decode-steps: must be in 1..1000, got 0"),
    ]
    for main, argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        assert message in err, err
    for name in "abcdo":                               # nothing was written
        assert not (tmp_path / name).exists(), name


def test_diffgen_resume_is_exact(runs, tmp_path, monkeypatch):
    """train.py's 30 straight steps == its step-20 checkpoint restored into a fresh Trainer
    plus 10 steps: the CFG null-text mask, σ and ε are keyed by (step, seed), the crops come
    from the checkpointed iterator, and the frozen parts (DiffAE, caption states) rebuild equal."""
    import tensorflow as tf

    from data.pipeline import make_dataset, prepare
    from diffusion.families.registry import family_for
    from diffusion.training.ema import EMA
    from diffusion.training.engine import Trainer
    from params import Params
    root = runs[0]
    monkeypatch.setenv("AUDIO_DIFFUSION_CACHE", str(root / "cache"))
    params = Params.load(root / "gen" / "params.json")
    prepared = prepare(CHORALES, params.data)
    family = family_for(params)
    family.prepare_training(prepared)
    resumed = Trainer(family, params, tf.distribute.get_strategy(), tmp_path / "run",
                      make_dataset(prepared, params.data, seed=params.train.seed))
    resumed.checkpoint.restore(str(root / "gen" / "checkpoints" / "ckpt-20"))
    assert resumed.step == 20 and resumed.train(30, log=lambda *_: None) == "done"
    straight = family.build_model()
    ema = EMA(straight, params.train.ema_decay)
    tf.train.Checkpoint(model=straight, ema=ema).restore(
        str(root / "gen" / "checkpoints" / "ckpt-30")).expect_partial()
    pairs = list(zip(straight.variables + ema.shadow, resumed.model.variables +
                     resumed.ema.shadow))
    assert len(pairs) > 100
    for a, b in pairs:
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.name)
