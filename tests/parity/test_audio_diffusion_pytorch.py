"""audio-diffusion-pytorch 0.1.3 (Moûsai) against the text-to-audio family's diffusion core:
VDiffusion's noised input and v target, VSampler's steps from the same noise, and the 1-D UNet
blocks that match a-unet's.

Why our UNet1D is not their UNetV0 with other weights (so no end-to-end comparison or
converter): their σ embedding is a learned random-Fourier NumberEmbedder (σ and sin/cos(2πσw),
w ~ N(0, 1) trained) → Linear → GELU MLPs, ours a fixed sinusoid of 1000σ → Dense SiLU → Dense;
they modulate with separate LayerNorm scale/shift items between blocks (and merge skips by
MergeAdd/MergeModulate), we scale/shift inside each ResNet block and concatenate skips; their
down-sampling conv has kernel factor·width (1 by default), ours 2·factor + 1, 'same'. What does
match is compared here: the plain ResNet block (GroupNorm → SiLU → conv, twice, + 1×1 skip) and
the nearest ×f + conv 3 up-sampling.
"""
import numpy as np
import pytest
import tensorflow as tf
import torch
from a_unet import ResnetBlock as TheirResnet
from a_unet import T, UpsampleInterpolate
from audio_diffusion_pytorch import VDiffusion, VSampler
from audio_diffusion_pytorch import diffusion as adp
from parity_util import report

from diffusion.core.objectives import v_loss
from diffusion.core.sampling import sample
from diffusion.core.schedulers import VScheduler
from network.unet1d import Level, ResnetBlock

SHAPE = (3, 2, 512)                     # [B, C, T] theirs; ours [B, T, C]


def _tf(a):
    return tf.constant(np.transpose(a, (0, 2, 1)))


def _np(a):
    return np.transpose(np.asarray(a), (0, 2, 1))


def test_v_objective(monkeypatch):
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, SHAPE).astype(np.float32)
    noise = rng.standard_normal(SHAPE).astype(np.float32)
    sigma = np.array([0.0, 0.37, 1.0], np.float32)
    v_pred = rng.standard_normal(SHAPE).astype(np.float32)
    seen = {}

    def net(x_noisy, sigmas):
        seen["x"], seen["sigma"] = x_noisy.numpy(), sigmas.numpy()
        return torch.from_numpy(v_pred)

    def mse(pred, target):
        seen["v"] = target.numpy()
        return ((pred - target) ** 2).mean()

    monkeypatch.setattr(adp.torch, "randn_like", lambda x: torch.from_numpy(noise))
    monkeypatch.setattr(adp.F, "mse_loss", mse)
    diffusion = VDiffusion(net, sigma_distribution=lambda num_samples, device: torch.from_numpy(
        sigma))
    their_loss = float(diffusion(torch.from_numpy(x0)))
    monkeypatch.undo()

    ours = {}

    def denoise(x_sigma, s):
        ours["x"], ours["sigma"] = x_sigma.numpy(), s.numpy()
        return _tf(v_pred)

    our_loss = v_loss(denoise, _tf(x0), tf.constant(sigma), _tf(noise)).numpy()
    np.testing.assert_array_equal(ours["sigma"], seen["sigma"])
    report("audio-diffusion-pytorch VDiffusion noised input x_σ",
           float(np.max(np.abs(_np(ours["x"]) - seen["x"]))), 1e-6)
    report("audio-diffusion-pytorch VDiffusion loss (MSE on v)",
           abs(float(our_loss.mean()) - their_loss), 1e-5)
    # our v target: predicting their target exactly must cost nothing
    target = _tf(seen["v"])
    residual = v_loss(lambda x, s: target, _tf(x0), tf.constant(sigma), _tf(noise)).numpy()
    report("audio-diffusion-pytorch VDiffusion v target (RMS of ours − theirs)",
           float(np.sqrt(residual.max())), 1e-6)


def _velocity_torch(x, sigma):          # a fixed, nonlinear "network" both sides can run
    return torch.tanh(1.5 * x) * 0.8 - 0.3 * sigma[:, None, None] * x


