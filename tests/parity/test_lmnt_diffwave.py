"""lmnt-com/diffwave 0.1.7 against our DiffWave: a checkpoint saved by torch, converted by
`diffusion.families.convert lmnt`, gives the same ε̂ (1e-4 relative) and the same fast-6 sampling run from
the same noise as lmnt's own `inference.predict` (1e-3).

diffwave 0.1.7 (PyPI's last) has only the mel vocoder; lmnt's unconditional model (v0.1.8) is the
same network without the upsampler and the conditioner projections. Its oracle here is the 0.1.7
model with the conditioner projections zeroed (their contribution is then exactly 0), and its
checkpoint is written as v0.1.8 writes one: those tensors absent, params `unconditional=True`.
"""
import numpy as np
import pytest
import tensorflow as tf
import torch
from diffwave import inference as lmnt_inference
from diffwave.model import DiffWave as LmntDiffWave
from diffwave.params import AttrDict
from diffwave.params import params as lmnt_base
from parity_util import report

from diffusion.core.sampling import initial_noise, sample, step_noise
from diffusion.core.schedulers import build_scheduler
from diffusion.families.convert import ConvertError, convert_lmnt, main
from diffusion.families.registry import load_run

FRAMES = 8                                   # mel frames: 8 × 256 = 2048 samples
STEPS = [0, 7, 49, 0.8941, 22.9925, 42.9186]  # integer rows and fast-6's fractional steps


def lmnt_model(seed, **overrides):
    torch.manual_seed(seed)
    params = AttrDict(lmnt_base).override(overrides)
    model = LmntDiffWave(params).eval()
    with torch.no_grad():   # lmnt zero-initialises the output: give it weights, or ε̂ ≡ bias
        model.output_projection.weight.normal_(0.0, 0.3)
        for layer in model.residual_layers:
            layer.dilated_conv.bias.normal_(0.0, 0.1)
    return model, params


def save_lmnt(model, params, path, unconditional=False):
    state = dict(model.state_dict())
    raw = dict(params)
    raw["noise_schedule"] = list(map(float, raw["noise_schedule"]))
    if unconditional:            # v0.1.8's unconditional checkpoint
        state = {k: v for k, v in state.items()
                 if not k.startswith("spectrogram_upsampler.") and "conditioner_projection" not in k}
        raw["unconditional"] = True
    torch.save({"step": 0, "model": state, "params": raw}, path)


def relative(ours, theirs):
    return float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))


def compare_eps(model, ours, mel, what):
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((2, FRAMES * 256)).astype(np.float32) * 0.5
    spectrogram = torch.from_numpy(mel.transpose(0, 2, 1).copy()) if mel is not None else \
        torch.zeros(2, 80, FRAMES)
    worst = {}
    for t in STEPS:
        # one t for the batch: lmnt interpolates fractional steps only for a [1] step tensor
        step = torch.tensor([t], dtype=torch.int64 if isinstance(t, int) else torch.float32)
        with torch.no_grad():
            theirs = model(torch.from_numpy(audio), spectrogram, step)[:, 0].numpy()
        inputs = {"audio": tf.constant(audio[..., None]), "step": tf.fill([2], float(t))}
        if mel is not None:
            inputs["mel"] = tf.constant(mel)
        for training in (None, False):            # the training and the sampling path
            eps = ours(inputs, training=training).numpy()[..., 0]
            key = "sampling path" if training is False else "training path"
            worst[key] = max(worst.get(key, 0.0), relative(eps, theirs))
    for key, error in worst.items():
        report(f"lmnt DiffWave {what} ε̂, t ∈ {STEPS}, {key}", error, 1e-4, "relative")


IMPLS = ["reference", "fused"]                    # both read the same converted variables


@pytest.mark.parametrize("impl", IMPLS)
def test_mel_vocoder_eps(tmp_path, impl):
    model, params = lmnt_model(0)
    save_lmnt(model, params, tmp_path / "weights.pt")
    ours_params, ours = convert_lmnt(str(tmp_path / "weights.pt"), [f"network.impl={impl}"])
    assert ours_params.network.conditioning == "mel" and ours.impl == impl
    assert sum(int(np.prod(v.shape)) for v in ours.trainable_variables) == \
        sum(p.numel() for p in model.parameters())
    mel = np.random.default_rng(2).standard_normal((2, FRAMES, 80)).astype(np.float32)
    compare_eps(model, ours, mel, f"mel vocoder (BASE, {impl})")


