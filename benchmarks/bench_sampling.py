"""Sampling speed of DiffWave BASE (unconditional) on this machine, in Python and as a SavedModel,
and the peak memory of generating 10 minutes of audio with chunked denoising.

    python benchmarks/bench_sampling.py [--seconds 1] [--long-minutes 10] [--precision fp32]

Prints seconds and real-time factor (audio seconds / wall seconds) for a 1 s clip at 16 kHz:
fast 6-step and 50-step DDPM, through diffusion.core.sampling.sample and through the exported
SavedModel (whole loop in the graph), next to the PyTorch reference measured on this machine
(lmnt-com/diffwave: 1.80 s for the 6-step clip, RTF 0.555; 12.8 s for 50 steps). Goal: RTF
≥ 1.2 for the 6-step clip. The long run uses one denoising step: memory per step does not
depend on the number of steps, and one step of 10 minutes already takes minutes here.
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REFERENCE = {"fast": 1.80, "ddpm": 12.8}     # PyTorch lmnt-com/diffwave, 2 threads, this CPU


def make_run(directory, precision):
    """A BASE run directory with (untrained) weights: speed does not depend on the values."""
    from diffusion.training.ema import EMA
    from diffusion.families.registry import family_for
    from configs import get_preset
    from params import apply_overrides
    import tensorflow as tf
    params = apply_overrides(get_preset("base"), [f"mixed_precision={precision == 'bf16'}"])
    params.save(os.path.join(directory, "params.json"))
    model = family_for(params).build_model()
    tf.train.Checkpoint(model=model, ema=EMA(model, 0.999)).save(
        os.path.join(directory, "checkpoints", "ckpt"))
    return params


def timed(fn, repeats=3):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def long_run(run_dir, minutes):
    """Child process: one chunked denoising step over `minutes` of audio; prints peak RSS."""
    import tensorflow as tf
    from diffusion.families.registry import load_run
    from diffusion.core.sampling import chunked
    params, family, model = load_run(run_dir)
    length = int(minutes * 60 * params.data.sample_rate)
    denoise = tf.function(chunked(family.denoiser(model, {}), 4 * params.data.sample_rate,
                                  (model.receptive_field - 1) // 2))
    x = tf.random.normal([1, length, 1])
    start = time.perf_counter()
    eps = denoise(x, tf.constant([10.0]))
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"{minutes:g} min of audio ({length:,} samples), one denoising step: {elapsed:.0f} s,"
          f" output finite: {bool(tf.reduce_all(tf.math.is_finite(eps)))}, "
          f"peak RSS {peak:.2f} GB (goal < 3 GB)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--long-minutes", type=float, default=10.0, help="0 skips the memory run")
    ap.add_argument("--long-child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.long_child:
        return long_run(args.long_child, args.long_minutes)

    import tensorflow as tf
    from diffusion.families.export import SamplerModule, export
    from diffusion.core.schedulers import build_scheduler
    from diffusion.families.registry import load_run
    from diffusion.core.sampling import sample
    tmp = tempfile.mkdtemp()
    params = make_run(tmp, args.precision)
    _, family, model = load_run(tmp)
    length = int(args.seconds * params.data.sample_rate)
    print(f"DiffWave BASE ({model.count_params():,} parameters, {args.precision}), "
          f"{args.seconds:g} s clip at {params.data.sample_rate} Hz, batch 1, "
          f"{os.cpu_count()} cores")
    print(f"{'sampler':8s} {'path':12s} {'seconds':>8s} {'RTF':>6s}   reference (PyTorch)")
    for name in ("fast", "ddpm"):
        scheduler = build_scheduler(params, name)
        denoise = family.denoiser(model, {})
        python = timed(lambda: sample(denoise, scheduler, [1, length, 1], 0).numpy(),
                       repeats=3 if name == "fast" else 1)
        directory = os.path.join(tmp, f"exported_{name}")
        export(SamplerModule(family, model, scheduler, params, chunk=0), directory)
        served = tf.saved_model.load(directory).signatures["serving_default"]
        graph = timed(lambda: served(num_samples=tf.constant(1), length=tf.constant(length),
                                     seed=tf.constant(0))["audio"].numpy(),
                      repeats=3 if name == "fast" else 1)
        ref = REFERENCE[name] * args.seconds
        steps = scheduler.num_inference_steps
        for path, secs in (("python", python), ("savedmodel", graph)):
            print(f"{name + '-' + str(steps):8s} {path:12s} {secs:8.2f} {args.seconds / secs:6.2f}"
                  f"   {ref:.2f} s, RTF {args.seconds / ref:.3f}")
    if args.long_minutes > 0:
        subprocess.run([sys.executable, __file__, "--long-child", tmp, "--long-minutes",
                        str(args.long_minutes)], check=True)


if __name__ == "__main__":
    main()
