"""Speed of the evaluation: BirdNET embeddings per audio second, and evaluate.py's wall time.

    python benchmarks/bench_evaluate.py [--run RUN] [--reference dataset/chorales] [--num 64]

1. BirdNET V2.4 (TFLite, 2 threads) on 3 s windows of noise at batch sizes 1, 4 (the default)
   and 8: the first invoke at a batch size (touching the preserved-tensor arena) and the steady
   cost in ms per second of window audio.
2. `evaluate.py --run RUN --reference DIR --num N` twice in fresh processes: with a cold
   reference cache and with it warm. Without --run, a tiny class-conditional run is trained
   for 3 steps in a temporary directory (an untrained model: the timing does not depend on it).
"""
import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_birdnet(repeats=3):
    import numpy as np

    from evaluation.birdnet import BirdNET
    print("BirdNET V2.4 embeddings (3 s windows at 48 kHz, 2 threads)")
    print("| batch | first invoke, s | steady, ms per audio second | × real time |")
    print("| ---: | ---: | ---: | ---: |")
    windows = np.random.default_rng(0).normal(size=(8, 144000)).astype(np.float32) * 0.1
    for batch in (1, 4, 8):
        embedder = BirdNET(batch_size=batch)
        start = time.perf_counter()
        embedder(windows[:batch])
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(repeats):
            embedder(windows)
        per_second = (time.perf_counter() - start) / (repeats * len(windows) * 3.0)
        print(f"| {batch} | {first:.2f} | {1000 * per_second:.1f} | {1 / per_second:.0f} |")
        del embedder
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak:.0f} MB")


def run_cli(*args):
    start = time.perf_counter()
    out = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                         cwd=ROOT)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{out.stderr}")
    return out.stdout, time.perf_counter() - start


def bench_evaluate(run, reference, num):
    with tempfile.TemporaryDirectory() as tmp:
        if run is None:
            run = os.path.join(tmp, "untrained")
            run_cli(ROOT / "train.py", "--data", ROOT / "dataset" / "digits", "--run", run,
                    "--preset", "tiny", "--steps", "3", "--set", "conditioning=class")
        print(f"\nevaluate.py --run {run} --reference {reference} --num {num}")
        print("| reference cache | wall time, s | reference embedding, s | FAD generated / "
              "real / noise |")
        print("| --- | ---: | ---: | --- |")
        for label in ("cold", "warm"):
            stdout, seconds = run_cli(ROOT / "evaluate.py", "--run", run, "--reference",
                                      reference, "--num", num, "--cache",
                                      os.path.join(tmp, "cache"), "--out",
                                      os.path.join(tmp, "eval"))
            embedded = re.search(r"reference: embedded \d+ clips in ([\d.]+) s", stdout)
            fad = re.search(r"generated ([\d.]+) \[.*?\], real ([\d.]+) \[.*?\], noise "
                            r"([\d.]+)", stdout)
            print(f"| {label} | {seconds:.1f} | {embedded.group(1) if embedded else '–'} | "
                  f"{' / '.join(fad.groups())} |")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default=None)
    # chorales: BirdNET's domain (on digits, evaluate.py uses the digit classifier's features)
    p.add_argument("--reference", default=str(ROOT / "dataset" / "chorales"))
    p.add_argument("--num", type=int, default=64)
    args = p.parse_args()
    bench_birdnet()
    bench_evaluate(args.run, args.reference, args.num)


if __name__ == "__main__":
    main()