@pytest.mark.parametrize("impl", IMPLS)
def test_unconditional_eps(tmp_path, impl):
    model, params = lmnt_model(3, residual_layers=12, residual_channels=32)
    with torch.no_grad():
        for layer in model.residual_layers:
            layer.conditioner_projection.weight.zero_()
            layer.conditioner_projection.bias.zero_()
    save_lmnt(model, params, tmp_path / "uncond.pt", unconditional=True)
    ours_params, ours = convert_lmnt(str(tmp_path / "uncond.pt"), [f"network.impl={impl}"])
    assert ours_params.network.conditioning == "none" and ours.impl == impl
    compare_eps(model, ours, None, f"unconditional (12 × 32, {impl})")


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory):
    """A random-weight lmnt BASE vocoder saved by torch, converted by the CLI, and lmnt's own
    inference.predict (fast) output, its torch.randn / randn_like fed our x_T and per-step z."""
    tmp = tmp_path_factory.mktemp("vocoder")
    model, params = lmnt_model(4)
    (tmp / "lmnt").mkdir()
    save_lmnt(model, params, tmp / "lmnt" / "weights.pt")
    run = tmp / "run"
    assert main(["lmnt", str(tmp / "lmnt" / "weights.pt"), "--run", str(run)]) == 0
    mel = np.random.default_rng(5).standard_normal((FRAMES, 80)).astype(np.float32)
    shape, seed = [1, FRAMES * 256, 1], 7
    draws = [initial_noise(shape, seed)] + [step_noise(shape, seed, tf.constant(n))
                                            for n in range(len(lmnt_base.inference_noise_schedule)
                                                           - 1, 0, -1)]
    draws = [torch.from_numpy(d.numpy()[..., 0]) for d in draws]
    saved = lmnt_inference.torch.randn, lmnt_inference.torch.randn_like
    lmnt_inference.torch.randn = lmnt_inference.torch.randn_like = lambda *a, **k: draws.pop(0)
    try:
        audio, _ = lmnt_inference.predict(torch.from_numpy(mel.T.copy()),
                                          model_dir=str(tmp / "lmnt"),
                                          device=torch.device("cpu"), fast_sampling=True)
    finally:
        lmnt_inference.torch.randn, lmnt_inference.torch.randn_like = saved
    assert not draws
    return {"run": run, "mel": mel, "seed": seed, "theirs": audio.numpy()[0], "tmp": tmp}


def test_fast_sampling_matches_predict(vocoder):
    """lmnt's inference.predict (fast_sampling) vs our sampler on the converted run."""
    params, family, ours = load_run(str(vocoder["run"]))
    scheduler = build_scheduler(params, "fast")
    x = sample(family.denoiser(ours, {"mel": tf.constant(vocoder["mel"][None])}), scheduler,
               [1, FRAMES * 256, 1], vocoder["seed"])
    report("lmnt inference.predict fast-6 vs our sampler (BASE vocoder)",
           float(np.max(np.abs(x.numpy()[0, :, 0] - vocoder["theirs"]))), 1e-3)


def test_converted_vocoder_generates_and_exports(vocoder):
    """The converted run through generate.py --mel (a WAV, 16-bit) and through export.py's
    SavedModel (its `generate` signature) gives lmnt's audio for the same seed."""
    import soundfile

    import export
    import generate
    tmp = vocoder["tmp"]
    np.save(tmp / "mel.npy", vocoder["mel"])
    assert generate.main(["--run", str(vocoder["run"]), "--mel", str(tmp / "mel.npy"),
                          "--seed", str(vocoder["seed"]), "--out", str(tmp / "wav")]) == 0
    wav, rate = soundfile.read(sorted((tmp / "wav").glob("*.wav"))[0], dtype="float32")
    assert rate == 22050 and wav.shape == vocoder["theirs"].shape
    report("lmnt predict vs generate.py --mel on the converted run (16-bit WAV)",
           float(np.max(np.abs(wav - vocoder["theirs"]))), 1e-3)

    assert export.main(["--run", str(vocoder["run"]), "--out", str(tmp / "saved")]) == 0
    loaded = tf.saved_model.load(str(tmp / "saved"))
    audio = loaded.signatures["generate"](mel=tf.constant(vocoder["mel"][None]),
                                          seed=tf.constant(vocoder["seed"]))["audio"].numpy()
    report("lmnt predict vs the exported SavedModel's generate(mel, seed)",
           float(np.max(np.abs(audio.reshape(-1) - vocoder["theirs"]))), 1e-3)


def test_bad_checkpoints(tmp_path, capsys):
    model, params = lmnt_model(6, residual_layers=4, residual_channels=8)
    state = dict(model.state_dict())
    del state["residual_layers.2.output_projection.weight"]
    torch.save({"model": state, "params": dict(params)}, tmp_path / "partial.pt")
    with pytest.raises(ConvertError, match="missing tensor 'residual_layers.2.output_projection"):
        convert_lmnt(str(tmp_path / "partial.pt"))
    state = dict(model.state_dict())
    state["skip_projection.weight"] = torch.zeros(8, 9, 1)
    torch.save({"model": state, "params": dict(params)}, tmp_path / "shape.pt")
    assert main(["lmnt", str(tmp_path / "shape.pt"), "--run", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'skip_projection.weight' has shape [8, 9, 1]" in err, err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["lmnt", str(tmp_path / "junk.pt"), "--run", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