def _velocity_tf(x, sigma):
    return tf.tanh(1.5 * x) * 0.8 - 0.3 * sigma[:, None, None] * x


@pytest.mark.parametrize("steps", [10, 50])
def test_v_sampler(steps):
    noise = np.random.default_rng(steps).standard_normal(SHAPE).astype(np.float32)
    theirs = VSampler(_velocity_torch)(torch.from_numpy(noise), num_steps=steps).numpy()
    ours = sample(_velocity_tf, VScheduler(steps, clip=False), [3, 512, 2], noise=_tf(noise))
    report(f"audio-diffusion-pytorch VSampler, {steps} steps from the same noise (clip off)",
           float(np.max(np.abs(_np(ours) - theirs))), 1e-5)
    # Deliberate: by default ours clamps x̂₀ to [−1, 1] at every step (audio and tanh latents
    # live there); theirs does not. With a velocity that pushes x̂₀ out, the two part.
    loud = lambda x, s: _velocity_tf(x, s) * 3.0                          # noqa: E731
    clipped = sample(loud, VScheduler(steps), [3, 512, 2], noise=_tf(noise))
    free = VSampler(lambda x, s: _velocity_torch(x, s) * 3.0)(torch.from_numpy(noise),
                                                              num_steps=steps).numpy()
    assert np.abs(_np(clipped)).max() <= 1.0 + 1e-6 < np.abs(free).max()


def test_resnet_block():
    torch.manual_seed(0)
    theirs = TheirResnet(dim=1, in_channels=16, out_channels=32,
                         norm_t=T(torch.nn.GroupNorm)(num_groups=8)).eval()
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            if p.ndim == 1:                    # norms' γ, β and biases: not their defaults
                p.copy_(torch.randn_like(p) * 0.3 + (1.0 if "0.weight" in name else 0.0))
    ours = ResnetBlock(32)
    x = np.random.default_rng(1).standard_normal((2, 16, 64)).astype(np.float32)
    ours(_tf(x))                                                        # build
    conv_block, skip = theirs.blocks          # a-unet's Module: [conv blocks, 1×1 skip]
    first, second = conv_block.blocks
    for (norm, _, conv), (our_norm, our_conv) in ((first, (ours.norm1, ours.conv1)),
                                                  (second, (ours.norm2, ours.conv2))):
        our_norm.gamma.assign(norm.weight.detach().numpy())
        our_norm.beta.assign(norm.bias.detach().numpy())
        our_conv.kernel.assign(np.transpose(conv.weight.detach().numpy(), (2, 1, 0)))
        our_conv.bias.assign(conv.bias.detach().numpy())
    ours.skip.kernel.assign(np.transpose(skip.weight.detach().numpy(), (2, 1, 0)))
    ours.skip.bias.assign(skip.bias.detach().numpy())
    with torch.no_grad():
        want = theirs(torch.from_numpy(x)).numpy()
    got = _np(ours(_tf(x)))
    report("a-unet ResnetBlock (GroupNorm 8, 16 → 32) vs our UNet1D ResnetBlock without σ",
           float(np.max(np.abs(got - want)) / np.max(np.abs(want))), 1e-5, "relative")


def test_upsample():
    torch.manual_seed(1)
    theirs = UpsampleInterpolate(dim=1, factor=4, in_channels=16, out_channels=8).eval()
    ours = Level(16, 0, 0, 0, 1, 8, up_factor=4, out_channels=8)
    x = np.random.default_rng(2).standard_normal((2, 16, 32)).astype(np.float32)
    ours(_tf(x), None)
    conv = theirs[1]
    ours.up.kernel.assign(np.transpose(conv.weight.detach().numpy(), (2, 1, 0)))
    ours.up.bias.assign(conv.bias.detach().numpy())
    with torch.no_grad():
        want = theirs(torch.from_numpy(x)).numpy()
    got = _np(ours(_tf(x), None))
    report("a-unet UpsampleInterpolate (nearest ×4 + conv 3) vs our UNet1D up-sampling",
           float(np.max(np.abs(got - want)) / np.max(np.abs(want))), 1e-5, "relative")
