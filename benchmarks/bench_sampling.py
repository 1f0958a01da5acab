"""Sampling speed of DiffWave BASE (unconditional) on this CPU, in Python and as a SavedModel,
beside the PyTorch reference (lmnt-com/diffwave) measured in the same invocation; optionally the
peak memory of generating 10 minutes of audio with chunked denoising.

    python benchmarks/bench_sampling.py [--seconds 1] [--precision fp32|bf16|both]
        [--impls fused,reference] [--onednn 0,1] [--samplers fast,ddpm] [--no-reference]
        [--long-minutes 10]

For a 1 s clip at 16 kHz: fast 6-step and 50-step DDPM, through Family.sample (the Python API's
path: Pipeline, generate.py, the web UI; its compiled loop is cached, so "python" is a repeat
call and "first call" adds the one-off graph trace a one-shot generate.py pays) and through the
exported SavedModel (whole loop in the graph). Each configuration (oneDNN off/on via TF_ENABLE_ONEDNN_OPTS × DiffWave
implementation via network.impl × precision) runs in its own process. The reference runs first,
in .venv-torch (`make bench-venv`), through benchmarks/bench_reference.py (lmnt's inference
loop). Prints seconds (best of --repeats after a warm-up call; DDPM: best of --ddpm-repeats),
the real-time factor and the speed-up ratio = reference seconds / ours (> 1: we are faster).
Goal (issue #30): fast-6 through the Python path and the SavedModel ≥ 2.5× the reference.

--long-minutes N (0, the default, skips it) adds one chunked BASE denoising step over N minutes
of audio with the run's defaults (oneDNN and impl as the machine chooses) and prints its peak
RSS: memory per step does not depend on the number of steps, and one step of 10 minutes
already takes minutes here.
"""
import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import anchor  # noqa: E402

GOAL_RATIO = 2.5                  # fast-6 through the SavedModel: ≥ 2.5× the reference's speed
IMPLS = ("fused", "reference", "auto", "default")   # default: no network.impl override
SAMPLERS = ("fast", "ddpm")


def make_run(directory, precision, impl):
    """A BASE run directory with (untrained) weights: speed does not depend on the values."""
    import tensorflow as tf

    from configs import get_preset
    from diffusion.families.registry import family_for
    from diffusion.training.ema import EMA
    from params import ParamsError, apply_overrides
    overrides = [f"mixed_precision={precision == 'bf16'}"]
    if impl != "default":
        overrides.append(f"network.impl={impl}")
    try:
        params = apply_overrides(get_preset("base"), overrides)
    except ParamsError as e:
        if "impl" not in str(e):
            raise
        print(f"{anchor.UNSUPPORTED}network.impl is not a parameter here ({str(e)[:80]}); "
              f"merge main, or use --impls default")
        sys.exit(0)
    params.save(os.path.join(directory, "params.json"))
    model = family_for(params).build_model()
    tf.train.Checkpoint(model=model, ema=EMA(model, 0.999)).save(
        os.path.join(directory, "checkpoints", "ckpt"))
    return params


