"""The mel-UNet SavedModel (export.py on a mel-unet run): a fresh process loads it with
tf.saved_model.load and gets the Python sampler's images and Griffin-Lim audio; class-conditional
runs take labels and the guidance scale (issue #29), latent runs decode with the VAE in-graph."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_mel_generation import make_untrained_run

ROOT = Path(__file__).resolve().parent.parent
LOAD = """
import sys, numpy as np, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
out = m.signatures["serving_default"](num_samples=tf.constant(2), seed=tf.constant(7))
eps = m.signatures["denoise"](x_t=tf.zeros([1, 32, 64, 1]), t=tf.constant([3.0]))["epsilon"]
np.savez(sys.argv[2], images=out["images"].numpy(), audio=out["audio"].numpy(),
         eps=np.array(eps.shape))
"""


def test_fresh_process_loads_mel_savedmodel_and_matches_python(tmp_path, capsys):
    from export import main
    run = tmp_path / "run"
    make_untrained_run(run)
    assert main(["--run", str(run), "--out", str(tmp_path / "model"), "--steps", "3"]) == 0
    assert "ddim, 3 steps" in capsys.readouterr().out
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", LOAD, str(tmp_path / "model"),
                          str(tmp_path / "out.npz")], capture_output=True, text=True,
                         timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    got = np.load(tmp_path / "out.npz")
    from diffusion.core.sampling import sample
    from diffusion.core.schedulers import build_scheduler
    from diffusion.families.registry import load_run
    params, family, model = load_run(run)
    x = sample(family.denoiser(model, {}), build_scheduler(params, "ddim", 3),
               [2, 32, 32, 1], 7).numpy()
    images = np.clip(np.round((x[..., 0] + 1.0) * 127.5), 0, 255).astype(np.uint8)
    audio = family.mel.image_to_audio(images)                   # batched, seed 0: as exported
    assert got["images"].shape == (2, 32, 32) and got["images"].dtype == np.uint8
    assert np.mean(got["images"] != images) < 0.002            # rounding ties at most
    assert got["audio"].shape == (2, 32 * 256 - 1)
    # Threaded float reductions may flip a rounding tie, hence relative audio error.
    assert np.linalg.norm(got["audio"] - audio) < 0.05 * np.linalg.norm(audio)
    assert list(got["eps"]) == [1, 32, 64, 1]                  # denoise takes any width
    cli = Path(sys.executable).parent / "saved_model_cli"           # TF1-style loader too
    out = subprocess.run([str(cli), "run", "--dir", str(tmp_path / "model"), "--tag_set", "serve",
                          "--signature_def", "serving_default", "--input_exprs",
                          "num_samples=2;seed=7", "--outdir", str(tmp_path / "cli")],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert np.mean(np.load(tmp_path / "cli" / "images.npy") != got["images"]) < 0.002


# -- class-conditional runs with classifier-free guidance (issue #29) --------------------------
CLASS = ["network.num_classes=10", "network.cfg_drop=0.1", "network.guidance=2"]
LOAD_CLASS = """
import json, sys, numpy as np, tensorflow as tf
m = tf.saved_model.load(sys.argv[1])
label, seed = tf.constant([3, 7]), tf.constant(7)
default = m.signatures["serving_default"](num_samples=tf.constant(2), seed=seed, label=label)
g15 = m.signatures["generate"](num_samples=tf.constant(2), seed=seed, label=label,
                               guidance=tf.constant(1.5))
eps = m.signatures["denoise"](x_t=tf.zeros([2, 32, 64, 1]), t=tf.constant([3.0, 3.0]),
                              label=label, guidance=tf.constant(2.0))["epsilon"]
errors = []
for n, bad, s in ((2, [3, 12], 2.0), (2, [-1, 3], 2.0), (3, [3, 7], 2.0), (2, [3, 7], 0.0)):
    try:
        m.signatures["generate"](num_samples=tf.constant(n), seed=seed, label=tf.constant(bad),
                                 guidance=tf.constant(s))
        errors.append(None)
    except tf.errors.InvalidArgumentError as e:
        errors.append(e.message)
np.savez(sys.argv[2], default=default["images"].numpy(), audio=default["audio"].numpy(),
         g15=g15["images"].numpy(), eps=np.array(eps.shape), guidance=m.guidance.numpy(),
         rate=m.sample_rate.numpy())
json.dump(errors, open(sys.argv[3], "w"))
"""


def python_images(run, steps, seed, labels, guidance=None):
    """The reference: generate.py's path (load_run, class_condition, sample, to_images)."""
    from diffusion.core.sampling import sample
    from diffusion.core.schedulers import build_scheduler
    from diffusion.families.registry import load_run
    params, family, model = load_run(run)
    cond = family.class_condition(labels, guidance)
    x = sample(family.denoiser(model, cond), build_scheduler(params, "ddim", steps),
               family.sample_shape(len(labels), 0.1, cond), seed)
    return family, family.to_images(x)


