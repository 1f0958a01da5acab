"""Run directories written before the package was re-layered (issue #14) still load: the code
of the last commit before it (`git archive`, so the test needs the repository's history) trains
tiny DiffWave and mel-UNet runs; today's train.py resumes them, generate.py samples them and
export.py exports the DiffWave one."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "ac6aea44346e847d5deb0522c47ddbe67916ebe0"   # the last commit before the re-layering


def run_py(cwd, script, *args, env=None):
    return subprocess.run([sys.executable, str(Path(cwd) / script), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(cwd),
                               **(env or {})})


@pytest.fixture(scope="module")
def old_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("old")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE, "--", "*.py"],
                             capture_output=True)
    if archive.returncode:
        pytest.skip(f"commit {BEFORE[:8]} is not in this checkout's history")
    code = root / "code"
    code.mkdir()
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
    env = {"AUDIO_DIFFUSION_CACHE": str(root / "cache")}
    for model, data, steps in (("diffwave", "digits", 20), ("mel-unet", "chorales", 10)):
        out = run_py(code, "train.py", "--model", model, "--data", ROOT / "dataset" / data,
                     "--run", root / model, "--preset", "tiny", "--steps", steps,
                     "--set", "checkpoint_every=10", env=env)
        assert out.returncode == 0, out.stderr[-2000:]
    return root, env


@pytest.mark.parametrize("model", ["diffwave", "mel-unet"])
def test_old_runs_generate(old_runs, model):
    root, env = old_runs
    out = run_py(ROOT, "generate.py", "--run", root / model, "--out", root / f"o-{model}",
                 "--seconds", "0.5", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(list((root / f"o-{model}").glob("*.wav"))) == 1


def test_old_run_resumes_and_exports(old_runs):
    root, env = old_runs
    out = run_py(ROOT, "train.py", "--data", ROOT / "dataset" / "digits", "--run",
                 root / "diffwave", "--steps", "22", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resumed at step 20" in out.stdout
    out = run_py(ROOT, "export.py", "--run", root / "diffwave", "--out", root / "exported")
    assert out.returncode == 0, out.stderr[-2000:]
