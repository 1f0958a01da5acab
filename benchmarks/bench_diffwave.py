"""Training speed of DiffWave BASE (unconditional, 30 layers × 64 channels, cycle 10, T = 50) on
this CPU, beside the PyTorch reference (lmnt-com/diffwave) measured in the same invocation.

    python benchmarks/bench_diffwave.py [--steps 5] [--precision fp32|bf16|both]
        [--impls fused,reference] [--onednn 0,1] [--no-reference]

One train step = forward + backward + Adam update in one plain tf.function (no XLA), L1 loss on ε
like the reference, batch 4 × 16000. Each configuration (oneDNN off/on via TF_ENABLE_ONEDNN_OPTS
× DiffWave implementation × precision) runs in its own process, so neither the policy, the
oneDNN mode nor the memory peak leaks into the next. The reference runs first, in .venv-torch
(`make bench-venv`), through benchmarks/bench_reference.py. Prints seconds per step (median of
--steps timed steps after warm-up), audio-seconds trained per second, peak RSS and the speed-up
ratio = reference seconds / ours (> 1: we are faster). Goal: fp32 training ≥ 2× the reference.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import anchor  # noqa: E402

SAMPLE_RATE = 16000
GOAL_RATIO = 2.0                     # fp32 training: ≥ 2× the PyTorch reference's speed
IMPLS = ("fused", "reference", "auto", "default")   # default: no impl= argument at all


def measure(batch, length, steps, warmup, precision, impl, inter_op=0, seed=0):
    """Runs in a fresh process: → dict(s_per_step, times, peak_rss_mb, params, impl)."""
    import resource

    import keras
    import numpy as np
    import tensorflow as tf

    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)

    from network.diffwave import DiffWave

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    keras.utils.set_random_seed(seed)
    kwargs = {} if impl == "default" else {"impl": impl}
    try:
        net = DiffWave(30, 64, 10, 50, conditioning="none", **kwargs)
    except (TypeError, ValueError) as err:
        if "impl" not in str(err):
            raise
        print(f"{anchor.UNSUPPORTED}network.diffwave.DiffWave does not take impl= here "
              f"({str(err)[:80]}); merge main for network.impl, or use --impls default")
        sys.exit(0)
    net.build()
    # Give the zero-initialised head weights so the backward pass is the one of a trained model.
    net.output_projection.kernel.assign(
        tf.random.normal(net.output_projection.kernel.shape, stddev=0.1))
    opt = keras.optimizers.Adam(2e-4)
    opt.build(net.trainable_variables)

    @tf.function
    def train_step(audio, noise, step):
        with tf.GradientTape() as tape:
            eps_hat = net({"audio": audio + noise, "step": step})
            loss = tf.reduce_mean(tf.abs(noise - eps_hat))
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    rng = np.random.default_rng(seed)
    audio = tf.constant(rng.uniform(-0.5, 0.5, (batch, length, 1)), tf.float32)
    noise = tf.constant(rng.standard_normal((batch, length, 1)), tf.float32)
    step = tf.constant(rng.integers(0, 50, batch), tf.int32)
    for _ in range(warmup):
        float(train_step(audio, noise, step))
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(train_step(audio, noise, step))         # float() waits for the step to finish
        times.append(time.perf_counter() - start)
    return {"s_per_step": float(np.median(times)), "times": times,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "params": int(sum(np.prod(w.shape) for w in net.trainable_weights)),
            "impl": str(getattr(net, "impl", impl))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=16000, help="samples per example")
    ap.add_argument("--steps", type=int, default=5, help="timed steps (median is reported)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing, allocation)")
    ap.add_argument("--precision", choices=("fp32", "bf16", "both"), default="fp32")
    ap.add_argument("--impls", default="fused,reference",
                    help=f"DiffWave implementations, comma list of {', '.join(IMPLS)}")
    ap.add_argument("--onednn", default="0,1", help="TF_ENABLE_ONEDNN_OPTS values, comma list")
    ap.add_argument("--inter-op", type=int, default=0,
                    help="TF inter-op threads (0: TF's default, as a training run has)")
    ap.add_argument("--torch-threads", type=int, default=2, help="the reference's threads")
    ap.add_argument("--torch-env", action="append", type=anchor.env_item, default=[],
                    metavar="KEY=VALUE", help="environment of the reference's process only "
                    "(repeatable), e.g. OMP_WAIT_POLICY=PASSIVE on a busy machine")
    ap.add_argument("--no-reference", action="store_true", help="skip the PyTorch reference")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--impl", default="default", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 1:
        ap.error("--steps and --warmup must be ≥ 1")

    if args.child:                   # one configuration, result as JSON on stdout
        result = measure(args.batch, args.length, args.steps, args.warmup, args.precision,
                         args.impl, args.inter_op)
        print("RESULT " + json.dumps(result))
        return

    impls = anchor.parse_list(args.impls, IMPLS, "--impls")
    modes = anchor.parse_list(args.onednn, ("0", "1"), "--onednn")
    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    audio_s = args.batch * args.length / SAMPLE_RATE
    print(f"CPU: {anchor.cpu_summary()}")
    print(f"DiffWave BASE unconditional training, batch {args.batch} × {args.length} samples "
          f"({audio_s:g} audio-s per step), median of {args.steps} steps after {args.warmup} "
          f"warm-up")
    anchor.warn_if_busy()

    reference, ref_others = None, None
    if not args.no_reference:
        reference, ref_others = anchor.run_reference(
            "train", ["--batch", str(args.batch), "--length", str(args.length),
                      "--steps", str(args.steps), "--warmup", str(args.warmup)],
            threads=args.torch_threads, env=args.torch_env)
    ref_s = reference["train"]["seconds"] if reference else None

    shares = [ref_others] if ref_others is not None else []

    child_args = ["--batch", args.batch, "--length", args.length, "--steps", args.steps,
                  "--warmup", args.warmup, "--inter-op", args.inter_op]
    rows = anchor.run_configurations(__file__, modes, impls, precisions, child_args, shares)

    print()
    print(f"{'configuration':50s} {'s/step':>8s} {'audio-s/s':>10s} {'peak RSS':>10s} "
          f"{'speed-up':>9s}  goal ≥ {GOAL_RATIO:g}× (fp32)")
    if reference:
        print(f"{'PyTorch reference (lmnt), fp32':50s} {ref_s:8.3f} {audio_s / ref_s:10.2f} "
              f"{reference['peak_rss_mb']:7.0f} MB {'1.00×':>9s}")
    for mode, impl, precision, result, others, error in rows:
        name = f"ours, {anchor.onednn_label(mode)}, impl={impl}, " + (
            "fp32" if precision == "fp32" else "mixed_bfloat16")
        if result is None:
            print(f"{name:50s} {error}")
            continue
        s = result["s_per_step"]
        goal = anchor.goal_text(ref_s, s, GOAL_RATIO) if precision == "fp32" else ""
        print(f"{name:50s} {s:8.3f} {audio_s / s:10.2f} {result['peak_rss_mb']:7.0f} MB "
              f"{anchor.ratio_text(ref_s, s):>9s}  {goal}")
    print()
    if reference:
        print("reference: step times " + " ".join(f"{t:.3f}" for t in reference["train"]["times"])
              + f"; other processes used {ref_others:.0%} of a core meanwhile")
    for mode, impl, precision, result, others, error in rows:
        if result is not None:
            print(f"{anchor.onednn_label(mode)}, impl={impl} ({result['impl']}), {precision}: "
                  f"{result['params']:,} parameters; step times "
                  + " ".join(f"{t:.3f}" for t in result["times"])
                  + f"; other processes used {others:.0%} of a core meanwhile")
    note = anchor.others_note(shares)
    if note:
        print(note)
    fp32 = [(r["s_per_step"], mode, impl) for mode, impl, p, r, _, _ in rows
            if r is not None and p == "fp32"]
    if reference and fp32:
        best, mode, impl = min(fp32)
        print(f"goal: fp32 training ≥ {GOAL_RATIO:g}× the PyTorch reference: "
              f"{anchor.goal_text(ref_s, best, GOAL_RATIO)} (best {ref_s / best:.2f}×, "
              f"{anchor.onednn_label(mode)}, impl={impl})"
              + ("; the machine was busy: not conclusive" if note else ""))
    elif not reference:
        print("goal: not checked (no PyTorch reference in this run)")


if __name__ == "__main__":
    main()
