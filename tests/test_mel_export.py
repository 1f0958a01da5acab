"""The mel-UNet SavedModel (export.py on a mel-unet run): a fresh process loads it with
tf.saved_model.load and gets the Python sampler's images and Griffin-Lim audio."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

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
    from diffusion.core.schedulers import build_scheduler
    from diffusion.families.registry import load_run
    from diffusion.core.sampling import sample
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
