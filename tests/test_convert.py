"""diffusion.families.convert without PyTorch (the main venv): the module and the diffusers path need no
torch; converting an lmnt .pt names what is missing in one line. The conversions themselves are
compared with the originals in tests/parity (make parity)."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_converter_needs_no_torch():
    code = "import sys, diffusion.families.convert; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_lmnt_without_torch_is_one_line(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"\x80\x02}q\x00.")
    out = subprocess.run([sys.executable, "-m", "diffusion.families.convert", "lmnt",
                          str(tmp_path / "weights.pt"), "--run", str(tmp_path / "run")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "needs PyTorch" in out.stderr and not (tmp_path / "run").exists()


def test_diffusers_bad_directories_are_one_line(tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text('{"block_out_channels": [32, 64]}')
    for source, message in ((tmp_path / "nothing", "no such directory"),
                            (tmp_path, "diffusion_pytorch_model.safetensors: missing")):
        out = subprocess.run([sys.executable, "-m", "diffusion.families.convert", "diffusers", str(source),
                              "--run", str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and message in out.stderr, \
            out.stderr
