"""params.py: presets, JSON round trip, --set overrides, errors naming the key."""
import json

import pytest

from configs import get_preset
from params import Params, ParamsError, apply_overrides


def test_presets_match_the_papers():
    base = get_preset("base")
    assert (base.network.residual_layers, base.network.residual_channels,
            base.network.dilation_cycle) == (30, 64, 10)
    assert (base.diffusion.num_steps, base.diffusion.beta_start, base.diffusion.beta_end) == \
        (50, 1e-4, 0.05)
    assert base.diffusion.inference_betas == (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5)
    sc09 = get_preset("sc09")
    assert (sc09.network.residual_layers, sc09.network.residual_channels,
            sc09.network.dilation_cycle, sc09.diffusion.num_steps, sc09.diffusion.beta_end) == \
        (36, 256, 12, 200, 0.02)
    tiny = get_preset("tiny")
    assert tiny.network.residual_layers < 10 and tiny.data.crop_samples < 16000


@pytest.mark.parametrize("name", ["tiny", "base", "large", "sc09"])
def test_json_round_trip(tmp_path, name):
    params = get_preset(name)
    params.save(tmp_path / "run" / "params.json")
    again = Params.load(tmp_path / "run" / "params.json")
    assert again == params and again.to_dict() == params.to_dict()
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_overrides_dotted_and_bare_keys():
    params = apply_overrides(get_preset("tiny"), [
        "network.residual_channels=32", "batch_size=8", "inference_betas=0.001,0.1,0.5",
        "mixed_precision=true", "learning_rate=3e-4", "crop=fixed"])
    assert params.network.residual_channels == 32 and params.data.batch_size == 8
    assert params.diffusion.inference_betas == (0.001, 0.1, 0.5)
    assert params.train.mixed_precision is True and params.train.learning_rate == 3e-4
    assert params.data.crop == "fixed"
    assert get_preset("tiny").network.residual_channels == 16      # the preset is untouched


@pytest.mark.parametrize("override,message", [
    ("foo=1", "unknown key 'foo'"),
    ("data.nope=1", "unknown key 'data.nope'"),
    ("model.x=1", "unknown key 'model.x'"),
    ("residual_layers=0", "network.residual_layers must be > 0"),
    ("batch_size=abc", "data.batch_size: expected int"),
    ("batch_size=2.5", "data.batch_size: expected int"),
    ("crop=middle", "data.crop must be one of"),
    ("mixed_precision=maybe", "train.mixed_precision: expected bool"),
    ("beta_end=0.00001", "beta_start <= beta_end"),
    ("ema_decay=1.5", "train.ema_decay"),
    ("learning_rate=-1", "train.learning_rate must be > 0"),
    ("noequals", "expects key=value"),
    ("num_steps=20", "inference_betas .* add more noise than the training schedule"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ParamsError, match=message):
        apply_overrides(get_preset("tiny"), [override])


def test_bad_params_files(tmp_path):
    path = tmp_path / "params.json"
    path.write_text("{not json")
    with pytest.raises(ParamsError, match="not valid JSON"):
        Params.load(path)
    raw = get_preset("tiny").to_dict()
    raw["network"]["residual_chanels"] = 3
    path.write_text(json.dumps(raw))
    with pytest.raises(ParamsError, match="unknown key 'network.residual_chanels'"):
        Params.load(path)
    raw = get_preset("tiny").to_dict()
    raw["model"] = "wavenet"
    path.write_text(json.dumps(raw))
    with pytest.raises(ParamsError, match="model must be one of"):
        Params.load(path)
    with pytest.raises(ParamsError, match="no such params file"):
        Params.load(tmp_path / "missing.json")
    with pytest.raises(ParamsError, match="unknown preset"):
        get_preset("huge")


@pytest.mark.parametrize("name", ["tiny", "small", "base"])
def test_mel_vae_presets_share_the_mel_unet_mel(name, tmp_path):
    vae, unet = get_preset(name, "mel-vae"), get_preset(name, "mel-unet")
    mel = ("x_res", "y_res", "n_fft", "hop_length", "top_db", "n_iter")
    assert [getattr(vae.network, k) for k in mel] == [getattr(unet.network, k) for k in mel]
    assert vae.data == unet.data                      # same slices, same sample rate
    vae.save(tmp_path / "params.json")
    assert Params.load(tmp_path / "params.json") == vae


@pytest.mark.parametrize("override, message", [
    ("network.channels=8,15", "network.channels [8, 15] must be positive multiples of "
                              "norm_groups=4"),
    ("kl_weight=-1", "network.kl_weight must be >= 0, got -1.0"),
    ("latent_channels=0", "network.latent_channels must be > 0, got 0"),
    ("channels=8", "key 'channels' is ambiguous: use one of data.channels, network.channels"),
])
def test_bad_mel_vae_overrides_name_the_key(override, message):
    with pytest.raises(ParamsError) as e:
        apply_overrides(get_preset("tiny", "mel-vae"), [override])
    assert str(e.value) == message
