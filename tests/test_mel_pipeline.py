"""MelPipeline directory: save(dir)/load(dir) round trip gives identical outputs."""
import json

import numpy as np
import pytest

from diffusion.families.mel.pipeline import MelPipeline, main
from tests.test_mel_generation import make_untrained_run


def test_save_load_round_trip_gives_identical_outputs(tmp_path, capsys):
    run = tmp_path / "run"
    make_untrained_run(run)
    assert main(["--run", str(run), "--out", str(tmp_path / "pipe")]) == 0
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["unet"] == ["network.unet2d", "UNet2D"] and index["vae"] is None
    assert (tmp_path / "pipe" / "mel_config.json").is_file()
    assert json.loads((tmp_path / "pipe" / "scheduler" / "scheduler_config.json").read_text()
                      )["num_train_timesteps"] == 1000
    original = MelPipeline.from_run(run)
    loaded = MelPipeline.load(tmp_path / "pipe")
    assert loaded.mel.get_config() == original.mel.get_config()
    a_images, a_audio = original(num=2, seed=4, steps=3)
    b_images, b_audio = loaded(num=2, seed=4, steps=3)
    assert a_images.shape == (2, 32, 32) and a_audio.shape == (2, 32 * 256 - 1)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_allclose(a_audio, b_audio, atol=1e-6)
    assert main(["--run", str(run), "--out", str(tmp_path / "pipe")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(ValueError, match="model_index.json: cannot read"):
        MelPipeline.load(tmp_path / "nowhere")
