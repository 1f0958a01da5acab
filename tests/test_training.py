"""train.py end to end on the bundled digits with the tiny preset: the loss falls, resume is
exact after SIGKILL, SIGTERM checkpoints, bad checkpoints and diverging runs fail cleanly."""
import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

ROOT = Path(__file__).resolve().parent.parent
DIGITS = str(ROOT / "dataset" / "digits")


def train(run, *args, timeout=600):
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", DIGITS, "--run", str(run), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def losses(stdout):
    return [float(x) for x in re.findall(r"loss ([0-9.]+)", stdout)]


def weights(checkpoint):
    reader = tf.train.load_checkpoint(str(checkpoint))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.startswith(("model/", "ema/", "optimizer/")) and "OBJECT" not in k}


def assert_same_weights(a, b, atol=1e-6, rtol=1e-7):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys() and len(wa) > 20
    for key in wa:
        np.testing.assert_allclose(wa[key], wb[key], atol=atol, rtol=rtol, err_msg=key)


def assert_same_update(a, b, previous, fraction=0.05):
    """Checkpoints a and b of two runs that should compute the same step from `previous`: each
    model tensor within `fraction` of that step's update. Independent of the CPU's kernels
    (summation order differs by ~1e-6 of an update after a few steps) yet a skipped or doubled
    step (a difference of a whole update) fails."""
    wa, wb, w0 = weights(a), weights(b), weights(previous)
    keys = [k for k in wa if k.startswith("model/")]
    assert keys and wa.keys() == wb.keys()
    for key in keys:
        update = np.abs(wa[key] - w0[key]).max()
        assert np.abs(wa[key] - wb[key]).max() <= fraction * update + 1e-7, (key, update)


def assert_same_losses(out_a, out_b, exact_steps=3, rtol=0.02):
    """Loss trajectories of two equivalent runs: the first steps equal to the printed digits
    (same weights, data and noise), the rest within rtol (round-off grows over many steps on
    some CPUs; a wrong batch, loss scale or data order moves a step's loss by ≥ 10 %)."""
    la, lb = losses(out_a), losses(out_b)
    assert len(la) == len(lb) >= exact_steps > 0
    np.testing.assert_allclose(la[:exact_steps], lb[:exact_steps], rtol=0, atol=2e-4)
    np.testing.assert_allclose(la, lb, rtol=rtol)


@pytest.mark.parametrize("strategy", ["one_device", "mirrored"])
def test_loss_falls_on_digits(tmp_path, strategy):
    extra = ["--cpu-devices", "2"] if strategy == "mirrored" else []
    out = train(tmp_path / "run", "--preset", "tiny", "--steps", "300", "--strategy", strategy,
                "--set", "log_every=10", "--set", "checkpoint_every=300", *extra)
    assert out.returncode == 0, out.stderr
    replicas = 2 if strategy == "mirrored" else 1
    assert f"{replicas} replica(s)" in out.stdout
    curve = losses(out.stdout)
    assert len(curve) == 30
    first, last = np.mean(curve[:3]), np.mean(curve[-5:])
    assert last < 0.6 * first, (first, last)                  # the ε-L1 loss clearly falls
    assert (tmp_path / "run" / "checkpoints" / "ckpt-300.index").exists()
    assert list((tmp_path / "run" / "logs").glob("events.out.tfevents.*"))


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    common = ["--preset", "tiny", "--set", "checkpoint_every=4", "--set", "log_every=1"]
    straight = train(tmp_path / "straight", *common, "--steps", "24")
    assert straight.returncode == 0, straight.stderr

    run = tmp_path / "killed"
    # Killed twice at random steps, each after the first checkpoint (step 4) exists.
    first = random.randint(5, 11)
    for kill_after in (first, random.randint(first + 3, 21)):
        cmd = [sys.executable, str(ROOT / "train.py"), "--data", DIGITS, "--run", str(run),
               *common, "--steps", "24"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, cwd=ROOT)
        for line in proc.stdout:
            match = re.match(r"step (\d+)/", line)
            if match and int(match.group(1)) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, f"kill after step {kill_after}"
        latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
        assert latest is not None and weights(latest)       # the latest always loads
    resumed = train(run, "--steps", "24")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at step" in resumed.stdout
    assert_same_weights(straight_ckpt := tmp_path / "straight" / "checkpoints" / "ckpt-24",
                        run / "checkpoints" / "ckpt-24")
    assert straight_ckpt


def test_sigterm_writes_a_final_checkpoint_and_exits_0(tmp_path):
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", DIGITS, "--run",
           str(tmp_path / "run"), "--preset", "tiny", "--set", "log_every=1",
           "--set", "checkpoint_every=1000", "--steps", "100000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    for line in proc.stdout:
        if line.startswith("step 6/"):
            proc.send_signal(signal.SIGTERM)
            break
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    match = re.search(r"SIGTERM: stopped at step (\d+)", rest)
    assert match, rest
    step = int(match.group(1))
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith(
        f"ckpt-{step}")


