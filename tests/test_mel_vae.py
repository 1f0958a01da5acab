"""Latent mode: the KL autoencoder's shapes, `train.py --model mel-vae` lowers its loss on
chorales and resumes, and a mel-unet run on its scaled latents trains and generates images +
audio; network.vae_run must name a mel-vae run with the same Mel."""
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import linked_audio_dir

ROOT = Path(__file__).resolve().parent.parent
CHORALES = sorted((ROOT / "dataset" / "chorales").glob("*.flac"))[:3]


def test_vae_shapes_and_loss():
    from network.vae import KLAutoencoder, vae_loss
    vae = KLAutoencoder((8, 16, 16), latent_channels=3, norm_groups=4)
    x = tf.random.uniform([2, 32, 64, 1], -1, 1)
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (2, 8, 16, 3) and vae.downsampling == 4
    recon, _, _ = vae(x, noise=tf.random.normal(mean.shape))
    assert recon.shape == x.shape
    loss, rec, kl = vae_loss(x, recon, mean, logvar, kl_weight=0.5)
    np.testing.assert_allclose(float(loss), float(rec) + 0.5 * float(kl), rtol=1e-5)
    zero_kl = vae_loss(x, x, tf.zeros([1, 2]), tf.zeros([1, 2]))[2]
    assert float(zero_kl) == 0.0                            # N(0, 1) posterior: KL 0


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("vae")
    linked_audio_dir(root, CHORALES)
    import contextlib
    import io

    import train
    out = io.StringIO()
    with contextlib.redirect_stdout(out):      # tiny: channels 8,16,16, 4 latents, lr 2e-3
        code = train.main(["--model", "mel-vae", "--data", str(root / "audio"), "--run",
                           str(root / "vae"), "--preset", "tiny", "--steps", "40"])
    assert code == 0
    return root, out.getvalue()


def test_train_vae_lowers_the_loss(vae_run):
    from params import Params
    curve = [float(x) for x in re.findall(r"l1 ([0-9.]+)", vae_run[1])]
    assert len(curve) == 8 and np.mean(curve[-2:]) < 0.7 * np.mean(curve[:2]), curve
    params = Params.load(vae_run[0] / "vae" / "params.json")
    assert params.model == "mel-vae" and params.network.channels == (8, 16, 16)


def test_vae_run_resumes_and_is_checked(vae_run, tmp_path, capsys):
    import train
    root = vae_run[0]
    resume = tmp_path / "vae"
    common = ["--model", "mel-vae", "--data", str(root / "audio"), "--run", str(resume)]
    assert train.main([*common, "--preset", "tiny", "--steps", "2"]) == 0
    assert train.main([*common, "--steps", "3"]) == 0
    assert "resumed at step 2" in capsys.readouterr().out
    assert train.main([*common, "--preset", "tiny", "--set", "kl_weight=-1"]) == 2
    assert capsys.readouterr().err == "error: network.kl_weight must be >= 0, got -1.0\n"
    mel_unet = ["--model", "mel-unet", "--data", str(root / "audio"), "--steps", "1"]
    for vae, preset, message in [(resume / "nope", "tiny", "no such params file"),
                                 (tmp_path / "latent-a", "tiny", "not a mel-vae run"),
                                 (resume, "small", "its Mel x_res is 32, this run's is 64")]:
        if vae.name == "latent-a":           # a mel-unet run is no VAE
            assert train.main([*mel_unet, "--run", str(vae), "--preset", "tiny"]) == 0
        run = tmp_path / f"bad-{preset}-{vae.name}"
        assert train.main([*mel_unet, "--run", str(run), "--preset", preset,
                           "--set", f"vae_run={vae}"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: network.vae_run: ") and message in err, err
        assert len(err.strip().splitlines()) == 1 and not run.exists()   # checked before


def test_latent_mel_unet_trains_and_generates(vae_run, tmp_path, capsys):
    import generate
    import train
    root = vae_run[0]
    run = tmp_path / "latent"
    assert train.main(["--model", "mel-unet", "--data", str(root / "audio"), "--run", str(run),
                       "--preset", "tiny", "--steps", "2", "--set", f"vae_run={root / 'vae'}",
                       "--set", "block_channels=16,16", "--set", "attention=0,0"]) == 0
    assert "done: step 2" in capsys.readouterr().out
    from diffusion.families.registry import load_run
    params, family, model = load_run(run)
    assert family.sample_shape(1, 0.3) == [1, 8, 8, 4]       # 32×32 image → 8×8×4 latent
    assert params.network.latent_scale == 0.18215
    assert generate.main(["--run", str(run), "--out", str(tmp_path / "o"), "--steps", "3",
                          "--seconds", "0.3"]) == 0
    png = next((tmp_path / "o").glob("*_image.png"))
    assert tf.io.decode_png(tf.io.read_file(str(png))).shape == (32, 32, 1)   # decoded image
    latents = family.split_batch({"audio": tf.zeros([1, 32 * 256 - 1, 1])})[0]
    assert latents.shape == (1, 8, 8, 4)


def test_latent_pipeline_directory_round_trip(vae_run, tmp_path):
    from diffusion.families.mel.pipeline import MelPipeline
    from tests.test_mel_generation import make_untrained_run
    root = vae_run[0]
    make_untrained_run(tmp_path / "run", overrides=[f"vae_run={root / 'vae'}",
                                                    "block_channels=16,16", "attention=0,0"])
    original = MelPipeline.from_run(tmp_path / "run")
    original.save(tmp_path / "pipe")
    loaded = MelPipeline.load(tmp_path / "pipe")
    assert loaded.vae is not None and loaded.latent_scale == 0.18215
    a, _ = original(num=1, seed=2, steps=2, griffin_lim=False)
    b, _ = loaded(num=1, seed=2, steps=2, griffin_lim=False)
    assert a.shape == (1, 32, 32)
    np.testing.assert_array_equal(a, b)