def test_class_conditional_guided_run_exports_and_matches_python(tmp_path, capsys):
    from export import main
    run = tmp_path / "run"
    make_untrained_run(run, overrides=CLASS)
    assert main(["--run", str(run), "--out", str(tmp_path / "model"), "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "labels 0..9, guidance 2 by default" in out and "generate (… and guidance)" in out
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", LOAD_CLASS, str(tmp_path / "model"),
                           str(tmp_path / "out.npz"), str(tmp_path / "errors.json")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.load(tmp_path / "out.npz")
    assert float(got["guidance"]) == 2.0 and int(got["rate"]) == 22050   # saved defaults
    family, images = python_images(run, 3, 7, [3, 7])                  # the run's s = 2
    assert got["default"].shape == (2, 32, 32) and got["audio"].shape == (2, 32 * 256 - 1)
    assert np.mean(got["default"] != images) < 0.002                   # rounding ties at most
    audio = family.mel.image_to_audio(images)                          # batched, seed 0
    assert np.linalg.norm(got["audio"] - audio) < 0.05 * np.linalg.norm(audio)
    _, images15 = python_images(run, 3, 7, [3, 7], 1.5)
    assert np.mean(got["g15"] != images15) < 0.002
    assert np.mean(images15 != images) > 0.1                           # the scale matters
    assert list(got["eps"]) == [2, 32, 64, 1]
    errors = json.loads((tmp_path / "errors.json").read_text())
    for error, message in zip(errors, ("label must be < 10", "label must be >= 0",
                                       "label needs num_samples entries",
                                       "guidance must be > 0")):
        assert error and message in error, (message, error)
    cli = Path(sys.executable).parent / "saved_model_cli"           # TF1-style loader too
    done = subprocess.run([str(cli), "run", "--dir", str(tmp_path / "model"), "--tag_set",
                           "serve", "--signature_def", "serving_default", "--input_exprs",
                           "num_samples=2;seed=7;label=[3,7]", "--outdir", str(tmp_path / "cli")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert np.mean(np.load(tmp_path / "cli" / "images.npy") != got["default"]) < 0.002


def make_vae_run(run):
    """A mel-vae run (params.json + one checkpoint) of a freshly initialised tiny VAE."""
    import tensorflow as tf

    from configs import get_preset
    from diffusion.families.mel.vae import build_vae
    params = get_preset("tiny", "mel-vae")
    params.save(str(run / "params.json"))
    tf.train.Checkpoint(model=build_vae(params)).save(str(run / "checkpoints" / "ckpt"))


def test_latent_class_run_decodes_with_the_vae_in_the_graph(tmp_path, capsys):
    import tensorflow as tf

    from export import main
    make_vae_run(tmp_path / "vae")
    run = tmp_path / "latent"
    make_untrained_run(run, overrides=[f"vae_run={tmp_path / 'vae'}", "block_channels=16,16",
                                       "attention=0,0", *CLASS])
    assert main(["--run", str(run), "--out", str(tmp_path / "model"), "--steps", "3"]) == 0
    assert "latent (VAE" in capsys.readouterr().out
    m = tf.saved_model.load(str(tmp_path / "model"))
    out = m.signatures["serving_default"](num_samples=tf.constant(2), seed=tf.constant(5),
                                          label=tf.constant([3, 7]))
    family, images = python_images(run, 3, 5, [3, 7])                 # to_images: VAE decoder
    assert out["images"].shape == (2, 32, 32) and out["audio"].shape == (2, 32 * 256 - 1)
    assert np.mean(out["images"].numpy() != images) < 0.002
    eps = m.signatures["denoise"](x_t=tf.zeros([1, 8, 16, 4]), t=tf.constant([3.0]),
                                  label=tf.constant([1]), guidance=tf.constant(2.0))
    assert eps["epsilon"].shape == (1, 8, 16, 4)                        # the latent's shape


def test_pretrained_digits_exports_and_says_the_digit(tmp_path, capsys):
    """`export.py --run pretrained/digits` (DDIM 50, guidance 2 by default): the SavedModel's
    clips for labels 3 and 7 are recognised by the digit classifier (~1 min of CPU)."""
    import tensorflow as tf

    from evaluation.digits.classifier import DigitClassifier
    from export import main
    assert main(["--run", str(ROOT / "pretrained" / "digits"), "--out", str(tmp_path / "m")]) == 0
    assert "ddim, 50 steps, labels 0..9, guidance 2 by default" in capsys.readouterr().out
    m = tf.saved_model.load(str(tmp_path / "m"))
    assert float(m.guidance.numpy()) == 2.0 and int(m.sample_rate.numpy()) == 16000
    out = m.signatures["serving_default"](num_samples=tf.constant(2), seed=tf.constant(0),
                                          label=tf.constant([3, 7]))
    audio = out["audio"].numpy()
    assert audio.shape == (2, 64 * 256 - 1) and np.isfinite(audio).all()
    assert out["images"].shape == (2, 64, 64)
    classifier = DigitClassifier.load(str(ROOT / "pretrained" / "digit-classifier"))
    assert list(classifier.predict(audio)) == [3, 7]
    # Served as app.py and the Pipeline serve it: its kind, a label per call, the check's words.
    from diffusion.serving import load_saved_model
    served = load_saved_model(tmp_path / "m")
    assert served.kind == "mel-unet" and served.sample_rate == 16000
    from diffusion.requests import make_request
    audio, images = served.run(make_request(served.accepts(), num=1, seed=0, label=3))
    assert audio.shape == (1, 64 * 256 - 1) and images.shape == (1, 64, 64)
    with pytest.raises(ValueError, match=r"^label: must be < 10 \(\S+'s check\)$"):
        served.run(make_request(served.accepts(), num=1, seed=0, label=12))
