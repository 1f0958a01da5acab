"""`python -m data.mel_images`: a stored mel-image dataset that equals the images computed from
the audio, is read back by image_dataset, is checked against the run's Mel, and trains (mel-unet
and mel-vae)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import linked_audio_dir

from data.mel import Mel
from data.mel_images import PIPELINE_DEFAULTS, check_config, image_dataset, main, read_rows
from data.sources import DataError

ROOT = Path(__file__).resolve().parent.parent
CHORALES = sorted((ROOT / "dataset" / "chorales").glob("*.flac"))[:2]
TINY_MEL = {"x_res": 32, "y_res": 32, "sample_rate": 22050, "n_fft": 1024, "hop_length": 256,
            "top_db": 80}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("melimg")
    linked_audio_dir(root, CHORALES)
    code = main(["--data", str(root / "audio"), "--out", str(root / "images"),
                 "--resolution", "32", "--hop-length", "256", "--n-fft", "1024"])
    assert code == 0
    return root / "images"


def test_stored_images_equal_the_images_of_the_audio(images):
    rows = read_rows(images)
    mel = Mel(**TINY_MEL)
    expected = []
    for f in CHORALES:                          # every whole slice of each file, in order
        mel.load_audio(str(f))
        expected += [mel.audio_slice_to_image(i) for i in range(mel.get_number_of_slices())]
    assert len(rows) == len(expected) > 20
    stored = [tf.io.decode_png(tf.io.read_file(str(images / r["file"]))).numpy()[..., 0]
              for r in rows]
    diff = np.abs(np.stack(stored).astype(int) - np.stack(expected).astype(int))
    assert diff.mean() < 0.5 and np.percentile(diff, 99) <= 2, (diff.mean(), diff.max())
    assert json.loads((images / "mel_config.json").read_text())["hop_length"] == 256


def test_image_dataset_reads_batches_and_checks_the_mel(images):
    batch = next(iter(image_dataset(images, TINY_MEL, batch_size=4)))
    assert batch["image"].shape == (4, 32, 32) and batch["image"].dtype == tf.uint8
    with pytest.raises(DataError, match="hop_length is 256 but the run wants 512"):
        check_config(images, {**TINY_MEL, "hop_length": 512})


def test_train_py_trains_from_stored_images(images, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "train.py"), "--model", "mel-unet",
                          "--data", str(images), "--run", str(tmp_path / "run"), "--preset",
                          "tiny", "--steps", "3", "--set", "log_every=1"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "stored spectrograms of 32×32" in out.stdout and "done: step 3" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "data.mel_images", "--data",
                          str(images), "--out", str(tmp_path / "x"), "--resolution", "3x"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert bad.returncode == 2 and bad.stderr == "error: --resolution must be N or WxH " \
        "(positive integers), got '3x'\n", bad.stderr


def test_mel_vae_trains_from_stored_images(images, tmp_path, capsys):
    import train
    assert train.main(["--model", "mel-vae", "--data", str(images), "--run", str(tmp_path / "v"),
                       "--preset", "tiny", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "stored spectrograms of 32×32" in out and "done: step 2" in out
    assert main(["--data", str(images), "--out", str(images)]) == 2      # never overwrites
    assert capsys.readouterr().err.endswith("already holds an image dataset (use a new "
                                            "directory)\n")


def test_pipeline_defaults_are_the_data_params_defaults():
    from params import DataParams  # data/ keeps its own copy: no model params
    assert PIPELINE_DEFAULTS == {k: getattr(DataParams(), k) for k in PIPELINE_DEFAULTS}
