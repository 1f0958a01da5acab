"""diffusers against the mel-UNet family: UNet2DModel saved with save_pretrained (safetensors) and
converted by `diffusion.families.convert diffusers` (1e-4), DDPMScheduler.step / DDIMScheduler.step
(η = 0 and 1) from the same inputs and noise (1e-5), add_noise (equal up to float32 rounding).
"""
import json

import numpy as np
import pytest
import tensorflow as tf
import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from diffusers.schedulers import scheduling_ddpm
from parity_util import report

from diffusion.core.schedule import NoiseSchedule
from diffusion.core.schedulers import AncestralScheduler, build_scheduler
from diffusion.core.schedulers import DDIMScheduler as OurDDIM
from diffusion.families.convert import ConvertError, convert_diffusers, main
from diffusion.families.registry import load_run

TETICIO_256 = dict(
    sample_size=256, in_channels=1, out_channels=1, layers_per_block=2,
    block_out_channels=(128, 128, 256, 256, 512, 512),
    down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4)
SMALL = dict(
    sample_size=32, in_channels=1, out_channels=1, layers_per_block=1,
    block_out_channels=(16, 32, 32), norm_num_groups=8,
    down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"))


def random_unet(config, seed):
    torch.manual_seed(seed)
    unet = UNet2DModel(**config).eval()
    with torch.no_grad():      # norms start at γ = 1, β = 0: give them values to map too
        for name, p in unet.named_parameters():
            if "norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
    return unet


def compare_unet(tmp_path, config, size, what, seed):
    unet = random_unet(config, seed)
    unet.save_pretrained(tmp_path / "unet", safe_serialization=True)
    params, ours = convert_diffusers(str(tmp_path / "unet"))
    x = np.random.default_rng(seed).standard_normal((2, 1, size, size)).astype(np.float32)
    steps = np.array([999, 17], np.int64)
    with torch.no_grad():
        theirs = unet(torch.from_numpy(x), torch.from_numpy(steps)).sample.numpy()
    eps = ours({"image": tf.constant(x.transpose(0, 2, 3, 1)),
                "step": tf.constant(steps, tf.float32)}).numpy().transpose(0, 3, 1, 2)
    report(f"diffusers UNet2DModel {what} on {size}×{size}, t = {list(steps)}",
           float(np.max(np.abs(eps - theirs)) / np.max(np.abs(theirs))), 1e-4, "relative")
    return params


def test_unet_teticio_256_config(tmp_path):
    # teticio's audio-diffusion-256 channels and attention; a 64×64 input keeps the test fast
    # (the network is convolutional: every weight is the 256 model's).
    params = compare_unet(tmp_path, TETICIO_256, 64, "teticio-256 config", 0)
    assert list(params.network.block_channels) == [128, 128, 256, 256, 512, 512]
    assert list(params.network.attention) == [0, 0, 0, 0, 1, 0]


def test_unet_small_config(tmp_path):
    compare_unet(tmp_path, SMALL, 32, "small config (16, 32, 32)", 1)


def test_pipeline_layout_and_bad_directories(tmp_path, capsys):
    """teticio's pipeline directory: unet/ + mel/mel_config.json + scheduler/ → a run whose
    Mel and schedule are the pipeline's; a partial or mis-shaped one is a one-line error."""
    unet = random_unet(SMALL, 2)
    pipe = tmp_path / "pipe"
    unet.save_pretrained(pipe / "unet", safe_serialization=True)
    (pipe / "mel").mkdir()
    (pipe / "mel" / "mel_config.json").write_text(json.dumps(
        {"x_res": 32, "y_res": 32, "sample_rate": 22050, "n_fft": 1024, "hop_length": 256,
         "top_db": 80, "n_iter": 16}))
    DDPMScheduler(num_train_timesteps=1000).save_pretrained(pipe / "scheduler")
    assert main(["diffusers", str(pipe), "--run", str(tmp_path / "run")]) == 0
    params, _, _ = load_run(str(tmp_path / "run"))
    assert (params.network.x_res, params.network.n_fft, params.network.n_iter) == (32, 1024, 16)
    assert params.data.crop_samples == 32 * 256 - 1 and params.diffusion.num_steps == 1000
    import generate  # the converted run samples like any other
    assert generate.main(["--run", str(tmp_path / "run"), "--steps", "2", "--num", "1",
                          "--out", str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out").glob("*.wav"))) == 1

    from safetensors.numpy import load_file, save_file
    weights = pipe / "unet" / "diffusion_pytorch_model.safetensors"
    state = load_file(weights)
    del state["mid_block.attentions.0.to_k.bias"]
    save_file(state, weights)
    with pytest.raises(ConvertError, match="missing tensor 'mid_block.attentions.0.to_k.bias'"):
        convert_diffusers(str(pipe))
    state = load_file(weights) | {"mid_block.attentions.0.to_k.bias": np.zeros(3, np.float32)}
    save_file(state, weights)
    assert main(["diffusers", str(pipe), "--run", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'mid_block.attentions.0.to_k.bias' has shape [3]" in err


# --- schedulers ----------------------------------------------------------------------------------

T = 1000


def _inputs(seed, shape=(2, 1, 8, 8)):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]   # x, ε̂, z


def _nchw(a):
    return tf.constant(a)            # element-wise maths: the layout does not matter


def their_schedule(theirs):
    """Our NoiseSchedule holding diffusers' own β and ᾱ (a float32 cumprod): the step maths
    compared alone. Our runs compute ᾱ in float64 (test_alpha_bar_precision_differs)."""
    alpha_bars = theirs.alphas_cumprod.double().numpy()
    # β_t as diffusers' step uses it: 1 − ᾱ_t/ᾱ_{t−1} of its float32 ᾱ
    schedule = NoiseSchedule(1.0 - alpha_bars / np.concatenate([[1.0], alpha_bars[:-1]]))
    schedule.alpha_bars = alpha_bars
    schedule.tf_alpha_bars = tf.constant(schedule.alpha_bars, tf.float32)
    return schedule


def test_alpha_bar_precision_differs():
    """Deliberate: ᾱ is a float64 cumprod here (as lmnt's numpy), a float32 one in diffusers;
    over 1000 steps they part by ~4e-7 relative, which moves add_noise by ~4e-6."""
    theirs = DDPMScheduler(num_train_timesteps=T)
    ours = NoiseSchedule.linear(T, 1e-4, 0.02)
    rel = float(np.max(np.abs(ours.alpha_bars / theirs.alphas_cumprod.double().numpy() - 1)))
    x, _, z = _inputs(8, (4, 1, 8, 8))
    t = np.array([0, 1, 500, 999])
    want = theirs.add_noise(torch.from_numpy(x), torch.from_numpy(z), torch.from_numpy(t))
    moved = float(np.max(np.abs(ours.q_sample(_nchw(x), tf.constant(t), _nchw(z)).numpy() -
                                want.numpy())))
    print(f"\nPARITY ᾱ float64 (ours) vs float32 cumprod (diffusers), deliberate: max relative "
          f"difference {rel:.3g}; add_noise with our own ᾱ moves by {moved:.3g}")
    assert 0 < rel < 1e-4 and moved < 1e-4


def test_ddpm_step(monkeypatch):
    theirs = DDPMScheduler(num_train_timesteps=T)          # linear 1e-4..0.02, clip_sample
    theirs.set_timesteps(T)
    schedule = their_schedule(theirs)
    ours = AncestralScheduler(schedule, clip="x0")          # what mel-unet runs use for ddpm
    # diffusers' step derives β_t = 1 − ᾱ_t/ᾱ_{t−1} and its coefficients in float32, which
    # near t = 0 is off by ~3e-4 relative: compared once as it runs (float32), and once with
    # its ᾱ table and inputs in float64 (its formula exactly; our constants are float64-made).
    theirs64 = DDPMScheduler(num_train_timesteps=T)
    theirs64.set_timesteps(T)
    theirs64.alphas_cumprod = theirs.alphas_cumprod.double()
    worst, worst32 = 0.0, 0.0
    for t in (999, 500, 37, 1, 0):
        x, eps, z = _inputs(t)
        monkeypatch.setattr(scheduling_ddpm, "randn_tensor",
                            lambda shape, dtype=None, **k: torch.from_numpy(z).to(dtype))
        want32 = theirs.step(torch.from_numpy(eps), t, torch.from_numpy(x)).prev_sample.numpy()
        want = theirs64.step(torch.from_numpy(eps).double(), t,
                             torch.from_numpy(x).double()).prev_sample.numpy()
        got = ours.step(_nchw(eps), tf.constant(t), _nchw(x), _nchw(z)).numpy()
        worst = max(worst, float(np.max(np.abs(got - want))))
        worst32 = max(worst32, float(np.max(np.abs(got - want32))))
    report("diffusers DDPMScheduler.step (its formula in float64) vs AncestralScheduler"
           "(clip='x0'), t ∈ {999, 500, 37, 1, 0}", worst, 1e-5)
    report("diffusers DDPMScheduler.step as it runs (float32 coefficients) vs ours", worst32, 1e-4)

    # DiffWave's form (clip='x', the lmnt reference) clamps x_t instead of x̂₀: equal while
    # x̂₀ stays in [−1, 1], different (on purpose, for DiffWave) once it leaves it.
    diffwave_form = AncestralScheduler(schedule)
    x, eps, z = _inputs(5)
    x, eps = x * 0.1, eps * 0.05
    monkeypatch.setattr(scheduling_ddpm, "randn_tensor", lambda *a, **k: torch.from_numpy(z))
    want = theirs.step(torch.from_numpy(eps), 10, torch.from_numpy(x)).prev_sample.numpy()
    got = diffwave_form.step(_nchw(eps), tf.constant(10), _nchw(x), _nchw(z)).numpy()
    report("diffusers DDPMScheduler.step vs DiffWave's ancestral form, x̂₀ inside [−1, 1]",
           float(np.max(np.abs(got - want))), 1e-5)
    x, eps, z = _inputs(6)
    want = theirs.step(torch.from_numpy(eps), 999, torch.from_numpy(x)).prev_sample.numpy()
    got = diffwave_form.step(_nchw(eps), tf.constant(999), _nchw(x), _nchw(z)).numpy()
    assert np.max(np.abs(got - want)) > 0.1 and np.abs(got).max() <= 1.0 < np.abs(want).max()


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_step(eta):
    theirs = DDIMScheduler(num_train_timesteps=T)          # clip_sample, set_alpha_to_one
    theirs.set_timesteps(50)
    tau = np.sort(theirs.timesteps.numpy())                # "leading": 0, 20, …, 980
    ours = OurDDIM(their_schedule(theirs), eta=eta)
    ours.set_timesteps(timesteps=tau)
    worst = 0.0
    for n in (49, 30, 1, 0):
        x, eps, z = _inputs(100 + n)
        want = theirs.step(torch.from_numpy(eps), int(tau[n]), torch.from_numpy(x), eta=eta,
                           variance_noise=torch.from_numpy(z)).prev_sample.numpy()
        got = ours.step(_nchw(eps), tf.constant(n), _nchw(x), _nchw(z)).numpy()
        worst = max(worst, float(np.max(np.abs(got - want))))
    report(f"diffusers DDIMScheduler.step η={eta:g}, t ∈ {{980, 600, 20, 0}}", worst, 1e-5)


def test_ddim_default_timesteps_differ_on_purpose():
    """Ours spreads S steps over 0..T−1 (round(linspace), reaching t = T−1); diffusers'
    default "leading" spacing is arange(S)·T//S (0 … 980 for 50 of 1000). Same steps given the
    same τ (test_ddim_step); a run's scheduler uses ours."""
    theirs = DDIMScheduler(num_train_timesteps=T)
    theirs.set_timesteps(50)
    from configs import get_preset
    ours = build_scheduler(get_preset("base", "mel-unet"), "ddim", steps=50)
    ours_tau = ours.model_steps.numpy()[::-1]
    print(f"\nPARITY DDIM timesteps (deliberate difference): ours {ours_tau[:2]}…"
          f"{ours_tau[-1]:.0f}, diffusers {theirs.timesteps.numpy()[:2]}…")
    assert ours_tau[0] == 999 and int(theirs.timesteps[0]) == 980


def test_add_noise():
    theirs = DDPMScheduler(num_train_timesteps=T)
    schedule = their_schedule(theirs)
    x, _, z = _inputs(7, (4, 1, 8, 8))
    t = np.array([0, 1, 500, 999])
    want = theirs.add_noise(torch.from_numpy(x), torch.from_numpy(z),
                            torch.from_numpy(t)).numpy()
    got = schedule.q_sample(_nchw(x), tf.constant(t), _nchw(z)).numpy()
    ddim = OurDDIM(schedule)                      # the schedulers' add_noise, index n = τ_n
    ddim.set_timesteps(timesteps=np.arange(T))
    got_n = np.stack([ddim.add_noise(_nchw(x[i]), _nchw(z[i]), int(t[i])).numpy()
                      for i in range(4)])
    error = max(float(np.max(np.abs(got - want))), float(np.max(np.abs(got_n - want))))
    report("diffusers add_noise vs q_sample / Scheduler.add_noise (same ᾱ)", error, 1e-6)
