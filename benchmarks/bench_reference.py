"""The PyTorch reference (lmnt-com/diffwave) on this CPU: DiffWave BASE unconditional.

    .venv-torch/bin/python benchmarks/bench_reference.py [--json] [--threads 2] [--steps 5]
                                                          [--only train,fast,ddpm]

Runs in the PyTorch venv (`make bench-venv`), installs nothing, imports nothing of ours. The
workloads are the ones benchmarks/bench_diffwave.py and bench_sampling.py give our network:

  train   one step = forward + backward + Adam(2e-4) update, batch 4 × 16000, fp32, L1 loss on
          ε (the reference learner's objective; its gradient clipping is left out, as ours has
          none); median of --steps timed steps after --warmup untimed ones
  fast    a 1 s clip (16000 samples) with the fast schedule [1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5]
          through lmnt's inference algorithm: fractional training steps
          T = [0, 0.8941, 4.0867, 10.4518, 22.9925, 42.9186], clamp to [-1, 1] after each step;
          best of --repeats after one warm-up call
  ddpm    the same clip with all 50 training steps; best of --ddpm-repeats after one warm-up

The network is lmnt's `diffwave.model.DiffWave` with `diffwave.params` overridden to BASE:
30 residual layers, 64 channels, dilation cycle 10, T = 50, β = linspace(1e-4, 0.05, 50),
unconditional. diffwave 0.1.7 (the last release on PyPI) always conditions on a mel
spectrogram; `unconditional=True` arrived later on GitHub (0.1.8). When the installed version
lacks it, its model is used with the conditioner removed and the 0.1.8 unconditional forward
pass (the same layers, weights, initialisation and operation order, minus the conditioner's
1×1 conv and add). Its `inference.predict` needs a checkpoint file and a spectrogram, so the
sampling loop is written here, step for step as in lmnt's inference.py.
"""
import argparse
import json
import platform
import resource
import statistics
import sys
import time
from math import sqrt

import numpy as np
import torch
import torch.nn.functional as F
from diffwave import model as lmnt_model
from diffwave.params import AttrDict
from diffwave.params import params as lmnt_params

BASE = dict(residual_layers=30, residual_channels=64, dilation_cycle_length=10,
            noise_schedule=np.linspace(1e-4, 0.05, 50).tolist(),
            inference_noise_schedule=[1e-4, 1e-3, 0.01, 0.05, 0.2, 0.5],
            unconditional=True, learning_rate=2e-4)
BASE_PARAMETERS = 2_308_737          # unconditional BASE, counted from the reference's layers
FAST_T = [0.0, 0.8941, 4.0867, 10.4518, 22.9925, 42.9186]


class Unconditional(torch.nn.Module):
    """lmnt's DiffWave without the mel conditioner, called as model(audio [B, L], step [B])."""

    def __init__(self, params):
        super().__init__()
        net = lmnt_model.DiffWave(params)
        self.native = getattr(net, "spectrogram_upsampler", None) is None   # 0.1.8 and later
        if not self.native:                  # 0.1.7: drop the conditioner's layers (and weights)
            net.spectrogram_upsampler = None
            for layer in net.residual_layers:
                layer.conditioner_projection = None
        self.net = net

    def forward(self, audio, diffusion_step):
        net = self.net
        if self.native:
            return net(audio, diffusion_step)
        # The reference's forward pass with conditioner=None, operation for operation.
        x = F.relu(net.input_projection(audio.unsqueeze(1)))
        emb = net.diffusion_embedding(diffusion_step)
        skips = []
        for layer in net.residual_layers:
            y = layer.dilated_conv(x + layer.diffusion_projection(emb).unsqueeze(-1))
            gate, filter_ = torch.chunk(y, 2, dim=1)
            y = layer.output_projection(torch.sigmoid(gate) * torch.tanh(filter_))
            residual, skip = torch.chunk(y, 2, dim=1)
            x = (x + residual) / sqrt(2.0)
            skips.append(skip)
        x = torch.sum(torch.stack(skips), dim=0) / sqrt(len(net.residual_layers))
        return net.output_projection(F.relu(net.skip_projection(x)))


def build(seed=0):
    torch.manual_seed(seed)
    params = AttrDict(lmnt_params).override(BASE)
    model = Unconditional(params)
    count = sum(p.numel() for p in model.parameters())
    if count != BASE_PARAMETERS:
        sys.exit(f"error: the reference network has {count:,} parameters, expected "
                 f"{BASE_PARAMETERS:,} (unconditional BASE); is diffwave==0.1.7 installed?")
    return params, model, count


def fractional_steps(training_schedule, inference_schedule):
    """lmnt's inference.py: each inference step s ↦ the fractional training step T[s]."""
    talpha_cum = np.cumprod(1 - np.asarray(training_schedule))
    alpha_cum = np.cumprod(1 - np.asarray(inference_schedule))
    steps = []
    for s in range(len(inference_schedule)):
        for t in range(len(training_schedule) - 1):
            if talpha_cum[t + 1] <= alpha_cum[s] <= talpha_cum[t]:
                steps.append(t + (talpha_cum[t] ** 0.5 - alpha_cum[s] ** 0.5)
                             / (talpha_cum[t] ** 0.5 - talpha_cum[t + 1] ** 0.5))
                break
    return np.array(steps, dtype=np.float32)


