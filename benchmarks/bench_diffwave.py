"""Training speed of DiffWave BASE (unconditional, 30 layers × 64 channels, cycle 10, T = 50) on CPU.

    python benchmarks/bench_diffwave.py [--batch 4] [--length 16000] [--steps 7] [--precision both]

One train step = forward + backward + Adam update in one plain tf.function (no XLA), L1 loss on ε
like the DiffWave reference. Prints seconds per step (median of --steps timed steps after warm-up),
audio-seconds trained per wall-clock second (batch · length / 16000 / s-per-step) and the peak RSS
of the process, for fp32 and for Keras' "mixed_bfloat16" policy, each in its own subprocess so
neither the policy nor the memory peak leaks into the other. The reference figures were measured
on the same 2-core CPU. Goal: ≤ 1.5 s per step at batch 4 × 16000.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLE_RATE = 16000
GOAL_S = 1.5

# Measured on this machine at batch 4 × 16000 (see the DiffWave speed issue).
REFERENCES = [("PyTorch reference (lmnt-com/diffwave), fp32", 3.01),
              ("naive Keras DiffWave, fp32", 4.5),
              ("naive Keras DiffWave, mixed_bfloat16", 3.7)]


def measure(batch, length, steps, warmup, precision, inter_op=0, seed=0):
    """Runs in a fresh process: → dict(s_per_step, times, peak_rss_mb, params)."""
    import resource

    import keras
    import numpy as np
    import tensorflow as tf

    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)

    from network.diffwave import DiffWave

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    keras.utils.set_random_seed(seed)
    net = DiffWave(30, 64, 10, 50, conditioning="none")
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
            "params": int(sum(np.prod(w.shape) for w in net.trainable_weights))}


def busy_cpu_seconds():
    """CPU-seconds all processes have spent busy since boot (/proc/stat), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return None
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def idle_fraction(seconds=2.0):
    start = busy_cpu_seconds()
    time.sleep(seconds)
    if start is None:
        return float("nan")
    return 1.0 - (busy_cpu_seconds() - start) / (seconds * os.cpu_count())


def run_child(cmd):
    """Runs one measurement; → (result dict, share of a core other processes used meanwhile)."""
    import resource
    before, busy0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), busy_cpu_seconds(), time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    after, busy1, wall = resource.getrusage(resource.RUSAGE_CHILDREN), busy_cpu_seconds(), time.time() - t0
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        sys.stderr.write(proc.stdout + proc.stderr)
        sys.exit(f"error: {' '.join(cmd[-10:])} failed (exit {proc.returncode})")
    mine = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    others = max(0.0, (busy1 - busy0) - mine) / wall if busy0 is not None else float("nan")
    return json.loads(line[0][len("RESULT "):]), others


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=16000, help="samples per example")
    ap.add_argument("--steps", type=int, default=7, help="timed steps (median is reported; ≥ 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing, allocation)")
    ap.add_argument("--precision", choices=("fp32", "bf16", "both"), default="both")
    ap.add_argument("--inter-op", type=int, default=0,
                    help="TF inter-op threads (0: TF's default, as a training run has)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 1:
        ap.error("--steps and --warmup must be ≥ 1")

    if args.child:                                    # one precision, result as JSON on stdout
        result = measure(args.batch, args.length, args.steps, args.warmup, args.precision,
                         args.inter_op)
        print("RESULT " + json.dumps(result))
        return

    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    audio_s = args.batch * args.length / SAMPLE_RATE
    print(f"DiffWave BASE unconditional, batch {args.batch} × {args.length} samples "
          f"({audio_s:g} audio-s per step), {os.cpu_count()} CPUs, "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    idle = idle_fraction()
    if idle < 0.9:
        print(f"warning: the CPUs were only {idle:.0%} idle before the run; other jobs inflate "
              f"the figures (the machine should be quiet)")

    results, others = {}, {}
    for precision in precisions:
        cmd = [sys.executable, __file__, "--child", "--precision", precision,
               "--batch", str(args.batch), "--length", str(args.length),
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--inter-op", str(args.inter_op)]
        results[precision], others[precision] = run_child(cmd)

    print()
    print(f"{'':48s} {'s/step':>8s} {'audio-s/s':>10s} {'peak RSS':>10s}")
    for precision, r in results.items():
        name = f"this DiffWave, {'fp32' if precision == 'fp32' else 'mixed_bfloat16'}"
        print(f"{name:48s} {r['s_per_step']:8.3f} {audio_s / r['s_per_step']:10.2f} "
              f"{r['peak_rss_mb']:8.0f} MB")
    ref_note = "" if (args.batch, args.length) == (4, 16000) else "  (measured at 4 × 16000)"
    for name, s in REFERENCES:
        print(f"{name:48s} {s:8.2f} {4 * 16000 / SAMPLE_RATE / s:10.2f} {'':>10s}{ref_note}")
    print()
    for precision, r in results.items():
        print(f"{precision}: {r['params']:,} parameters; step times "
              + " ".join(f"{t:.3f}" for t in r["times"])
              + f"; other processes used {others[precision]:.0%} of a core meanwhile")
    if max(others.values()) > 0.1:
        print("warning: other processes were busy during the measurement; repeat it when quiet")
    if (args.batch, args.length) == (4, 16000):
        best = min(r["s_per_step"] for r in results.values())
        print(f"goal ≤ {GOAL_S} s/step: {'met' if best <= GOAL_S else 'NOT met'} "
              f"(best {best:.3f} s)")


if __name__ == "__main__":
    main()
