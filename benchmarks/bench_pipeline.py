"""Throughput of the in-graph data path beside scipy.signal.resample_poly, same audio, same run.

    python benchmarks/bench_pipeline.py [--seconds 60] [--threads 1]

Prints audio-seconds processed per wall-clock second (× real time) for
  decode FLAC + resample 22050 → 16000   (decode + data.filters.resample in one tf.function;
                                          "auto" = libsndfile for FLAC, and tfio's in-graph op)
  resample 22050 → 16000                 (in memory)
  downsample ×3 (48000 → 16000)          (data.filters.downsample)
and the same work done by soundfile + scipy.signal.resample_poly. Goal: ≥ 500× real time on
one core and never slower than resample_poly. The input is the bundled chorales, concatenated.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best_of(fn, repeats):
    fn()                                     # warm-up: tracing, first allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio length per call")
    ap.add_argument("--threads", type=int, default=1, help="TF intra-op threads (goal: 1)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import numpy as np
    import scipy.signal
    import soundfile as sf
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from data import audio_io
    from data.filters import downsample, resample

    clips = sorted((ROOT / "dataset" / "chorales").glob("*.flac"))
    music = np.concatenate([sf.read(c, dtype="float32")[0] for c in clips])
    need = int(args.seconds * 16000)
    music = np.tile(music, need // len(music) + 1)[:need]
    at22 = scipy.signal.resample_poly(music, 441, 320).astype(np.float32)   # 22050 Hz input
    at48 = scipy.signal.resample_poly(music, 3, 1).astype(np.float32)       # 48000 Hz input
    tmp = tempfile.mkdtemp()
    flac = os.path.join(tmp, "input22050.flac")
    sf.write(flac, at22, 22050, subtype="PCM_16")
    by_tfio = audio_io.probe(flac, "tfio").decoder
    by_auto = audio_io.probe(flac, "auto").decoder          # libsndfile for FLAC

    def decode_resample(decoder):
        return tf.function(lambda p: resample(audio_io.decode(p, decoder, 1), 22050, 16000))
    tfio_path, auto_path = decode_resample(by_tfio), decode_resample(by_auto)
    resample_graph = tf.function(lambda x: resample(x, 22050, 16000))
    downsample_graph = tf.function(lambda x: downsample(x, 3))
    x22, x48, path = tf.constant(at22), tf.constant(at48), tf.constant(flac)

    rows = [
        ("decode FLAC (auto) + resample 22050→16000",
         lambda: auto_path(path).numpy(),
         lambda: scipy.signal.resample_poly(sf.read(flac, dtype="float32")[0], 320, 441)),
        ("decode FLAC (tfio) + resample 22050→16000",
         lambda: tfio_path(path).numpy(),
         lambda: scipy.signal.resample_poly(sf.read(flac, dtype="float32")[0], 320, 441)),
        ("resample 22050→16000 (in memory)",
         lambda: resample_graph(x22).numpy(),
         lambda: scipy.signal.resample_poly(at22, 320, 441)),
        ("downsample ×3, 48000→16000",
         lambda: downsample_graph(x48).numpy(),
         lambda: scipy.signal.resample_poly(at48, 1, 3)),
    ]
    print(f"audio: {args.seconds:.0f} s of bundled chorales per call; TF threads: {args.threads};"
          f" best of {args.repeats}")
    print(f"{'operation':44s} {'ours (×RT)':>12s} {'resample_poly (×RT)':>20s} {'ratio':>7s}")
    for name, ours, theirs in rows:
        t_ours, t_theirs = best_of(ours, args.repeats), best_of(theirs, args.repeats)
        rt_ours, rt_theirs = args.seconds / t_ours, args.seconds / t_theirs
        print(f"{name:44s} {rt_ours:12.0f} {rt_theirs:20.0f} {rt_ours / rt_theirs:7.2f}")


if __name__ == "__main__":
    main()
