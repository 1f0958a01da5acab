"""train.py as a user runs it: a run directory that describes itself, one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_prepare_only_writes_params_and_reports(tmp_path):
    out = run("--data", str(ROOT / "dataset" / "digits"), "--run", str(tmp_path / "r"),
              "--preset", "tiny", "--set", "batch_size=3", "--prepare-only")
    assert out.returncode == 0, out.stderr
    assert "files" in out.stdout and "batch: audio [3, 4000, 1]" in out.stdout
    saved = json.loads((tmp_path / "r" / "params.json").read_text())
    assert saved["data"]["batch_size"] == 3 and saved["network"]["residual_layers"] == 4
    # Same run again (no preset): reuses the run's params and the cache.
    again = run("--data", str(ROOT / "dataset" / "digits"), "--run", str(tmp_path / "r"),
                "--prepare-only")
    assert again.returncode == 0 and "reused" in again.stdout
    # Other params for the same run directory: refused, the saved file untouched.
    clash = run("--data", str(ROOT / "dataset" / "digits"), "--run", str(tmp_path / "r"),
                "--set", "residual_channels=8", "--prepare-only")
    assert clash.returncode == 2
    assert clash.stderr.count("\n") == 1 and "network.residual_channels: 16 → 8" in clash.stderr
    assert json.loads((tmp_path / "r" / "params.json").read_text()) == saved
    # … except the settings that change neither the variables nor a step's maths: bf16 on
    # resume is recorded in params.json and the run goes on; a network change with it is not.
    clash = run("--data", str(ROOT / "dataset" / "digits"), "--run", str(tmp_path / "r"),
                "--set", "train.mixed_precision=true", "--set", "residual_channels=8",
                "--prepare-only")
    assert clash.returncode == 2 and "network.residual_channels: 16 → 8" in clash.stderr
    bf16 = run("--data", str(ROOT / "dataset" / "digits"), "--run", str(tmp_path / "r"),
               "--set", "train.mixed_precision=true", "--set", "train.log_every=7",
               "--prepare-only")
    assert bf16.returncode == 0, bf16.stderr
    assert "train.mixed_precision: False → True; train.log_every: 10 → 7" in bf16.stdout
    resaved = json.loads((tmp_path / "r" / "params.json").read_text())
    assert resaved["train"]["mixed_precision"] is True and resaved["network"] == saved["network"]


def test_errors_are_one_line(tmp_path):
    for args, message in [
        (["--data", str(tmp_path / "missing"), "--run", str(tmp_path / "a")],
         "no such file or directory"),
        (["--data", str(ROOT / "dataset" / "digits"), "--run", str(tmp_path / "b"),
          "--set", "nonsense=1"], "unknown key 'nonsense'"),
    ]:
        out = run(*args, "--prepare-only")
        assert out.returncode == 2
        assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
        assert message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("name", ["vocoder", "digits", "chorales"])
def test_fine_tuning_a_bundled_model_needs_no_other_flag(tmp_path, name):
    """README: `train.py --init-from pretrained/X --data DIR --run R` takes X's params (sampling
    settings never block it) and trains; a refused --init-from writes no params.json."""
    out = run("--init-from", str(ROOT / "pretrained" / name), "--data",
              str(ROOT / "dataset" / "digits"), "--run", str(tmp_path / "r"), "--steps", "2",
              "--set", "train.checkpoint_every=1000")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "fine-tuning from" in out.stdout and "step 2" in out.stdout
    from params import Params  # the source's params as loaded: defaults filled in
    source = json.loads(Params.load(ROOT / "pretrained" / name / "params.json").to_json())
    saved = json.loads((tmp_path / "r" / "params.json").read_text())
    assert saved["network"] == source["network"]
    if name == "vocoder":     # another model's weights: refused before the run is written
        bad = run("--init-from", str(ROOT / "pretrained" / name), "--data",
                  str(ROOT / "dataset" / "digits"), "--run", str(tmp_path / "bad"),
                  "--preset", "tiny", "--set", "conditioning=mel")
        assert bad.returncode == 2 and "network params differ" in bad.stderr
        assert not (tmp_path / "bad" / "params.json").exists()
