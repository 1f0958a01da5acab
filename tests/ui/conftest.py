"""The web UI's fixtures: every family's tiny run (a few real train.py steps, as the other tests
train), two SavedModels, three broken entries, and app.py serving them on a loopback port.
Skipped as a whole when the UI packages (requirements-ui.txt, `make ui`) are absent."""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

ROOT = Path(__file__).resolve().parents[2]
DIGITS, CHORALES = ROOT / "dataset" / "digits", ROOT / "dataset" / "chorales"
VOCODER = [a for kv in ("conditioning=mel", "sample_rate=22050", "crop_samples=4096", "n_mels=40",
                        "hop_length=256") for a in ("--set", kv)]


def py(*args, env=None):
    start = time.time()
    out = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                         timeout=600, cwd=ROOT, env={**os.environ, **(env or {})})
    assert out.returncode == 0, (args, out.stderr[-3000:])
    print(f"{time.time() - start:5.1f} s  {' '.join(map(str, args[:5]))}", flush=True)
    return out


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """runs/: digits (unconditional), digits-class, vocoder (mel-conditioned DiffWave), mel
    (mel-unet), mel-class (class mel-unet with CFG), ae (diffae), gen (diffgen); exported/digits: a SavedModel; broken/:
    a run without a checkpoint and one with unreadable params. Two chains run side by side."""
    root = tmp_path_factory.mktemp("ui")
    r, env = root / "runs", {}                 # the repository's data cache, as other tests
    tiny = ["--preset", "tiny", "--steps", "2"]

    def waveform():
        py("train.py", "--data", DIGITS, "--run", r / "digits", *tiny, env=env)
        py("export.py", "--run", r / "digits", "--out", r / "exported" / "digits",
           "--chunk-seconds", "0", env=env)
        py("train.py", "--data", DIGITS, "--run", r / "digits-class", *tiny,
           "--set", "conditioning=class", env=env)
        py("train.py", "--data", CHORALES, "--run", r / "vocoder", *tiny, *VOCODER, env=env)

    def others():
        py("train.py", "--model", "mel-unet", "--data", CHORALES, "--run", r / "mel", *tiny,
           env=env)
        py("train.py", "--model", "mel-unet", "--data", DIGITS, "--run", r / "mel-class", *tiny,
           "--set", "network.num_classes=10", "--set", "network.cfg_drop=0.1",
           "--set", "data.sample_rate=16000", env=env)
        py("train.py", "--model", "diffae", "--data", CHORALES, "--run", r / "ae", *tiny,
           env=env)
        py("train.py", "--model", "diffgen", "--autoencoder", r / "ae", "--data", CHORALES,
           "--run", r / "gen", *tiny, env=env)

    with ThreadPoolExecutor(2) as pool:
        for job in [pool.submit(waveform), pool.submit(others)]:
            job.result()
    (r / "broken" / "empty").mkdir(parents=True)
    (r / "broken" / "empty" / "params.json").write_text(
        (r / "digits" / "params.json").read_text())                 # no checkpoint
    (r / "broken" / "garbage").mkdir()
    (r / "broken" / "garbage" / "params.json").write_text("{not json")
    outside = root / "outside"
    outside.mkdir()
    (outside / "params.json").write_text((r / "digits" / "params.json").read_text())
    (r / "link-out").symlink_to(outside)                            # resolves outside: unlisted
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    def __init__(self, process, url, log):
        self.process, self.url, self.log = process, url, log

    def client(self):
        from gradio_client import Client
        return Client(self.url, verbose=False)


@pytest.fixture
def serving():
    """serving(ARGS, log): a context manager running app.py ARGS (see `serve`)."""
    return serve


@contextlib.contextmanager
def serve(args, log):
    """app.py ARGS on a free loopback port (cwd: the repository), stdout to `log`."""
    port = free_port()
    with open(log, "w") as f:
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *map(str, args),
                                    "--port", str(port)],
                                   stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            assert process.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.5)
    try:
        yield App(process, url, log)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def app(runs, tmp_path_factory):
    """app.py --runs RUNS --max-upload-mb 1 on a free loopback port, until the session ends."""
    with serve(["--runs", runs, "--max-upload-mb", 1],
                 tmp_path_factory.mktemp("app") / "app.log") as served:
        yield served