def sample(model, params, length, fast, seed=0):
    """One clip [1, length] as lmnt's predict() makes it (no_grad, clamp every step)."""
    inference = params.inference_noise_schedule if fast else params.noise_schedule
    T = fractional_steps(params.noise_schedule, inference)
    beta = np.asarray(inference)
    alpha = 1 - beta
    alpha_cum = np.cumprod(alpha)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        audio = torch.randn(1, length, generator=generator)
        for n in range(len(alpha) - 1, -1, -1):
            c1 = 1 / alpha[n] ** 0.5
            c2 = beta[n] / (1 - alpha_cum[n]) ** 0.5
            eps = model(audio, torch.tensor([T[n]])).squeeze(1)
            audio = c1 * (audio - c2 * eps)
            if n > 0:
                sigma = ((1.0 - alpha_cum[n - 1]) / (1.0 - alpha_cum[n]) * beta[n]) ** 0.5
                audio = audio + sigma * torch.randn(audio.shape, generator=generator)
            audio = torch.clamp(audio, -1.0, 1.0)
    return audio


def measure_train(model, params, batch, length, steps, warmup, seed=0):
    model.train()
    with torch.no_grad():          # a trained head, so the backward pass is a trained model's
        model.net.output_projection.weight.normal_(0.0, 0.1)
    opt = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    g = torch.Generator().manual_seed(seed)
    audio = torch.rand(batch, length, generator=g) - 0.5
    noise = torch.randn(batch, length, generator=g)
    t = torch.randint(0, len(params.noise_schedule), (batch,), generator=g)
    alpha_cum = torch.tensor(np.cumprod(1 - np.asarray(params.noise_schedule)), dtype=torch.float32)

    def step():                   # the reference learner's train_step, fp32, no clipping
        level = alpha_cum[t].unsqueeze(1)
        noisy = level ** 0.5 * audio + (1.0 - level) ** 0.5 * noise
        opt.zero_grad(set_to_none=True)
        loss = F.l1_loss(model(noisy, t).squeeze(1), noise)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "times": times, "batch": batch,
            "length": length, "statistic": f"median of {steps}"}


def measure_sampling(model, params, length, fast, repeats):
    model.eval()
    sample(model, params, length, fast)                    # warm-up
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        out = sample(model, params, length, fast, seed=i + 1)
        times.append(time.perf_counter() - start)
    if not torch.isfinite(out).all():
        sys.exit("error: the reference produced non-finite audio")
    steps = len(params.inference_noise_schedule if fast else params.noise_schedule)
    return {"seconds": min(times), "times": times, "length": length, "steps": steps,
            "statistic": f"best of {repeats}"}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object, nothing else")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--only", default="train,fast,ddpm", help="comma list of train,fast,ddpm")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=16000, help="training samples per example")
    ap.add_argument("--steps", type=int, default=5, help="timed train steps (median)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed train steps")
    ap.add_argument("--seconds", type=float, default=1.0, help="sampled clip length at 16 kHz")
    ap.add_argument("--repeats", type=int, default=3, help="timed fast-6 clips (best)")
    ap.add_argument("--ddpm-repeats", type=int, default=1, help="timed DDPM-50 clips (best)")
    args = ap.parse_args()
    parts = [p for p in args.only.split(",") if p]
    unknown = set(parts) - {"train", "fast", "ddpm"}
    if unknown:
        ap.error(f"--only: unknown {', '.join(sorted(unknown))} (train, fast, ddpm)")
    if min(args.steps, args.warmup, args.repeats, args.ddpm_repeats, args.threads) < 1:
        ap.error("--steps, --warmup, --repeats, --ddpm-repeats and --threads must be ≥ 1")

    torch.set_num_threads(args.threads)
    params, model, count = build()
    from importlib.metadata import version
    result = {"torch": torch.__version__, "diffwave": version("diffwave"),
              "forward": "lmnt native unconditional" if model.native
              else "lmnt 0.1.7 layers, conditioner removed (0.1.8 unconditional forward)",
              "threads": torch.get_num_threads(), "cpu": cpu_model(), "parameters": count,
              "mkldnn": torch.backends.mkldnn.is_available()}
    length = int(args.seconds * 16000)
    if "train" in parts:
        result["train"] = measure_train(model, params, args.batch, args.length, args.steps,
                                        args.warmup)
    if "fast" in parts:
        T = fractional_steps(params.noise_schedule, params.inference_noise_schedule)
        if not np.allclose(T, FAST_T, atol=1e-4):
            sys.exit(f"error: fast schedule gives T = {T.tolist()}, expected {FAST_T}")
        result["fast"] = measure_sampling(model, params, length, True, args.repeats)
    if "ddpm" in parts:
        result["ddpm"] = measure_sampling(model, params, length, False, args.ddpm_repeats)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    if args.json:
        print(json.dumps(result))
        return
    print(f"PyTorch {result['torch']} reference (diffwave {result['diffwave']}, "
          f"{result['forward']}), {count:,} parameters, {result['threads']} threads, "
          f"{result['cpu']}")
    rows = {"train": f"train step, batch {args.batch} × {args.length}, fp32",
            "fast": f"fast-6, {args.seconds:g} s clip", "ddpm": f"DDPM-50, {args.seconds:g} s clip"}
    for key in parts:
        r = result[key]
        print(f"{rows[key]:34s} {r['seconds']:8.3f} s  ({r['statistic']}: "
              + " ".join(f"{t:.3f}" for t in r["times"]) + ")")
    print(f"peak RSS {result['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