def test_divergence_stops_before_the_bad_update(tmp_path):
    out = train(tmp_path / "run", "--preset", "tiny", "--steps", "200",
                "--set", "learning_rate=1e12", "--set", "checkpoint_every=1",
                "--set", "log_every=1")
    assert out.returncode == 2
    assert re.search(r"error: (loss|gradients) became (nan|inf)", out.stderr), out.stderr
    assert "Traceback" not in out.stderr
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert latest is None or all(np.all(np.isfinite(w)) for w in weights(latest).values()
                                 if w.dtype.kind == "f")


def test_bad_checkpoints_and_params_are_clear_errors(tmp_path):
    run = tmp_path / "run"
    assert train(run, "--preset", "tiny", "--steps", "2").returncode == 0
    # params.json edited by hand to another architecture: the checkpoint no longer fits.
    params = json.loads((run / "params.json").read_text())
    params["network"]["residual_channels"] = 8
    (run / "params.json").write_text(json.dumps(params))
    out = train(run, "--steps", "4")
    assert out.returncode == 2 and "cannot restore this checkpoint" in out.stderr
    assert "Traceback" not in out.stderr
    # A corrupted checkpoint file.
    run2 = tmp_path / "run2"
    assert train(run2, "--preset", "tiny", "--steps", "2").returncode == 0
    data = next((run2 / "checkpoints").glob("ckpt-2.data-*"))
    data.write_bytes(os.urandom(data.stat().st_size))
    out = train(run2, "--steps", "4")
    assert out.returncode == 2 and "cannot restore this checkpoint" in out.stderr
    # A params.json that is not JSON.
    (run2 / "params.json").write_text("{broken")
    out = train(run2, "--steps", "4")
    assert out.returncode == 2 and "not valid JSON" in out.stderr


@pytest.mark.parametrize("extra", [       # conditioning=class: the TensorBoard test below
    ["--set", "conditioning=mel", "--set", "hop_length=64", "--set", "n_mels=32"],
    ["--set", "mixed_precision=true"],
])
def test_conditioning_and_bf16_train(tmp_path, extra):
    out = train(tmp_path / "run", "--preset", "tiny", "--steps", "6", "--set", "log_every=2",
                *extra)
    assert out.returncode == 0, out.stderr
    assert all(np.isfinite(losses(out.stdout))) and len(losses(out.stdout)) == 3


def test_class_conditioning_needs_labels(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "train.py"), "--data",
                          str(ROOT / "dataset" / "chorales"), "--run", str(tmp_path / "r"),
                          "--preset", "tiny", "--set", "conditioning=class", "--steps", "2"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 2
    assert re.search(r"error: .*chorale_\w+.*\.flac: label -1 is not in \[0, 10\)", out.stderr)


def test_two_replicas_train_exactly_like_one(tmp_path):
    """Global-batch semantics: MirroredStrategy on 2 logical CPUs reaches the one-device
    weights (the same t and ε per example, the gradient averaged over the global batch)."""
    common = ["--preset", "tiny", "--steps", "12", "--set", "log_every=1",
              "--set", "checkpoint_every=1", "--set", "keep_checkpoints=2"]
    one = train(tmp_path / "one", *common, "--strategy", "one_device")
    two = train(tmp_path / "two", *common, "--strategy", "mirrored", "--cpu-devices", "2")
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    assert "2 replica(s)" in two.stdout
    assert_same_losses(one.stdout, two.stdout)
    ckpt = lambda run, n: tmp_path / run / "checkpoints" / f"ckpt-{n}"      # noqa: E731
    assert_same_update(ckpt("one", 12), ckpt("two", 12), ckpt("one", 11))


def test_class_conditioning_trains_and_logs_tensorboard_samples(tmp_path):
    """train.py's preview (_audio_sampler): two 1 s clips, labels 0 and 1, sampled by a
    Pipeline around the model being trained (Pipeline.from_loaded), logged to TensorBoard."""
    run = tmp_path / "run"
    out = train(run, "--preset", "tiny", "--steps", "6", "--set", "log_every=2",
                "--set", "conditioning=class", "--set", "audio_every=6")
    assert out.returncode == 0, out.stderr
    assert all(np.isfinite(losses(out.stdout))) and len(losses(out.stdout)) == 3
    clips = []
    for path in (run / "logs").rglob("events.out.tfevents*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            clips += [v.tensor.string_val for v in event.summary.value
                      if v.tag == "samples/audio"]
    assert len(clips) == 1 and len(clips[0]) == 4            # 2 × (WAV, label)
    audio, rate = tf.audio.decode_wav(clips[0][0])
    assert audio.shape == (int(rate), 1) and np.isfinite(audio.numpy()).all()
