"""The mel-UNet family on the shared core: train.py and generate.py with --model mel-unet."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

ROOT = Path(__file__).resolve().parent.parent
CHORALES = ROOT / "dataset" / "chorales"


def cli(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("mel") / "run"
    out = cli(ROOT / "train.py", "--model", "mel-unet", "--data", CHORALES, "--run", run,
              "--preset", "tiny", "--steps", "40", "--set", "log_every=5")
    assert out.returncode == 0, out.stderr
    return run, out.stdout


def test_trains_on_chorales_and_the_loss_falls(trained):
    curve = [float(x) for x in re.findall(r"loss ([0-9.]+)", trained[1])]
    assert len(curve) == 8 and np.mean(curve[-2:]) < 0.5 * np.mean(curve[:2])


def test_the_64x64_course_preset_learns_on_chorales(tmp_path):
    # The HF course's size (`small`: 64×64, 4.3 M parameters), Adam at 3e-4 without warm-up so a
    # few dozen steps show the trend (1e-3 is too high for it: the loss stays near 1).
    run = tmp_path / "run"
    out = cli(ROOT / "train.py", "--model", "mel-unet", "--data", CHORALES, "--run", run,
              "--preset", "small", "--steps", "40", "--set", "log_every=5",
              "--set", "learning_rate=3e-4", "--set", "warmup_steps=0", "--set", "batch_size=4")
    assert out.returncode == 0, out.stderr
    network = json.loads((run / "params.json").read_text())["network"]
    assert (network["x_res"], network["y_res"]) == (64, 64)
    curve = [float(x) for x in re.findall(r"loss ([0-9.]+)", out.stdout)]
    assert len(curve) == 8 and np.mean(curve[-2:]) < 0.4 * np.mean(curve[:2])


def test_generates_images_and_audio(trained, tmp_path):
    run = trained[0]
    out = cli(ROOT / "generate.py", "--run", run, "--out", tmp_path / "o", "--steps", "5",
              "--num", "2", "--seconds", "0.8")
    assert out.returncode == 0, out.stderr
    assert "ddim, 5 steps" in out.stdout                     # the family's default sampler
    wavs = sorted((tmp_path / "o").glob("*.wav"))
    audio, rate = sf.read(wavs[0])
    assert rate == 22050 and audio.shape == (round(0.8 * 22050),)   # whole slices, cropped
    image = tf.io.decode_png(tf.io.read_file(str(wavs[0].with_name(wavs[0].stem + "_image.png")))).numpy()
    assert image.shape == (32, 96, 1)             # y_res × (3·x_res): the slices covering 0.8 s
    variation = cli(ROOT / "generate.py", "--run", run, "--out", tmp_path / "v", "--steps", "8",
                    "--from-audio", next(CHORALES.glob("*.flac")), "--strength", "0.5")
    assert variation.returncode == 0 and "ddim, 4 steps" in variation.stdout, variation.stderr


def test_mel_params_are_checked():
    from configs import get_preset
    from params import ParamsError, apply_overrides
    with pytest.raises(ParamsError, match="crop_samples must be one Mel slice"):
        apply_overrides(get_preset("tiny", "mel-unet"), ["x_res=64"])
    with pytest.raises(ParamsError, match="multiples of 4"):
        apply_overrides(get_preset("tiny", "mel-unet"), ["y_res=30"])
    with pytest.raises(ParamsError, match="one flag per level"):
        apply_overrides(get_preset("tiny", "mel-unet"), ["attention=0,1"])
    params = apply_overrides(get_preset("tiny", "mel-unet"), ["block_channels=8,16,16"])
    assert params.network.block_channels == (8, 16, 16)


def test_class_conditional_mel_unet_on_digits(tmp_path):
    """network.num_classes: labels reach the UNet as one-hot encodings; generate.py --label."""
    from diffusion.families.registry import load_run
    run = tmp_path / "run"
    out = cli(ROOT / "train.py", "--model", "mel-unet", "--data",
              ROOT / "dataset" / "splits" / "heldout-digits.jsonl", "--run", run,
              "--preset", "tiny", "--steps", "4", "--set", "network.num_classes=10",
              "--set", "data.sample_rate=16000")
    assert out.returncode == 0, out.stderr
    params, family, model = load_run(run)
    assert family.conditioning == "class" and family.encoding_dim == 10
    x = tf.random.normal([2, 32, 32, 1], seed=1)
    seven, three = (model({"image": x, "step": tf.fill([2], 500.0),
                           **family.class_condition([label] * 2)}).numpy() for label in (7, 3))
    assert np.abs(seven - three).max() > 0                   # the label changes the prediction
    gen = cli(ROOT / "generate.py", "--run", run, "--label", "7", "--steps", "2", "--num", "1",
              "--seconds", "0.5", "--out", tmp_path / "o")
    assert gen.returncode == 0 and "label 7" in gen.stdout, gen.stderr
    missing = cli(ROOT / "generate.py", "--run", run, "--steps", "2", "--out", tmp_path / "x")
    assert missing.returncode == 2 and "class-conditional: give a label 0..9" in missing.stderr
    chorales = cli(ROOT / "train.py", "--model", "mel-unet", "--data", CHORALES, "--run",
                   tmp_path / "bad", "--preset", "tiny", "--set", "network.num_classes=10")
    assert chorales.returncode == 2 and "label -1 is not in [0, 10)" in chorales.stderr
