"""MultiWorkerMirroredStrategy with 2 worker processes on 127.0.0.1: identical weights, the
global-batch result of one device, and a killed worker that fails the job cleanly and resumes."""
import re
import subprocess
import sys
import time

import numpy as np
from test_training import (
    DIGITS,
    ROOT,
    assert_same_losses,
    assert_same_update,
    assert_same_weights,
    losses,
    train,
)


def test_two_workers_train_like_one_device(tmp_path):
    # Compared after 3 steps, relative to one step's update: other CPUs' kernels sum in
    # another order, and after 60 steps Adam has amplified that past any fixed tolerance.
    common = ["--preset", "tiny", "--steps", "3", "--set", "log_every=1",
              "--set", "checkpoint_every=1", "--set", "keep_checkpoints=3"]
    two = train(tmp_path / "mw", *common, "--local-workers", "2")
    assert two.returncode == 0, two.stderr
    assert "2 replica(s) (CollectiveAllReduceStrategy)" in two.stdout
    chief = tmp_path / "mw" / "checkpoints"
    assert_same_weights(chief / "ckpt-3", tmp_path / "mw" / "tmp-workers" / "worker-1" / "ckpt-3",
                        0.0)
    one = train(tmp_path / "one", *common, "--strategy", "one_device")
    assert one.returncode == 0, one.stderr
    assert_same_losses(one.stdout, two.stdout, exact_steps=3)
    assert_same_update(chief / "ckpt-3", tmp_path / "one" / "checkpoints" / "ckpt-3",
                       tmp_path / "one" / "checkpoints" / "ckpt-2")
    # … and it learns: 60 steps (resumed from step 3) lower the loss.
    longer = train(tmp_path / "mw", "--steps", "40", "--local-workers", "2")
    assert longer.returncode == 0, longer.stderr
    curve = losses(longer.stdout)
    assert np.mean(curve[-3:]) < np.mean(curve[:3])


def test_killed_worker_fails_cleanly_then_relaunch_resumes(tmp_path):
    run = tmp_path / "mw"
    args = ["--preset", "tiny", "--steps", "60", "--set", "log_every=1",
            "--set", "checkpoint_every=10"]
    cmd = [sys.executable, str(ROOT / "train.py"), "--data", DIGITS, "--run", str(run), *args,
           "--local-workers", "2"]
    launcher = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=ROOT)
    for line in launcher.stdout:
        match = re.match(r"step (\d+)/", line)
        if match and int(match.group(1)) >= 25:
            break
    children = subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True,
                              text=True).stdout.split()
    assert len(children) == 2
    killed_at = time.time()
    subprocess.run(["kill", "-9", children[1]])                 # worker 1 dies
    _, err = launcher.communicate(timeout=180)
    assert launcher.returncode != 0 and time.time() - killed_at < 120     # no hang
    assert "a worker exited with code -9" in err
    assert "Traceback" not in err.split("a worker exited")[-1]

    resumed = train(run, "--steps", "60", "--local-workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    step = int(re.search(r"resumed at step (\d+)", resumed.stdout).group(1))
    assert step >= 20 and step % 10 == 0
    one = train(tmp_path / "one", *args, "--strategy", "one_device")
    assert one.returncode == 0, one.stderr
    # The resumed steps see the batches and noise of an uninterrupted run: their losses follow
    # the one-device run's (a misaligned data iterator moves each step's loss by ≥ 10 %).
    resumed_curve = losses(resumed.stdout)
    assert len(resumed_curve) == 60 - step
    np.testing.assert_allclose(resumed_curve, losses(one.stdout)[step:], rtol=0.02)