def timed(fn, repeats):
    """Best of `repeats` calls after one warm-up call → (best, times)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), times


def measure(seconds, precision, impl, samplers, repeats, ddpm_repeats):
    """Child process: one configuration → dict per sampler of python/savedmodel seconds."""
    import keras
    import tensorflow as tf

    from diffusion.core.schedulers import build_scheduler
    from diffusion.families.export import SamplerModule, export
    from diffusion.families.registry import load_run
    tmp = tempfile.mkdtemp()
    make_run(tmp, precision, impl)
    params, family, model = load_run(tmp)
    length = int(seconds * params.data.sample_rate)
    result = {"impl": str(getattr(model, "impl", impl)), "params": int(model.count_params()),
              "policy": keras.mixed_precision.global_policy().name}
    for name in samplers:
        scheduler = build_scheduler(params, name)
        n = repeats if name == "fast" else ddpm_repeats
        # The Python API's path (Pipeline, generate.py, the web UI): Family.sample's compiled
        # loop, cached per scheduler; its first call traces (a one-shot generate.py pays that).
        def python_call():
            return family.sample(model, scheduler, [1, length, 1], {}, 0).numpy()
        start = time.perf_counter()
        python_call()
        first = time.perf_counter() - start
        python, python_times = timed(python_call, n)
        directory = os.path.join(tmp, f"exported_{name}")
        export(SamplerModule(family, model, scheduler, params, chunk=0), directory)
        served = tf.saved_model.load(directory).signatures["serving_default"]
        graph, graph_times = timed(
            lambda: served(num_samples=tf.constant(1), length=tf.constant(length),
                           seed=tf.constant(0))["audio"].numpy(), n)
        result[name] = {"steps": int(scheduler.num_inference_steps), "python": python,
                        "first call": first,
                        "python_times": python_times, "savedmodel": graph,
                        "savedmodel_times": graph_times}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return result


def long_run(minutes):
    """Child process: one chunked denoising step over `minutes` of audio; prints peak RSS."""
    import tensorflow as tf

    from diffusion.core.sampling import chunked
    from diffusion.families.registry import load_run
    tmp = tempfile.mkdtemp()
    make_run(tmp, "fp32", "default")
    params, family, model = load_run(tmp)
    length = int(minutes * 60 * params.data.sample_rate)
    denoise = tf.function(chunked(family.denoiser(model, {}), 4 * params.data.sample_rate,
                                  (model.receptive_field - 1) // 2))
    x = tf.random.normal([1, length, 1])
    start = time.perf_counter()
    eps = denoise(x, tf.constant([10.0]))
    elapsed = time.perf_counter() - start
    return {"minutes": minutes, "samples": length, "seconds": elapsed,
            "finite": bool(tf.reduce_all(tf.math.is_finite(eps))),
            "impl": str(getattr(model, "impl", "?")),
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=1.0, help="clip length")
    ap.add_argument("--precision", choices=("fp32", "bf16", "both"), default="fp32")
    ap.add_argument("--impls", default="fused,reference",
                    help=f"DiffWave implementations, comma list of {', '.join(IMPLS)}")
    ap.add_argument("--onednn", default="0,1", help="TF_ENABLE_ONEDNN_OPTS values, comma list")
    ap.add_argument("--samplers", default="fast,ddpm", help="comma list of fast, ddpm")
    ap.add_argument("--repeats", type=int, default=3, help="timed fast-6 clips (best)")
    ap.add_argument("--ddpm-repeats", type=int, default=1, help="timed DDPM-50 clips (best)")
    ap.add_argument("--torch-threads", type=int, default=2, help="the reference's threads")
    ap.add_argument("--torch-env", action="append", type=anchor.env_item, default=[],
                    metavar="KEY=VALUE", help="environment of the reference's process only "
                    "(repeatable), e.g. OMP_WAIT_POLICY=PASSIVE on a busy machine")
    ap.add_argument("--no-reference", action="store_true", help="skip the PyTorch reference")
    ap.add_argument("--long-minutes", type=float, default=0.0,
                    help="also the memory run over this many minutes (0: skip)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--long-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--impl", default="default", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.repeats < 1 or args.ddpm_repeats < 1:
        ap.error("--repeats and --ddpm-repeats must be ≥ 1")
    samplers = anchor.parse_list(args.samplers, SAMPLERS, "--samplers")
    if args.long_child:
        print("RESULT " + json.dumps(long_run(args.long_minutes)))
        return
    if args.child:
        result = measure(args.seconds, args.precision, args.impl, samplers, args.repeats,
                         args.ddpm_repeats)
        print("RESULT " + json.dumps(result))
        return

    impls = anchor.parse_list(args.impls, IMPLS, "--impls")
    modes = anchor.parse_list(args.onednn, ("0", "1"), "--onednn")
    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    print(f"CPU: {anchor.cpu_summary()}")
    print(f"DiffWave BASE unconditional sampling, {args.seconds:g} s clip at 16 kHz, batch 1; "
          f"fast-6 best of {args.repeats}, DDPM-50 best of {args.ddpm_repeats}, after a warm-up")
    anchor.warn_if_busy()

    reference, ref_others = None, None
    if not args.no_reference:
        reference, ref_others = anchor.run_reference(
            ",".join(samplers), ["--seconds", str(args.seconds), "--repeats", str(args.repeats),
                                 "--ddpm-repeats", str(args.ddpm_repeats)],
            threads=args.torch_threads, env=args.torch_env)
    shares = [ref_others] if ref_others is not None else []

    child_args = ["--seconds", args.seconds, "--samplers", ",".join(samplers),
                  "--repeats", args.repeats, "--ddpm-repeats", args.ddpm_repeats]
    rows = anchor.run_configurations(__file__, modes, impls, precisions, child_args, shares)

    print()
    print(f"{'sampler':8s} {'path':11s} {'configuration':40s} {'seconds':>8s} {'RTF':>7s} "
          f"{'speed-up':>9s}  goal ≥ {GOAL_RATIO:g}× (fast, SavedModel)")
    for name in samplers:
        ref_s = reference[name]["seconds"] if reference else None
        label = f"{name}-{6 if name == 'fast' else 50}"
        if ref_s:
            print(f"{label:8s} {'torch':11s} {'PyTorch reference (lmnt), fp32':40s} "
                  f"{ref_s:8.2f} {args.seconds / ref_s:7.3f} {'1.00×':>9s}")
        for mode, impl, precision, result, others, error in rows:
            config = f"{anchor.onednn_label(mode)}, impl={impl}, {precision}"
            if result is None:
                print(f"{label:8s} {'—':11s} {config:40s} {error}")
                continue
            if result["policy"] == "float32" and precision == "bf16":
                config += " (ran fp32)"
            r = result[name]
            for path in ("python", "savedmodel", "first call"):
                s = r[path]
                goal = (anchor.goal_text(ref_s, s, GOAL_RATIO)
                        if name == "fast" and path != "first call" else "")
                print(f"{label:8s} {path:11s} {config:40s} {s:8.2f} {args.seconds / s:7.3f} "
                      f"{anchor.ratio_text(ref_s, s):>9s}  {goal}")
    print()
    if reference:
        print(f"reference: {reference['parameters']:,} parameters, peak RSS "
              f"{reference['peak_rss_mb']:.0f} MB; other processes used {ref_others:.0%} of a "
              f"core meanwhile")
    for mode, impl, precision, result, others, error in rows:
        if result is not None:
            print(f"{anchor.onednn_label(mode)}, impl={impl} ({result['impl']}), {precision} "
                  f"({result['policy']}): {result['params']:,} parameters, peak RSS "
                  f"{result['peak_rss_mb']:.0f} MB; other processes used {others:.0%} of a "
                  f"core meanwhile")
    note = anchor.others_note(shares)
    if note:
        print(note)
    fast = [(r["fast"]["savedmodel"], mode, impl, p) for mode, impl, p, r, _, _ in rows
            if r is not None and "fast" in r]
    if reference and fast and "fast" in reference:
        best, mode, impl, p = min(fast)
        ref_s = reference["fast"]["seconds"]
        print(f"goal: fast-6 through the SavedModel ≥ {GOAL_RATIO:g}× the PyTorch reference: "
              f"{anchor.goal_text(ref_s, best, GOAL_RATIO)} (best {ref_s / best:.2f}×, "
              f"{anchor.onednn_label(mode)}, impl={impl}, {p})"
              + ("; the machine was busy: not conclusive" if note else ""))
    elif not reference:
        print("goal: not checked (no PyTorch reference in this run)")

    if args.long_minutes > 0:
        result, _, error = anchor.run_child(
            [sys.executable, __file__, "--long-child", "--long-minutes", args.long_minutes])
        if error:
            print(f"long run: {error}")
        else:
            print(f"{result['minutes']:g} min of audio ({result['samples']:,} samples), one "
                  f"denoising step (impl {result['impl']}): {result['seconds']:.0f} s, output "
                  f"finite: {result['finite']}, peak RSS {result['peak_rss_gb']:.2f} GB "
                  f"(goal < 3 GB)")


if __name__ == "__main__":
    main()
