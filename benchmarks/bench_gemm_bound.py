"""How fast could a DiffWave BASE train step be on this CPU with TensorFlow's own kernels? A lower
bound from the step's matrix products alone, beside the real step and the PyTorch reference,
measured in one run.

    python benchmarks/bench_gemm_bound.py [--onednn 0,1] [--steps 5] [--no-reference]

The bound runs, in one tf.function, only the products a train step cannot avoid, at the step's
shapes (batch 4 × 16000, 30 layers, C = 64, one chain per example as `network/diffwave/fused.py`
runs them), each in the fastest TF formulation measured for it:

    forward   H = conv_d(y; Wd)  [T, 3C]·[3C, 2C]      out = z·Wo  [T, C]·[C, 2C]
    backward  dz = dout·Woᵀ      dy = conv_d(dH; Wd')  ∂Wd = Σ_k y(t+(k−1)d)ᵀ·dH   ∂Wo = zᵀ·dout

No activation, no bias, no elementwise glue, no optimizer: every other op of the step can only
add to it. If the bound is above reference / 2, no arrangement of TF's kernels in that oneDNN
mode reaches the 2× goal of bench_diffwave.py; the ratio says how far the kernels are from it.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import anchor  # noqa: E402

LAYERS, C, CYCLE = 30, 64, 10          # DiffWave BASE (lmnt's defaults)
GOAL_RATIO = 2.0


def products(batch, length):
    """→ (a tf.function running the step's products once, their GFLOP)."""
    import tensorflow as tf

    # Every product gets its own rows of a pool (a zero-copy slice on the first axis), so the
    # graph optimizer cannot merge the repeats as the same op on the same tensors.
    rng = tf.random.Generator.from_seed(0)
    T, P = length, LAYERS * batch
    pools = [rng.normal([T + P, C]), rng.normal([T + P, 2 * C]),       # y, dH
             rng.normal([T + P, C]), rng.normal([T + P, 2 * C])]       # z, dout
    weights = [rng.normal([1, 3, C, 2 * C]), rng.normal([1, 3, 2 * C, C]), rng.normal([C, 2 * C])]

    def corner(x):                                    # keeps the op alive, frees its output
        return tf.reshape(x, [-1])[0]

    @tf.function
    def run_on(y_pool, dH_pool, z_pool, dout_pool, Wd, Wf, Wo):
        acc = []
        for layer in range(LAYERS):
            d = 2 ** (layer % CYCLE)
            n = max(T - d, 0)
            for example in range(batch):
                o = layer * batch + example
                y2d, dH2d = y_pool[o:o + T], dH_pool[o:o + T]
                z, dout = z_pool[o:o + T], dout_pool[o:o + T]
                y, dH = tf.reshape(y2d, [1, 1, T, C]), tf.reshape(dH2d, [1, 1, T, 2 * C])
                acc += [corner(tf.nn.conv2d(y, Wd, 1, "SAME", dilations=[1, 1, d, 1])),
                        corner(tf.matmul(z, Wo)),
                        corner(tf.matmul(dout, Wo, transpose_b=True)),
                        corner(tf.nn.conv2d(dH, Wf, 1, "SAME", dilations=[1, 1, d, 1])),
                        corner(tf.matmul(y2d[:n], dH2d[T - n:], transpose_a=True)),
                        corner(tf.matmul(y2d, dH2d, transpose_a=True)),
                        corner(tf.matmul(y2d[T - n:], dH2d[:n], transpose_a=True)),
                        corner(tf.matmul(z, dout, transpose_a=True))]
        return tf.add_n(acc)

    def run():
        return run_on(*pools, *weights)

    per_example_layer = 2 * T * C * 2 * C * (3 + 1 + 1 + 3 + 3 + 1)   # multiply-adds × 2
    return run, LAYERS * batch * per_example_layer / 1e9


def measure(batch, length, steps, warmup):
    import numpy as np

    run, gflop = products(batch, length)
    for _ in range(warmup):
        float(run())
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        float(run())
        times.append(time.perf_counter() - start)
    s = float(np.median(times))
    return {"s_per_step": s, "times": times, "gflop": gflop, "gflops": gflop / s}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--length", type=int, default=16000)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--onednn", default="0,1", help="TF_ENABLE_ONEDNN_OPTS values, comma list")
    ap.add_argument("--torch-threads", type=int, default=2)
    ap.add_argument("--no-reference", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--impl", default="", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        if args.impl == "products":
            print("RESULT " + json.dumps(measure(args.batch, args.length, args.steps,
                                                 args.warmup)))
        else:                                       # the real step, as bench_diffwave.py runs it
            import bench_diffwave
            print("RESULT " + json.dumps(bench_diffwave.measure(
                args.batch, args.length, args.steps, args.warmup, "fp32", args.impl)))
        return

    modes = anchor.parse_list(args.onednn, ("0", "1"), "--onednn")
    print(f"CPU: {anchor.cpu_summary()}")
    print(f"DiffWave BASE train step, batch {args.batch} × {args.length}, fp32, median of "
          f"{args.steps} after {args.warmup} warm-up")
    anchor.warn_if_busy()
    shares, ref_s = [], None
    if not args.no_reference:
        reference, others = anchor.run_reference(
            "train", ["--batch", str(args.batch), "--length", str(args.length),
                      "--steps", str(args.steps), "--warmup", str(args.warmup)],
            threads=args.torch_threads)
        if reference:
            ref_s = reference["train"]["seconds"]
            shares.append(others)
    child_args = ["--batch", args.batch, "--length", args.length, "--steps", args.steps,
                  "--warmup", args.warmup]
    rows = anchor.run_configurations(__file__, modes, ["products", "fused"], ["fp32"],
                                     child_args, shares)
    print()
    print(f"{'measured':58s} {'s/step':>7s} {'GFLOP/s':>8s} {'ref / it':>9s}")
    if ref_s:
        print(f"{'PyTorch reference (lmnt) train step':58s} {ref_s:7.3f} {'':>8s} {'1.00×':>9s}")
    bounds = {}
    for mode, impl, _, result, _, error in rows:
        what = ("products alone (lower bound)" if impl == "products" else "full step, fused")
        name = f"{anchor.onednn_label(mode)}, {what}"
        if result is None:
            print(f"{name:58s} {error}")
            continue
        s = result["s_per_step"]
        rate = f"{result['gflops']:8.0f}" if "gflops" in result else f"{'':8s}"
        print(f"{name:58s} {s:7.3f} {rate} {anchor.ratio_text(ref_s, s):>9s}")
        if impl == "products":
            bounds[mode] = result
    print()
    for mode, b in bounds.items():
        line = (f"{anchor.onednn_label(mode)}: the step's {b['gflop']:.0f} GFLOP of products take "
                f"{b['s_per_step']:.3f} s at best")
        if ref_s:
            ceiling = ref_s / b["s_per_step"]
            line += (f", so no step can beat the reference by more than {ceiling:.2f}× "
                     f"(goal {GOAL_RATIO:g}×: " + ("reachable" if ceiling >= GOAL_RATIO else
                                                   "out of reach with these kernels") + ")")
        print(line)
    note = anchor.others_note(shares)
    if note:
        print(note)


if __name__ == "__main__":
    main()
